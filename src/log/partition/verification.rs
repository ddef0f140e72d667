//! Transactional writes verified with a transaction coordinator on
//! another node (Kafka's `VerificationGuard`, KIP-890 part 1).
//!
//! A leader that receives the first transactional batch of a producer
//! since its last marker asks the coordinator whether the partition is in
//! the producer's ongoing transaction (or, transaction protocol version 2,
//! has it add the partition). The answer comes over the network, so the
//! transaction may end meanwhile, and its marker land here first; the
//! batch must then not be appended, or it would belong to no transaction
//! and hold the last stable offset forever. So the leader takes a guard
//! before asking ([`PartitionLog::begin_verification`]), every marker of
//! the producer drops it, and the batch is appended only while its guard
//! is still in place ([`PartitionLog::append_in_transaction`]).
//!
//! With the coordinator on this node none of this is needed: the write
//! runs under the transaction's own lock (`txn::TransactionCoordinator::append_verified`).

use std::collections::HashMap;
use std::sync::MutexGuard;

use super::PartitionLog;

/// Open guards: producer id → the token of its pending verification.
#[derive(Debug, Default)]
pub(super) struct Verifications {
    guards: HashMap<i64, u64>,
    next_token: u64,
}

impl Verifications {
    /// Drops `producer_id`'s guard (its transaction ended here).
    pub(super) fn forget(&mut self, producer_id: i64) {
        self.guards.remove(&producer_id);
    }
}

/// A verification begun for one producer on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationGuard {
    producer_id: i64,
    token: u64,
}

impl PartitionLog {
    pub(super) fn lock_verifications(&self) -> MutexGuard<'_, Verifications> {
        // Holds no invariant a panic could break halfway.
        self.verifications.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `producer_id` at `epoch` has a transaction open here (a
    /// transactional batch since its last marker): its next batches need
    /// no verification, as Kafka's `hasOngoingTransaction`.
    pub fn in_open_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        let state = self.lock();
        state.txns.open_transaction(producer_id).is_some()
            && state.producers.epoch_of(producer_id) == Some(epoch)
    }

    /// Starts a verification of `producer_id`'s next write, replacing any
    /// earlier one of the same producer.
    pub fn begin_verification(&self, producer_id: i64) -> VerificationGuard {
        let mut verifications = self.lock_verifications();
        verifications.next_token = verifications.next_token.wrapping_add(1);
        let token = verifications.next_token;
        verifications.guards.insert(producer_id, token);
        VerificationGuard { producer_id, token }
    }

    /// Drops `guard` after a failed verification.
    pub fn abandon_verification(&self, guard: VerificationGuard) {
        let mut verifications = self.lock_verifications();
        if verifications.guards.get(&guard.producer_id) == Some(&guard.token) {
            verifications.forget(guard.producer_id);
        }
    }

    /// Runs `append` (which appends the producer's batch to this log) if
    /// `guard` is still in place, or, without a guard, if the producer's
    /// transaction at `epoch` is open here; no marker can come in between.
    ///
    /// # Errors
    /// The transaction ended meanwhile: `append` is handed back unrun.
    pub fn append_in_transaction<T, F: FnOnce() -> T>(
        &self,
        producer_id: i64,
        epoch: i16,
        guard: Option<VerificationGuard>,
        append: F,
    ) -> Result<T, F> {
        let mut verifications = self.lock_verifications();
        let allowed = match guard {
            Some(guard) => {
                guard.producer_id == producer_id
                    && verifications.guards.get(&producer_id) == Some(&guard.token)
            }
            None => self.in_open_transaction(producer_id, epoch),
        };
        if !allowed {
            return Err(append);
        }
        verifications.forget(producer_id);
        let appended = append();
        drop(verifications);
        Ok(appended)
    }
}
