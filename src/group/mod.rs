//! The group coordinator: classic consumer groups and committed offsets.
//! This node coordinates every group.
//!
//! Each group lives behind its own mutex, so a slow or stuck group never
//! delays another; the map of groups is locked only to find or add one.
//! Requests that must wait (JoinGroup, SyncGroup) hold a oneshot receiver
//! and never a lock. A timer task calls [`GroupCoordinator::tick`] to
//! expire sessions and finish rebalances; the maintenance pass expires old
//! offsets of empty groups.

mod classic;
mod offsets;
mod records;

pub use classic::{
    ClassicGroup, GroupState, GroupTimeouts, JoinOutcome, JoinParams, JoinedMember,
    MemberDescription, Reply, SyncOutcome,
};
pub use offsets::{CommittedOffset, OffsetStore, TopicPartition};
pub use records::{GroupMetadata, GroupRecord, MemberMetadata};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::time::{Duration, Instant};
use tracing::{error, info, warn};

use crate::coordinator::{self, Replayable, Replayed, StateRecord, StateTopic};
use crate::log::{now_ms, AppendError, PartitionLog};

/// The internal topic that holds every group's offsets and metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

type SharedGroup = Arc<Mutex<ClassicGroup>>;

/// Transactional offset commits waiting for their transaction's marker:
/// (group, topic, partition) → (offset, its record's log offset).
type PendingOffsets = HashMap<(String, String, i32), (CommittedOffset, i64)>;

/// What DescribeGroups reports for one group.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// The state name; "Dead" for an unknown group.
    pub state: GroupState,
    /// The protocol type ("consumer"), or empty.
    pub protocol_type: String,
    /// The chosen protocol (assignor), or empty.
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
}

/// Every group on this node.
#[derive(Debug)]
pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, SharedGroup>>,
    /// Committed offsets (the cache of the offset records).
    offsets: OffsetStore,
    /// Transactional offset commits by (`__consumer_offsets` partition,
    /// producer id), invisible until that producer's commit marker lands
    /// in that partition (KIP-98), dropped on abort.
    pending: Mutex<HashMap<(i32, i64), PendingOffsets>>,
    /// The `__consumer_offsets` partitions, once the topic exists.
    topic: StateTopic,
    timeouts: GroupTimeouts,
    offsets_retention: Duration,
    /// Where an older strom kept committed offsets (read once, then dropped).
    db: sled::Db,
}

fn lock(group: &SharedGroup) -> MutexGuard<'_, ClassicGroup> {
    // Group methods never panic midway on client input; if one did, the
    // group is still structurally whole, so keep serving it.
    group.lock().unwrap_or_else(|e| e.into_inner())
}

/// A locked group that, when let go, stores the metadata record its
/// changes call for (a completed rebalance, an empty group) before any
/// other request can see the group, and then releases the SyncGroup
/// answers that waited for it.
struct Locked<'a> {
    group: MutexGuard<'a, ClassicGroup>,
    coordinator: &'a GroupCoordinator,
}

impl std::ops::Deref for Locked<'_> {
    type Target = ClassicGroup;
    fn deref(&self) -> &ClassicGroup {
        &self.group
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut ClassicGroup {
        &mut self.group
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(metadata) = self.group.take_store(now_ms()) else {
            return;
        };
        let record = GroupRecord::Group {
            group: self.group.id.clone(),
            value: Some(metadata),
        };
        let error = self.coordinator.append(&self.group.id, &[record]).err();
        self.group
            .stored(error, &self.coordinator.timeouts, Instant::now());
    }
}

/// Kafka's answer when the coordinator's append fails
/// (`GroupMetadataManager`'s error mapping).
fn append_error(e: &AppendError) -> ResponseError {
    match e {
        AppendError::TooLarge { .. } => ResponseError::InvalidCommitOffsetSize,
        AppendError::Deleted => ResponseError::CoordinatorNotAvailable,
        AppendError::Storage(_) => ResponseError::NotCoordinator,
        _ => ResponseError::UnknownServerError,
    }
}

