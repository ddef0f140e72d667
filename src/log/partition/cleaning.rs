//! The partition's side of log cleaning: the snapshot the cleaner works
//! from (taken under the lock), the swap of a cleaned segment group into
//! place (under the lock, a few renames), the cleaner checkpoint, and the
//! completion of a swap a crash interrupted.
//!
//! Swap protocol for a group of closed segments with bases in `[a, b)`
//! (`b`: the base of the segment after the group), each step durable
//! before the next:
//! 1. the cleaner writes `<a>.log.cleaned` and fsyncs it (no lock held);
//! 2. under the lock: the index entries of `[a, b)` are removed and sled
//!    flushed, so no entry can point into the old files once they change;
//! 3. `<a>.log.cleaned` is renamed to `<a>-<b>.log.swap` (the directory
//!    fsynced): from here the swap is decided, and the name says which
//!    segments it replaces;
//! 4. the old segment files of `[a, b)` are deleted;
//! 5. the swap file is renamed to `<a>.log` (directory fsynced) and its
//!    batches are indexed.
//!
//! On open, a `.cleaned` file is deleted (the old segments are intact) and
//! a `.swap` file completes steps 4 and 5 (its entries are indexed by the
//! ordinary recovery of a segment without entries). Readers holding a
//! `FileRegion` of a replaced file keep reading the old bytes: an unlinked
//! file stays readable while open.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use tracing::{info, warn};

use super::{recovery::recover_segment, LogConfig, PartitionLog};
use crate::log::batch;
use crate::log::index::{BatchEntry, SegmentIndex};
use crate::log::segment::{self, LogSegment};

/// The sled tree of cleaner checkpoints.
pub(super) const CHECKPOINT_TREE: &str = "cleaner_checkpoints";

/// A closed segment as the cleaner saw it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentSnapshot {
    /// Its base offset.
    pub base: i64,
    /// The base offset of the segment after it.
    pub next: i64,
    /// Its size (closed segments never change size).
    pub size: u64,
    /// Its largest batch timestamp, -1 if empty.
    pub max_timestamp: i64,
    /// A read handle that outlives the lock (and a deletion).
    pub file: Arc<File>,
}

/// What the cleaner needs of one partition, taken under its lock.
#[derive(Debug)]
pub(crate) struct CleanSnapshot {
    /// The settings at the time.
    pub config: LogConfig,
    /// The cleaner checkpoint, at least the log start.
    pub first_dirty: i64,
    /// The active segment's base offset (never cleaned).
    pub active_base: i64,
    /// Every closed segment, oldest first.
    pub segments: Vec<SegmentSnapshot>,
    /// The max timestamp of the first dirty batch, if any.
    pub first_dirty_timestamp: Option<i64>,
    /// Each idempotent producer's last batch (its last offset): kept, if
    /// only as an empty batch, so producer state survives cleaning.
    pub producer_last_offsets: HashMap<i64, i64>,
    /// The first offset of the oldest open transaction: nothing from here
    /// on is cleaned (Kafka's first unstable offset).
    pub first_unstable: Option<i64>,
    /// Aborted transactions by producer: (first offset, marker offset).
    /// Their data is never a key's latest value and goes when cleaned.
    pub aborted: HashMap<i64, Vec<(i64, i64)>>,
}

/// Whether `header` is data of one of the `aborted` transactions.
pub(crate) fn is_aborted(
    aborted: &HashMap<i64, Vec<(i64, i64)>>,
    header: &crate::log::BatchHeader,
) -> bool {
    header.is_transactional()
        && !header.is_control()
        && aborted.get(&header.producer_id).is_some_and(|ranges| {
            ranges
                .iter()
                .any(|(first, last)| (*first..=*last).contains(&header.base_offset))
        })
}

/// The name of the swap file replacing the segments with bases in `[from, to)`.
pub(crate) fn swap_file_name(from: i64, to: i64) -> String {
    format!("{from:020}-{to:020}.log.swap")
}

