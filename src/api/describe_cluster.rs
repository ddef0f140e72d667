//! DescribeCluster v0-v2: cluster id, controller and broker list.
//!
//! v1 adds `endpoint_type`: only brokers (1) are served here; asking a
//! broker for controllers (2) is UNSUPPORTED_ENDPOINT_TYPE, as in Kafka.
//! v2's `include_fenced_brokers` adds the brokers the controller fenced
//! (a cluster's brokers whose heartbeats stopped), with `is_fenced`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{str_bytes, CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED};
use crate::broker::Broker;

const BROKERS_ENDPOINT: i8 = 1;

/// Answers a DescribeCluster request.
pub fn handle(
    broker: &Broker,
    session: &crate::security::Session,
    version: i16,
    request: &DescribeClusterRequest,
) -> DescribeClusterResponse {
    let cluster = broker.cluster().seen_from(&session.listener);
    let response = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(cluster.cluster_id.clone()))
        .with_controller_id(BrokerId(cluster.controller_id()))
        .with_endpoint_type(BROKERS_ENDPOINT)
        .with_cluster_authorized_operations(if request.include_cluster_authorized_operations {
            super::authorized_operations(
                broker,
                session,
                crate::security::acl::ResourceType::Cluster,
                crate::security::acl::CLUSTER_NAME,
                CLUSTER_OPERATIONS,
            )
        } else {
            OPERATIONS_NOT_REQUESTED
        });
    if version >= 1 && request.endpoint_type != BROKERS_ENDPOINT {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes(format!(
                "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type {}",
                if request.endpoint_type == 2 { "CONTROLLER" } else { "UNKNOWN" }
            ))));
    }
    let fenced = if version >= 2 && request.include_fenced_brokers {
        &cluster.fenced[..]
    } else {
        &[]
    };
    let brokers = cluster
        .brokers
        .iter()
        .map(|b| (b, false))
        .chain(fenced.iter().map(|b| (b, true)))
        .map(|(b, is_fenced)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(b.port)
                .with_rack(b.rack.clone().map(str_bytes))
                .with_is_fenced(is_fenced)
        })
        .collect();
    response.with_brokers(brokers)
}
