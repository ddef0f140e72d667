//! InitProducerId v0-v5.
//!
//! - Without a transactional id: a fresh producer id with epoch 0 (an
//!   idempotent producer), ids never handed out twice.
//! - With one: the transaction coordinator's answer: a new producer id the
//!   first time, then the same id with the next epoch (fencing older
//!   producers of that id); an ongoing transaction is aborted first and
//!   the client retries (CONCURRENT_TRANSACTIONS); v3+ may name the
//!   current producer id and epoch (KIP-360: a producer recovering from an
//!   error keeps its id); a timeout above `transaction.max.timeout.ms` is
//!   INVALID_TRANSACTION_TIMEOUT.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::txn::TxnHost;

/// Answers an InitProducerId request.
pub fn handle(broker: &Broker, request: &InitProducerIdRequest) -> InitProducerIdResponse {
    let refused = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let outcome = match request.transactional_id.as_ref() {
        None => TxnHost::next_producer_id(broker).map(|id| (id, 0)),
        Some(id) => {
            let expected = (request.producer_id.0 >= 0)
                .then_some((request.producer_id.0, request.producer_epoch));
            super::transaction_coordinator(broker).init_producer_id(
                &id.0,
                request.transaction_timeout_ms,
                expected,
                broker,
            )
        }
    };
    match outcome {
        Ok((id, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch),
        Err(e) => refused(e),
    }
}
