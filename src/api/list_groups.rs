//! ListGroups v0-v5: every group with its protocol type; v4+ filters by
//! state (case-insensitive) and reports it; v5+ filters by type and reports
//! "classic" for every group.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

const GROUP_TYPE: &str = "classic";

/// Answers a ListGroups request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: &ListGroupsRequest,
) -> ListGroupsResponse {
    // DESCRIBE on the cluster lists every group; otherwise those the
    // session may describe.
    let everything = broker.authorize(
        session,
        Operation::Describe,
        ResourceType::Cluster,
        crate::security::acl::CLUSTER_NAME,
    );
    let listed = match broker.groups.list() {
        Ok(listed) => listed,
        Err(e) => return ListGroupsResponse::default().with_error_code(e.code()),
    };
    let groups = listed
        .into_iter()
        .filter(|(_, _, state)| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state.as_str()))
        })
        .filter(|_| {
            request.types_filter.is_empty()
                || request
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(GROUP_TYPE))
        })
        .filter(|(id, _, _)| {
            everything || broker.authorize(session, Operation::Describe, ResourceType::Group, id)
        })
        .map(|(id, protocol_type, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(protocol_type))
                .with_group_state(str_bytes(state.as_str()))
                .with_group_type(str_bytes(GROUP_TYPE))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
