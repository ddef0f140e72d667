//! EndTxn v0-v5: commits or aborts the producer's transaction. The
//! coordinator stores PrepareCommit/PrepareAbort, writes a marker into
//! every partition of the transaction (in `__consumer_offsets` too, which
//! makes its transactional offsets visible or drops them), stores
//! CompleteCommit/CompleteAbort, then answers. A retried end answers as
//! the first did; the other end of a completed transaction is
//! INVALID_TXN_STATE; an older epoch is PRODUCER_FENCED.
//!
//! v5+ is transaction protocol version 2 (KIP-890): every end bumps the
//! producer's epoch (a new producer id once the epoch is exhausted), the
//! markers carry the new epoch, and the answer's producer id and epoch are
//! the ones for the next transaction. Before v5 they echo the request's.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::broker::Broker;

/// Answers an EndTxn request of `version`.
pub fn handle(broker: &Broker, version: i16, request: &EndTxnRequest) -> EndTxnResponse {
    let outcome = super::transaction_coordinator(broker).end_txn(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
        version >= 5,
        broker,
    );
    match outcome {
        Ok((producer_id, epoch)) => EndTxnResponse::default()
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => EndTxnResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
