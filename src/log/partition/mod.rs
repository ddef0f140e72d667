//! [`PartitionLog`]: one partition's log (Kafka's `UnifiedLog`): segment
//! files, the sled batch index, offsets, idempotent producer state,
//! recovery on open, roll, retention, DeleteRecords and flushing.
//!
//! Thread-safety: one mutex guards every modification (append, roll,
//! retention, truncation). Reads take it only to look up offsets and a file
//! handle, then read the file without it. Appends wake long-polling
//! fetchers through [`PartitionLog::appended`].

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;
use tracing::info;

pub(crate) mod cleaning;
mod recovery;
mod replica;
mod retention;
mod verification;

pub use verification::VerificationGuard;

pub(crate) use cleaning::{
    cleaned_file_name as cleaning_file_name, is_aborted, CleanSnapshot, SegmentSnapshot,
};

use super::batch::{self, BatchError, RecordProblem, RecordRules, Stamp};
use super::index::{BatchEntry, SegmentIndex};
use super::producer_state::{ProducerSnapshot, ProducerStateManager, SequenceCheck, SequenceError};
use super::segment::{FileRegion, LogSegment};
use super::transactions::{AbortedTxn, TxnIndex};

/// The settings a partition log obeys, resolved from its topic's overrides
/// and the broker defaults. Changing them takes effect on the next append
/// or retention pass.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is this old.
    pub segment_ms: i64,
    /// `retention.ms`: delete closed segments older than this (-1: never).
    pub retention_ms: i64,
    /// `retention.bytes`: delete closed segments while the log is larger (-1: never).
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type=LogAppendTime`.
    pub log_append_time: bool,
    /// `flush.messages`: fsync after this many records.
    pub flush_messages: i64,
    /// `flush.ms`: fsync when data has been unflushed this long.
    pub flush_ms: i64,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: records need keys and the
    /// cleaner keeps the latest record per key.
    pub compact: bool,
    /// `cleanup.policy` includes `delete`: `retention.ms` and
    /// `retention.bytes` delete old segments. Without it (compact only)
    /// retention never deletes a segment.
    pub delete: bool,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone after
    /// the first clean that saw it.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: the dirty share of the cleanable range
    /// above which the log is cleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this makes the
    /// log cleanable whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
    /// `min.insync.replicas`: replicas an acks=all write needs in sync.
    pub min_insync_replicas: i64,
    /// `producer.id.expiration.ms`: forget an idempotent producer this
    /// long after its last batch.
    pub producer_id_expiration_ms: i64,
}

impl LogConfig {
    /// The per-record rules produced batches must follow.
    pub fn record_rules(&self) -> RecordRules {
        RecordRules {
            log_append_time: self.log_append_time,
            timestamp_before_max_ms: self.timestamp_before_max_ms,
            timestamp_after_max_ms: self.timestamp_after_max_ms,
            keys_required: self.compact,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            log_append_time: false,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            compact: false,
            delete: true,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_insync_replicas: 1,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

/// Why an append was refused.
#[derive(Debug)]
pub enum AppendError {
    /// Bad CRC, magic or lengths (CORRUPT_MESSAGE).
    Corrupt(String),
    /// A well-formed batch that breaks a rule (INVALID_RECORD).
    Invalid(String),
    /// Records that break the topic's record rules (INVALID_TIMESTAMP if
    /// any timestamp is out of range, else INVALID_RECORD).
    Records {
        /// Whether a timestamp is to blame.
        invalid_timestamp: bool,
        /// Each refused record, as Kafka's `RecordError`s.
        errors: Vec<RecordError>,
    },
    /// Larger than `max.message.bytes` (MESSAGE_TOO_LARGE).
    TooLarge {
        /// The batch size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An idempotence violation.
    Sequence(SequenceError),
    /// The partition was deleted (its topic is gone).
    Deleted,
    /// The disk or index failed (KAFKA_STORAGE_ERROR).
    Storage(String),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Corrupt(m) | Self::Invalid(m) | Self::Storage(m) => write!(f, "{m}"),
            Self::TooLarge { size, max } => write!(
                f,
                "The record batch is {size} bytes, larger than the maximum of {max} bytes"
            ),
            Self::Records {
                invalid_timestamp: true,
                ..
            } => write!(
                f,
                "One or more records have been rejected due to invalid timestamp"
            ),
            Self::Records { errors, .. } => write!(
                f,
                "One or more records have been rejected due to {} record errors in total, \
                 and only showing the first three errors at most: [{}]",
                errors.len(),
                errors
                    .iter()
                    .take(3)
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Sequence(e) => write!(f, "{e}"),
            Self::Deleted => write!(f, "the partition was deleted"),
        }
    }
}

/// One refused record of a produced batch (Kafka's `RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The record's index in its batch.
    pub batch_index: i32,
    /// Why, in Kafka's words.
    pub message: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecordError(batchIndex={}, message='{}')",
            self.batch_index, self.message
        )
    }
}

impl AppendError {
    /// The append error for a batch `validate` refused in `topic`-`partition`.
    fn from_batch(e: BatchError, topic: &str, partition: i32) -> Self {
        match e {
            BatchError::Corrupt(_) => Self::Corrupt(e.to_string()),
            BatchError::TooLarge { size, max } => Self::TooLarge { size, max },
            // Kafka finds no whole batch in the data: INVALID_RECORD.
            BatchError::Truncated => Self::Invalid(format!(
                "{e}: a produce request must hold one whole record batch \
                 for topic partition {topic}-{partition}"
            )),
            BatchError::Invalid(m) => {
                Self::Invalid(format!("{m} in topic partition {topic}-{partition}"))
            }
            BatchError::Records(problems) => Self::Records {
                invalid_timestamp: problems.iter().any(|(_, p)| p.is_timestamp()),
                errors: problems
                    .into_iter()
                    .map(|(batch_index, problem)| RecordError {
                        batch_index,
                        message: record_message(&problem, topic, partition),
                    })
                    .collect(),
            },
        }
    }
}

/// Kafka's text for one refused record.
fn record_message(problem: &RecordProblem, topic: &str, partition: i32) -> String {
    match problem {
        RecordProblem::TimestampOutOfRange {
            timestamp,
            offset,
            low,
            high,
        } => format!(
            "Timestamp {timestamp} of message with offset {offset} is out of range. \
             The timestamp should be within [{low}, {high}]"
        ),
        RecordProblem::LogAppendTimeFromProducer => "Invalid timestamp type in message. \
             Producer should not set timestamp type to LogAppendTime."
            .into(),
        RecordProblem::MissingKey => format!(
            "Compacted topic cannot accept message without key in topic partition {topic}-{partition}"
        ),
    }
}

