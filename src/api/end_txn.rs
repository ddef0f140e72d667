//! EndTxn v0-v5: commits or aborts the producer's transaction. The
//! coordinator stores PrepareCommit/PrepareAbort, writes a marker into
//! every partition of the transaction (in `__consumer_offsets` too, which
//! makes its transactional offsets visible or drops them), stores
//! CompleteCommit/CompleteAbort, then answers. A retried end answers as
//! the first did; the other end of a completed transaction is
//! INVALID_TXN_STATE; an older epoch is PRODUCER_FENCED. Transaction
//! protocol version 1 only: the epoch is not bumped per transaction.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::broker::Broker;

/// Answers an EndTxn request.
pub fn handle(broker: &Broker, request: &EndTxnRequest) -> EndTxnResponse {
    let outcome = super::transaction_coordinator(broker).end_txn(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
        broker,
    );
    match outcome {
        Ok(()) => EndTxnResponse::default()
            .with_producer_id(request.producer_id)
            .with_producer_epoch(request.producer_epoch),
        Err(e) => EndTxnResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
