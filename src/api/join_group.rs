//! JoinGroup v0-v9 (classic protocol), answered when the rebalance's join
//! phase completes.
//!
//! - v4+: a first join without a member id gets MEMBER_ID_REQUIRED and a
//!   member id to rejoin with (KIP-394).
//! - v5+: `group.instance.id` makes a static member (KIP-345): a restart
//!   within the session timeout keeps its assignment without a rebalance;
//!   a second live instance is FENCED_INSTANCE_ID.
//! - v0 has no rebalance timeout: the session timeout is used, as in Kafka.
//! - v9 `skip_assignment` tells a rejoining static leader not to reassign.

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use tokio::time::Duration;

use super::{nullable_for, str_bytes};
use crate::broker::Broker;
use crate::group::JoinParams;

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Answers a JoinGroup request of `version` from `client_host`.
pub async fn handle(
    broker: &Broker,
    version: i16,
    client_id: &str,
    client_host: &str,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let rebalance_timeout = if version >= 1 {
        request.rebalance_timeout_ms
    } else {
        request.session_timeout_ms
    };
    let params = JoinParams {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
        session_timeout: millis(request.session_timeout_ms),
        rebalance_timeout: millis(rebalance_timeout),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let outcome = super::group_coordinator(broker)
        .join(&request.group_id.0, params)
        .await;
    let members = outcome
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.instance_id.map(str_bytes))
                .with_metadata(m.metadata)
        })
        .collect();
    JoinGroupResponse::default()
        .with_error_code(outcome.error.map_or(0, |e| e.code()))
        .with_generation_id(outcome.generation)
        .with_protocol_type(outcome.protocol_type.map(str_bytes))
        .with_protocol_name(nullable_for(version >= 7, outcome.protocol_name))
        .with_leader(str_bytes(outcome.leader))
        .with_skip_assignment(version >= 9 && outcome.skip_assignment)
        .with_member_id(str_bytes(outcome.member_id))
        .with_members(members)
}
