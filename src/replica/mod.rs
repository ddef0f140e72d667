//! Partition replication, Kafka's way: followers fetch from the leader
//! with ordinary Fetch requests carrying their replica id ([`fetcher`]);
//! the leader tracks each follower's log end offset from those fetches,
//! sets the high watermark to what every in-sync replica has, and asks
//! the controller (the metadata quorum) to shrink the ISR when a follower
//! falls `replica.lag.time.max.ms` behind and to expand it when one
//! catches up (AlterIsr). A follower truncates only where the leader
//! tells it their logs diverge (leader epochs, see the fetcher).
//!
//! [`ReplicaManager`] holds the leader-side bookkeeping; it never blocks
//! on the network: ISR changes come back as [`IsrChange`]s for the caller
//! to propose.

pub mod fetcher;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use crate::cluster::quorum::MetadataImage;
use crate::log::{LogManager, PartitionLog};

/// A partition this node follows: where to fetch it from, in which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
}

/// An ISR change for the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrChange {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The leader epoch it was decided in.
    pub leader_epoch: i32,
    /// The partition epoch of the state it was computed from.
    pub partition_epoch: i32,
    /// The new ISR.
    pub isr: Vec<i32>,
}

/// A follower's progress as the leader saw it in its fetches.
#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Its log end offset (the offset it fetched from).
    end: i64,
    /// The last time it had everything the leader had.
    caught_up: Instant,
}

/// A partition this node leads.
#[derive(Debug)]
struct Led {
    epoch: i32,
    /// The partition epoch of the image state `isr` comes from.
    partition_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    followers: HashMap<i32, Progress>,
    /// An ISR change proposed and not yet seen in the image.
    pending: bool,
    since: Instant,
}

/// The leader side of replication on this node.
#[derive(Debug)]
pub struct ReplicaManager {
    node_id: i32,
    lag_max: Duration,
    led: Mutex<HashMap<(String, i32), Led>>,
    /// The leader epoch of each partition this node follows.
    following: Mutex<HashMap<(String, i32), i32>>,
}

