//! InitProducerId v0-v5 for idempotent producers: a fresh producer id
//! (unique across restarts) with epoch 0 on every call, as Kafka does when
//! there is no transactional id.
//!
//! Transactional ids are not served yet (no transaction coordinator):
//! they get UNSUPPORTED_VERSION, a clean, non-retriable refusal.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;

/// Answers an InitProducerId request.
pub fn handle(broker: &Broker, request: &InitProducerIdRequest) -> InitProducerIdResponse {
    let refused = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.0.is_empty())
    {
        return refused(ResponseError::UnsupportedVersion);
    }
    match broker.next_producer_id() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(cause = %e, "cannot allocate a producer id");
            refused(ResponseError::UnknownServerError)
        }
    }
}
