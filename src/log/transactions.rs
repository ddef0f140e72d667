//! [`TxnIndex`]: one partition's transactions (Kafka's transaction part of
//! `ProducerStateManager` and its `TransactionIndex`): the first offset of
//! each producer's open transaction, which bounds the last stable offset
//! (LSO), and the aborted transactions that read_committed fetches return.
//!
//! Kept in memory and rebuilt on open from the batch index and the marker
//! batches, so it needs no file of its own; aborted transactions below the
//! log start are forgotten.

use std::collections::{BTreeMap, HashMap};

/// A transaction that ended with an abort marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// Its producer.
    pub producer_id: i64,
    /// The offset of its first batch in this partition.
    pub first_offset: i64,
    /// The offset of its abort marker.
    pub last_offset: i64,
}

/// One partition's open and aborted transactions.
#[derive(Debug, Default)]
pub struct TxnIndex {
    /// Producer id → first offset of its open transaction.
    ongoing: HashMap<i64, i64>,
    /// First offsets of open transactions (with how many start there).
    open_starts: BTreeMap<i64, usize>,
    /// Aborted transactions in marker order (so `last_offset` ascends).
    aborted: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// A transactional data batch of `producer_id` at `base_offset`.
    pub fn on_data(&mut self, producer_id: i64, base_offset: i64) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.ongoing.entry(producer_id) {
            e.insert(base_offset);
            *self.open_starts.entry(base_offset).or_default() += 1;
        }
    }

    /// A marker of `producer_id` at `offset`; an abort of a transaction
    /// with data here is remembered for read_committed fetches.
    pub fn on_marker(&mut self, producer_id: i64, offset: i64, commit: bool) {
        let Some(first_offset) = self.ongoing.remove(&producer_id) else {
            return;
        };
        if let Some(n) = self.open_starts.get_mut(&first_offset) {
            *n -= 1;
            if *n == 0 {
                self.open_starts.remove(&first_offset);
            }
        }
        if !commit {
            self.aborted.push(AbortedTxn {
                producer_id,
                first_offset,
                last_offset: offset,
            });
        }
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.open_starts.keys().next().copied()
    }

    /// The first offset of `producer_id`'s open transaction.
    pub fn open_transaction(&self, producer_id: i64) -> Option<i64> {
        self.ongoing.get(&producer_id).copied()
    }

    /// The aborted transactions a read of `[from, to)` must report: those
    /// whose range overlaps it, by first offset (Kafka's
    /// `collectAbortedTransactions`).
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|t| t.last_offset < from);
        let mut found: Vec<AbortedTxn> = self.aborted[start..]
            .iter()
            .filter(|t| t.first_offset < to)
            .copied()
            .collect();
        found.sort_by_key(|t| (t.first_offset, t.producer_id));
        found
    }

    /// Keeps only the aborted transactions `keep` accepts.
    pub fn retain_aborted(&mut self, keep: impl Fn(&AbortedTxn) -> bool) {
        self.aborted.retain(|t| keep(t));
    }

    /// Forgets aborted transactions that ended before `log_start` (open
    /// ones stay until their marker: the last stable offset is clamped to
    /// the log start instead).
    pub fn truncate_before(&mut self, log_start: i64) {
        let keep = self.aborted.partition_point(|t| t.last_offset < log_start);
        self.aborted.drain(..keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lso_and_aborted_ranges() {
        let mut txns = TxnIndex::default();
        txns.on_data(1, 0);
        txns.on_data(2, 3);
        txns.on_data(1, 5); // same transaction: its start stays 0
        assert_eq!(txns.first_unstable_offset(), Some(0));
        txns.on_marker(1, 7, false);
        assert_eq!(txns.first_unstable_offset(), Some(3));
        txns.on_marker(2, 8, true);
        assert_eq!(txns.first_unstable_offset(), None);
        txns.on_marker(3, 9, false); // no data here: nothing to report
        txns.on_data(4, 10);
        txns.on_marker(4, 12, false);
        let aborted = |txns: &TxnIndex, from, to| -> Vec<i64> {
            txns.aborted_between(from, to)
                .iter()
                .map(|t| t.producer_id)
                .collect()
        };
        assert_eq!(aborted(&txns, 0, 100), [1, 4]);
        assert_eq!(aborted(&txns, 8, 10), Vec::<i64>::new());
        assert_eq!(aborted(&txns, 6, 11), [1, 4]);
        assert_eq!(aborted(&txns, 0, 1), [1]);
        txns.truncate_before(8);
        assert_eq!(aborted(&txns, 0, 100), [4]);
    }
}
