//! Metadata v0-v13: brokers, cluster id, controller, and topics with their
//! partitions, leaders, replicas and ISR.
//!
//! - A null topic list (v1+), or an empty one on v0, means every topic.
//! - A missing topic is auto-created with the broker defaults when both
//!   `auto.create.topics.enable` and the request's `allow_auto_topic_creation`
//!   (v4+; always on before) say so; it is returned at once, ready to use.
//! - Names Kafka rejects get INVALID_TOPIC_EXCEPTION; v10+ may ask by topic
//!   id, and an unknown id gets UNKNOWN_TOPIC_ID.
//! - Internal topics (`__consumer_offsets`) carry `is_internal`.
//! - Authorized operations (v8+) are all operations: there is no authorizer.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use super::{
    str_bytes, topic_name, CLUSTER_OPERATIONS, OPERATIONS_NOT_REQUESTED, TOPIC_OPERATIONS,
};
use crate::broker::Broker;
use crate::cluster::{is_internal_topic, validate_topic_name, ClusterInfo, TopicMeta};
use crate::error::ApiError;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::Session;

/// Answers a Metadata request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    let want_topic_ops = version >= 8 && request.include_topic_authorized_operations;
    let topic_ops = |name: &str| {
        if want_topic_ops {
            super::authorized_operations(
                broker,
                session,
                ResourceType::Topic,
                name,
                TOPIC_OPERATIONS,
            )
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    };
    let cluster = broker.cluster().seen_from(&session.listener);
    let auto_create = broker.config().get_bool("auto.create.topics.enable")
        && (version < 4 || request.allow_auto_topic_creation);
    let may_describe =
        |name: &str| broker.authorize(session, Operation::Describe, ResourceType::Topic, name);
    let topics = match request.topics {
        Some(list) if !(list.is_empty() && version == 0) => list
            .iter()
            .map(
                |wanted| match resolve(broker, session, wanted, auto_create) {
                    Ok(meta) => describe(broker, &cluster, &meta, topic_ops(&meta.name)),
                    Err((name, e)) => MetadataResponseTopic::default()
                        .with_name(name.as_deref().map(topic_name))
                        .with_topic_id(wanted.topic_id)
                        .with_error_code(e.code_i16())
                        .with_topic_authorized_operations(
                            name.as_deref().map_or(OPERATIONS_NOT_REQUESTED, topic_ops),
                        ),
                },
            )
            .collect(),
        // Every topic: those the client may not describe are left out.
        _ => broker
            .topics
            .all()
            .iter()
            .filter(|m| may_describe(&m.name))
            .map(|m| describe(broker, &cluster, m, topic_ops(&m.name)))
            .collect(),
    };
    let brokers = cluster
        .brokers
        .iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host.clone()))
                .with_port(b.port)
                .with_rack(b.rack.clone().map(str_bytes))
        })
        .collect();
    let cluster_ops =
        if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
            super::authorized_operations(
                broker,
                session,
                ResourceType::Cluster,
                CLUSTER_NAME,
                CLUSTER_OPERATIONS,
            )
        } else {
            OPERATIONS_NOT_REQUESTED
        };
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes(cluster.cluster_id.clone())))
        .with_controller_id(BrokerId(cluster.controller_id()))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

/// Finds (or auto-creates) one requested topic; on failure returns the name
/// to echo back with the error.
fn resolve(
    broker: &Broker,
    session: &Session,
    wanted: &MetadataRequestTopic,
    auto_create: bool,
) -> Result<Arc<TopicMeta>, (Option<String>, ApiError)> {
    let denied = || ApiError::code(ResponseError::TopicAuthorizationFailed);
    let may_describe =
        |name: &str| broker.authorize(session, Operation::Describe, ResourceType::Topic, name);
    // A non-zero id wins over the name, which clients may send as "" (v10+).
    let by_name = wanted.name.as_ref().map(|n| n.0.to_string());
    let Some(name) = by_name.filter(|_| wanted.topic_id.is_nil()) else {
        let meta = broker
            .topics
            .get_by_id(&wanted.topic_id)
            .ok_or((None, ApiError::code(ResponseError::UnknownTopicId)))?;
        return if may_describe(&meta.name) {
            Ok(meta)
        } else {
            Err((None, denied()))
        };
    };
    let fail = |e: ApiError| (Some(name.clone()), e);
    if !may_describe(&name) {
        return Err(fail(denied()));
    }
    validate_topic_name(&name).map_err(fail)?;
    if let Some(meta) = broker.topics.get(&name) {
        return Ok(meta);
    }
    if !auto_create || !super::may_create_topic(broker, session, &name) {
        return Err(fail(ApiError::code(ResponseError::UnknownTopicOrPartition)));
    }
    broker.auto_create_topic(&name).map_err(fail)
}

fn describe(
    broker: &Broker,
    cluster: &ClusterInfo,
    meta: &TopicMeta,
    topic_ops: i32,
) -> MetadataResponseTopic {
    let partitions = (0..)
        .zip(&meta.partitions)
        .map(|(index, replicas)| {
            let state = broker.partition_state(&meta.name, index);
            let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(state.as_ref().map_or(-1, |s| s.leader)))
                .with_leader_epoch(state.as_ref().map_or(0, |s| s.leader_epoch))
                .with_replica_nodes(ids(replicas))
                .with_isr_nodes(ids(state.as_ref().map_or(&[][..], |s| &s.isr)))
                // Replicas on brokers not live (fenced or gone), as Kafka's.
                .with_offline_replicas(
                    replicas
                        .iter()
                        .filter(|id| cluster.broker(**id).is_none())
                        .map(|id| BrokerId(*id))
                        .collect(),
                )
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&meta.name)))
        .with_topic_id(meta.id)
        .with_is_internal(is_internal_topic(&meta.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(topic_ops)
}