impl GroupCoordinator {
    /// A coordinator with no groups yet: they arrive when the
    /// `__consumer_offsets` partitions are attached and loaded.
    pub fn new(db: sled::Db, timeouts: GroupTimeouts, offsets_retention: Duration) -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
            offsets: OffsetStore::default(),
            pending: Mutex::new(HashMap::new()),
            topic: StateTopic::new(OFFSETS_TOPIC),
            timeouts,
            offsets_retention,
            db,
        }
    }

    /// Whether the `__consumer_offsets` partitions are attached.
    pub fn is_attached(&self) -> bool {
        self.topic.is_attached()
    }

    /// Records whether this node leads `partition` of the state topic
    /// (see [`coordinator::set_led`]).
    pub fn set_led(self: &Arc<Self>, partition: i32, led: bool) {
        coordinator::set_led(self, partition, led);
    }

    /// Takes the `__consumer_offsets` partition logs and loads them by
    /// replay on a thread of its own; until a partition is loaded its
    /// groups answer COORDINATOR_LOAD_IN_PROGRESS. A `fresh` topic (just
    /// created, empty) is ready at once.
    pub fn attach(self: &Arc<Self>, logs: Vec<Arc<PartitionLog>>, fresh: bool) {
        let count = logs.len();
        if !self.topic.attach(logs) {
            return;
        }
        if fresh {
            for p in 0..i32::try_from(count).unwrap_or(0) {
                self.topic.mark_loaded(p);
            }
            self.migrate_legacy_offsets();
            return;
        }
        let coordinator = self.clone();
        let spawned = std::thread::Builder::new()
            .name("group-loader".into())
            .spawn(move || coordinator.load_all());
        if let Err(e) = spawned {
            error!(cause = %e, "cannot start the group loader; loading inline");
            self.load_all();
        }
    }

    /// Replays every partition, then migrates offsets an older strom kept in sled.
    fn load_all(&self) {
        let started = std::time::Instant::now();
        let count = self.topic.partition_count();
        let mut records = 0;
        for partition in 0..count {
            match self.load_partition(partition) {
                Ok(n) => records += n,
                Err(e) => {
                    error!(topic = OFFSETS_TOPIC, partition, cause = %e, "cannot load group state; its groups stay unavailable");
                    continue;
                }
            }
            self.topic.mark_loaded(partition);
            if (partition + 1) % 10 == 0 && partition + 1 < count {
                info!(
                    topic = OFFSETS_TOPIC,
                    loaded = partition + 1,
                    of = count,
                    records,
                    "loading groups"
                );
            }
        }
        info!(
            groups = self.map().len(),
            records,
            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "loaded group state from {OFFSETS_TOPIC}"
        );
        self.migrate_legacy_offsets();
    }

    /// Rebuilds one partition's groups and offsets from its records.
    fn load_partition(&self, partition: i32) -> std::io::Result<u64> {
        let now = Instant::now();
        let mut stored_groups: HashMap<String, Option<GroupMetadata>> = HashMap::new();
        let mut offset_groups: HashSet<String> = HashSet::new();
        let mut open: HashMap<i64, PendingOffsets> = HashMap::new();
        let read = self.topic.replay(partition, |replayed| {
            let (offset, key, value, producer) = match replayed {
                Replayed::Record {
                    offset,
                    key,
                    value,
                    producer,
                } => (offset, key, value, producer),
                Replayed::Marker {
                    producer_id,
                    commit,
                } => {
                    let ended = open.remove(&producer_id).unwrap_or_default();
                    if commit {
                        for ((group, topic, p), (committed, at)) in ended {
                            self.offsets.apply_if_newer(&group, &topic, p, committed, at);
                            offset_groups.insert(group);
                        }
                    }
                    return;
                }
            };
            match GroupRecord::decode(key, value) {
                Ok(Some(GroupRecord::Offset {
                    group,
                    topic,
                    partition,
                    value,
                })) => match (producer, value) {
                    (Some(producer_id), Some(committed)) => {
                        open.entry(producer_id)
                            .or_default()
                            .insert((group, topic, partition), (committed, offset));
                    }
                    (_, value) => {
                        if value.is_none() {
                            // A tombstone cancels the partition's pending
                            // transactional offsets too, as in Kafka.
                            let key = (group.clone(), topic.clone(), partition);
                            for pending in open.values_mut() {
                                pending.remove(&key);
                            }
                        }
                        self.offsets.apply(&group, &topic, partition, value, offset);
                        offset_groups.insert(group);
                    }
                },
                Ok(Some(GroupRecord::Group { group, value })) => {
                    stored_groups.insert(group, value);
                }
                Ok(None) => {}
                Err(e) => warn!(topic = OFFSETS_TOPIC, partition, cause = %e, "skipping a record that does not decode"),
            }
        })?;
        // Transactions still open: their offsets wait for the marker.
        let mut pending = self.pending();
        for (producer_id, offsets) in open {
            offset_groups.extend(offsets.keys().map(|k| k.0.clone()));
            pending.insert((partition, producer_id), offsets);
        }
        drop(pending);
        let mut map = self.map();
        for (id, stored) in stored_groups {
            match stored {
                Some(metadata) => {
                    map.insert(
                        id.clone(),
                        Arc::new(Mutex::new(ClassicGroup::restore(&id, metadata, now))),
                    );
                }
                None => {
                    map.remove(&id);
                }
            }
        }
        for id in offset_groups {
            if self.offsets.has_group(&id) || self.has_pending(&id) {
                map.entry(id.clone())
                    .or_insert_with(|| Arc::new(Mutex::new(ClassicGroup::new(&id))));
            }
        }
        Ok(read)
    }

    /// Writes the committed offsets an older strom kept in the sled tree
    /// `offsets` as records (where no newer record exists), then drops the tree.
    fn migrate_legacy_offsets(&self) {
        let legacy = match offsets::legacy_offsets(&self.db) {
            Ok(legacy) if legacy.is_empty() => return,
            Ok(legacy) => legacy,
            Err(e) => {
                error!(cause = %e, "cannot read committed offsets of an older version");
                return;
            }
        };
        let mut by_group: HashMap<String, Vec<GroupRecord>> = HashMap::new();
        for (group, topic, partition, offset) in legacy {
            if self.offsets.fetch(&group, &topic, partition).is_none() {
                by_group
                    .entry(group.clone())
                    .or_default()
                    .push(GroupRecord::Offset {
                        group,
                        topic,
                        partition,
                        value: Some(offset),
                    });
            }
        }
        for (group, records) in &by_group {
            if let Err(e) = self.append_and_apply(group, records) {
                error!(group, cause = ?e, "cannot migrate committed offsets; kept for the next start");
                return;
            }
            self.get_or_create(group);
        }
        match offsets::drop_legacy_offsets(&self.db) {
            Ok(()) => info!(
                groups = by_group.len(),
                "moved committed offsets into {OFFSETS_TOPIC}"
            ),
            Err(e) => error!(cause = %e, "cannot drop the migrated offsets tree"),
        }
    }

    /// Appends `records` for `group_id` as one batch to its partition; the
    /// log offset of the first.
    fn append(&self, group_id: &str, records: &[GroupRecord]) -> Result<i64, ResponseError> {
        let partition = self.topic.ready(group_id)?;
        let encoded: Vec<StateRecord> = records.iter().map(GroupRecord::encode).collect();
        self.topic
            .append(partition, &encoded, None, now_ms())
            .map_err(|e| {
                error!(group = group_id, cause = %e, "cannot store group state");
                append_error(&e)
            })
    }

    /// Appends offset records, then applies them to the cache.
    fn append_and_apply(
        &self,
        group_id: &str,
        records: &[GroupRecord],
    ) -> Result<(), ResponseError> {
        let base = self.append(group_id, records)?;
        for (record, at) in records.iter().zip(base..) {
            if let GroupRecord::Offset {
                group,
                topic,
                partition,
                value,
            } = record
            {
                if value.is_none() {
                    self.cancel_pending(group, topic, *partition);
                }
                self.offsets
                    .apply(group, topic, *partition, value.clone(), at);
            }
        }
        Ok(())
    }

    /// Whether `__consumer_offsets` partition `partition` is loaded.
    pub fn is_loaded(&self, partition: i32) -> bool {
        self.topic.is_loaded(partition)
    }

    /// Whether `group_id`'s partition is loaded.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS.
    pub fn ready(&self, group_id: &str) -> Result<(), ResponseError> {
        self.topic.ready(group_id).map(|_| ())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<(i32, i64), PendingOffsets>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `group_id` has transactional offsets waiting for a marker.
    fn has_pending(&self, group_id: &str) -> bool {
        self.pending()
            .values()
            .any(|offsets| offsets.keys().any(|k| k.0 == group_id))
    }

    /// Whether `group_id` has a transactional offset for the partition
    /// waiting for a marker (OffsetFetch `require_stable`: UNSTABLE_OFFSET_COMMIT).
    pub fn has_pending_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let key = (group_id.to_owned(), topic.to_owned(), partition);
        self.pending()
            .values()
            .any(|offsets| offsets.contains_key(&key))
    }

    /// The partitions of `group_id` with transactional offsets waiting for
    /// a marker, for which `wanted(topic)` holds.
    fn pending_partitions(
        &self,
        group_id: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<TopicPartition> {
        let mut found: Vec<TopicPartition> = self
            .pending()
            .values()
            .flat_map(|offsets| offsets.keys())
            .filter(|(g, t, _)| g == group_id && wanted(t))
            .map(|(_, t, p)| (t.clone(), *p))
            .collect();
        found.sort();
        found.dedup();
        found
    }

    /// A tombstone for the partition was stored: its pending transactional
    /// offsets are cancelled too (Kafka's `OffsetMetadataManager`).
    fn cancel_pending(&self, group_id: &str, topic: &str, partition: i32) {
        let key = (group_id.to_owned(), topic.to_owned(), partition);
        for offsets in self.pending().values_mut() {
            offsets.remove(&key);
        }
    }

    /// The `__consumer_offsets` partition that holds `group_id`.
    pub fn partition_for(&self, group_id: &str) -> Option<i32> {
        let count = self.topic.partition_count();
        (count > 0).then(|| crate::coordinator::partition_for(group_id, count))
    }

    /// Handles a TxnOffsetCommit: checks the member (KIP-447: generation
    /// and member id when the producer sends them), appends the offsets as
    /// a batch of `producer_id`'s transaction, and keeps them pending until
    /// the transaction's marker (see [`GroupCoordinator::complete_transaction`]).
    ///
    /// # Errors
    /// The Kafka error for the whole commit.
    #[allow(clippy::too_many_arguments)]
    pub fn commit_transactional(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        producer: (i64, i16),
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let partition = self.topic.ready(group_id)?;
        let group = if generation < 0 {
            self.get_or_create(group_id)
        } else {
            self.get(group_id).ok_or(ResponseError::IllegalGeneration)?
        };
        let mut group = self.lock_current(&group);
        group.check_commit(member_id, instance_id, generation, true, Instant::now())?;
        if offsets.is_empty() {
            return Ok(());
        }
        let records: Vec<StateRecord> = offsets
            .iter()
            .map(|(topic, p, offset)| {
                GroupRecord::Offset {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *p,
                    value: Some(offset.clone()),
                }
                .encode()
            })
            .collect();
        let base = self
            .topic
            .append(partition, &records, Some(producer), now_ms())
            .map_err(|e| {
                error!(group = group_id, cause = %e, "cannot store transactional offsets");
                append_error(&e)
            })?;
        let mut pending = self.pending();
        let open = pending.entry((partition, producer.0)).or_default();
        for ((topic, p, offset), at) in offsets.into_iter().zip(base..) {
            open.insert((group_id.to_owned(), topic, p), (offset, at));
        }
        drop(group);
        Ok(())
    }

    /// A marker of `producer_id` was appended to `__consumer_offsets`
    /// partition `partition`: its pending offsets become the committed
    /// ones (`commit`) or are dropped.
    pub fn complete_transaction(&self, partition: i32, producer_id: i64, commit: bool) {
        let Some(offsets) = self.pending().remove(&(partition, producer_id)) else {
            return;
        };
        if !commit {
            return;
        }
        for ((group, topic, p), (offset, at)) in offsets {
            self.offsets.apply_if_newer(&group, &topic, p, offset, at);
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, SharedGroup>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Option<SharedGroup> {
        self.map().get(id).cloned()
    }

    fn get_or_create(&self, id: &str) -> SharedGroup {
        self.map()
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Mutex::new(ClassicGroup::new(id))))
            .clone()
    }

    /// Locks a group with its timers run up to now, so a reader never sees
    /// a member whose session has already expired (the timer task only
    /// ticks every 100 ms; Kafka expires members at the deadline). Letting
    /// go of it stores what the changes call for.
    fn lock_current<'a>(&'a self, group: &'a SharedGroup) -> Locked<'a> {
        let mut guard = lock(group);
        for member in guard.tick(&self.timeouts, Instant::now()) {
            info!(group = %guard.id, member, "member session expired");
        }
        Locked {
            group: guard,
            coordinator: self,
        }
    }

    /// Handles a JoinGroup, waiting for the rebalance's join phase.
    pub async fn join(&self, group_id: &str, params: JoinParams) -> JoinOutcome {
        let refused = |error, member_id: String| JoinOutcome {
            error: Some(error),
            generation: -1,
            member_id,
            ..JoinOutcome::default()
        };
        if group_id.is_empty() {
            return refused(ResponseError::InvalidGroupId, params.member_id);
        }
        if let Err(e) = self.ready(group_id) {
            return refused(e, params.member_id);
        }
        let member_id = params.member_id.clone();
        let reply = loop {
            let group = self.get_or_create(group_id);
            let mut group = self.lock_current(&group);
            // Deleted or expired since the lookup (it is out of the map
            // now): join the group that replaces it.
            if group.state() != GroupState::Dead {
                break group.join(params, &self.timeouts, Instant::now());
            }
        };
        match reply {
            Reply::Now(outcome) => outcome,
            Reply::Later(rx) => rx
                .await
                .unwrap_or_else(|_| refused(ResponseError::UnknownMemberId, member_id)),
        }
    }

    /// Handles a SyncGroup, waiting for the leader's assignment.
    pub async fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: Vec<(String, Bytes)>,
    ) -> SyncOutcome {
        let refused = |error| SyncOutcome {
            error: Some(error),
            ..SyncOutcome::default()
        };
        if let Err(e) = self.ready(group_id) {
            return refused(e);
        }
        let Some(group) = self.get(group_id) else {
            return refused(ResponseError::UnknownMemberId);
        };
        let reply = self.lock_current(&group).sync(
            member_id,
            instance_id,
            generation,
            protocol,
            assignments,
            Instant::now(),
        );
        match reply {
            Reply::Now(outcome) => outcome,
            Reply::Later(rx) => rx
                .await
                .unwrap_or_else(|_| refused(ResponseError::RebalanceInProgress)),
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ResponseError> {
        if let Err(e) = self.ready(group_id) {
            return Some(e);
        }
        match self.get(group_id) {
            Some(group) => self.lock_current(&group).heartbeat(
                member_id,
                instance_id,
                generation,
                Instant::now(),
            ),
            None => Some(ResponseError::UnknownMemberId),
        }
    }

    /// Handles a LeaveGroup: one result per (member id, instance id).
    ///
    /// # Errors
    /// The group's partition is not loaded (an error for the whole request).
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.ready(group_id)?;
        let Some(group) = self.get(group_id) else {
            return Ok(vec![Some(ResponseError::UnknownMemberId); members.len()]);
        };
        let mut group = self.lock_current(&group);
        let now = Instant::now();
        Ok(members
            .iter()
            .map(|(member_id, instance_id)| {
                group.leave(member_id, instance_id.as_deref(), &self.timeouts, now)
            })
            .collect())
    }

    /// Handles an OffsetCommit: checks the member and generation (creating
    /// the group for a commit from outside any generation; a commit within
    /// a generation of a group that does not exist gets `unknown_group`),
    /// then appends one record per offset as one batch and only then makes
    /// them visible. Offsets the caller refused are not passed in.
    ///
    /// # Errors
    /// The Kafka error for the whole commit.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        unknown_group: ResponseError,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        self.ready(group_id)?;
        let group = if generation < 0 {
            self.get_or_create(group_id)
        } else {
            self.get(group_id).ok_or(unknown_group)?
        };
        // The group stays locked until the records are in the log, so two
        // commits of one group reach the log in the order they apply.
        let mut group = self.lock_current(&group);
        group.check_commit(member_id, instance_id, generation, false, Instant::now())?;
        if offsets.is_empty() {
            return Ok(());
        }
        let records: Vec<GroupRecord> = offsets
            .into_iter()
            .map(|(topic, partition, offset)| GroupRecord::Offset {
                group: group_id.to_owned(),
                topic,
                partition,
                value: Some(offset),
            })
            .collect();
        self.append_and_apply(group_id, &records)
    }

    /// The committed offset of one partition (none while not loaded).
    ///
    /// # Errors
    /// The group's partition is not loaded.
    pub fn committed(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<CommittedOffset>, ResponseError> {
        self.check_readable(group_id)?;
        Ok(self.offsets.fetch(group_id, topic, partition))
    }

    /// Every committed offset of a group.
    ///
    /// # Errors
    /// The group's partition is not loaded.
    pub fn group_offsets(
        &self,
        group_id: &str,
    ) -> Result<Vec<(TopicPartition, CommittedOffset)>, ResponseError> {
        self.check_readable(group_id)?;
        Ok(self.offsets.group_offsets(group_id))
    }

    /// Reads need the group's partition loaded; before the topic exists
    /// there is simply nothing to read.
    fn check_readable(&self, group_id: &str) -> Result<(), ResponseError> {
        match self.ready(group_id) {
            Err(ResponseError::CoordinatorNotAvailable) if !self.is_attached() => Ok(()),
            other => other,
        }
    }

    /// DescribeGroups for one group; unknown groups are "Dead".
    ///
    /// # Errors
    /// The group's partition is not loaded.
    pub fn describe(&self, group_id: &str) -> Result<GroupDescription, ResponseError> {
        self.check_readable(group_id)?;
        let Some(group) = self.get(group_id) else {
            return Ok(GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        let group = self.lock_current(&group);
        let (protocol, members) = group.describe();
        Ok(GroupDescription {
            state: group.state(),
            protocol_type: group.protocol_type().unwrap_or_default().to_owned(),
            protocol: protocol.unwrap_or_default(),
            members,
        })
    }

    /// Every group with its protocol type and state, by id.
    ///
    /// # Errors
    /// COORDINATOR_LOAD_IN_PROGRESS while any partition loads, as Kafka.
    pub fn list(&self) -> Result<Vec<(String, String, GroupState)>, ResponseError> {
        if (0..self.topic.partition_count()).any(|p| !self.topic.is_loaded(p)) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let groups: Vec<SharedGroup> = self.map().values().cloned().collect();
        let mut listed: Vec<(String, String, GroupState)> = groups
            .iter()
            .map(|g| {
                let g = self.lock_current(g);
                (
                    g.id.clone(),
                    g.protocol_type().unwrap_or_default().to_owned(),
                    g.state(),
                )
            })
            .filter(|(_, _, state)| *state != GroupState::Dead)
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(listed)
    }

    /// Handles an OffsetDelete: removes the group's offsets of the given
    /// partitions, except those of topics its members subscribe to (one
    /// result per partition, in order).
    ///
    /// # Errors
    /// The group is unknown or its partition not loaded.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.ready(group_id)?;
        let group = self.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        let group = self.lock_current(&group);
        let subscribed = group.subscribed_topics();
        let mut results = Vec::with_capacity(partitions.len());
        let mut records = Vec::new();
        for (topic, partition) in partitions {
            if subscribed.contains(topic) {
                results.push(Some(ResponseError::GroupSubscribedToTopic));
                continue;
            }
            results.push(None);
            if self.offsets.fetch(group_id, topic, *partition).is_some()
                || self.has_pending_offset(group_id, topic, *partition)
            {
                records.push(GroupRecord::Offset {
                    group: group_id.to_owned(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: None,
                });
            }
        }
        if !records.is_empty() {
            if let Err(e) = self.append_and_apply(group_id, &records) {
                return Ok(results.into_iter().map(|r| r.or(Some(e))).collect());
            }
        }
        drop(group);
        Ok(results)
    }

    /// Deletes an empty group and its offsets (tombstones for each, as Kafka).
    ///
    /// # Errors
    /// GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, the partition is not loaded, or
    /// the tombstones cannot be stored.
    pub fn delete(&self, group_id: &str) -> Result<(), ResponseError> {
        self.ready(group_id)?;
        let group = self.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        let mut group = self.lock_current(&group);
        if !group.is_empty() {
            return Err(ResponseError::NonEmptyGroup);
        }
        self.remove_group(&mut group, true, |_, _, _| true)?;
        info!(group = group_id, "deleted group");
        Ok(())
    }

    /// Writes tombstones for the locked group's offsets for which `doomed`
    /// holds and, if none remain, for the group itself (which is then
    /// forgotten); returns how many offsets went. With `with_pending`
    /// (DeleteGroups) partitions holding only pending transactional
    /// offsets get tombstones too, cancelling them, as Kafka's
    /// `deleteAllOffsets`; without it (expiry) a partition with pending
    /// offsets is left alone, and so is the group.
    fn remove_group(
        &self,
        group: &mut Locked<'_>,
        with_pending: bool,
        doomed: impl FnMut(&str, i32, &CommittedOffset) -> bool,
    ) -> Result<usize, ResponseError> {
        let id = group.id.clone();
        let pending = self.pending_partitions(&id, |_| true);
        let mut gone = self.offsets.select(&id, doomed);
        if with_pending {
            gone.extend(
                pending
                    .iter()
                    .filter(|p| !gone.contains(p))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        } else {
            gone.retain(|p| !pending.contains(p));
        }
        let mut records: Vec<GroupRecord> = gone
            .iter()
            .map(|(topic, partition)| GroupRecord::Offset {
                group: id.clone(),
                topic: topic.clone(),
                partition: *partition,
                value: None,
            })
            .collect();
        let remaining = self
            .offsets
            .group_offsets(&id)
            .into_iter()
            .any(|(tp, _)| !gone.contains(&tp));
        let forget = !remaining && (with_pending || pending.is_empty()) && group.is_empty();
        if forget {
            records.push(GroupRecord::Group {
                group: id.clone(),
                value: None,
            });
        }
        if !records.is_empty() {
            self.append_and_apply(&id, &records)?;
        }
        if forget {
            self.forget(group);
        }
        Ok(gone.len())
    }

    /// Whether a group is known (has members or offsets).
    pub fn exists(&self, group_id: &str) -> bool {
        self.get(group_id).is_some()
    }

    /// Runs every group's timers (sessions, join and sync deadlines).
    pub fn tick(&self) {
        let groups: Vec<SharedGroup> = self.map().values().cloned().collect();
        for group in groups {
            drop(self.lock_current(&group));
        }
    }

    /// Answers every waiting JoinGroup and SyncGroup with NOT_COORDINATOR,
    /// as Kafka does when a coordinator unloads, so shutdown never waits
    /// out a rebalance timeout.
    pub fn unload(&self) {
        let groups: Vec<SharedGroup> = self.map().values().cloned().collect();
        for group in groups {
            lock(&group).answer_waiting(ResponseError::NotCoordinator);
        }
    }

    /// Drops offsets of empty groups older than `offsets.retention.minutes`
    /// (tombstones), and forgets empty groups with no offsets left.
    pub fn expire_offsets(&self, now_ms: i64) {
        let retention = i64::try_from(self.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let groups: Vec<SharedGroup> = self.map().values().cloned().collect();
        for shared in groups {
            let mut group = self.lock_current(&shared);
            if !group.is_empty() || group.state() == GroupState::Dead {
                continue;
            }
            if self.ready(&group.id).is_err() {
                continue;
            }
            let id = group.id.clone();
            match self.remove_group(&mut group, false, |_, _, o| {
                now_ms.saturating_sub(o.commit_timestamp) > retention
            }) {
                Ok(0) => {}
                Ok(n) => info!(group = %id, expired = n, "expired committed offsets"),
                Err(e) => warn!(group = %id, cause = ?e, "cannot expire committed offsets"),
            }
        }
    }

    /// Writes tombstones for every group's offsets of a deleted topic,
    /// pending transactional ones included (as Kafka's `onPartitionsDeleted`).
    pub fn remove_topic(&self, topic: &str) {
        let groups: Vec<String> = self.map().keys().cloned().collect();
        for id in groups {
            let mut gone = self.offsets.select(&id, |t, _, _| t == topic);
            for p in self.pending_partitions(&id, |t| t == topic) {
                if !gone.contains(&p) {
                    gone.push(p);
                }
            }
            let records: Vec<GroupRecord> = gone
                .into_iter()
                .map(|(topic, partition)| GroupRecord::Offset {
                    group: id.clone(),
                    topic,
                    partition,
                    value: None,
                })
                .collect();
            if records.is_empty() {
                continue;
            }
            let Some(group) = self.get(&id) else { continue };
            let _group = self.lock_current(&group);
            if let Err(e) = self.append_and_apply(&id, &records) {
                warn!(group = %id, topic, cause = ?e, "cannot drop the deleted topic's committed offsets");
            }
        }
    }

    /// Marks a locked, empty group dead and drops it from the map, both
    /// under its lock, so a join that found it before sees it dead and
    /// retries (lock order: a group, then the map).
    fn forget(&self, group: &mut ClassicGroup) {
        group.mark_dead();
        self.map().remove(&group.id);
    }
}

impl Replayable for GroupCoordinator {
    fn state_topic(&self) -> &StateTopic {
        &self.topic
    }

    fn replay_partition(&self, partition: i32) -> std::io::Result<u64> {
        self.load_partition(partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;

    const TIMEOUTS: GroupTimeouts = GroupTimeouts {
        initial_delay: Duration::ZERO,
        min_session: Duration::from_millis(10),
        max_session: Duration::from_secs(300),
    };

    struct Fixture {
        dir: tempfile::TempDir,
        db: sled::Db,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let db = sled::open(dir.path().join("meta")).unwrap();
            Self { dir, db }
        }

        /// A coordinator over 3 compacted partitions, loaded inline.
        fn coordinator(&self) -> Arc<GroupCoordinator> {
            let config = LogConfig {
                compact: true,
                ..LogConfig::default()
            };
            let logs = (0..3)
                .map(|p| {
                    let dir = self.dir.path().join(format!("{OFFSETS_TOPIC}-{p}"));
                    Arc::new(
                        PartitionLog::open(&dir, OFFSETS_TOPIC, p, &self.db, config.clone(), 0)
                            .unwrap(),
                    )
                })
                .collect();
            let coordinator = Arc::new(GroupCoordinator::new(
                self.db.clone(),
                TIMEOUTS,
                Duration::from_secs(3600),
            ));
            assert!(coordinator.topic.attach(logs));
            coordinator.load_all();
            coordinator
        }
    }

    fn offset(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp: 1,
        }
    }

    #[test]
    fn offsets_survive_reload_and_deletes_are_tombstones() {
        let fixture = Fixture::new();
        {
            let groups = fixture.coordinator();
            let unknown = ResponseError::IllegalGeneration;
            for (group, n) in [("a", 1), ("b", 2), ("c", 3)] {
                groups
                    .commit(
                        group,
                        "",
                        None,
                        -1,
                        unknown,
                        vec![("t".into(), 0, offset(n))],
                    )
                    .unwrap();
            }
            groups
                .commit(
                    "a",
                    "",
                    None,
                    -1,
                    unknown,
                    vec![("t".into(), 1, offset(10))],
                )
                .unwrap();
            assert_eq!(
                groups.delete_offsets("b", &[("t".into(), 0)]).unwrap(),
                vec![None]
            );
            groups.delete("c").unwrap();
            assert_eq!(groups.delete("c"), Err(ResponseError::GroupIdNotFound));
        }
        let groups = fixture.coordinator();
        assert_eq!(groups.committed("a", "t", 0).unwrap(), Some(offset(1)));
        assert_eq!(groups.committed("a", "t", 1).unwrap(), Some(offset(10)));
        assert_eq!(groups.committed("b", "t", 0).unwrap(), None);
        let listed: Vec<String> = groups.list().unwrap().into_iter().map(|g| g.0).collect();
        assert_eq!(listed, ["a"]);
    }

    #[tokio::test]
    async fn a_stable_group_is_restored_in_its_generation() {
        let fixture = Fixture::new();
        let (member, generation) = {
            let groups = fixture.coordinator();
            let params = JoinParams {
                member_id: String::new(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout: Duration::from_secs(10),
                rebalance_timeout: Duration::from_secs(10),
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
                require_known_member_id: false,
                supports_skip_assignment: false,
            };
            let joined = groups.join("g", params).await;
            assert_eq!(joined.error, None);
            let synced = groups
                .sync(
                    "g",
                    &joined.member_id,
                    None,
                    joined.generation,
                    (None, None),
                    vec![(joined.member_id.clone(), Bytes::from_static(b"asg"))],
                )
                .await;
            assert_eq!(synced.assignment, Bytes::from_static(b"asg"));
            (joined.member_id, joined.generation)
        };
        let groups = fixture.coordinator();
        assert_eq!(groups.heartbeat("g", &member, None, generation), None);
        let described = groups.describe("g").unwrap();
        assert_eq!(described.state, GroupState::Stable);
        assert_eq!(described.members[0].assignment, Bytes::from_static(b"asg"));
        assert_eq!(
            groups.commit(
                "g",
                &member,
                None,
                generation,
                ResponseError::IllegalGeneration,
                vec![]
            ),
            Ok(())
        );
        // Without member id and generation: refused for a plain commit to a
        // group with members, accepted for a transactional one (older
        // producers send neither), as Kafka's validateOffsetCommit.
        assert_eq!(
            groups.commit("g", "", None, -1, ResponseError::IllegalGeneration, vec![]),
            Err(ResponseError::UnknownMemberId)
        );
        assert_eq!(
            groups.commit_transactional("g", "", None, -1, (3, 0), vec![]),
            Ok(())
        );
    }

    /// Commits `producer`'s transaction in the group's partition: the
    /// marker in the log, then the coordinator told, as the broker does.
    fn end_transaction(groups: &GroupCoordinator, group: &str, producer: i64, commit: bool) {
        let partition = groups.partition_for(group).unwrap();
        groups
            .topic
            .log(partition)
            .unwrap()
            .append_marker(producer, 0, commit, 0, 1)
            .unwrap();
        groups.complete_transaction(partition, producer, commit);
    }

    #[test]
    fn a_transaction_never_replaces_a_newer_commit() {
        let fixture = Fixture::new();
        {
            let groups = fixture.coordinator();
            let unknown = ResponseError::IllegalGeneration;
            groups
                .commit_transactional("g", "", None, -1, (7, 0), vec![("t".into(), 0, offset(5))])
                .unwrap();
            assert_eq!(groups.committed("g", "t", 0).unwrap(), None, "pending");
            assert!(groups.has_pending_offset("g", "t", 0));
            groups
                .commit(
                    "g",
                    "",
                    None,
                    -1,
                    unknown,
                    vec![("t".into(), 0, offset(10))],
                )
                .unwrap();
            end_transaction(&groups, "g", 7, true);
            assert_eq!(groups.committed("g", "t", 0).unwrap(), Some(offset(10)));
            assert!(!groups.has_pending_offset("g", "t", 0));
        }
        let groups = fixture.coordinator();
        assert_eq!(groups.committed("g", "t", 0).unwrap(), Some(offset(10)));
    }

    #[test]
    fn tombstones_cancel_pending_transactional_offsets() {
        let fixture = Fixture::new();
        {
            let groups = fixture.coordinator();
            groups
                .commit_transactional("g2", "", None, -1, (8, 0), vec![("t".into(), 0, offset(7))])
                .unwrap();
            groups.delete("g2").unwrap();
            end_transaction(&groups, "g2", 8, true);
            assert_eq!(groups.committed("g2", "t", 0).unwrap(), None);
            // Expiry leaves a partition with a pending offset, and its group.
            groups
                .commit_transactional("g3", "", None, -1, (9, 0), vec![("t".into(), 1, offset(3))])
                .unwrap();
            groups.expire_offsets(i64::MAX);
            assert!(groups.exists("g3"));
            end_transaction(&groups, "g3", 9, true);
            assert_eq!(groups.committed("g3", "t", 1).unwrap(), Some(offset(3)));
        }
        let groups = fixture.coordinator();
        assert_eq!(groups.committed("g2", "t", 0).unwrap(), None);
        assert_eq!(groups.committed("g3", "t", 1).unwrap(), Some(offset(3)));
        let listed: Vec<String> = groups.list().unwrap().into_iter().map(|g| g.0).collect();
        assert_eq!(listed, ["g3"], "the deleted group stays deleted");
    }
}
