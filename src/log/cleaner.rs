//! The log cleaner (Kafka's `LogCleaner`): keeps the latest record per key
//! of every log whose `cleanup.policy` includes `compact`.
//!
//! One pass ([`LogManager::clean_one`](super::LogManager::clean_one))
//! picks the log with the highest dirty ratio among those eligible and
//! cleans it:
//! - the cleanable range ends at the first uncleanable offset: the active
//!   segment's base, or the first segment with a record younger than
//!   `min.compaction.lag.ms`; below the cleaner checkpoint the log is
//!   clean, above it dirty. A log is eligible when dirty bytes ÷ cleanable
//!   bytes exceed `min.cleanable.dirty.ratio`, or a dirty record is older
//!   than `max.compaction.lag.ms`;
//! - a map key hash → latest offset is built over the dirty range, up to
//!   the key capacity `log.cleaner.dedupe.buffer.size` allows (then the
//!   clean stops where the map is full, as Kafka's does);
//! - every closed segment from the log start to the end of the mapped
//!   range is rewritten, consecutive segments merged while their total
//!   stays within `segment.bytes`: a record stays (at its offset) when no
//!   later record of its key is in the map; keyless records go; a
//!   tombstone stays until the delete horizon its batch got on the first
//!   clean that kept it (`now + delete.retention.ms`, KIP-534);
//! - batches are copied as stored when every record stays; otherwise
//!   re-encoded with the survivors ([`BatchBuilder`]); a batch with no
//!   survivors goes, unless it is an idempotent producer's last (then an
//!   empty batch is kept); compressed batches that would inflate past
//!   [`MAX_INFLATED`] are kept whole;
//! - a transaction marker stays while any batch of its transaction is in
//!   the log (read_committed consumers and recovery need it); the first
//!   clean that finds none stamps it with a delete horizon, like a
//!   tombstone, and it goes once the horizon has passed (Kafka's
//!   `CleanedTransactionMetadata`, KIP-534). Aborted data goes at once;
//! - each group is written aside and swapped in under the partition lock
//!   (see `partition::cleaning` for the crash-safe protocol); reading and
//!   writing happen without the lock, so produce and fetch never wait on
//!   the cleaner for more than a few renames.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::batch::{self, BatchBuilder, BatchError, BatchHeader, HEADER_SIZE};
use super::index::BatchEntry;
use super::partition::{
    cleaning_file_name, is_aborted, CleanSnapshot, PartitionLog, SegmentSnapshot,
};

/// The most a compressed batch may inflate to for the cleaner to filter
/// it; a larger one is kept whole (never an OOM).
pub const MAX_INFLATED: usize = 64 << 20;

/// Bytes per key in the dedupe map, as Kafka's `SkimpyOffsetMap` counts
/// (a 16-byte hash and an 8-byte offset).
const BYTES_PER_KEY: u64 = 24;

/// The broker-wide cleaner settings (`log.cleaner.*`).
#[derive(Debug, Clone, Copy)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: memory for the key map.
    pub dedupe_buffer_size: u64,
    /// `log.cleaner.io.max.bytes.per.second`: read plus write rate cap.
    pub io_max_bytes_per_second: f64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self {
            dedupe_buffer_size: 128 << 20,
            io_max_bytes_per_second: f64::MAX,
        }
    }
}

impl CleanerConfig {
    /// How many keys the map may hold (Kafka's load factor 0.9 applied).
    fn key_capacity(&self) -> usize {
        usize::try_from(self.dedupe_buffer_size / BYTES_PER_KEY * 9 / 10).unwrap_or(usize::MAX)
    }
}

/// How one partition stands for cleaning.
#[derive(Debug)]
pub(crate) struct Plan {
    snapshot: CleanSnapshot,
    first_uncleanable: i64,
    /// Dirty bytes ÷ cleanable bytes.
    pub ratio: f64,
    /// Whether the log should be cleaned now.
    pub eligible: bool,
}

