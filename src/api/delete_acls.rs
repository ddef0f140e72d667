//! DeleteAcls (v1-v3): removes the ACLs each filter matches and lists
//! them (`kafka-acls.sh --remove`). Needs ALTER on the cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};

use super::{security_disabled, str_bytes};
use crate::broker::Broker;
use crate::error::ApiError;
use crate::security::acl::{AclBinding, AclFilter, Operation, ResourceType, CLUSTER_NAME};
use crate::security::Session;

/// Matches every filter against the stored ACLs, then removes all the
/// matches at once.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: &DeleteAclsRequest,
) -> DeleteAclsResponse {
    let refuse_all = |e: ApiError| {
        DeleteAclsResponse::default().with_filter_results(
            request
                .filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(e.code.code())
                        .with_error_message(e.message.clone().map(str_bytes))
                })
                .collect(),
        )
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
    let all = broker.acls();
    let matched: Vec<Result<Vec<AclBinding>, ApiError>> = request
        .filters
        .iter()
        .map(|f| {
            AclFilter::from_wire(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
            .map(|filter| all.iter().filter(|b| filter.matches(b)).cloned().collect())
            .map_err(|m| ApiError::new(ResponseError::InvalidRequest, m))
        })
        .collect();
    let mut doomed: Vec<AclBinding> = matched.iter().flatten().flatten().cloned().collect();
    doomed.sort();
    doomed.dedup();
    let removed = if doomed.is_empty() {
        Ok(())
    } else {
        broker.delete_acls(doomed)
    };
    let results = matched
        .into_iter()
        .map(|m| match m.and_then(|b| removed.clone().map(|()| b)) {
            Ok(bindings) => DeleteAclsFilterResult::default().with_matching_acls(
                bindings
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type as i8)
                            .with_resource_name(str_bytes(b.resource_name))
                            .with_pattern_type(b.pattern_type as i8)
                            .with_principal(str_bytes(b.principal))
                            .with_host(str_bytes(b.host))
                            .with_operation(b.operation as i8)
                            .with_permission_type(b.permission as i8)
                    })
                    .collect(),
            ),
            Err(e) => DeleteAclsFilterResult::default()
                .with_error_code(e.code.code())
                .with_error_message(e.message.map(str_bytes)),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
