//! What replication needs of a partition's log: the follower's
//! truncation before it fetches from a new leader, and the checkpointed
//! high watermark it truncates to (Kafka's `replication-offset-checkpoint`,
//! kept in the sled tree `high_watermarks`).

use std::io;

use tracing::info;

use super::recovery::replay_state;
use super::PartitionLog;

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
        state.log_end_offset = cut;
        state.high_watermark = state.high_watermark.min(cut);
        state.cleaner_checkpoint = state.cleaner_checkpoint.min(cut);
        Ok(cut)
    }
}