/// The range a swap file name records.
fn parse_swap_file_name(name: &str) -> Option<(i64, i64)> {
    let digits = name.strip_suffix(".log.swap")?;
    let (from, to) = digits.split_once('-')?;
    let number = |d: &str| {
        (d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
            .then(|| d.parse().ok())
            .flatten()
    };
    Some((number(from)?, number(to)?))
}

/// The name of the cleaner's output for the group starting at `base`.
pub(crate) fn cleaned_file_name(base: i64) -> String {
    format!("{base:020}.log.cleaned")
}

/// Fsyncs a directory, so renames and deletions in it are durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The stored checkpoint of `key`, 0 if none (or of an unknown version).
pub(super) fn read_checkpoint(tree: &sled::Tree, key: &str) -> io::Result<i64> {
    let stored = tree.get(key).map_err(io::Error::other)?;
    Ok(stored
        .and_then(|v| {
            crate::store::unversioned(&v)
                .and_then(|b| b.try_into().ok())
                .map(i64::from_be_bytes)
        })
        .unwrap_or(0))
}

/// Deletes leftover cleaner output and completes every swap a crash
/// interrupted (steps 4 and 5 of the protocol).
pub(super) fn finish_interrupted_swaps(
    dir: &Path,
    index: &SegmentIndex,
    topic: &str,
    partition: i32,
) -> io::Result<()> {
    let mut swaps = Vec::new();
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.ends_with(".log.cleaned") {
            warn!(topic, partition, file = %name, "deleting unfinished cleaner output");
            std::fs::remove_file(entry.path())?;
        } else if let Some(range) = parse_swap_file_name(&name) {
            swaps.push((range, entry.path()));
        } else if let Some(base) = segment::parse_file_name(&name) {
            bases.push(base);
        }
    }
    for ((from, to), path) in swaps {
        warn!(
            topic,
            partition, from, to, "completing an interrupted cleaner swap"
        );
        // No entry of the range can be stale (step 2 came first); again for safety.
        index.remove_range(from..to).map_err(io::Error::other)?;
        index.flush().map_err(io::Error::other)?;
        for base in bases.iter().filter(|b| (from..to).contains(*b)) {
            match std::fs::remove_file(dir.join(segment::file_name(*base))) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&path, dir.join(segment::file_name(from)))?;
        sync_dir(dir)?;
    }
    Ok(())
}

impl PartitionLog {
    /// What the cleaner needs to plan a clean; `None` for a deleted or
    /// not compacted log.
    pub(crate) fn clean_snapshot(&self) -> Option<CleanSnapshot> {
        let state = self.lock();
        if state.deleted || !state.config.compact {
            return None;
        }
        let bases: Vec<i64> = state.segments.keys().copied().collect();
        let active_base = *bases.last()?;
        let segments = state
            .segments
            .values()
            .zip(bases.iter().skip(1))
            .map(|(s, next)| SegmentSnapshot {
                base: s.base_offset,
                next: *next,
                size: s.size,
                max_timestamp: s.max_timestamp,
                file: s.reader(),
            })
            .collect();
        let mut first_dirty = state.cleaner_checkpoint.max(state.log_start_offset);
        if first_dirty > state.log_end_offset {
            // A checkpoint past the end (the log was recreated): start over.
            first_dirty = state.log_start_offset;
        }
        Some(CleanSnapshot {
            config: state.config.clone(),
            first_dirty,
            active_base,
            segments,
            first_dirty_timestamp: self.index.find(first_dirty).map(|e| e.max_timestamp),
            producer_last_offsets: state.producers.last_offsets(),
            first_unstable: state.txns.first_unstable_offset(),
            aborted: state.txns.aborted_between(0, i64::MAX).into_iter().fold(
                HashMap::new(),
                |mut by_producer: HashMap<i64, Vec<(i64, i64)>>, t| {
                    by_producer
                        .entry(t.producer_id)
                        .or_default()
                        .push((t.first_offset, t.last_offset));
                    by_producer
                },
            ),
        })
    }

