//! Moving the log start: DeleteRecords and time/size retention (the
//! latter only under a `cleanup.policy` including `delete`).

use std::io;

use tracing::info;

use super::{LogState, PartitionLog, ReadError};
use crate::log::segment::LogSegment;

impl PartitionLog {
    /// Moves the log start offset to `offset` (DeleteRecords); `-1` means
    /// the high watermark. Whole segments below it are deleted.
    ///
    /// # Errors
    /// [`ReadError::OffsetOutOfRange`] past the high watermark.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, ReadError> {
        let mut state = self.lock();
        if state.deleted {
            return Err(ReadError::Deleted);
        }
        let target = if offset == -1 {
            state.high_watermark
        } else {
            offset
        };
        if target < 0 || target > state.high_watermark {
            return Err(ReadError::OffsetOutOfRange);
        }
        if target > state.log_start_offset {
            state.log_start_offset = target;
            self.persist_start(target)
                .map_err(|e| ReadError::Storage(e.to_string()))?;
            self.delete_segments_below(&mut state, |_, next_base| next_base <= target)
                .map_err(|e| ReadError::Storage(e.to_string()))?;
            state.txns.truncate_before(target);
        }
        Ok(state.log_start_offset)
    }

    /// Deletes closed segments past `retention.ms` or beyond
    /// `retention.bytes`; never the active segment, and nothing unless
    /// `cleanup.policy` includes `delete` (a compact-only log keeps every
    /// segment: the cleaner alone shrinks it). Returns how many went.
    ///
    /// # Errors
    /// A file or the index cannot be updated.
    pub fn enforce_retention(&self, now_ms: i64) -> io::Result<usize> {
        let mut state = self.lock();
        if state.deleted || !state.config.delete {
            return Ok(0);
        }
        let retention_ms = state.config.retention_ms;
        let mut excess = if state.config.retention_bytes >= 0 {
            let total: u64 = state.segments.values().map(|s| s.size).sum();
            i64::try_from(total).unwrap_or(i64::MAX) - state.config.retention_bytes
        } else {
            i64::MIN
        };
        self.delete_segments_below(&mut state, |segment, _| {
            // A closed empty segment (all its records cleaned away) has
            // no timestamp; it must not hold back the segments after it.
            let expired = retention_ms >= 0
                && (segment.size == 0
                    || (segment.max_timestamp >= 0
                        && now_ms.saturating_sub(segment.max_timestamp) > retention_ms));
            let size = i64::try_from(segment.size).unwrap_or(i64::MAX);
            let too_big = excess != i64::MIN && excess - size >= 0;
            if too_big {
                excess -= size;
            }
            expired || too_big
        })
    }

    /// Deletes closed segments from the oldest on while `doomed(segment,
    /// next_base)` holds, moving the log start offset past them.
    fn delete_segments_below(
        &self,
        state: &mut LogState,
        mut doomed: impl FnMut(&LogSegment, i64) -> bool,
    ) -> io::Result<usize> {
        let mut deleted = 0;
        loop {
            let bases: Vec<i64> = state.segments.keys().take(2).copied().collect();
            let [base, next] = bases[..] else { break };
            let Some(segment) = state.segments.get(&base) else {
                break;
            };
            if !doomed(segment, next) {
                break;
            }
            // Index entries first, then the file: a crash in between leaves
            // a file that recovery re-indexes, never an entry without data.
            self.index
                .remove_range(base..next)
                .map_err(io::Error::other)?;
            if let Some(segment) = state.segments.remove(&base) {
                segment.delete()?;
            }
            deleted += 1;
            if state.log_start_offset < next {
                state.log_start_offset = next;
                state.txns.truncate_before(next);
                self.persist_start(next)?;
            }
        }
        if deleted > 0 {
            info!(topic = %self.topic, partition = self.partition, deleted,
                log_start_offset = state.log_start_offset, "deleted old segments");
        }
        Ok(deleted)
    }

    /// Stores the log start offset durably (DeleteRecords is acknowledged
    /// only after this, and a lower start must never come back).
    fn persist_start(&self, offset: i64) -> io::Result<()> {
        self.starts
            .insert(
                format!("{}/{}", self.topic, self.partition),
                crate::store::versioned(&offset.to_be_bytes()),
            )
            .map_err(io::Error::other)?;
        self.starts.flush().map_err(io::Error::other)?;
        Ok(())
    }
}
