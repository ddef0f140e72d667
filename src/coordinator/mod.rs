//! What every coordinator shares: its state lives as records in the
//! partitions of an internal compacted topic (`__consumer_offsets` for
//! groups; `__transaction_state` for transactions later), and memory is a
//! cache rebuilt by replaying them (Kafka's `CoordinatorRuntime`, reduced to
//! one node).
//!
//! [`StateTopic`] owns those partitions once the topic exists: which
//! partition a key lives in (Kafka's mapping, so tools agree), whether a
//! partition has been loaded, appending records, and replaying them. It
//! knows nothing of what the records mean; the group coordinator decodes
//! them.
//!
//! **Invariant:** a coordinator acknowledges a change only after its
//! records are appended to the partition log (in the page cache, under the
//! topic's flush policy), and it serves a key only once that key's
//! partition is loaded; before, requests get COORDINATOR_LOAD_IN_PROGRESS.

pub mod codec;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::log::{AppendError, BatchHeader, PartitionLog};

/// Kafka's `String.hashCode`: over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The partition of `key` among `count`: `abs(hashCode) % count`, with
/// Kafka's `Utils.abs` (which maps `i32::MIN` to 0).
pub fn partition_for(key: &str, count: i32) -> i32 {
    let hash = java_string_hash(key);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % count.max(1)
}

/// How long a request waits for the coordinator records it appended to
/// reach every in-sync replica (Kafka's `offsets.commit.timeout.ms`).
const REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A coordinator record not yet on every in-sync replica: its log, the
/// offset the high watermark must reach, and the leader epoch it was
/// appended in.
type Unreplicated = (Arc<PartitionLog>, i64, i32);

tokio::task_local! {
    static UNREPLICATED: std::cell::RefCell<Vec<Unreplicated>>;
}

/// Runs a request's handler, then waits until every coordinator record it
/// appended is on every in-sync replica (or [`REPLICATION_TIMEOUT`]), as
/// Kafka appends coordinator state with acks=all before it answers: a new
/// leader of the state partition then replays every acknowledged commit.
/// The handler's locks are released by then, so nothing waits on a
/// follower under a group's lock. On one node nothing is ever waited for.
pub async fn answer_once_replicated<F: std::future::Future>(handler: F) -> F::Output {
    let (output, pending) = UNREPLICATED
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let output = handler.await;
            let pending = UNREPLICATED.with(std::cell::RefCell::take);
            (output, pending)
        })
        .await;
    for (log, end, epoch) in pending {
        let deadline = tokio::time::Instant::now() + REPLICATION_TIMEOUT;
        if let Err(why) = log.wait_for_high_watermark(end, epoch, deadline).await {
            tracing::warn!(topic = %log.topic, partition = log.partition, end, ?why, "coordinator records not on every in-sync replica");
        }
    }
    output
}

/// A coordinator whose state is one internal topic, replayed partition by
/// partition (the group and the transaction coordinators).
pub trait Replayable: Send + Sync + 'static {
    /// Its state topic.
    fn state_topic(&self) -> &StateTopic;
    /// Replays `partition` into memory; how many records or keys it read.
    ///
    /// # Errors
    /// The log cannot be read.
    fn replay_partition(&self, partition: i32) -> std::io::Result<u64>;
}

/// Records whether this node leads `partition` of `coordinator`'s state
/// topic (keys of a partition led elsewhere get NOT_COORDINATOR). A
/// partition just led here is replayed again on a thread of its own (its
/// log grew by replication while another node led it), then served.
pub fn set_led<C: Replayable>(coordinator: &Arc<C>, partition: i32, led: bool) {
    if !coordinator.state_topic().set_led(partition, led) {
        return;
    }
    let topic = coordinator.state_topic().name();
    let coordinator = coordinator.clone();
    let reload = move || {
        match coordinator.replay_partition(partition) {
            Ok(read) => tracing::info!(
                topic,
                partition,
                read,
                "loaded a partition this node now leads"
            ),
            Err(e) => {
                tracing::error!(topic, partition, cause = %e, "cannot load a partition this node now leads")
            }
        }
        coordinator.state_topic().mark_loaded(partition);
    };
    if let Err(e) = std::thread::Builder::new()
        .name(format!("{topic}-loader"))
        .spawn(reload)
    {
        tracing::error!(topic, cause = %e, "cannot start a loader");
    }
}

/// One record as a coordinator writes it: a key and a value, or a
/// tombstone (`None`).
pub type StateRecord = (Bytes, Option<Bytes>);

