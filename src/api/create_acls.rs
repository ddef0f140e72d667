//! CreateAcls (v1-v3): adds ACLs (`kafka-acls.sh --add`). Needs ALTER on
//! the cluster; without an authorizer, SECURITY_DISABLED as Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};

use super::{security_disabled, str_bytes};
use crate::broker::Broker;
use crate::error::ApiError;
use crate::security::acl::{
    AclBinding, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME,
};
use crate::security::Session;

/// Checks each creation, then stores the valid ones at once.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: &CreateAclsRequest,
) -> CreateAclsResponse {
    let refuse_all = |e: ApiError| {
        let results = request.creations.iter().map(|_| error_result(&e)).collect();
        CreateAclsResponse::default().with_results(results)
    };
    if !broker.authorizer_enabled() {
        return refuse_all(security_disabled());
    }
    if !broker.authorize(
        session,
        Operation::Alter,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        return refuse_all(ApiError::code(ResponseError::ClusterAuthorizationFailed));
    }
    let checked: Vec<Result<AclBinding, ApiError>> =
        request.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        broker.create_acls(valid)
    };
    let results = checked
        .into_iter()
        .map(|c| match c.map(|_| ()).and(stored.clone()) {
            Ok(()) => AclCreationResult::default(),
            Err(e) => error_result(&e),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

fn error_result(e: &ApiError) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(e.code.code())
        .with_error_message(e.message.clone().map(str_bytes))
}

/// A creation as a binding, checked as Kafka's AclControlManager does.
fn binding(creation: &AclCreation) -> Result<AclBinding, ApiError> {
    let invalid = |message: &str| ApiError::new(ResponseError::InvalidRequest, message);
    let binding = AclBinding {
        resource_type: ResourceType::from_code(creation.resource_type)
            .ok_or_else(|| invalid("Invalid resourceType"))?,
        resource_name: creation.resource_name.to_string(),
        pattern_type: PatternType::from_code(creation.resource_pattern_type)
            .ok_or_else(|| invalid("Invalid patternType"))?,
        principal: creation.principal.to_string(),
        host: creation.host.to_string(),
        operation: Operation::from_code(creation.operation)
            .ok_or_else(|| invalid("Invalid operation"))?,
        permission: Permission::from_code(creation.permission_type)
            .ok_or_else(|| invalid("Invalid permissionType"))?,
    };
    binding.validate().map_err(|m| invalid(&m))?;
    Ok(binding)
}
