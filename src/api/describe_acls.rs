//! DescribeAcls (v1-v3): the ACLs a filter matches, grouped by resource
//! pattern (`kafka-acls.sh --list`). Needs DESCRIBE on the cluster.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};

use super::{security_disabled, str_bytes};
use crate::broker::Broker;
use crate::error::ApiError;
use crate::security::acl::{AclFilter, Operation, ResourceType, CLUSTER_NAME};
use crate::security::Session;

/// Answers from every stored ACL.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: &DescribeAclsRequest,
) -> DescribeAclsResponse {
    let fail = |e: ApiError| {
        DescribeAclsResponse::default()
            .with_error_code(e.code.code())
            .with_error_message(e.message.map(str_bytes))
    };
    if !broker.authorizer_enabled() {
        return fail(security_disabled());
    }
    if !broker.authorize(
        session,
        Operation::Describe,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) {
        return fail(ApiError::code(ResponseError::ClusterAuthorizationFailed));
    }
    let filter = match AclFilter::from_wire(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(message) => return fail(ApiError::new(ResponseError::InvalidRequest, message)),
    };
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for binding in broker.acls().iter().filter(|b| filter.matches(b)) {
        resources
            .entry((
                binding.resource_type as i8,
                binding.resource_name.clone(),
                binding.pattern_type as i8,
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(binding.principal.clone()))
                    .with_host(str_bytes(binding.host.clone()))
                    .with_operation(binding.operation as i8)
                    .with_permission_type(binding.permission as i8),
            );
    }
    DescribeAclsResponse::default().with_resources(
        resources
            .into_iter()
            .map(|((kind, name, pattern), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(str_bytes(name))
                    .with_pattern_type(pattern)
                    .with_acls(acls)
            })
            .collect(),
    )
}
