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
//!   empty batch is kept); control batches and compressed batches that
//!   would inflate past [`MAX_INFLATED`] are kept whole;
//! - each group is written aside and swapped in under the partition lock
//!   (see `partition::cleaning` for the crash-safe protocol); reading and
//!   writing happen without the lock, so produce and fetch never wait on
//!   the cleaner for more than a few renames.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::batch::{self, BatchBuilder, BatchError, BatchHeader, HEADER_SIZE};
use super::index::BatchEntry;
use super::partition::{cleaning_file_name, CleanSnapshot, PartitionLog, SegmentSnapshot};

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
            if header.last_offset() < first_dirty || header.is_control() {
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
    if end <= first_dirty {
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

/// What to do with one stored batch.
struct Filter<'a> {
    map: &'a HashMap<u128, i64>,
    now_ms: i64,
    horizon: i64,
    producer_last_offsets: &'a HashMap<i64, i64>,
}

impl Filter<'_> {
    /// The batch to write in place of `bytes`, `None` to drop it.
    fn filter(&self, header: &BatchHeader, bytes: &[u8]) -> Option<Vec<u8>> {
        if header.is_control() {
            return Some(bytes.to_vec());
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
            let last_of_producer = header.has_producer()
                && self.producer_last_offsets.get(&header.producer_id)
                    == Some(&header.last_offset());
            return last_of_producer
                .then(|| batch::empty_batch(bytes).ok())
                .flatten();
        }
        let rebuilt = BatchBuilder::new(bytes, set_horizon.then_some(self.horizon)).and_then(
            |mut builder| {
                let mut index = 0;
                batch::walk_whole_records(bytes, header, MAX_INFLATED, |record| {
                    if keep.get(index).copied().unwrap_or(false) {
                        builder.push(&record);
                    }
                    index += 1;
                })?;
                builder
                    .finish()
                    .map_err(|e| BatchError::Corrupt(e.to_string()))
            },
        );
        match rebuilt {
            Ok(rebuilt) => Some(rebuilt),
            Err(e) => {
                warn!(offset = header.base_offset, cause = %e, "cleaner keeps a batch it cannot re-encode whole");
                Some(bytes.to_vec())
            }
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

/// Writes the cleaned form of `group` to `path`; the index entries of
/// what was written, or `None` if stopped.
fn write_group(
    group: &[SegmentSnapshot],
    path: &Path,
    filter: &Filter<'_>,
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
    let filter = Filter {
        map: &map,
        now_ms,
        horizon: now_ms.saturating_add(snapshot.config.delete_retention_ms),
        producer_last_offsets: &snapshot.producer_last_offsets,
    };
    debug!(topic = %log.topic, partition = log.partition, first_dirty = snapshot.first_dirty,
        end, keys = map.len(), "cleaning");
    for group in group_segments(&snapshot.segments, end, snapshot.config.segment_bytes) {
        let Some(first) = group.first() else { continue };
        let path = log.dir().join(cleaning_file_name(first.base));
        let result = write_group(&group, &path, &filter, &mut throttle, stop);
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