#[derive(Debug)]
struct StatePartition {
    log: Arc<PartitionLog>,
    loaded: AtomicBool,
    /// Whether this node leads the partition (always, on one node): the
    /// keys of a partition led elsewhere get NOT_COORDINATOR.
    led: AtomicBool,
}

/// The partitions of one internal topic, once it exists.
#[derive(Debug)]
pub struct StateTopic {
    name: &'static str,
    partitions: OnceLock<Vec<StatePartition>>,
}

/// How far the topic is from serving a key.
///
/// # Errors
/// COORDINATOR_NOT_AVAILABLE before the topic exists,
/// COORDINATOR_LOAD_IN_PROGRESS while its partition replays,
/// NOT_COORDINATOR when another node leads the partition.
pub type Ready = Result<i32, ResponseError>;

impl StateTopic {
    /// A topic that does not exist yet.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            partitions: OnceLock::new(),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Takes the topic's partition logs (in partition order), each still to
    /// be loaded. Returns false if it already had them.
    pub fn attach(&self, logs: Vec<Arc<PartitionLog>>) -> bool {
        let partitions = logs
            .into_iter()
            .map(|log| StatePartition {
                log,
                loaded: AtomicBool::new(false),
                // Led until the broker says otherwise: on one node, always.
                led: AtomicBool::new(true),
            })
            .collect();
        self.partitions.set(partitions).is_ok()
    }

    /// Whether the topic's partitions are attached.
    pub fn is_attached(&self) -> bool {
        self.partitions.get().is_some()
    }

    /// How many partitions the topic has (0 before it exists).
    pub fn partition_count(&self) -> i32 {
        self.partitions
            .get()
            .map_or(0, |p| i32::try_from(p.len()).unwrap_or(i32::MAX))
    }

    fn partition(&self, partition: i32) -> Option<&StatePartition> {
        self.partitions.get()?.get(usize::try_from(partition).ok()?)
    }

