//! [`ProducerStateManager`]: per partition, each idempotent producer's
//! epoch and its last five batches' sequence ranges, so a retried batch is
//! recognised and answered with its original offset instead of being
//! stored twice (Kafka's `ProducerStateManager`).
//!
//! Rebuilt on start from the batch index (each entry carries the batch's
//! producer fields), so it survives restarts without a file of its own.

use std::collections::{HashMap, VecDeque};

/// How many recent batches per producer are remembered (Kafka: 5, the most
/// a producer may have in flight with idempotence on).
const REMEMBERED_BATCHES: usize = 5;

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SequencedBatch {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
    last_offset: i64,
}

#[derive(Debug)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<SequencedBatch>,
    /// The largest timestamp of its last batch (what expiry goes by).
    last_timestamp: i64,
    /// The coordinator epoch of its last transaction marker, or -1.
    coordinator_epoch: i32,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        Self {
            epoch: 0,
            batches: VecDeque::new(),
            last_timestamp: 0,
            coordinator_epoch: -1,
        }
    }
}

/// What to do with an incoming idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// New and in order: append it.
    Append,
    /// Already stored at this base offset: answer with it, store nothing.
    Duplicate(i64),
}

/// Why an idempotent batch is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceError {
    /// The producer's epoch is older than the one already seen (fenced).
    StaleEpoch {
        /// Epoch in the batch.
        got: i16,
        /// Epoch on record.
        current: i16,
    },
    /// The first sequence is not the one expected (a gap or reorder).
    OutOfOrder {
        /// First sequence in the batch.
        got: i32,
        /// Sequence expected next.
        expected: i32,
    },
}

impl std::fmt::Display for SequenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::StaleEpoch { got, current } => {
                write!(
                    f,
                    "producer epoch {got} is older than the current epoch {current}"
                )
            }
            Self::OutOfOrder { got, expected } => write!(
                f,
                "out of order sequence number: found {got}, expected {expected}"
            ),
        }
    }
}

/// What DescribeProducers reports of one producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSnapshot {
    /// The producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub epoch: i16,
    /// The sequence of its last record, or -1.
    pub last_sequence: i32,
    /// The largest timestamp of its last batch.
    pub last_timestamp: i64,
    /// The coordinator epoch of its last transaction marker, or -1.
    pub coordinator_epoch: i32,
}

/// All idempotent producers of one partition.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