/// Why a read was refused.
#[derive(Debug)]
pub enum ReadError {
    /// The offset is below the log start or above the log end.
    OffsetOutOfRange,
    /// The partition was deleted (its topic is gone).
    Deleted,
    /// The disk failed (KAFKA_STORAGE_ERROR).
    Storage(String),
}

/// Where an appended batch went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// The broker's append time for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// The log start offset after the append.
    pub log_start_offset: i64,
    /// The leader epoch this node appended in (as leader): the batch is
    /// committed only if the high watermark passes it within that epoch.
    pub leader_epoch: i32,
}

/// Why an acks=all wait ([`PartitionLog::wait_for_high_watermark`]) ended
/// without the records on every in-sync replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReplicated {
    /// The deadline passed.
    TimedOut,
    /// The leader epoch the records were appended in is over: this node
    /// no longer leads in it, and the records may be truncated away.
    LeaderChanged,
}

/// The offsets a fetch reports with its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Offset up to which records are committed (visible to consumers).
    pub high_watermark: i64,
    /// Offset below which no transaction is open (read_committed reads up
    /// to it): the high watermark when none is.
    pub last_stable_offset: i64,
    /// Offset the next append gets.
    pub log_end_offset: i64,
}

/// Where the wanted batches are, plus the offsets at the time of reading.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole record batches, back to back; `None` if there are none.
    pub records: Option<FileRegion>,
    /// Offsets when the read ran.
    pub offsets: LogOffsets,
    /// For a read_committed read: the aborted transactions overlapping the
    /// returned batches, by first offset (empty otherwise).
    pub aborted: Vec<AbortedTxn>,
}

impl ReadResult {
    /// How many bytes of batches were found.
    pub fn len(&self) -> usize {
        self.records.as_ref().map_or(0, |r| r.len)
    }

    /// Whether no batch was found.
    pub fn is_empty(&self) -> bool {
        self.records.is_none()
    }

    /// The batches, read into memory (empty if none).
    ///
    /// # Errors
    /// The segment cannot be read.
    pub fn bytes(&self) -> std::io::Result<Bytes> {
        self.records
            .as_ref()
            .map_or(Ok(Bytes::new()), FileRegion::read)
    }
}

#[derive(Debug)]
struct LogState {
    config: LogConfig,
    /// Segments by base offset; the last one is active.
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Equal to the log end offset unless `replicated`: then moved by
    /// [`PartitionLog::advance_high_watermark`] as the replicas catch up.
    high_watermark: i64,
    /// Whether other replicas must have an offset before it is below the
    /// high watermark (a leader with followers in sync, or a follower).
    replicated: bool,
    /// The leader epoch stamped on the batches this node appends as leader.
    leader_epoch: i32,
    /// Kafka's leader epoch cache: each leader epoch of the log's batches
    /// → the first offset stamped with it (see `replica.rs`).
    epochs: BTreeMap<i32, i64>,
    producers: ProducerStateManager,
    /// Open and aborted transactions (the LSO, read_committed fetches).
    txns: TxnIndex,
    unflushed_records: i64,
    last_flush_ms: i64,
    /// Set by `destroy`: the files and index are gone; every call fails.
    deleted: bool,
    /// The cleaner checkpoint: every offset below it has been cleaned
    /// (Kafka's first dirty offset), persisted in the sled tree
    /// `cleaner_checkpoints`.
    cleaner_checkpoint: i64,
}

impl LogState {
    fn offsets(&self) -> LogOffsets {
        LogOffsets {
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark,
            // Never below the log start (DeleteRecords may pass an open
            // transaction's start), as Kafka's `maybeIncrementFirstUnstableOffset`.
            last_stable_offset: self
                .txns
                .first_unstable_offset()
                .map_or(self.high_watermark, |f| {
                    f.max(self.log_start_offset).min(self.high_watermark)
                }),
            log_end_offset: self.log_end_offset,
        }
    }
}

/// One partition's log.
#[derive(Debug)]
pub struct PartitionLog {
    /// The topic.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
    dir: PathBuf,
    index: SegmentIndex,
    /// Persisted log start offsets (`<topic>/<partition>` → i64).
    starts: sled::Tree,
    /// Persisted cleaner checkpoints (`<topic>/<partition>` → version
    /// byte 0, then the i64 offset).
    checkpoints: sled::Tree,
    /// Checkpointed high watermarks (see `replica.rs`).
    watermarks: sled::Tree,
    state: Mutex<LogState>,
    appended: Notify,
    /// Transactional writes verified with a coordinator on another node,
    /// not appended yet (see `verification.rs`). Taken before `state`.
    verifications: Mutex<verification::Verifications>,
}

fn storage(e: impl std::fmt::Display) -> AppendError {
    AppendError::Storage(e.to_string())
}

impl PartitionLog {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock leaves the state consistent at
        // batch granularity (file first, then index, then offsets), so
        // keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Woken (`notify_waiters`) after every append, for long-polling fetches.
    pub fn appended(&self) -> &Notify {
        &self.appended
    }

    /// Replaces the log's settings.
    pub fn set_config(&self, config: LogConfig) {
        self.lock().config = config;
    }

    /// The log's current settings.
    pub fn config(&self) -> LogConfig {
        self.lock().config.clone()
    }

    /// The bytes of its segment files (DescribeLogDirs' partition size).
    pub fn size_bytes(&self) -> u64 {
        self.lock().segments.values().map(|s| s.size).sum()
    }

    /// The current offsets.
    pub fn offsets(&self) -> LogOffsets {
        self.lock().offsets()
    }

    /// Validates and appends one batch as the producer sent it, assigning
    /// offsets. A retried idempotent batch returns its original offset.
    ///
    /// # Errors
    /// [`AppendError`] naming the reason; nothing is stored then.
    pub fn append(&self, bytes: Vec<u8>, now_ms: i64) -> Result<AppendInfo, AppendError> {
        let (max_bytes, rules) = {
            let state = self.lock();
            (state.config.max_message_bytes, state.config.record_rules())
        };
        let header = batch::validate(&bytes, max_bytes, &rules, now_ms)
            .map_err(|e| AppendError::from_batch(e, &self.topic, self.partition))?;
        let mut state = self.lock();
        if state.deleted {
            return Err(AppendError::Deleted);
        }
        if header.has_producer() {
            let check = state
                .producers
                .check(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                    header.last_sequence(),
                )
                .map_err(AppendError::Sequence)?;
            if let SequenceCheck::Duplicate(base_offset) = check {
                return Ok(AppendInfo {
                    base_offset,
                    log_append_time: -1,
                    log_start_offset: state.log_start_offset,
                    leader_epoch: state.leader_epoch,
                });
            }
        }
        let info = self.append_checked(&mut state, bytes, &header, None, now_ms)?;
        drop(state);
        self.appended.notify_waiters();
        Ok(info)
    }

