//! What replication needs of a partition's log: the leader epoch cache
//! (Kafka's `leader-epoch-checkpoint`: each epoch's first offset, which
//! tells a follower where its log and the leader's diverge), the
//! follower's truncation, and the checkpointed high watermark (Kafka's
//! `replication-offset-checkpoint`, kept in the sled tree
//! `high_watermarks`; followers used to truncate to it, which lost
//! acknowledged records when the checkpoint lagged).
//!
//! The epoch cache is not stored: batches carry their leader epoch, and
//! epochs only grow along a log, so on open it is rebuilt by bisection
//! over the index (a few reads per epoch, not one per batch).

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;

use tracing::info;

use super::recovery::replay_state;
use super::{LogState, PartitionLog};
use crate::log::index::{BatchEntry, SegmentIndex};
use crate::log::segment::{self, LogSegment};

/// The sled tree of checkpointed high watermarks.
pub(super) const HIGH_WATERMARK_TREE: &str = "high_watermarks";

impl PartitionLog {
    /// The high watermark last checkpointed (0 if none): every offset
    /// below it was on every in-sync replica.
    pub fn checkpointed_high_watermark(&self) -> i64 {
        self.watermarks
            .get(self.key())
            .ok()
            .flatten()
            .and_then(|v| {
                crate::store::unversioned(&v)
                    .and_then(|b| b.try_into().ok())
                    .map(i64::from_be_bytes)
            })
            .unwrap_or(0)
    }

    /// Records `offset` as the high watermark (flushed with sled's next
    /// background flush).
    pub(super) fn checkpoint_high_watermark(&self, offset: i64) {
        let value = crate::store::versioned(&offset.to_be_bytes());
        if let Err(e) = self.watermarks.insert(self.key(), value) {
            tracing::warn!(topic = %self.topic, partition = self.partition, cause = %e, "cannot checkpoint the high watermark");
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }

    /// Cuts the log back to `offset` (down to the start of the batch that
    /// holds it): index entries first, then later segments and the file
    /// tail; producer and transaction state are replayed from what is
    /// left. Returns the new log end. A follower does this before it
    /// fetches from a new leader, so it never keeps records the leader
    /// does not have.
    ///
    /// # Errors
    /// A file or the index cannot be changed.
    pub fn truncate_to(&self, offset: i64) -> io::Result<i64> {
        let mut state = self.lock();
        let offset = offset.max(state.log_start_offset);
        if state.deleted || offset >= state.log_end_offset {
            return Ok(state.log_end_offset);
        }
        let Some(entry) = self.index.find(offset) else {
            return Ok(state.log_end_offset);
        };
        let cut = entry.base_offset;
        self.index.remove_range(cut..).map_err(io::Error::other)?;
        let later: Vec<i64> = state
            .segments
            .range(entry.segment + 1..)
            .map(|(base, _)| *base)
            .collect();
        for base in later {
            if let Some(segment) = state.segments.remove(&base) {
                segment.delete()?;
            }
        }
        if let Some(segment) = state.segments.get_mut(&entry.segment) {
            segment.truncate(entry.position)?;
        }
        let (producers, txns) =
            replay_state(&state.segments, &self.index, &self.topic, self.partition)?;
        info!(topic = %self.topic, partition = self.partition, from = state.log_end_offset, to = cut, "truncated the log");
        state.producers = producers;
        state.txns = txns;
        state.epochs.retain(|_, start| *start < cut);
        state.log_end_offset = cut;
        state.high_watermark = state.high_watermark.min(cut);
        state.cleaner_checkpoint = state.cleaner_checkpoint.min(cut);
        Ok(cut)
    }

    /// The leader epoch of the log's last batch, -1 for an empty log:
    /// what a follower sends as `last_fetched_epoch`.
    pub fn last_epoch(&self) -> i32 {
        self.lock().epochs.keys().next_back().copied().unwrap_or(-1)
    }

    /// Kafka's answer to OffsetsForLeaderEpoch: the largest epoch of this
    /// log not above `epoch`, and the offset where it ends (the next
    /// epoch's first offset, or the log end); `(-1, -1)` if the log has no
    /// such epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let state = self.lock();
        let Some((&found, _)) = state.epochs.range(..=epoch).next_back() else {
            return (-1, -1);
        };
        let end = state
            .epochs
            .range((Bound::Excluded(found), Bound::Unbounded))
            .next()
            .map_or(state.log_end_offset, |(_, start)| *start);
        (found, end)
    }