    /// The directory the cleaner writes its output into.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Swaps the cleaned file `cleaned` (holding the batches `entries`
    /// describe, positions in it) in for the segments `group` (the swap
    /// protocol of this module). False, with `cleaned` deleted and nothing
    /// changed, if the log changed meanwhile (a segment of the group was
    /// deleted by retention or DeleteRecords, or the partition was).
    ///
    /// # Errors
    /// A rename, deletion or sled fails; a failure before step 3 restores
    /// the old segments' index entries, one after it is finished by
    /// recovery on the next open.
    pub(crate) fn swap_cleaned(
        &self,
        group: &[SegmentSnapshot],
        cleaned: &Path,
        entries: &[BatchEntry],
    ) -> io::Result<bool> {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            return Ok(false);
        };
        let (from, to) = (first.base, last.next);
        let mut state = self.lock();
        let unchanged = !state.deleted
            && group.iter().all(|s| {
                state
                    .segments
                    .get(&s.base)
                    .is_some_and(|live| live.size == s.size)
            })
            && state.segments.contains_key(&to);
        if !unchanged {
            drop(state);
            let _ = std::fs::remove_file(cleaned);
            return Ok(false);
        }
        // Step 2: no entry may point into the files about to change.
        let swap = self.dir.join(swap_file_name(from, to));
        let prepared = self
            .index
            .remove_range(from..to)
            .and_then(|()| self.index.flush())
            .map_err(io::Error::other)
            .and_then(|()| std::fs::rename(cleaned, &swap))
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = prepared {
            if swap.exists() {
                // The swap is decided (step 3 done); recovery finishes it.
                return Err(e);
            }
            for s in group {
                if let Some(segment) = state.segments.get_mut(&s.base) {
                    recover_segment(segment, &self.index, s.next, &self.topic, self.partition)?;
                }
            }
            let _ = std::fs::remove_file(cleaned);
            return Err(e);
        }
        // Step 4, then 5.
        for s in group {
            if let Some(segment) = state.segments.remove(&s.base) {
                segment.delete()?;
            }
        }
        let path = self.dir.join(segment::file_name(from));
        std::fs::rename(&swap, &path)?;
        sync_dir(&self.dir)?;
        let mut segment = LogSegment::open(&path, from)?;
        let mut markers = HashSet::new();
        for entry in entries {
            self.index.insert(entry).map_err(io::Error::other)?;
            segment.max_timestamp = segment.max_timestamp.max(entry.max_timestamp);
            if batch::is_control(entry.attributes) {
                markers.insert(entry.base_offset);
            }
        }
        state.segments.insert(from, segment);
        // An abort whose marker the cleaner dropped (its data went first)
        // is no longer reported to read_committed fetches: a consumer
        // would skip the producer's later data waiting for that marker.
        state.txns.retain_aborted(|t| {
            !(from..to).contains(&t.last_offset) || markers.contains(&t.last_offset)
        });
        Ok(true)
    }

    /// Moves the cleaner checkpoint to `offset` (durably).
    ///
    /// # Errors
    /// sled fails.
    pub(crate) fn set_cleaner_checkpoint(&self, offset: i64) -> io::Result<()> {
        let value = crate::store::versioned(&offset.to_be_bytes());
        self.checkpoints
            .insert(format!("{}/{}", self.topic, self.partition), value)
            .map_err(io::Error::other)?;
        self.checkpoints.flush().map_err(io::Error::other)?;
        self.lock().cleaner_checkpoint = offset;
        info!(topic = %self.topic, partition = self.partition, checkpoint = offset, "cleaned log");
        Ok(())
    }

    /// The cleaner checkpoint (every offset below it has been cleaned).
    pub fn cleaner_checkpoint(&self) -> i64 {
        self.lock().cleaner_checkpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_names_round_trip() {
        let name = swap_file_name(5, 1234);
        assert_eq!(name, "00000000000000000005-00000000000000001234.log.swap");
        assert_eq!(parse_swap_file_name(&name), Some((5, 1234)));
        assert_eq!(parse_swap_file_name("5-1234.log.swap"), None);
        assert_eq!(segment::parse_file_name(&cleaned_file_name(5)), None);
    }
}
