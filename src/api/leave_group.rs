//! LeaveGroup v0-v5: v0-v2 name one member; v3+ a batch of members by
//! member id or `group.instance.id`, each with its own error.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::broker::Broker;

/// Answers a LeaveGroup request of `version`.
pub fn handle(broker: &Broker, version: i16, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let group = &request.group_id.0;
    let groups = super::group_coordinator(broker);
    if version < 3 {
        let error = match groups.leave(group, &[(request.member_id.to_string(), None)]) {
            Ok(results) => results.first().copied().flatten(),
            Err(e) => Some(e),
        };
        return LeaveGroupResponse::default().with_error_code(error.map_or(0, |e| e.code()));
    }
    let wanted: Vec<(String, Option<String>)> = request
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|i| i.to_string()),
            )
        })
        .collect();
    let results = match groups.leave(group, &wanted) {
        Ok(results) => results,
        Err(e) => return LeaveGroupResponse::default().with_error_code(e.code()),
    };
    let members = request
        .members
        .into_iter()
        .zip(results)
        .map(|(m, error)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(error.map_or(0, |e| e.code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