    /// A client's OffsetForLeaderEpoch on the leader, whose current leader
    /// epoch is `current` (Kafka's `LeaderEpochFileCache.endOffsetFor`,
    /// where the leader's cache holds `current` from the offset it took
    /// over at): the current epoch ends at the log end; a newer one is
    /// unknown (`(-1, -1)`); an older one ends where the next epoch here
    /// starts, and one older than every epoch here ends at the first.
    pub fn offset_for_leader_epoch(&self, current: i32, epoch: i32) -> (i32, i64) {
        let state = self.lock();
        if epoch < 0 || epoch > current {
            return (-1, -1);
        }
        if epoch == current {
            return (epoch, state.log_end_offset);
        }
        let next = state
            .epochs
            .range((Bound::Excluded(epoch), Bound::Unbounded))
            .next()
            .map_or(state.log_end_offset, |(_, start)| *start);
        match state.epochs.range(..=epoch).next_back() {
            Some((&found, _)) => (found, next),
            None => (epoch, next),
        }
    }

    /// The leader epoch of the batch holding `offset` (the last epoch that
    /// starts at or before it), if the cache knows one.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let state = self.lock();
        state
            .epochs
            .iter()
            .take_while(|(_, start)| **start <= offset)
            .last()
            .map(|(epoch, _)| *epoch)
    }
}

/// The leader epoch a stored batch carries (bytes 12..16).
fn batch_epoch(batch: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(batch.get(12..16)?.try_into().ok()?))
}

/// Records the epoch of a batch stored at `base_offset` (its bytes as
/// stored) in the epoch cache, if it starts a new epoch.
pub(super) fn note_epoch(state: &mut LogState, batch: &[u8], base_offset: i64) {
    let Some(epoch) = batch_epoch(batch) else {
        return;
    };
    if state
        .epochs
        .keys()
        .next_back()
        .is_none_or(|last| epoch > *last)
    {
        state.epochs.insert(epoch, base_offset);
    }
}

/// The epoch cache of a log just opened: epochs never decrease along a
/// log, so a range whose first and last batch share an epoch is all that
/// epoch, and only ranges spanning a change are split (binary search).
/// A batch that cannot be read ends the scan with what was found before
/// it (a follower then truncates further than needed, never less).
pub(super) fn scan_epochs(
    segments: &BTreeMap<i64, LogSegment>,
    index: &SegmentIndex,
    log_end_offset: i64,
) -> BTreeMap<i32, i64> {
    let mut epochs = BTreeMap::new();
    let at = |offset: i64| -> Option<(BatchEntry, i32)> {
        let entry = index.find(offset)?;
        let file = segments.get(&entry.segment)?.reader();
        let epoch = segment::read_at(&file, entry.position + 12, 4).ok()?;
        Some((entry, i32::from_be_bytes(epoch.try_into().ok()?)))
    };
    let (Some(first), Some(last)) = (
        at(0),
        log_end_offset.checked_sub(1).and_then(|o| at(o.max(0))),
    ) else {
        return epochs;
    };
    // Ranges (first batch, last batch) still to look at, leftmost first.
    let mut pending = vec![(first, last)];
    while let Some((lo, hi)) = pending.pop() {
        let note = |epochs: &mut BTreeMap<i32, i64>, (entry, epoch): &(BatchEntry, i32)| {
            let start = epochs.entry(*epoch).or_insert(entry.base_offset);
            *start = (*start).min(entry.base_offset);
        };
        if lo.1 == hi.1 || hi.0.base_offset <= lo.0.base_offset {
            note(&mut epochs, &lo);
            continue;
        }
        let after_lo = lo.0.last_offset + 1;
        let middle = after_lo + (hi.0.base_offset - after_lo) / 2;
        let mid = at(middle)
            .filter(|(m, _)| m.base_offset < hi.0.base_offset)
            .or_else(|| at(after_lo).filter(|(m, _)| m.base_offset < hi.0.base_offset));
        match mid {
            // lo and hi are neighbours.
            None => {
                note(&mut epochs, &lo);
                note(&mut epochs, &hi);
            }
            Some(mid) => {
                pending.push((mid, hi));
                pending.push((lo, mid));
            }
        }
    }
    epochs
}
