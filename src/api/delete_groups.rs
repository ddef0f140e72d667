//! DeleteGroups v0-v2: deletes empty groups and their committed offsets;
//! NON_EMPTY_GROUP while members remain, GROUP_ID_NOT_FOUND if unknown.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Answers a DeleteGroups request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .map(|id| {
            let error = if broker.authorize(session, Operation::Delete, ResourceType::Group, &id.0)
            {
                super::group_coordinator(broker).delete(&id.0).err()
            } else {
                Some(kafka_protocol::error::ResponseError::GroupAuthorizationFailed)
            };
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(error.map_or(0, |e| e.code()))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
