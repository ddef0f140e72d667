//! FindCoordinator v0-v6: this node coordinates every group (key type 0)
//! and every transactional id (key type 1). v4+ batches keys.
//! The first group lookup creates `__consumer_offsets`, the first
//! transactional one `__transaction_state`, as Kafka does
//! (COORDINATOR_NOT_AVAILABLE if it cannot be created). An unknown key
//! type is INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::broker::Broker;

/// Answers a FindCoordinator request of `version`.
pub fn handle(
    broker: &Broker,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let node = broker
        .cluster
        .brokers
        .iter()
        .find(|b| b.node_id == broker.cluster.node_id);
    let (node_id, host, port) = node.map_or((-1, String::new(), -1), |b| {
        (b.node_id, b.host.clone(), b.port)
    });
    let error = match request.key_type {
        // Groups: Kafka creates __consumer_offsets on the first lookup.
        0 => super::blocking(|| broker.ensure_offsets_topic())
            .err()
            .map(|_| ResponseError::CoordinatorNotAvailable),
        // Transactions: likewise __transaction_state.
        1 => super::blocking(|| broker.ensure_transaction_topic())
            .err()
            .map(|_| ResponseError::CoordinatorNotAvailable),
        _ => Some(ResponseError::InvalidRequest),
    };
    let coordinator = |key: StrBytes| {
        Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(if error.is_some() { -1 } else { node_id }))
            .with_host(str_bytes(if error.is_some() {
                String::new()
            } else {
                host.clone()
            }))
            .with_port(if error.is_some() { -1 } else { port })
            .with_error_code(error.map_or(0, |e| e.code()))
    };
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(coordinator)
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let single = coordinator(request.key);
    FindCoordinatorResponse::default()
        .with_error_code(single.error_code)
        .with_node_id(single.node_id)
        .with_host(single.host)
        .with_port(single.port)
}
