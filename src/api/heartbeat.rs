//! Heartbeat v0-v4: keeps a member's session alive; during a rebalance it
//! answers REBALANCE_IN_PROGRESS so the member rejoins.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;

/// Answers a Heartbeat request.
pub fn handle(broker: &Broker, request: &HeartbeatRequest) -> HeartbeatResponse {
    let error = super::group_coordinator(broker).heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}