    /// Appends a batch a coordinator built itself (Kafka's appends with
    /// `AppendOrigin.COORDINATOR`): checked for structure and size only,
    /// no producer sequence checks (transactional offset commits carry a
    /// producer id and epoch but no sequence).
    ///
    /// # Errors
    /// The batch is malformed or too large, or the log fails.
    pub fn append_coordinator(
        &self,
        bytes: Vec<u8>,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let header = batch::BatchHeader::parse(&bytes)
            .map_err(|e| AppendError::from_batch(e, &self.topic, self.partition))?;
        let mut state = self.lock();
        if state.deleted {
            return Err(AppendError::Deleted);
        }
        if bytes.len() > state.config.max_message_bytes {
            return Err(AppendError::TooLarge {
                size: bytes.len(),
                max: state.config.max_message_bytes,
            });
        }
        if header.has_producer() {
            state
                .producers
                .check_marker(header.producer_id, header.producer_epoch)
                .map_err(AppendError::Sequence)?;
        }
        let info = self.append_checked(&mut state, bytes, &header, None, now_ms)?;
        drop(state);
        self.appended.notify_waiters();
        Ok(info)
    }

    /// Appends a transaction marker for `producer_id` (Kafka's
    /// `appendAsLeader` of an `EndTransactionMarker`): it takes an offset
    /// like any batch, ends the producer's open transaction here, and an
    /// abort is remembered for read_committed fetches.
    ///
    /// # Errors
    /// [`SequenceError::StaleEpoch`] for an epoch older than the producer's
    /// (a fenced coordinator or producer), or the log fails.
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let bytes = batch::control_batch(producer_id, epoch, commit, coordinator_epoch, now_ms);
        let header = batch::BatchHeader::parse(&bytes)
            .map_err(|e| AppendError::from_batch(e, &self.topic, self.partition))?;
        // A marker ends the transaction: a write verified before it may
        // no longer land (it would belong to no transaction).
        let mut verifications = self.lock_verifications();
        verifications.forget(producer_id);
        let mut state = self.lock();
        if state.deleted {
            return Err(AppendError::Deleted);
        }
        state
            .producers
            .check_marker(producer_id, epoch)
            .map_err(AppendError::Sequence)?;
        let marker = batch::Marker {
            commit,
            coordinator_epoch,
        };
        let info = self.append_checked(&mut state, bytes, &header, Some(marker), now_ms)?;
        drop(state);
        drop(verifications);
        self.appended.notify_waiters();
        Ok(info)
    }

    /// Appends a checked batch (`marker`: a transaction marker that
    /// commits or not) under the lock: offsets, file, index, producer and
    /// transaction state.
    fn append_checked(
        &self,
        state: &mut LogState,
        bytes: Vec<u8>,
        header: &batch::BatchHeader,
        marker: Option<batch::Marker>,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        self.store(state, bytes, header, marker, now_ms, true)
    }

    /// Appends a batch a follower fetched from its leader, as the leader
    /// stored it (offsets, leader epoch, timestamps and CRC unchanged): it
    /// must start at this log's end. Producer and transaction state follow
    /// it as they follow a leader's appends.
    ///
    /// # Errors
    /// A malformed batch, one that does not start at the log end, or the
    /// log fails.
    pub fn append_replica(&self, bytes: Vec<u8>, now_ms: i64) -> Result<i64, AppendError> {
        let header = batch::BatchHeader::parse(&bytes)
            .map_err(|e| AppendError::from_batch(e, &self.topic, self.partition))?;
        batch::check_crc(&bytes, &header)
            .map_err(|e| AppendError::from_batch(e, &self.topic, self.partition))?;
        let marker = batch::is_control(header.attributes)
            .then(|| batch::read_marker(&bytes))
            .flatten();
        let mut state = self.lock();
        if state.deleted {
            return Err(AppendError::Deleted);
        }
        if header.base_offset != state.log_end_offset {
            return Err(AppendError::Invalid(format!(
                "a replicated batch at offset {} but the log ends at {}",
                header.base_offset, state.log_end_offset
            )));
        }
        self.store(&mut state, bytes, &header, marker, now_ms, false)?;
        let end = state.log_end_offset;
        drop(state);
        self.appended.notify_waiters();
        Ok(end)
    }

    /// Whether other replicas hold this log's high watermark back (see
    /// `LogState::replicated`); turning it off moves the high watermark to
    /// the log end.
    pub fn set_replicated(&self, replicated: bool, leader_epoch: i32) {
        let mut state = self.lock();
        state.replicated = replicated;
        // A new epoch ends the acks=all waits of the previous one.
        let mut wake = state.leader_epoch != leader_epoch;
        state.leader_epoch = leader_epoch;
        if !replicated && state.high_watermark < state.log_end_offset {
            state.high_watermark = state.log_end_offset;
            wake = true;
        }
        drop(state);
        if wake {
            self.appended.notify_waiters();
        }
    }

    /// Waits (without blocking a thread) until the high watermark reaches
    /// `end` in `leader_epoch`, the epoch the records were appended in.
    ///
    /// # Errors
    /// [`NotReplicated::TimedOut`] past `deadline`;
    /// [`NotReplicated::LeaderChanged`] once this log is in another epoch
    /// (as Kafka's DelayedProduce: NOT_LEADER_OR_FOLLOWER). A deposed
    /// leader truncates what only it had, and its high watermark then
    /// passes `end` with the new leader's records at those offsets: found
    /// by the zombie-leader cluster test, where a leader SIGSTOPped past
    /// its session acknowledged an acks=all write that was then lost.
    pub async fn wait_for_high_watermark(
        &self,
        end: i64,
        leader_epoch: i32,
        deadline: tokio::time::Instant,
    ) -> Result<(), NotReplicated> {
        let reached = || {
            let state = self.lock();
            if state.leader_epoch != leader_epoch {
                Err(NotReplicated::LeaderChanged)
            } else if state.high_watermark >= end {
                Ok(true)
            } else {
                Ok(false)
            }
        };
        loop {
            let notified = self.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if reached()? {
                return Ok(());
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => {
                    return match reached()? {
                        true => Ok(()),
                        false => Err(NotReplicated::TimedOut),
                    };
                }
            }
        }
    }

    /// Moves the high watermark up to `offset` (never past the log end,
    /// never down); wakes waiting fetches and acks=all producers.
    pub fn advance_high_watermark(&self, offset: i64) {
        let mut state = self.lock();
        let target = offset.min(state.log_end_offset);
        if target > state.high_watermark {
            state.high_watermark = target;
            drop(state);
            self.checkpoint_high_watermark(target);
            self.appended.notify_waiters();
        }
    }

    /// Writes a batch under the lock: as leader (`lead`) it takes the next
    /// offset, this node's leader epoch and the append time; as follower
    /// it keeps what the leader gave it. Then file, index, offsets,
    /// producer and transaction state.
    fn store(
        &self,
        state: &mut LogState,
        mut bytes: Vec<u8>,
        header: &batch::BatchHeader,
        marker: Option<batch::Marker>,
        now_ms: i64,
        lead: bool,
    ) -> Result<AppendInfo, AppendError> {
        self.maybe_roll(state, bytes.len() as u64, now_ms)?;
        let base_offset = state.log_end_offset;
        let append_time = (lead && state.config.log_append_time).then_some(now_ms);
        let max_timestamp = append_time.unwrap_or(header.max_timestamp);
        if lead {
            let stamp = match append_time {
                Some(now) => Stamp::LogAppendTime(now),
                None => Stamp::CreateTime(max_timestamp),
            };
            batch::assign(&mut bytes, base_offset, state.leader_epoch, stamp);
        }
        replica::note_epoch(state, &bytes, base_offset);
        let last_offset = base_offset + i64::from(header.last_offset_delta);

        let (segment_base, segment) = state
            .segments
            .iter_mut()
            .next_back()
            .ok_or_else(|| AppendError::Storage("partition has no active segment".into()))?;
        let segment_base = *segment_base;
        let position = segment.append(&bytes).map_err(storage)?;
        let entry = BatchEntry {
            base_offset,
            last_offset,
            segment: segment_base,
            position,
            size: u32::try_from(bytes.len()).map_err(storage)?,
            max_timestamp,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            attributes: header.attributes,
        };
        if let Err(e) = self.index.insert(&entry) {
            let _ = segment.truncate(position);
            return Err(storage(e));
        }
        segment.max_timestamp = segment.max_timestamp.max(max_timestamp);
        state.log_end_offset = last_offset + 1;
        if !state.replicated {
            state.high_watermark = state.log_end_offset;
        }
        apply_to_state(&mut state.producers, &mut state.txns, &entry, marker);
        state.unflushed_records += i64::from(header.records_count);
        if state.unflushed_records >= state.config.flush_messages {
            flush_active(state, now_ms).map_err(storage)?;
        }
        Ok(AppendInfo {
            base_offset,
            log_append_time: append_time.unwrap_or(-1),
            log_start_offset: state.log_start_offset,
            leader_epoch: state.leader_epoch,
        })
    }

    /// The aborted transactions a read_committed fetch of `[from, to)`
    /// reports, by first offset.
    pub fn aborted_transactions(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.lock().txns.aborted_between(from, to)
    }

    /// Every idempotent or transactional producer this partition knows,
    /// with the first offset of its open transaction (DescribeProducers).
    pub fn producers(&self) -> Vec<(ProducerSnapshot, Option<i64>)> {
        let state = self.lock();
        state
            .producers
            .snapshot()
            .into_iter()
            .map(|p| {
                let open = state.txns.open_transaction(p.producer_id);
                (p, open)
            })
            .collect()
    }

    /// Rolls to a new segment when the active one is full or old.
    fn maybe_roll(
        &self,
        state: &mut LogState,
        incoming: u64,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        let Some(active) = state.segments.values().next_back() else {
            return Err(AppendError::Storage(
                "partition has no active segment".into(),
            ));
        };
        let full = active.size + incoming > state.config.segment_bytes;
        let old = now_ms.saturating_sub(active.created_ms) >= state.config.segment_ms;
        if active.size == 0 || !(full || old) {
            return Ok(());
        }
        if state.config.flush_messages != i64::MAX || state.config.flush_ms != i64::MAX {
            active.flush().map_err(storage)?;
        }
        let base = state.log_end_offset;
        let segment = LogSegment::create(&self.dir, base, now_ms).map_err(storage)?;
        state.segments.insert(base, segment);
        info!(topic = %self.topic, partition = self.partition, base_offset = base, "rolled segment");
        Ok(())
    }

    /// Reads whole batches from `offset` on, at most `max_bytes` (but always
    /// the first batch, so a consumer can progress), only below
    /// `upper_offset` (the high watermark or last stable offset), and only
    /// from one segment. The index is consulted under the lock (so a
    /// deletion cannot pull it away mid-lookup); the file is read without it.
    ///
    /// # Errors
    /// [`ReadError::OffsetOutOfRange`] below the log start or past the end;
    /// [`ReadError::Deleted`] once the partition is gone.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_offset: Option<i64>,
    ) -> Result<ReadResult, ReadError> {
        let (offsets, slice) = {
            let state = self.lock();
            if state.deleted {
                return Err(ReadError::Deleted);
            }
            let offsets = state.offsets();
            if offset < state.log_start_offset || offset > state.log_end_offset {
                return Err(ReadError::OffsetOutOfRange);
            }
            let upper = upper_offset.unwrap_or(offsets.high_watermark);
            (offsets, self.locate(&state, offset, max_bytes, upper))
        };
        Ok(ReadResult {
            records: slice
                .map(|(region, _)| region)
                .filter(|region| region.len > 0),
            offsets,
            aborted: Vec::new(),
        })
    }

    /// A read_committed read (Kafka's `FetchIsolation.TXN_COMMITTED`): as
    /// [`PartitionLog::read`] up to the last stable offset, with the
    /// aborted transactions that overlap the returned batches.
    ///
    /// # Errors
    /// As [`PartitionLog::read`].
    pub fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, ReadError> {
        let state = self.lock();
        if state.deleted {
            return Err(ReadError::Deleted);
        }
        let offsets = state.offsets();
        if offset < state.log_start_offset || offset > state.log_end_offset {
            return Err(ReadError::OffsetOutOfRange);
        }
        let located = self.locate(&state, offset, max_bytes, offsets.last_stable_offset);
        let aborted = match &located {
            Some((region, next)) if region.len > 0 => state.txns.aborted_between(offset, *next),
            _ => Vec::new(),
        };
        Ok(ReadResult {
            records: located
                .map(|(region, _)| region)
                .filter(|region| region.len > 0),
            offsets,
            aborted,
        })
    }

    /// The file, position and length of the contiguous batches to read,
    /// and the offset after the last of them.
    fn locate(
        &self,
        state: &LogState,
        offset: i64,
        max_bytes: usize,
        upper: i64,
    ) -> Option<(FileRegion, i64)> {
        let first = self.index.find(offset).filter(|e| e.base_offset < upper)?;
        let mut total: u64 = 0;
        let mut next = offset;
        for entry in self.index.range(offset..) {
            let contiguous =
                entry.segment == first.segment && entry.position == first.position + total;
            let fits = total == 0 || total + u64::from(entry.size) <= max_bytes as u64;
            if !contiguous || !fits || entry.base_offset >= upper {
                break;
            }
            total += u64::from(entry.size);
            next = entry.last_offset + 1;
        }
        let region = FileRegion {
            file: state.segments.get(&first.segment)?.reader(),
            position: first.position,
            len: usize::try_from(total).ok()?,
        };
        Some((region, next))
    }

    /// The first offset at or after the log start whose record timestamp is
    /// at least `timestamp`, with that record's timestamp (ListOffsets by
    /// time); `None` if there is none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Option<(i64, i64)> {
        let mut from = 0;
        loop {
            // The next batch that may hold a match, skipping whole segments
            // whose largest timestamp is too small.
            let (entry, start) = {
                let state = self.lock();
                if state.deleted {
                    return None;
                }
                let start = state.log_start_offset;
                let from = from.max(start);
                let entry = segment_bounds(&state)
                    .into_iter()
                    .filter(|(_, next, max)| *max >= timestamp && *next > from)
                    .find_map(|(base, next, _)| {
                        self.index
                            .range(base.max(from)..next)
                            .find(|e| e.max_timestamp >= timestamp)
                    })?;
                (entry, start)
            };
            let found = self.record_in(&entry, start, |o, ts| o >= start && ts >= timestamp);
            if found.is_some() {
                return found;
            }
            from = entry.last_offset + 1;
        }
    }

    /// The offset and timestamp of the record with the largest timestamp.
    pub fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        let (entry, start, max) = {
            let state = self.lock();
            if state.deleted {
                return None;
            }
            let start = state.log_start_offset;
            let (base, next, max) = segment_bounds(&state)
                .into_iter()
                .max_by_key(|(base, _, max)| (*max, -base))?;
            if max < 0 {
                return None;
            }
            let entry = self
                .index
                .range(base.max(start)..next)
                .find(|e| e.max_timestamp == max)?;
            (entry, start, max)
        };
        self.record_in(&entry, start, |o, ts| o >= start && ts == max)
    }

    /// The first record of a stored batch matching `wanted(offset, timestamp)`.
    fn record_in(
        &self,
        entry: &BatchEntry,
        log_start: i64,
        wanted: impl Fn(i64, i64) -> bool,
    ) -> Option<(i64, i64)> {
        // Reading at the log start returns the whole batch that straddles it.
        let bytes = self
            .read(
                entry.base_offset.max(log_start),
                entry.size as usize,
                Some(i64::MAX),
            )
            .ok()?
            .bytes()
            .ok()?;
        batch::find_record(&bytes, wanted)
    }

    /// Forgets idempotent producers idle past `producer.id.expiration.ms`;
    /// how many went.
    pub fn expire_producers(&self, now_ms: i64) -> usize {
        let mut state = self.lock();
        let expiration_ms = state.config.producer_id_expiration_ms;
        let LogState {
            producers, txns, ..
        } = &mut *state;
        // A producer with an open transaction here is kept, as Kafka does.
        producers.expire(now_ms, expiration_ms, |id| {
            txns.open_transaction(id).is_some()
        })
    }

    /// Fsyncs the active segment if `flush.ms` has passed with unflushed data.
    ///
    /// # Errors
    /// fsync fails.
    pub fn flush_if_due(&self, now_ms: i64) -> io::Result<()> {
        let mut state = self.lock();
        if state.unflushed_records > 0
            && now_ms.saturating_sub(state.last_flush_ms) >= state.config.flush_ms
        {
            flush_active(&mut state, now_ms)?;
        }
        Ok(())
    }

    /// Fsyncs every segment (on shutdown).
    ///
    /// # Errors
    /// fsync fails.
    pub fn flush(&self, now_ms: i64) -> io::Result<()> {
        let mut state = self.lock();
        for segment in state.segments.values() {
            segment.flush()?;
        }
        state.unflushed_records = 0;
        state.last_flush_ms = now_ms;
        Ok(())
    }

    /// Removes the partition's files and index.
    ///
    /// # Errors
    /// Files cannot be removed or sled fails.
    pub fn destroy(&self, db: &sled::Db) -> io::Result<()> {
        let mut state = self.lock();
        state.deleted = true;
        state.segments.clear();
        SegmentIndex::destroy(db, &self.topic, self.partition).map_err(io::Error::other)?;
        let key = format!("{}/{}", self.topic, self.partition);
        self.starts.remove(&key).map_err(io::Error::other)?;
        self.checkpoints.remove(&key).map_err(io::Error::other)?;
        self.watermarks.remove(&key).map_err(io::Error::other)?;
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// The sequence number of a stored batch's last record.
pub(super) fn last_sequence(entry: &BatchEntry) -> i32 {
    if entry.base_sequence < 0 {
        return -1;
    }
    let delta = entry.last_offset - entry.base_offset;
    i32::try_from((i64::from(entry.base_sequence) + delta) % (i64::from(i32::MAX) + 1))
        .unwrap_or(-1)
}

/// Brings producer and transaction state up to date with one stored batch
/// (`marker`: it is a transaction marker that commits or not); appends
/// and recovery share it.
pub(super) fn apply_to_state(
    producers: &mut ProducerStateManager,
    txns: &mut TxnIndex,
    entry: &BatchEntry,
    marker: Option<batch::Marker>,
) {
    if entry.producer_id < 0 {
        return;
    }
    match marker {
        Some(marker) => {
            producers.record_marker(
                entry.producer_id,
                entry.producer_epoch,
                marker.coordinator_epoch,
                entry.max_timestamp,
            );
            txns.on_marker(entry.producer_id, entry.base_offset, marker.commit);
        }
        None => {
            producers.record(
                entry.producer_id,
                entry.producer_epoch,
                entry.base_sequence,
                last_sequence(entry),
                entry.base_offset,
                entry.max_timestamp,
            );
            if batch::is_transactional(entry.attributes) {
                txns.on_data(entry.producer_id, entry.base_offset);
            }
        }
    }
}

/// (segment base, next segment base, segment max timestamp), oldest first.
fn segment_bounds(state: &LogState) -> Vec<(i64, i64, i64)> {
    let bases: Vec<(i64, i64)> = state
        .segments
        .iter()
        .map(|(b, s)| (*b, s.max_timestamp))
        .collect();
    bases
        .iter()
        .enumerate()
        .map(|(i, (base, max))| (*base, bases.get(i + 1).map_or(i64::MAX, |n| n.0), *max))
        .collect()
}

fn flush_active(state: &mut LogState, now_ms: i64) -> io::Result<()> {
    if let Some(active) = state.segments.values().next_back() {
        active.flush()?;
    }
    state.unflushed_records = 0;
    state.last_flush_ms = now_ms;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::{batch, batch_with_producer};
    use crate::log::batch::BatchHeader;
    use crate::log::segment;
    use kafka_protocol::records::Compression;
    use std::io::Write;

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

        fn open(&self, config: LogConfig) -> PartitionLog {
            PartitionLog::open(&self.dir.path().join("t-0"), "t", 0, &self.db, config, 0).unwrap()
        }

        fn segment_files(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.dir.path().join("t-0"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }
    }

    fn small_segments() -> LogConfig {
        LogConfig {
            segment_bytes: 300,
            ..LogConfig::default()
        }
    }

    /// Every offset readable from `from` on, following the batches.
    fn read_all(log: &PartitionLog, from: i64) -> Vec<i64> {
        let mut offsets = Vec::new();
        let mut next = from;
        loop {
            let result = log.read(next, 1 << 20, None).unwrap();
            if result.is_empty() {
                return offsets;
            }
            let bytes = result.bytes().unwrap();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let header = BatchHeader::parse(rest).unwrap();
                offsets.extend(header.base_offset..=header.last_offset());
                next = header.last_offset() + 1;
                rest = &rest[header.size..];
            }
        }
    }

    #[test]
    fn append_read_and_roll() {
        let fixture = Fixture::new();
        let log = fixture.open(small_segments());
        for i in 0..10 {
            let info = log
                .append(batch(3, 1000 + i, Compression::None), 0)
                .unwrap();
            assert_eq!(info.base_offset, i * 3);
        }
        assert_eq!(log.offsets().log_end_offset, 30);
        assert!(
            fixture.segment_files().len() > 2,
            "{:?}",
            fixture.segment_files()
        );
        assert_eq!(read_all(&log, 0), (0..30).collect::<Vec<_>>());
        // A read inside a batch returns that whole batch.
        let inside = log.read(4, 1, None).unwrap();
        assert_eq!(
            BatchHeader::parse(&inside.bytes().unwrap())
                .unwrap()
                .base_offset,
            3
        );
        assert!(log.read(30, 100, None).unwrap().is_empty());
        assert!(matches!(
            log.read(31, 100, None),
            Err(ReadError::OffsetOutOfRange)
        ));
    }

    /// The leader epoch cache: each epoch's first offset from the batches
    /// appended in it, the end of an epoch for a follower's divergence
    /// check, cut by truncation, and rebuilt alike on open (bisection).
    #[test]
    fn leader_epochs_are_cached_cut_and_rebuilt() {
        let fixture = Fixture::new();
        let log = fixture.open(small_segments());
        assert_eq!(log.last_epoch(), -1);
        assert_eq!(log.end_offset_for_epoch(5), (-1, -1));
        // Epoch 0: offsets 0..9, epoch 2: 9..21, epoch 5: 21..30.
        for (epoch, batches) in [(0, 3), (2, 4), (5, 3)] {
            log.set_replicated(false, epoch);
            for i in 0..batches {
                log.append(batch(3, 1000 + i, Compression::None), 0)
                    .unwrap();
            }
        }
        assert_eq!(log.last_epoch(), 5);
        assert_eq!(log.end_offset_for_epoch(0), (0, 9));
        assert_eq!(log.end_offset_for_epoch(1), (0, 9), "the largest not above");
        assert_eq!(log.end_offset_for_epoch(2), (2, 21));
        assert_eq!(
            log.end_offset_for_epoch(7),
            (5, 30),
            "the last ends at the log end"
        );
        drop(log);
        let reopened = fixture.open(small_segments());
        assert_eq!(reopened.end_offset_for_epoch(0), (0, 9));
        assert_eq!(reopened.end_offset_for_epoch(2), (2, 21));
        assert_eq!(reopened.end_offset_for_epoch(5), (5, 30));
        assert_eq!(reopened.truncate_to(20).unwrap(), 18);
        assert_eq!(reopened.last_epoch(), 2);
        assert_eq!(reopened.end_offset_for_epoch(5), (2, 18));
        assert_eq!(reopened.truncate_to(9).unwrap(), 9);
        assert_eq!(reopened.last_epoch(), 0);
    }

    /// A follower copies a leader's batches as stored, holds its high
    /// watermark where it is told, and truncates back to a batch boundary
    /// across segments; what survives (and a reopen) agrees.
    #[test]
    fn replica_appends_high_watermark_and_truncation() {
        let fixture = Fixture::new();
        let leader = fixture.open(small_segments());
        let follower = PartitionLog::open(
            &fixture.dir.path().join("t-1"),
            "t",
            1,
            &fixture.db,
            small_segments(),
            0,
        )
        .unwrap();
        follower.set_replicated(true, 0);
        for i in 0..10 {
            leader
                .append(batch(3, 1000 + i, Compression::None), 0)
                .unwrap();
        }
        while follower.offsets().log_end_offset < 30 {
            let from = follower.offsets().log_end_offset;
            let copy = leader
                .read(from, 1 << 20, Some(30))
                .unwrap()
                .bytes()
                .unwrap();
            let mut rest = &copy[..];
            while !rest.is_empty() {
                let header = BatchHeader::parse(rest).unwrap();
                follower
                    .append_replica(rest[..header.size].to_vec(), 0)
                    .unwrap();
                rest = &rest[header.size..];
            }
        }
        assert_eq!(follower.offsets().log_end_offset, 30);
        assert_eq!(follower.offsets().high_watermark, 0, "held back");
        // A batch not at the log end is refused.
        let again = leader.read(0, 1, Some(30)).unwrap().bytes().unwrap();
        assert!(follower.append_replica(again.to_vec(), 0).is_err());
        follower.advance_high_watermark(12);
        assert_eq!(follower.offsets().high_watermark, 12);
        assert_eq!(follower.checkpointed_high_watermark(), 12);
        // Offset 13 is inside the batch 12..=14: cut at 12.
        assert_eq!(follower.truncate_to(13).unwrap(), 12);
        assert_eq!(read_all(&follower, 0), (0..12).collect::<Vec<_>>());
        let tail = leader.read(12, 1 << 20, Some(30)).unwrap().bytes().unwrap();
        let header = BatchHeader::parse(&tail).unwrap();
        assert_eq!(
            follower
                .append_replica(tail[..header.size].to_vec(), 0)
                .unwrap(),
            15
        );
        drop(follower);
        let reopened = PartitionLog::open(
            &fixture.dir.path().join("t-1"),
            "t",
            1,
            &fixture.db,
            small_segments(),
            0,
        )
        .unwrap();
        assert_eq!(read_all(&reopened, 0), (0..15).collect::<Vec<_>>());
    }

    #[test]
    fn max_bytes_still_returns_one_batch() {
        let fixture = Fixture::new();
        let log = fixture.open(LogConfig::default());
        log.append(batch(5, 0, Compression::None), 0).unwrap();
        log.append(batch(5, 0, Compression::None), 0).unwrap();
        let one = log.read(0, 10, None).unwrap();
        let header = BatchHeader::parse(&one.bytes().unwrap()).unwrap();
        assert_eq!(header.size, one.len());
        let both = log.read(0, 1 << 20, None).unwrap();
        assert_eq!(both.len(), 2 * header.size);
    }

    #[test]
    fn retention_and_delete_records() {
        let fixture = Fixture::new();
        let log = fixture.open(small_segments());
        for i in 0..10 {
            log.append(batch(3, 1000 + i, Compression::None), 0)
                .unwrap();
        }
        let segments_before = fixture.segment_files().len();
        assert_eq!(log.delete_records_before(7).unwrap(), 7);
        assert!(matches!(
            log.read(6, 100, None),
            Err(ReadError::OffsetOutOfRange)
        ));
        assert_eq!(
            read_all(&log, 7).first(),
            Some(&6),
            "the batch holding 7 starts at 6"
        );
        assert!(fixture.segment_files().len() < segments_before);
        assert!(matches!(
            log.delete_records_before(31),
            Err(ReadError::OffsetOutOfRange)
        ));

        log.set_config(LogConfig {
            retention_ms: 100,
            ..small_segments()
        });
        log.enforce_retention(1200).unwrap();
        // Only the active segment is left; everything older expired.
        assert_eq!(fixture.segment_files().len(), 1);
        let start = log.offsets().log_start_offset;
        assert!(start > 7 && start <= 30, "{start}");
        drop(log);
        let reopened = fixture.open(small_segments());
        assert_eq!(reopened.offsets().log_start_offset, start);
        assert_eq!(reopened.offsets().log_end_offset, 30);
    }

    #[test]
    fn retention_skips_compact_only_logs() {
        let fixture = Fixture::new();
        let compact_only = LogConfig {
            retention_ms: 100,
            retention_bytes: 0,
            compact: true,
            delete: false,
            ..small_segments()
        };
        let log = fixture.open(compact_only.clone());
        for i in 0..10 {
            log.append(batch(3, 1000 + i, Compression::None), 0)
                .unwrap();
        }
        let files = fixture.segment_files().len();
        assert!(files > 2);
        assert_eq!(log.enforce_retention(1_000_000).unwrap(), 0);
        assert_eq!(fixture.segment_files().len(), files);
        assert_eq!(log.offsets().log_start_offset, 0);
        // compact,delete: retention applies again.
        log.set_config(LogConfig {
            delete: true,
            ..compact_only
        });
        assert!(log.enforce_retention(1_000_000).unwrap() > 0);
        assert_eq!(fixture.segment_files().len(), 1);
    }

    #[test]
    fn retention_bytes_keeps_the_newest() {
        let fixture = Fixture::new();
        let log = fixture.open(LogConfig {
            retention_bytes: 400,
            ..small_segments()
        });
        for i in 0..10 {
            log.append(batch(3, i, Compression::None), 0).unwrap();
        }
        log.enforce_retention(0).unwrap();
        let total: u64 = fixture
            .segment_files()
            .iter()
            .map(|n| {
                std::fs::metadata(fixture.dir.path().join("t-0").join(n))
                    .unwrap()
                    .len()
            })
            .sum();
        assert!(total <= 400 + 300, "{total}");
        assert!(log.offsets().log_start_offset > 0);
    }

    #[test]
    fn torn_tail_recovers_every_complete_batch() {
        let fixture = Fixture::new();
        {
            let log = fixture.open(LogConfig::default());
            for i in 0..5 {
                log.append(batch(2, i, Compression::None), 0).unwrap();
            }
        }
        // Cut the last batch in half and append garbage, as a crash mid-write would.
        let path = fixture.dir.path().join("t-0").join(segment::file_name(0));
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 20).unwrap();
        drop(file);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&[0xab; 37]).unwrap();
        drop(file);
        // Also forget the index entry of the damaged batch, as if it never reached sled.
        SegmentIndex::open(&fixture.db, "t", 0)
            .unwrap()
            .remove_range(8..)
            .unwrap();

        let log = fixture.open(LogConfig::default());
        assert_eq!(log.offsets().log_end_offset, 8);
        assert_eq!(read_all(&log, 0), (0..8).collect::<Vec<_>>());
        let info = log.append(batch(2, 9, Compression::None), 0).unwrap();
        assert_eq!(info.base_offset, 8);
    }

    #[test]
    fn lost_index_loses_no_record() {
        let fixture = Fixture::new();
        {
            let log = fixture.open(small_segments());
            for i in 0..10 {
                log.append(batch(3, i, Compression::Lz4), 0).unwrap();
            }
        }
        SegmentIndex::destroy(&fixture.db, "t", 0).unwrap();
        let log = fixture.open(small_segments());
        assert_eq!(read_all(&log, 0), (0..30).collect::<Vec<_>>());
        assert_eq!(log.offsets().log_end_offset, 30);
    }

    #[test]
    fn a_marker_between_verification_and_append_refuses_the_write() {
        use crate::log::batch::tests::transactional;
        let fixture = Fixture::new();
        let log = fixture.open(LogConfig::default());
        let txn =
            |pid, seq| transactional(batch_with_producer(2, 0, Compression::None, pid, 0, seq));
        // No transaction open here and no guard: refused.
        let unverified = log.append_in_transaction(7, 0, None, || log.append(txn(7, 0), 0));
        assert!(unverified.is_err());
        // Verified: appended; the transaction is open, so the next write
        // needs no guard.
        let guard = log.begin_verification(7);
        let first = log.append_in_transaction(7, 0, Some(guard), || log.append(txn(7, 0), 0));
        assert!(matches!(first, Ok(Ok(_))));
        assert!(log.in_open_transaction(7, 0));
        let next = log.append_in_transaction(7, 0, None, || log.append(txn(7, 2), 0));
        assert!(matches!(next, Ok(Ok(_))));
        // The marker ends it; a guard taken before the marker is void.
        let stale = log.begin_verification(7);
        log.append_marker(7, 0, true, 0, 0).unwrap();
        assert!(!log.in_open_transaction(7, 0));
        let late = log.append_in_transaction(7, 0, Some(stale), || log.append(txn(7, 4), 0));
        assert!(
            late.is_err(),
            "a write verified before the marker lands after it"
        );
        // Another producer's marker leaves the guard alone.
        let guard = log.begin_verification(7);
        log.append_marker(8, 0, false, 0, 0).unwrap();
        let fresh = log.append_in_transaction(7, 0, Some(guard), || log.append(txn(7, 4), 0));
        assert!(matches!(fresh, Ok(Ok(_))));
        assert_eq!(
            log.offsets().last_stable_offset,
            6,
            "the new transaction is open"
        );
    }

    #[test]
    fn transactions_bound_the_lso_and_aborts_are_remembered() {
        use crate::log::batch::tests::transactional;
        let fixture = Fixture::new();
        let txn =
            |pid, seq| transactional(batch_with_producer(2, 0, Compression::None, pid, 0, seq));
        {
            let log = fixture.open(LogConfig::default());
            log.append(batch(1, 0, Compression::None), 0).unwrap(); // 0
            log.append(txn(7, 0), 0).unwrap(); // 1-2
            log.append(txn(8, 0), 0).unwrap(); // 3-4
            assert_eq!(log.offsets().last_stable_offset, 1);
            log.append_marker(7, 0, false, 0, 0).unwrap(); // 5
            assert_eq!(log.offsets().last_stable_offset, 3);
            log.append_marker(8, 0, true, 0, 0).unwrap(); // 6
            let offsets = log.offsets();
            assert_eq!((offsets.last_stable_offset, offsets.high_watermark), (7, 7));
            // A marker of an older epoch is fenced.
            log.append_marker(8, 1, true, 0, 0).unwrap(); // 7: epoch bump
            assert!(matches!(
                log.append_marker(8, 0, true, 0, 0),
                Err(AppendError::Sequence(SequenceError::StaleEpoch { .. }))
            ));
            log.append(txn(9, 0), 0).unwrap(); // 8-9, left open
        }
        let log = fixture.open(LogConfig::default());
        assert_eq!(
            log.offsets().last_stable_offset,
            8,
            "the open transaction survives"
        );
        let aborted = log.aborted_transactions(0, 10);
        assert_eq!(
            aborted,
            [AbortedTxn {
                producer_id: 7,
                first_offset: 1,
                last_offset: 5
            }]
        );
        assert!(log.aborted_transactions(6, 10).is_empty());
        log.append_marker(9, 0, true, 0, 0).unwrap();
        assert_eq!(log.offsets().last_stable_offset, 11);
        // The bumped epoch of producer 8 starts its sequences over.
        let next = transactional(batch_with_producer(1, 0, Compression::None, 8, 1, 0));
        assert!(log.append(next, 0).is_ok());
    }

    #[test]
    fn the_lso_never_falls_below_the_log_start() {
        use crate::log::batch::tests::transactional;
        let fixture = Fixture::new();
        let log = fixture.open(LogConfig::default());
        log.append(
            transactional(batch_with_producer(2, 0, Compression::None, 7, 0, 0)),
            0,
        )
        .unwrap(); // 0-1, left open
        log.append(batch(3, 0, Compression::None), 0).unwrap(); // 2-4
        assert_eq!(log.offsets().last_stable_offset, 0);
        assert_eq!(log.delete_records_before(3).unwrap(), 3);
        assert_eq!(log.offsets().last_stable_offset, 3);
    }

    #[test]
    fn idempotent_retries_and_state_after_restart() {
        let fixture = Fixture::new();
        {
            let log = fixture.open(LogConfig::default());
            let first = batch_with_producer(3, 0, Compression::None, 9, 0, 0);
            assert_eq!(log.append(first.clone(), 0).unwrap().base_offset, 0);
            assert_eq!(
                log.append(first, 0).unwrap().base_offset,
                0,
                "retry gets its offset back"
            );
            let gap = batch_with_producer(1, 0, Compression::None, 9, 0, 5);
            assert!(matches!(
                log.append(gap, 0),
                Err(AppendError::Sequence(SequenceError::OutOfOrder { .. }))
            ));
            assert_eq!(log.offsets().log_end_offset, 3);
        }
        let log = fixture.open(LogConfig::default());
        let retry = batch_with_producer(3, 0, Compression::None, 9, 0, 0);
        assert_eq!(log.append(retry, 0).unwrap().base_offset, 0);
        let next = batch_with_producer(2, 0, Compression::None, 9, 0, 3);
        assert_eq!(log.append(next, 0).unwrap().base_offset, 3);
        let stale = batch_with_producer(1, 0, Compression::None, 9, -1, 0);
        assert!(matches!(
            log.append(stale, 0),
            Err(AppendError::Sequence(SequenceError::StaleEpoch { .. }))
        ));
    }

    #[test]
    fn timestamps_and_limits() {
        let fixture = Fixture::new();
        let log = fixture.open(LogConfig {
            max_message_bytes: 200,
            ..LogConfig::default()
        });
        log.append(batch(3, 100, Compression::None), 0).unwrap(); // 100..=102
        log.append(batch(3, 200, Compression::Gzip), 0).unwrap(); // 200..=202
        assert_eq!(log.offset_for_timestamp(101), Some((1, 101)));
        assert_eq!(log.offset_for_timestamp(150), Some((3, 200)));
        assert_eq!(log.offset_for_timestamp(999), None);
        assert_eq!(log.max_timestamp_offset(), Some((5, 202)));
        assert!(matches!(
            log.append(batch(20, 0, Compression::None), 0),
            Err(AppendError::TooLarge { .. })
        ));
        let append_time = fixture.open(LogConfig {
            log_append_time: true,
            ..LogConfig::default()
        });
        let info = append_time
            .append(batch(1, 5, Compression::None), 777)
            .unwrap();
        assert_eq!(info.log_append_time, 777);
    }
}