/// Decides whether `log` needs cleaning at `now_ms`.
pub(crate) fn plan(log: &PartitionLog, now_ms: i64) -> Option<Plan> {
    let snapshot = log.clean_snapshot()?;
    let config = &snapshot.config;
    let mut first_uncleanable = snapshot.active_base;
    if let Some(unstable) = snapshot.first_unstable {
        first_uncleanable = first_uncleanable.min(unstable);
    }
    if config.min_compaction_lag_ms > 0 {
        let young = snapshot.segments.iter().find(|s| {
            s.next > snapshot.first_dirty
                && s.max_timestamp > now_ms.saturating_sub(config.min_compaction_lag_ms)
        });
        if let Some(young) = young {
            first_uncleanable = first_uncleanable.min(young.base);
        }
    }
    let (mut clean, mut dirty) = (0u64, 0u64);
    for s in snapshot
        .segments
        .iter()
        .filter(|s| s.base < first_uncleanable)
    {
        if s.next <= snapshot.first_dirty {
            clean += s.size;
        } else {
            dirty += s.size;
        }
    }
    let ratio = if clean + dirty == 0 {
        0.0
    } else {
        dirty as f64 / (clean + dirty) as f64
    };
    let overdue = snapshot
        .first_dirty_timestamp
        .is_some_and(|t| t >= 0 && now_ms.saturating_sub(t) > config.max_compaction_lag_ms);
    let eligible = snapshot.first_dirty < first_uncleanable
        && dirty > 0
        && (ratio > config.min_cleanable_dirty_ratio || overdue);
    Some(Plan {
        snapshot,
        first_uncleanable,
        ratio,
        eligible,
    })
}

/// How a clean ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Cleaned up to this offset (the new checkpoint).
    Cleaned(i64),
    /// Stopped (shutdown) or the log changed under the cleaner; nothing lost.
    Aborted,
}

/// A 128-bit hash of a key (two SipHashes), as Kafka's map keeps an MD5.
fn key_hash(key: &[u8]) -> u128 {
    let half = |salt: u8| {
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        key.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// Caps the cleaner's read plus write rate.
struct Throttle {
    rate: f64,
    window_start: Instant,
    bytes: f64,
}

impl Throttle {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            window_start: Instant::now(),
            bytes: 0.0,
        }
    }

    fn account(&mut self, bytes: usize) {
        if !(self.rate.is_finite() && self.rate > 0.0) || self.rate >= f64::MAX {
            return;
        }
        self.bytes += bytes as f64;
        let elapsed = self.window_start.elapsed().as_secs_f64();
        let due = self.bytes / self.rate;
        if due > elapsed {
            std::thread::sleep(Duration::from_secs_f64((due - elapsed).min(1.0)));
        }
        if elapsed > 1.0 {
            self.window_start = Instant::now();
            self.bytes = 0.0;
        }
    }
}

/// Calls `each(position, header, bytes)` for every batch of a closed
/// segment (the first `size` bytes of `file`); stops early when `each`
/// returns false. A batch that does not parse ends the walk (recovery
/// has checked every batch of a closed segment, so that is damage).
fn walk_segment(
    file: &File,
    size: u64,
    mut each: impl FnMut(u64, &BatchHeader, &[u8]) -> io::Result<bool>,
) -> io::Result<()> {
    let mut position = 0u64;
    let mut header_bytes = [0u8; HEADER_SIZE];
    while position + HEADER_SIZE as u64 <= size {
        file.read_exact_at(&mut header_bytes, position)?;
        let header = BatchHeader::parse(&header_bytes).map_err(io::Error::other)?;
        if position + header.size as u64 > size {
            return Err(io::Error::other("a batch runs past the segment end"));
        }
        let mut bytes = vec![0u8; header.size];
        file.read_exact_at(&mut bytes, position)?;
        if !each(position, &header, &bytes)? {
            break;
        }
        position += header.size as u64;
    }
    Ok(())
}

/// The key map over the dirty range and the offset it reaches.
fn build_offset_map(
    plan: &Plan,
    capacity: usize,
    throttle: &mut Throttle,
    stop: &dyn Fn() -> bool,
) -> io::Result<Option<(HashMap<u128, i64>, i64)>> {
    let first_dirty = plan.snapshot.first_dirty;
    let mut map: HashMap<u128, i64> = HashMap::new();
    let mut end = plan.first_uncleanable;
    let mut full = false;
    let mut stopped = false;
    let dirty = plan
        .snapshot
        .segments
        .iter()
        .filter(|s| s.next > first_dirty && s.base < plan.first_uncleanable);
    for segment in dirty {
        walk_segment(&segment.file, segment.size, |_, header, bytes| {
            throttle.account(bytes.len());
            if stop() {
                stopped = true;
                return Ok(false);
            }
            if header.last_offset() < first_dirty
                || header.is_control()
                || is_aborted(&plan.snapshot.aborted, header)
            {
                return Ok(true);
            }
            if header.base_offset >= plan.first_uncleanable {
                return Ok(false);
            }
            let count = usize::try_from(header.records_count).unwrap_or(0);
            if map.len() + count > capacity {
                full = true;
                end = header.base_offset.max(first_dirty);
                return Ok(false);
            }
            let walked = batch::walk_whole_records(bytes, header, MAX_INFLATED, |record| {
                if let Some(key) = record.key {
                    let offset = header.base_offset + record.offset_delta;
                    map.insert(key_hash(key), offset);
                }
            });
            if let Err(e) = walked {
                // Its keys stay out of the map: older records of them stay too.
                warn!(offset = header.base_offset, cause = %e, "cleaner cannot read a batch's keys; keeping older records of them");
            }
            Ok(true)
        })?;
        if full || stopped {
            break;
        }
    }
    if stopped {
        return Ok(None);
    }
    if full && end <= first_dirty {
        return Err(io::Error::other(format!(
            "log.cleaner.dedupe.buffer.size holds {capacity} keys, too few for one batch"
        )));
    }
    Ok(Some((map, end)))
}