impl ReplicaManager {
    /// A manager for node `node_id` with `replica.lag.time.max.ms`.
    pub fn new(node_id: i32, lag_max: Duration) -> Self {
        Self {
            node_id,
            lag_max,
            led: Mutex::new(HashMap::new()),
            following: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(String, i32), Led>> {
        self.led.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the image's leadership: this node's logs learn whether their
    /// high watermark waits for other replicas and which epoch to stamp;
    /// returns the partitions to follow, by leader.
    pub fn apply(&self, image: &MetadataImage, logs: &LogManager) -> BTreeMap<i32, Vec<Followed>> {
        let mut follow: BTreeMap<i32, Vec<Followed>> = BTreeMap::new();
        let mut led = self.lock();
        let mut still = HashMap::new();
        let mut following = self.following.lock().unwrap_or_else(|e| e.into_inner());
        let mut still_following = HashMap::new();
        for (topic, meta) in &image.topics {
            let Some(states) = image.partitions.get(topic) else {
                continue;
            };
            for ((partition, replicas), state) in (0..).zip(&meta.partitions).zip(states) {
                if !replicas.contains(&self.node_id) {
                    continue;
                }
                let Some(log) = logs.get(topic, partition) else {
                    continue;
                };
                let key = (topic.clone(), partition);
                if state.leader == self.node_id {
                    let kept = led.remove(&key).filter(|l| l.epoch == state.leader_epoch);
                    let mut entry = kept.unwrap_or_else(|| Led {
                        epoch: state.leader_epoch,
                        partition_epoch: state.partition_epoch,
                        replicas: replicas.clone(),
                        isr: state.isr.clone(),
                        followers: HashMap::new(),
                        pending: false,
                        since: Instant::now(),
                    });
                    if entry.isr != state.isr || entry.partition_epoch != state.partition_epoch {
                        entry.isr = state.isr.clone();
                        entry.pending = false;
                    }
                    entry.partition_epoch = state.partition_epoch;
                    entry.replicas = replicas.clone();
                    log.set_replicated(entry.isr.len() > 1, state.leader_epoch);
                    Self::update_high_watermark(self.node_id, &entry, &log);
                    still.insert(key, entry);
                } else {
                    log.set_replicated(true, state.leader_epoch);
                    // No truncation here: the fetcher sends the epoch of
                    // the log's last batch and truncates where the leader
                    // says their logs diverge (KIP-101). Truncating to the
                    // checkpointed high watermark, as before, lost
                    // acknowledged records: a replica restarted while the
                    // leader was stopped cut its log to its checkpoint
                    // (flushed lazily, far behind), stayed in the ISR,
                    // became leader, and the third replica, which had cut
                    // less, diverged from it.
                    still_following.insert(key.clone(), state.leader_epoch);
                    if state.leader >= 0 {
                        follow.entry(state.leader).or_default().push(Followed {
                            topic: topic.clone(),
                            partition,
                            leader_epoch: state.leader_epoch,
                        });
                    }
                }
            }
        }
        *led = still;
        *following = still_following;
        follow
    }

    /// Whether this node follows `topic`-`partition` in leader epoch `epoch`.
    pub fn follows(&self, topic: &str, partition: i32, epoch: i32) -> bool {
        self.following
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(topic.to_owned(), partition))
            == Some(&epoch)
    }

    /// Records a follower's fetch from `fetch_offset` in `epoch` and moves
    /// the high watermark; an ISR expansion to propose if the follower
    /// caught up while out of the ISR.
    ///
    /// # Errors
    /// NOT_LEADER_OR_FOLLOWER if this node does not lead the partition,
    /// FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for an older / newer
    /// epoch, or the replica is not one of the partition's.
    pub fn follower_fetch(
        &self,
        log: &PartitionLog,
        replica: i32,
        fetch_offset: i64,
        epoch: i32,
    ) -> Result<Option<IsrChange>, ResponseError> {
        let mut led = self.lock();
        let key = (log.topic.clone(), log.partition);
        let entry = led
            .get_mut(&key)
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        if epoch >= 0 && epoch < entry.epoch {
            return Err(ResponseError::FencedLeaderEpoch);
        }
        if epoch > entry.epoch {
            return Err(ResponseError::UnknownLeaderEpoch);
        }
        if !entry.replicas.contains(&replica) {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        let end = log.offsets().log_end_offset;
        let now = Instant::now();
        let progress = entry.followers.entry(replica).or_insert(Progress {
            end: fetch_offset,
            caught_up: entry.since,
        });
        progress.end = fetch_offset;
        if fetch_offset >= end {
            progress.caught_up = now;
        }
        Self::update_high_watermark(self.node_id, entry, log);
        let high_watermark = log.offsets().high_watermark;
        if !entry.isr.contains(&replica) && fetch_offset >= high_watermark && !entry.pending {
            entry.pending = true;
            let mut isr = entry.isr.clone();
            isr.push(replica);
            isr.sort_unstable();
            return Ok(Some(IsrChange {
                topic: key.0,
                partition: key.1,
                leader_epoch: entry.epoch,
                partition_epoch: entry.partition_epoch,
                isr,
            }));
        }
        Ok(None)
    }

    /// ISR shrinks to propose: in-sync followers that have not caught up
    /// for `replica.lag.time.max.ms`.
    pub fn lagging(&self) -> Vec<IsrChange> {
        let now = Instant::now();
        let mut changes = Vec::new();
        for ((topic, partition), entry) in self.lock().iter_mut() {
            if entry.pending {
                continue;
            }
            let behind = |id: &i32| {
                *id != self.node_id
                    && entry.followers.get(id).map_or(entry.since, |p| p.caught_up) + self.lag_max
                        < now
            };
            if entry.isr.iter().any(behind) {
                let isr: Vec<i32> = entry.isr.iter().copied().filter(|id| !behind(id)).collect();
                entry.pending = true;
                changes.push(IsrChange {
                    topic: topic.clone(),
                    partition: *partition,
                    leader_epoch: entry.epoch,
                    partition_epoch: entry.partition_epoch,
                    isr,
                });
            }
        }
        changes
    }

    /// Forgets that a proposed change is pending (it was refused or
    /// failed), so it is decided again.
    pub fn change_failed(&self, topic: &str, partition: i32) {
        if let Some(entry) = self.lock().get_mut(&(topic.to_owned(), partition)) {
            entry.pending = false;
        }
    }

    /// The high watermark: the smallest log end offset among the in-sync
    /// replicas (the leader's own included); a follower not heard from
    /// since this node took over holds it back.
    fn update_high_watermark(node_id: i32, entry: &Led, log: &PartitionLog) {
        let mut low = log.offsets().log_end_offset;
        for id in &entry.isr {
            if *id == node_id {
                continue;
            }
            match entry.followers.get(id) {
                Some(progress) => low = low.min(progress.end),
                None => return,
            }
        }
        log.advance_high_watermark(low);
    }
}