    /// The partition that holds `key`'s state, if it is loaded.
    ///
    /// # Errors
    /// See [`Ready`].
    pub fn ready(&self, key: &str) -> Ready {
        let count = self.partition_count();
        if count == 0 {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        let partition = partition_for(key, count);
        match self.partition(partition) {
            Some(p) if !p.led.load(Ordering::Acquire) => Err(ResponseError::NotCoordinator),
            Some(p) if p.loaded.load(Ordering::Acquire) => Ok(partition),
            Some(_) => Err(ResponseError::CoordinatorLoadInProgress),
            None => Err(ResponseError::CoordinatorNotAvailable),
        }
    }

    /// Whether this node leads `partition` (always on one node).
    pub fn is_led(&self, partition: i32) -> bool {
        self.partition(partition)
            .is_some_and(|p| p.led.load(Ordering::Acquire))
    }

    /// Whether `partition` has been loaded.
    pub fn is_loaded(&self, partition: i32) -> bool {
        self.partition(partition)
            .is_some_and(|p| p.loaded.load(Ordering::Acquire))
    }

    /// Whether the topic exists and every partition of it is loaded.
    pub fn is_fully_loaded(&self) -> bool {
        self.partitions
            .get()
            .is_some_and(|ps| ps.iter().all(|p| p.loaded.load(Ordering::Acquire)))
    }

    /// Records whether this node leads `partition` (see [`Ready`]).
    /// Returns true when it just became the leader: the partition is then
    /// marked unloaded, and its coordinator must replay it (its log grew
    /// by replication meanwhile) and mark it loaded again.
    pub fn set_led(&self, partition: i32, led: bool) -> bool {
        let Some(p) = self.partition(partition) else {
            return false;
        };
        let was = p.led.swap(led, Ordering::AcqRel);
        let gained = led && !was;
        if gained {
            p.loaded.store(false, Ordering::Release);
        }
        gained
    }

    /// Marks `partition` loaded: its keys are served from now on.
    pub fn mark_loaded(&self, partition: i32) {
        if let Some(p) = self.partition(partition) {
            p.loaded.store(true, Ordering::Release);
        }
    }

    /// Appends `records` to `partition` as one batch (all or none), stamped
    /// `now_ms`; returns the first record's offset. With `producer`
    /// (id, epoch), the batch belongs to that producer's transaction
    /// (transactional offset commits): it counts only once a commit
    /// marker follows.
    ///
    /// # Errors
    /// The log refuses or fails the append.
    pub fn append(
        &self,
        partition: i32,
        records: &[StateRecord],
        producer: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<i64, AppendError> {
        let p = self.partition(partition).ok_or(AppendError::Deleted)?;
        let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::try_from(i).unwrap_or(i64::MAX),
                // The encoder keeps records in one batch only while offset
                // minus sequence stays constant, and writes the first
                // record's sequence as the base: -1, none.
                sequence: i32::try_from(i).unwrap_or(i32::MAX) - 1,
                timestamp: now_ms,
                key: Some(key.clone()),
                value: value.clone(),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| AppendError::Invalid(e.to_string()))?;
        let info = p.log.append_coordinator(buf.to_vec(), now_ms)?;
        let base = info.base_offset;
        let end = base + i64::try_from(records.len()).unwrap_or(0);
        if p.log.offsets().high_watermark < end {
            // Outside a request (timers, loaders) nobody waits.
            let _ = UNREPLICATED.try_with(|pending| {
                pending
                    .borrow_mut()
                    .push((p.log.clone(), end, info.leader_epoch))
            });
        }
        Ok(base)
    }

    /// Calls `apply` for every record and transaction marker of
    /// `partition` from its log start to its end, in offset order; returns
    /// how many records it read. A batch that does not decode is skipped
    /// with a warning: the coordinator's other state still loads.
    ///
    /// # Errors
    /// The log cannot be read.
    pub fn replay(
        &self,
        partition: i32,
        mut apply: impl FnMut(Replayed<'_>),
    ) -> std::io::Result<u64> {
        let Some(p) = self.partition(partition) else {
            return Ok(0);
        };
        let mut next = p.log.offsets().log_start_offset;
        let mut count = 0;
        loop {
            // To the log end, as Kafka's loaders read: a new leader's
            // high watermark may still lag what its log holds.
            let end = p.log.offsets().log_end_offset;
            let read = match p.log.read(next, 1 << 20, Some(end)) {
                Ok(read) => read,
                Err(e) => return Err(std::io::Error::other(format!("{e:?}"))),
            };
            if read.is_empty() {
                return Ok(count);
            }
            let bytes = read.bytes()?;
            let mut rest = bytes.clone();
            while !rest.is_empty() {
                let Ok(header) = BatchHeader::parse(&rest) else {
                    return Ok(count);
                };
                let Some(whole) = (header.size <= rest.len()).then(|| rest.split_to(header.size))
                else {
                    return Ok(count);
                };
                next = header.last_offset() + 1;
                if header.is_control() {
                    if let Some(marker) = crate::log::read_marker(&whole) {
                        apply(Replayed::Marker {
                            producer_id: header.producer_id,
                            commit: marker.commit,
                        });
                    }
                    continue;
                }
                let producer = header.is_transactional().then_some(header.producer_id);
                let walked = crate::log::for_each_record(&whole, |offset, key, value| {
                    if let Some(key) = key {
                        apply(Replayed::Record {
                            offset,
                            key,
                            value,
                            producer,
                        });
                        count += 1;
                    }
                });
                match walked {
                    Ok(()) => {}
                    Err(e) => tracing::warn!(
                        topic = self.name,
                        partition,
                        offset = header.base_offset,
                        cause = ?e,
                        "skipping a state batch that does not decode"
                    ),
                }
            }
        }
    }
}

/// What [`StateTopic::replay`] hands over, in log order.
#[derive(Debug)]
pub enum Replayed<'a> {
    /// A record; `producer` is set for a record of a transaction, which
    /// counts only once that producer's commit marker follows.
    Record {
        /// Its offset in the partition.
        offset: i64,
        /// The key.
        key: &'a [u8],
        /// The value, `None` for a tombstone.
        value: Option<&'a [u8]>,
        /// The transaction's producer id, if transactional.
        producer: Option<i64>,
    },
    /// A transaction marker of `producer_id`.
    Marker {
        /// The producer.
        producer_id: i64,
        /// Commit (or abort).
        commit: bool,
    },
}

/// The partition log's marker writer, for coordinators that end
/// transactions on their own partitions.
impl StateTopic {
    /// The log of `partition`, if attached.
    pub fn log(&self, partition: i32) -> Option<&Arc<PartitionLog>> {
        self.partition(partition).map(|p| &p.log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_partition_mapping() {
        // Values from Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(java_string_hash("console-consumer-12345"), 158_455_506);
        assert_eq!(partition_for("console-consumer-12345", 50), 6);
        assert_eq!(java_string_hash("ö"), 246, "UTF-16 units, not bytes");
    }
}
