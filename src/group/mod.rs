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

pub use classic::{
    ClassicGroup, GroupState, GroupTimeouts, JoinOutcome, JoinParams, JoinedMember,
    MemberDescription, Reply, SyncOutcome,
};
pub use offsets::{CommittedOffset, OffsetStore};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::time::{Duration, Instant};
use tracing::info;

type SharedGroup = Arc<Mutex<ClassicGroup>>;

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
    /// Committed offsets.
    pub offsets: OffsetStore,
    timeouts: GroupTimeouts,
    offsets_retention: Duration,
}

fn lock(group: &SharedGroup) -> MutexGuard<'_, ClassicGroup> {
    // Group methods never panic midway on client input; if one did, the
    // group is still structurally whole, so keep serving it.
    group.lock().unwrap_or_else(|e| e.into_inner())
}

impl GroupCoordinator {
    /// Loads committed offsets; groups that have some exist, Empty.
    ///
    /// # Errors
    /// sled fails.
    pub fn open(
        db: &sled::Db,
        timeouts: GroupTimeouts,
        offsets_retention: Duration,
    ) -> sled::Result<Self> {
        let offsets = OffsetStore::open(db)?;
        let groups = offsets
            .groups()
            .into_iter()
            .map(|id| {
                let group = Arc::new(Mutex::new(ClassicGroup::new(&id)));
                (id, group)
            })
            .collect();
        Ok(Self {
            groups: Mutex::new(groups),
            offsets,
            timeouts,
            offsets_retention,
        })
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

    /// Handles a JoinGroup, waiting for the rebalance's join phase.
    pub async fn join(&self, group_id: &str, params: JoinParams) -> JoinOutcome {
        if group_id.is_empty() {
            return JoinOutcome {
                error: Some(ResponseError::InvalidGroupId),
                generation: -1,
                member_id: params.member_id,
                ..JoinOutcome::default()
            };
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
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| JoinOutcome {
                error: Some(ResponseError::UnknownMemberId),
                generation: -1,
                member_id,
                ..JoinOutcome::default()
            }),
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
        let Some(group) = self.get(group_id) else {
            return SyncOutcome {
                error: Some(ResponseError::UnknownMemberId),
                ..SyncOutcome::default()
            };
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
            Reply::Later(rx) => rx.await.unwrap_or_else(|_| SyncOutcome {
                error: Some(ResponseError::RebalanceInProgress),
                ..SyncOutcome::default()
            }),
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
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<Option<ResponseError>> {
        let Some(group) = self.get(group_id) else {
            return vec![Some(ResponseError::UnknownMemberId); members.len()];
        };
        let mut group = self.lock_current(&group);
        let now = Instant::now();
        members
            .iter()
            .map(|(member_id, instance_id)| {
                group.leave(member_id, instance_id.as_deref(), &self.timeouts, now)
            })
            .collect()
    }

    /// Checks an OffsetCommit's member and generation (creating the group
    /// for a commit from outside any generation); a commit within a
    /// generation of a group that does not exist gets `unknown_group`.
    ///
    /// # Errors
    /// The Kafka error for the whole commit.
    pub fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        unknown_group: ResponseError,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let group = if generation < 0 {
            self.get_or_create(group_id)
        } else {
            self.get(group_id).ok_or(unknown_group)?
        };
        let result = self.lock_current(&group).check_commit(
            member_id,
            instance_id,
            generation,
            Instant::now(),
        );
        result
    }

    /// DescribeGroups for one group; unknown groups are "Dead".
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let Some(group) = self.get(group_id) else {
            return GroupDescription {
                state: GroupState::Dead,
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            };
        };
        let group = self.lock_current(&group);
        let (protocol, members) = group.describe();
        GroupDescription {
            state: group.state(),
            protocol_type: group.protocol_type().unwrap_or_default().to_owned(),
            protocol: protocol.unwrap_or_default(),
            members,
        }
    }

    /// Every group with its protocol type and state, by id.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
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
        listed
    }

    /// Whether a group is known (has members or offsets).
    pub fn exists(&self, group_id: &str) -> bool {
        self.get(group_id).is_some()
    }

    /// Topics the group's members subscribe to, if it has members.
    pub fn subscribed_topics(&self, group_id: &str) -> Vec<String> {
        self.get(group_id)
            .map(|g| lock(&g).subscribed_topics())
            .unwrap_or_default()
    }

    /// Deletes an empty group and its offsets.
    ///
    /// # Errors
    /// GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, or UNKNOWN_SERVER_ERROR if sled fails.
    pub fn delete(&self, group_id: &str) -> Result<(), ResponseError> {
        let group = self.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        {
            let mut group = self.lock_current(&group);
            if !group.is_empty() {
                return Err(ResponseError::NonEmptyGroup);
            }
            self.forget(&mut group);
        }
        self.offsets
            .remove_where(group_id, |_, _, _| true)
            .map_err(|_| ResponseError::UnknownServerError)?;
        info!(group = group_id, "deleted group");
        Ok(())
    }

    /// Runs every group's timers (sessions, join and sync deadlines).
    pub fn tick(&self) {
        let groups: Vec<SharedGroup> = self.map().values().cloned().collect();
        for group in groups {
            drop(self.lock_current(&group));
        }
    }

    /// Locks a group with its timers run up to now, so a reader never sees
    /// a member whose session has already expired (the timer task only
    /// ticks every 100 ms; Kafka expires members at the deadline).
    fn lock_current<'a>(&self, group: &'a SharedGroup) -> MutexGuard<'a, ClassicGroup> {
        let mut guard = lock(group);
        for member in guard.tick(&self.timeouts, Instant::now()) {
            info!(group = %guard.id, member, "member session expired");
        }
        guard
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

    /// Drops offsets of empty groups older than `offsets.retention.minutes`,
    /// and forgets empty groups with no offsets left.
    pub fn expire_offsets(&self, now_ms: i64) {
        let retention = i64::try_from(self.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let groups: Vec<SharedGroup> = self.map().values().cloned().collect();
        for shared in groups {
            let id = {
                let group = lock(&shared);
                if !group.is_empty() {
                    continue;
                }
                group.id.clone()
            };
            let removed = self.offsets.remove_where(&id, |_, _, o| {
                now_ms.saturating_sub(o.commit_timestamp) > retention
            });
            if let Ok(n) = removed.as_ref() {
                if *n > 0 {
                    info!(group = %id, expired = n, "expired committed offsets");
                }
            }
            if !self.offsets.has_group(&id) {
                let mut group = lock(&shared);
                if group.is_empty() {
                    self.forget(&mut group);
                }
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
