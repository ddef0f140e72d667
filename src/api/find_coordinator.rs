//! FindCoordinator v0-v6: the coordinator of a group (key type 0) or a
//! transactional id (key type 1) is the leader of its partition of
//! `__consumer_offsets` / `__transaction_state` (on one node, this node).
//! v4+ batches keys.
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
use crate::coordinator::partition_for;
use crate::group::OFFSETS_TOPIC;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;
use crate::txn::TXN_TOPIC;

/// Answers a FindCoordinator request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
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
    let state_topic = if request.key_type == 1 {
        TXN_TOPIC
    } else {
        OFFSETS_TOPIC
    };
    let partitions = broker
        .topics
        .get(state_topic)
        .map_or(0, |m| m.partition_count());
    let cluster = broker.cluster().seen_from(&session.listener);
    // DESCRIBE on the group or transactional id, as Kafka.
    let (resource, denied) = if request.key_type == 1 {
        (
            ResourceType::TransactionalId,
            ResponseError::TransactionalIdAuthorizationFailed,
        )
    } else {
        (ResourceType::Group, ResponseError::GroupAuthorizationFailed)
    };
    let coordinator = |key: StrBytes| {
        let allowed = broker.authorize(session, Operation::Describe, resource, key.as_str());
        let leader = broker.leader_of(state_topic, partition_for(key.as_str(), partitions));
        let node = leader.and_then(|id| cluster.broker(id));
        let error = (!allowed).then_some(denied).or(error).or(node
            .is_none()
            .then_some(ResponseError::CoordinatorNotAvailable));
        let (node_id, host, port) = match (error, node) {
            (None, Some(b)) => (b.node_id, b.host.clone(), b.port),
            _ => (-1, String::new(), -1),
        };
        Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(node_id))
            .with_host(str_bytes(host))
            .with_port(port)
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