/// Groups consecutive segments (from the first) below `end` whose sizes
/// add up to at most `max_bytes` (at least one segment per group).
fn group_segments(
    segments: &[SegmentSnapshot],
    end: i64,
    max_bytes: u64,
) -> Vec<Vec<SegmentSnapshot>> {
    let mut groups: Vec<Vec<SegmentSnapshot>> = Vec::new();
    let mut total = 0u64;
    for segment in segments.iter().filter(|s| s.base < end) {
        match groups.last_mut() {
            Some(group) if total + segment.size <= max_bytes => {
                total += segment.size;
                group.push(segment.clone());
            }
            _ => {
                total = segment.size;
                groups.push(vec![segment.clone()]);
            }
        }
    }
    groups
}

/// What to do with each stored batch of one pass, read in offset order
/// from the log start.
struct Filter<'a> {
    map: &'a HashMap<u128, i64>,
    /// Aborted transactions by producer (see [`CleanSnapshot`]).
    aborted: &'a HashMap<i64, Vec<(i64, i64)>>,
    now_ms: i64,
    horizon: i64,
    producer_last_offsets: &'a HashMap<i64, i64>,
    /// Producers with a transactional batch read since their last marker:
    /// the next marker of each still has data in the log.
    in_transaction: HashSet<i64>,
}

impl Filter<'_> {
    /// The batch to write in place of `bytes`, `None` to drop it.
    fn filter(&mut self, header: &BatchHeader, bytes: &[u8]) -> Option<Vec<u8>> {
        if header.is_control() {
            return self.filter_marker(header, bytes);
        }
        if header.is_transactional() {
            self.in_transaction.insert(header.producer_id);
        }
        let last_of_producer = header.has_producer()
            && self.producer_last_offsets.get(&header.producer_id) == Some(&header.last_offset());
        if header.records_count == 0 {
            // Emptied by an earlier clean: kept only while it holds its
            // producer's state.
            return last_of_producer.then(|| bytes.to_vec());
        }
        if is_aborted(self.aborted, header) {
            // Aborted data is never read committed: it goes, but for a
            // producer's last batch (its state).
            return last_of_producer
                .then(|| batch::empty_batch(bytes).ok())
                .flatten();
        }
        let mut keep = Vec::with_capacity(usize::try_from(header.records_count).unwrap_or(0));
        let mut tombstones = false;
        let walked = batch::walk_whole_records(bytes, header, MAX_INFLATED, |record| {
            let retained = self.retain(header, &record);
            tombstones |= retained && !record.has_value;
            keep.push(retained);
        });
        match walked {
            Ok(()) => {}
            Err(BatchError::TooLarge { .. }) => return Some(bytes.to_vec()),
            Err(e) => {
                warn!(offset = header.base_offset, cause = %e, "cleaner keeps an unreadable batch whole");
                return Some(bytes.to_vec());
            }
        }
        let kept = keep.iter().filter(|k| **k).count();
        let set_horizon = tombstones && header.delete_horizon().is_none();
        if kept == keep.len() && !set_horizon {
            return Some(bytes.to_vec());
        }
        if kept == 0 {
            return last_of_producer
                .then(|| batch::empty_batch(bytes).ok())
                .flatten();
        }
        let mut index = 0;
        Some(rebuild(
            bytes,
            header,
            set_horizon.then_some(self.horizon),
            |_| {
                let retained = keep.get(index).copied().unwrap_or(false);
                index += 1;
                retained
            },
        ))
    }

    /// A transaction marker: kept while its transaction has a batch in the
    /// log, then stamped with the delete horizon, then dropped once the
    /// horizon has passed.
    fn filter_marker(&mut self, header: &BatchHeader, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.in_transaction.remove(&header.producer_id) {
            return Some(bytes.to_vec());
        }
        match header.delete_horizon() {
            Some(horizon) if self.now_ms >= horizon => None,
            Some(_) => Some(bytes.to_vec()),
            None => Some(rebuild(bytes, header, Some(self.horizon), |_| true)),
        }
    }

    fn retain(&self, header: &BatchHeader, record: &batch::RecordView<'_>) -> bool {
        let Some(key) = record.key else {
            return false;
        };
        let offset = header.base_offset + record.offset_delta;
        let latest = self
            .map
            .get(&key_hash(key))
            .is_none_or(|latest| offset >= *latest);
        latest
            && (record.has_value
                || header
                    .delete_horizon()
                    .is_none_or(|horizon| self.now_ms < horizon))
    }
}

