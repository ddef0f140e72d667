//! DescribeGroups v0-v6: state, protocol and members (with metadata and
//! assignment) of each group. An unknown group is "Dead"; from v6 it is
//! GROUP_ID_NOT_FOUND, as in Kafka 4.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{str_bytes, OPERATIONS_NOT_REQUESTED};
use crate::broker::Broker;
use crate::group::GroupState;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Acl operation bits a group grants (READ, DELETE, DESCRIBE): with no authorizer, all.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// Answers a DescribeGroups request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let operations = |group: &str| {
        if request.include_authorized_operations {
            super::authorized_operations(
                broker,
                session,
                ResourceType::Group,
                group,
                GROUP_OPERATIONS,
            )
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    };
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            let group = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(operations(&id.0));
            if !broker.authorize(session, Operation::Describe, ResourceType::Group, &id.0) {
                return group.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if id.0.is_empty() {
                return group
                    .with_group_state(str_bytes(GroupState::Dead.as_str()))
                    .with_error_code(ResponseError::InvalidGroupId.code());
            }
            let described = match broker.groups.describe(&id.0) {
                Ok(described) => described,
                Err(e) => return group.with_error_code(e.code()),
            };
            let group = group.with_group_state(str_bytes(described.state.as_str()));
            if version >= 6 && described.state == GroupState::Dead {
                return group
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(format!("Group {} not found.", id.0))));
            }
            let members = described
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(m.instance_id.map(str_bytes))
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            group
                .with_protocol_type(str_bytes(described.protocol_type))
                .with_protocol_data(str_bytes(described.protocol))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