/// The sequence after `sequence`, wrapping at i32::MAX as Kafka does.
fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl ProducerStateManager {
    /// Decides whether a batch from `producer_id` may be appended.
    ///
    /// # Errors
    /// [`SequenceError`] for a fenced epoch or a sequence gap.
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_sequence: i32,
        last_sequence: i32,
    ) -> Result<SequenceCheck, SequenceError> {
        // An unknown producer may start at any sequence, as in Kafka (its
        // batches may have gone with retention or DeleteRecords); a bumped
        // epoch starts at sequence 0.
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                got: epoch,
                current: entry.epoch,
            });
        }
        if epoch > entry.epoch {
            return if first_sequence == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::OutOfOrder {
                    got: first_sequence,
                    expected: 0,
                })
            };
        }
        if let Some(seen) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(seen.base_offset));
        }
        let expected = entry
            .batches
            .back()
            .map_or(0, |b| next_sequence(b.last_sequence));
        if first_sequence != expected {
            return Err(SequenceError::OutOfOrder {
                got: first_sequence,
                expected,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Decides whether a transaction marker of `producer_id` at `epoch` may
    /// be appended: not if the producer already has a newer epoch.
    ///
    /// # Errors
    /// [`SequenceError::StaleEpoch`].
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), SequenceError> {
        match self.producers.get(&producer_id) {
            Some(entry) if epoch < entry.epoch => Err(SequenceError::StaleEpoch {
                got: epoch,
                current: entry.epoch,
            }),
            _ => Ok(()),
        }
    }

    /// Records an appended transaction marker: the producer's epoch is the
    /// marker's from now on (a bumped epoch restarts its sequences).
    pub fn record_marker(
        &mut self,
        producer_id: i64,
        epoch: i16,
        coordinator_epoch: i32,
        timestamp: i64,
    ) {
        let entry = self.producers.entry(producer_id).or_default();
        entry.last_timestamp = timestamp;
        entry.coordinator_epoch = coordinator_epoch;
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
    }

    /// The current epoch of `producer_id`, if it has state here.
    pub fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// Every producer, by id.
    pub fn snapshot(&self) -> Vec<ProducerSnapshot> {
        let mut all: Vec<ProducerSnapshot> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerSnapshot {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
            })
            .collect();
        all.sort_by_key(|p| p.producer_id);
        all
    }

    /// Records an appended batch whose largest timestamp is `timestamp`
    /// (also used to replay the index on start).
    pub fn record(
        &mut self,
        producer_id: i64,
        epoch: i16,
        first_sequence: i32,
        last_sequence: i32,
        base_offset: i64,
        timestamp: i64,
    ) {
        let entry = self.producers.entry(producer_id).or_default();
        entry.last_timestamp = timestamp;
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        let records = (i64::from(last_sequence) - i64::from(first_sequence))
            .rem_euclid(i64::from(i32::MAX) + 1);
        entry.batches.push_back(SequencedBatch {
            first_sequence,
            last_sequence,
            base_offset,
            last_offset: base_offset.saturating_add(records),
        });
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Each known producer's id and the last offset of its last batch.
    pub fn last_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .filter_map(|(id, entry)| Some((*id, entry.batches.back()?.last_offset)))
            .collect()
    }

    /// Forgets producers whose last batch is `expiration_ms` or more older
    /// than `now_ms` (Kafka's `producer.id.expiration.ms`); how many went.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64, keep: impl Fn(i64) -> bool) -> usize {
        let before = self.producers.len();
        self.producers.retain(|id, entry| {
            keep(*id) || now_ms.saturating_sub(entry.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut state = ProducerStateManager::default();
        assert_eq!(state.check(7, 0, 0, 4), Ok(SequenceCheck::Append));
        state.record(7, 0, 0, 4, 100, 0);
        assert_eq!(state.check(7, 0, 0, 4), Ok(SequenceCheck::Duplicate(100)));
        assert_eq!(state.check(7, 0, 5, 9), Ok(SequenceCheck::Append));
        assert!(matches!(
            state.check(7, 0, 7, 9),
            Err(SequenceError::OutOfOrder { expected: 5, .. })
        ));
        state.record(7, 1, 0, 0, 200, 0);
        assert!(matches!(
            state.check(7, 0, 5, 9),
            Err(SequenceError::StaleEpoch { .. })
        ));
        // An unknown producer may start anywhere; a new epoch starts at 0.
        assert_eq!(state.check(8, 0, 3, 3), Ok(SequenceCheck::Append));
        assert!(matches!(
            state.check(7, 2, 3, 3),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        for i in 1..=6 {
            state.record(7, 1, i, i, 200 + i64::from(i), 0);
        }
        // Only the last five batches are remembered.
        assert!(matches!(
            state.check(7, 1, 1, 1),
            Err(SequenceError::OutOfOrder { .. })
        ));
        assert_eq!(state.check(7, 1, 2, 2), Ok(SequenceCheck::Duplicate(202)));
    }

    #[test]
    fn producers_expire_after_their_last_batch() {
        let mut state = ProducerStateManager::default();
        state.record(1, 0, 0, 0, 10, 1_000);
        state.record(2, 0, 0, 0, 11, 5_000);
        assert_eq!(state.expire(10_999, 10_000, |_| false), 0);
        assert_eq!(state.expire(11_000, 10_000, |_| false), 1);
        // Producer 1 is unknown now: any sequence is taken; 2 is still known.
        assert_eq!(state.check(1, 0, 7, 7), Ok(SequenceCheck::Append));
        assert_eq!(state.check(2, 0, 0, 0), Ok(SequenceCheck::Duplicate(11)));
    }
}