/// `bytes` re-encoded with the records `keep` accepts (in order), stamped
/// with `delete_horizon` unless it has one; the batch as it is if it
/// cannot be re-encoded.
fn rebuild(
    bytes: &[u8],
    header: &BatchHeader,
    delete_horizon: Option<i64>,
    mut keep: impl FnMut(&batch::RecordView<'_>) -> bool,
) -> Vec<u8> {
    let rebuilt = BatchBuilder::new(bytes, delete_horizon).and_then(|mut builder| {
        batch::walk_whole_records(bytes, header, MAX_INFLATED, |record| {
            if keep(&record) {
                builder.push(&record);
            }
        })?;
        builder
            .finish()
            .map_err(|e| BatchError::Corrupt(e.to_string()))
    });
    rebuilt.unwrap_or_else(|e| {
        warn!(offset = header.base_offset, cause = %e, "cleaner keeps a batch it cannot re-encode whole");
        bytes.to_vec()
    })
}

/// Writes the cleaned form of `group` to `path`; the index entries of
/// what was written, or `None` if stopped.
fn write_group(
    group: &[SegmentSnapshot],
    path: &Path,
    filter: &mut Filter<'_>,
    throttle: &mut Throttle,
    stop: &dyn Fn() -> bool,
) -> io::Result<Option<Vec<BatchEntry>>> {
    let base = group.first().map_or(0, |s| s.base);
    let file = File::create(path)?;
    let mut out = BufWriter::new(&file);
    let mut entries = Vec::new();
    let mut position = 0u64;
    let mut stopped = false;
    for segment in group {
        walk_segment(&segment.file, segment.size, |_, header, bytes| {
            if stop() {
                stopped = true;
                return Ok(false);
            }
            let Some(kept) = filter.filter(header, bytes) else {
                throttle.account(bytes.len());
                return Ok(true);
            };
            throttle.account(bytes.len() + kept.len());
            let written = BatchHeader::parse(&kept).map_err(io::Error::other)?;
            out.write_all(&kept)?;
            entries.push(BatchEntry {
                base_offset: written.base_offset,
                last_offset: written.last_offset(),
                segment: base,
                position,
                size: u32::try_from(kept.len()).map_err(io::Error::other)?,
                max_timestamp: written.max_timestamp,
                producer_id: written.producer_id,
                producer_epoch: written.producer_epoch,
                base_sequence: written.base_sequence,
                attributes: written.attributes,
            });
            position += kept.len() as u64;
            Ok(true)
        })?;
        if stopped {
            break;
        }
    }
    out.flush()?;
    drop(out);
    if stopped {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Ok(None);
    }
    file.sync_all()?;
    Ok(Some(entries))
}

/// Cleans `log` as `plan` says, at `now_ms`; `stop` is polled between
/// batches (shutdown).
///
/// # Errors
/// A file, sled, or a dedupe buffer too small for one batch.
pub(crate) fn clean(
    log: &PartitionLog,
    plan: &Plan,
    now_ms: i64,
    config: &CleanerConfig,
    stop: &dyn Fn() -> bool,
) -> io::Result<Outcome> {
    let mut throttle = Throttle::new(config.io_max_bytes_per_second);
    let Some((map, end)) = build_offset_map(plan, config.key_capacity(), &mut throttle, stop)?
    else {
        return Ok(Outcome::Aborted);
    };
    let snapshot = &plan.snapshot;
    let mut filter = Filter {
        map: &map,
        aborted: &snapshot.aborted,
        now_ms,
        horizon: now_ms.saturating_add(snapshot.config.delete_retention_ms),
        producer_last_offsets: &snapshot.producer_last_offsets,
        in_transaction: HashSet::new(),
    };
    debug!(topic = %log.topic, partition = log.partition, first_dirty = snapshot.first_dirty,
        end, keys = map.len(), "cleaning");
    for group in group_segments(&snapshot.segments, end, snapshot.config.segment_bytes) {
        let Some(first) = group.first() else { continue };
        let path = log.dir().join(cleaning_file_name(first.base));
        let result = write_group(&group, &path, &mut filter, &mut throttle, stop);
        let entries = match result {
            Ok(Some(entries)) => entries,
            Ok(None) => return Ok(Outcome::Aborted),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        if !log.swap_cleaned(&group, &path, &entries)? {
            return Ok(Outcome::Aborted);
        }
    }
    log.set_cleaner_checkpoint(end)?;
    Ok(Outcome::Cleaned(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::index::SegmentIndex;
    use crate::log::partition::cleaning::swap_file_name;
    use crate::log::LogConfig;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    const NOW: i64 = 1_700_000_000_000;

    /// (offset, key, value) of a stored record.
    type Stored = (i64, String, Option<String>);

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

        fn files(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(self.dir.path().join("t-0"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }
    }

    fn compacted(segment_bytes: u64) -> LogConfig {
        LogConfig {
            segment_bytes,
            compact: true,
            delete: false,
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: 1000,
            ..LogConfig::default()
        }
    }

    /// One batch of `(key, value)` records (`None`: a tombstone), values
    /// naming nothing in particular; `producer`: (id, epoch, base sequence).
    fn encode(
        records: &[(&str, Option<&str>)],
        compression: Compression,
        producer: (i64, i16, i32),
    ) -> Vec<u8> {
        let (producer_id, producer_epoch, base_sequence) = producer;
        let records: Vec<Record> = records
            .iter()
            .zip(0..)
            .map(|((key, value), i)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence: if base_sequence < 0 {
                    i - 1
                } else {
                    base_sequence + i
                },
                timestamp: NOW + i64::from(i),
                key: Some(Bytes::from(key.to_string())),
                value: value.map(|v| Bytes::from(v.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.to_vec()
    }

    /// Every record (offset, key, value) from the log start, decoded by kafka-protocol.
    fn records(log: &PartitionLog) -> Vec<Stored> {
        let mut out = Vec::new();
        let mut next = log.offsets().log_start_offset;
        loop {
            let result = log.read(next, 1 << 20, None).unwrap();
            if result.is_empty() {
                return out;
            }
            let mut bytes = result.bytes().unwrap();
            for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
                for r in set.records {
                    let text = |b: Option<Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
                    out.push((r.offset, text(r.key).unwrap(), text(r.value)));
                }
            }
            // Follow the batches (an empty batch has no record to go by).
            let raw = log.read(next, 1 << 20, None).unwrap().bytes().unwrap();
            let mut rest = &raw[..];
            while !rest.is_empty() {
                let header = BatchHeader::parse(rest).unwrap();
                next = header.last_offset() + 1;
                rest = &rest[header.size..];
            }
        }
    }

    fn clean_now(log: &PartitionLog, now: i64) -> Outcome {
        let plan = plan(log, now).unwrap();
        clean(log, &plan, now, &CleanerConfig::default(), &|| false).unwrap()
    }

    /// Appends round after round of keys k0..k{keys}, values `v<offset>`.
    fn fill(log: &PartitionLog, keys: usize, rounds: usize, compression: Compression) {
        for _ in 0..rounds {
            let next = log.offsets().log_end_offset;
            let values: Vec<String> = (0..keys).map(|i| format!("v{}", next + i as i64)).collect();
            let names: Vec<String> = (0..keys).map(|i| format!("k{i}")).collect();
            let batch: Vec<(&str, Option<&str>)> = names
                .iter()
                .zip(&values)
                .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                .collect();
            log.append(encode(&batch, compression, (-1, -1, -1)), NOW)
                .unwrap();
        }
    }

    /// What compaction must leave: per key the latest (offset, value) below `end`,
    /// plus everything from `end` on.
    fn expected(before: &[Stored], end: i64) -> Vec<Stored> {
        let mut latest: HashMap<&str, i64> = HashMap::new();
        for (offset, key, _) in before.iter().filter(|r| r.0 < end) {
            latest.insert(key, *offset);
        }
        before
            .iter()
            .filter(|(offset, key, _)| *offset >= end || latest[key.as_str()] == *offset)
            .cloned()
            .collect()
    }

    #[test]
    fn keeps_the_latest_per_key_at_its_offset_for_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let fixture = Fixture::new();
            let log = fixture.open(compacted(600));
            // Uneven batches so that some keep part of their records.
            fill(&log, 3, 10, compression);
            fill(&log, 5, 10, compression);
            let before = records(&log);
            let active = plan(&log, NOW).unwrap().snapshot.active_base;
            let Outcome::Cleaned(end) = clean_now(&log, NOW) else {
                panic!("not cleaned")
            };
            assert_eq!(end, active, "{compression:?}");
            let want = expected(&before, end);
            assert_eq!(records(&log), want, "{compression:?}");
            assert!(records(&log).len() < before.len());
            // Re-encoded batches keep their codec; a restart reads the same.
            drop(log);
            let log = fixture.open(compacted(600));
            assert_eq!(records(&log), want, "{compression:?} after restart");
            assert_eq!(log.cleaner_checkpoint(), end);
            // Appends continue at the old end.
            let end_offset = log.offsets().log_end_offset;
            let info = log
                .append(encode(&[("k0", Some("x"))], compression, (-1, -1, -1)), NOW)
                .unwrap();
            assert_eq!(info.base_offset, end_offset);
        }
    }

    #[test]
    fn merging_bounds_the_segment_count() {
        let fixture = Fixture::new();
        let log = fixture.open(compacted(400));
        fill(&log, 2, 60, Compression::None);
        let before = fixture
            .files()
            .iter()
            .filter(|f| f.ends_with(".log"))
            .count();
        assert!(before > 10, "{before}");
        clean_now(&log, NOW);
        // Cleaned again (nothing dirty): groups keep merging up to segment.bytes.
        fill(&log, 2, 1, Compression::None);
        clean_now(&log, NOW);
        let after: Vec<String> = fixture
            .files()
            .into_iter()
            .filter(|f| f.ends_with(".log"))
            .collect();
        assert!(after.len() <= 3, "{after:?}");
        for name in &after {
            let size = std::fs::metadata(fixture.dir.path().join("t-0").join(name))
                .unwrap()
                .len();
            assert!(size <= 400, "{name}: {size}");
        }
        // Below the active segment, one record per key.
        let active = plan(&log, NOW).unwrap().snapshot.active_base;
        let mut keys: Vec<String> = records(&log)
            .into_iter()
            .filter(|r| r.0 < active)
            .map(|r| r.1)
            .collect();
        let count = keys.len();
        keys.dedup();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), count);
    }

    #[test]
    fn tombstones_stay_for_delete_retention_ms_then_go() {
        let fixture = Fixture::new();
        let log = fixture.open(compacted(300));
        log.append(
            encode(
                &[("a", Some("1")), ("b", Some("2"))],
                Compression::None,
                (-1, -1, -1),
            ),
            NOW,
        )
        .unwrap();
        log.append(
            encode(
                &[("a", None), ("c", Some("3"))],
                Compression::Lz4,
                (-1, -1, -1),
            ),
            NOW,
        )
        .unwrap();
        fill(&log, 1, 8, Compression::None); // rolls; keys k0 only
        let first = NOW + 10;
        clean_now(&log, first);
        let kept: Vec<_> = records(&log).into_iter().filter(|r| r.0 < 4).collect();
        assert_eq!(
            kept,
            vec![
                (1, "b".into(), Some("2".into())),
                (2, "a".into(), None),
                (3, "c".into(), Some("3".into()))
            ]
        );
        // The batch now carries its delete horizon; record timestamps are unchanged.
        let raw = log.read(2, 1 << 20, None).unwrap().bytes().unwrap();
        let header = BatchHeader::parse(&raw).unwrap();
        assert_eq!(header.delete_horizon(), Some(first + 1000));
        assert_eq!(batch::find_record(&raw, |o, _| o == 3), Some((3, NOW + 1)));
        // Before the horizon the tombstone stays; from it on it goes.
        clean_now(&log, first + 999);
        assert!(records(&log).contains(&(2, "a".into(), None)));
        clean_now(&log, first + 1000);
        let kept: Vec<_> = records(&log).into_iter().filter(|r| r.0 < 4).collect();
        assert_eq!(
            kept,
            vec![
                (1, "b".into(), Some("2".into())),
                (3, "c".into(), Some("3".into()))
            ]
        );
    }

    #[test]
    fn an_idempotent_producers_last_batch_survives_as_an_empty_batch() {
        let fixture = Fixture::new();
        let log = fixture.open(compacted(300));
        log.append(
            encode(&[("a", Some("1"))], Compression::None, (7, 0, 0)),
            NOW,
        )
        .unwrap();
        log.append(
            encode(
                &[("a", Some("2")), ("b", Some("3"))],
                Compression::Gzip,
                (7, 0, 1),
            ),
            NOW,
        )
        .unwrap();
        log.append(
            encode(
                &[("a", Some("4")), ("b", Some("5"))],
                Compression::None,
                (-1, -1, -1),
            ),
            NOW,
        )
        .unwrap();
        fill(&log, 1, 8, Compression::None);
        clean_now(&log, NOW);
        // Offsets 1..=2 (producer 7's last batch) are an empty batch now.
        let raw = log.read(1, 1 << 20, None).unwrap().bytes().unwrap();
        let header = BatchHeader::parse(&raw).unwrap();
        assert_eq!(
            (
                header.base_offset,
                header.last_offset(),
                header.records_count
            ),
            (1, 2, 0)
        );
        assert_eq!((header.producer_id, header.base_sequence), (7, 1));
        assert!(!records(&log).iter().any(|r| r.0 < 3));
        drop(log);
        // After a restart the producer's state is what it was: a retry of
        // its last batch gets its offset back, the next sequence is taken.
        let log = fixture.open(compacted(300));
        let retry = encode(
            &[("a", Some("2")), ("b", Some("3"))],
            Compression::Gzip,
            (7, 0, 1),
        );
        assert_eq!(log.append(retry, NOW).unwrap().base_offset, 1);
        let end = log.offsets().log_end_offset;
        let next = encode(&[("a", Some("6"))], Compression::None, (7, 0, 3));
        assert_eq!(log.append(next, NOW).unwrap().base_offset, end);
    }

    /// `batch` with the attribute `bits` set (transactional 1 << 4,
    /// control 1 << 5), its CRC recomputed.
    fn with_attributes(mut batch: Vec<u8>, bits: i16) -> Vec<u8> {
        let attributes = i16::from_be_bytes([batch[21], batch[22]]) | bits;
        batch[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
        batch
    }

    fn filter<'a>(map: &'a HashMap<u128, i64>, now: i64) -> Filter<'a> {
        // Empty maps that outlive the filter (a test-only leak).
        let aborted: &'static HashMap<i64, Vec<(i64, i64)>> = Box::leak(Box::default());
        let last: &'static HashMap<i64, i64> = Box::leak(Box::default());
        Filter {
            map,
            aborted,
            now_ms: now,
            horizon: now + 1000,
            producer_last_offsets: last,
            in_transaction: HashSet::new(),
        }
    }

    #[test]
    fn markers_stay_while_their_transaction_has_data_then_for_the_horizon() {
        let map = HashMap::new();
        let data = with_attributes(
            encode(&[("a", Some("1"))], Compression::None, (5, 0, 0)),
            1 << 4,
        );
        let marker = with_attributes(
            encode(&[("m", Some("x"))], Compression::None, (5, 0, -1)),
            3 << 4,
        );
        let parse = |b: &[u8]| BatchHeader::parse(b).unwrap();
        // Its data in the log: the marker stays as it is.
        let mut pass = filter(&map, NOW);
        assert_eq!(pass.filter(&parse(&data), &data), Some(data.clone()));
        assert_eq!(pass.filter(&parse(&marker), &marker), Some(marker.clone()));
        // No data left: stamped with the horizon (records unchanged) ...
        let stamped = filter(&map, NOW).filter(&parse(&marker), &marker).unwrap();
        let header = parse(&stamped);
        assert!(header.is_control() && header.is_transactional());
        assert_eq!(header.delete_horizon(), Some(NOW + 1000));
        assert_eq!(header.records_count, 1);
        // ... kept until the horizon, dropped from it on.
        let mut before = filter(&map, NOW + 999);
        assert_eq!(before.filter(&header, &stamped), Some(stamped.clone()));
        assert_eq!(filter(&map, NOW + 1000).filter(&header, &stamped), None);
        // Another producer's data does not hold it.
        let other = with_attributes(
            encode(&[("b", Some("1"))], Compression::None, (6, 0, 0)),
            1 << 4,
        );
        let mut pass = filter(&map, NOW + 1000);
        pass.filter(&parse(&other), &other);
        assert_eq!(pass.filter(&header, &stamped), None);
        // An emptied batch that is no producer's last goes.
        let empty = batch::empty_batch(&data).unwrap();
        assert_eq!(filter(&map, NOW).filter(&parse(&empty), &empty), None);
    }

    #[test]
    fn oversized_batches_are_kept_whole() {
        let map = HashMap::from([(key_hash(b"a"), 100)]);
        let mut filter = filter(&map, NOW);
        // An ordinary batch of the same superseded key goes.
        let plain = encode(&[("a", Some("1"))], Compression::Zstd, (-1, -1, -1));
        assert_eq!(
            filter.filter(&BatchHeader::parse(&plain).unwrap(), &plain),
            None
        );
        // A compressed batch inflating past the bound is kept as it is.
        let big = "x".repeat(MAX_INFLATED + 1);
        let huge = encode(&[("a", Some(&big))], Compression::Zstd, (-1, -1, -1));
        assert!(huge.len() < 1 << 20);
        assert_eq!(
            filter.filter(&BatchHeader::parse(&huge).unwrap(), &huge),
            Some(huge.clone())
        );
    }

    /// A log to clean and what a finished clean leaves in it.
    fn crash_fixture() -> (Fixture, PartitionLog, Vec<Stored>) {
        let reference = Fixture::new();
        let log = reference.open(compacted(500));
        fill(&log, 4, 12, Compression::Snappy);
        clean_now(&log, NOW);
        let want = records(&log);
        let fixture = Fixture::new();
        let log = fixture.open(compacted(500));
        fill(&log, 4, 12, Compression::Snappy);
        (fixture, log, want)
    }

    /// Runs the first group's clean up to `step` of the swap protocol
    /// (1: cleaned written; 2: index entries gone; 3: swap file; 4: old
    /// segments deleted; 5: renamed to .log, not indexed), then "crashes".
    fn crash_at(step: u8) {
        let (fixture, log, want) = crash_fixture();
        let before = records(&log);
        let plan = plan(&log, NOW).unwrap();
        let mut throttle = Throttle::new(f64::MAX);
        let (map, end) = build_offset_map(&plan, 1 << 20, &mut throttle, &|| false)
            .unwrap()
            .unwrap();
        let groups = group_segments(&plan.snapshot.segments, end, 500);
        let group = &groups[0];
        let (from, to) = (group[0].base, group.last().unwrap().next);
        let mut filter = filter(&map, NOW);
        let dir = fixture.dir.path().join("t-0");
        let cleaned = dir.join(cleaning_file_name(from));
        write_group(group, &cleaned, &mut filter, &mut throttle, &|| false)
            .unwrap()
            .unwrap();
        if step >= 2 {
            SegmentIndex::open(&fixture.db, "t", 0)
                .unwrap()
                .remove_range(from..to)
                .unwrap();
        }
        let swap = dir.join(swap_file_name(from, to));
        if step >= 3 {
            std::fs::rename(&cleaned, &swap).unwrap();
        }
        if step >= 4 {
            for s in group {
                std::fs::remove_file(dir.join(crate::log::segment::file_name(s.base))).unwrap();
            }
        }
        if step >= 5 {
            std::fs::rename(&swap, dir.join(crate::log::segment::file_name(from))).unwrap();
        }
        drop(log);
        let log = fixture.open(compacted(500));
        let got = records(&log);
        let names = fixture.files();
        assert!(
            !names
                .iter()
                .any(|n| n.contains(".cleaned") || n.contains(".swap")),
            "{names:?}"
        );
        if step < 3 {
            assert_eq!(got, before, "step {step}: the old segments stand");
        } else {
            // The first group is cleaned; the rest is as before.
            let first_group = expected(&before, end);
            let mut want_now: Vec<_> = first_group.into_iter().filter(|r| r.0 < to).collect();
            want_now.extend(before.iter().filter(|r| r.0 >= to).cloned());
            assert_eq!(got, want_now, "step {step}");
        }
        // Offsets increase strictly: nothing is duplicated.
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        // A full clean afterwards ends where an uninterrupted one did.
        clean_now(&log, NOW);
        assert_eq!(records(&log), want, "step {step}: after a full clean");
    }

    #[test]
    fn a_crash_at_any_step_of_the_swap_loses_and_duplicates_nothing() {
        for step in 1..=5 {
            crash_at(step);
        }
    }

    #[test]
    fn retention_and_deletion_abort_a_clean_without_loss() {
        let fixture = Fixture::new();
        let log = fixture.open(LogConfig {
            delete: true,
            retention_ms: 1,
            ..compacted(500)
        });
        fill(&log, 4, 12, Compression::None);
        let plan = plan(&log, NOW).unwrap();
        log.enforce_retention(NOW + 1_000_000).unwrap();
        let after_retention = records(&log);
        let config = CleanerConfig::default();
        assert_eq!(
            clean(&log, &plan, NOW, &config, &|| false).unwrap(),
            Outcome::Aborted
        );
        assert_eq!(records(&log), after_retention);
        assert!(!fixture.files().iter().any(|n| n.contains(".cleaned")));
    }
}
