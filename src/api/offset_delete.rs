//! OffsetDelete v0: removes a group's committed offsets for some
//! partitions. GROUP_ID_NOT_FOUND for an unknown group; a topic that live
//! members subscribe to is GROUP_SUBSCRIBED_TO_TOPIC for its partitions.
//! The removal is a tombstone per offset in `__consumer_offsets`, written
//! before the response. Under an authorizer (the group's DELETE is checked
//! before), a topic the session may not READ is TOPIC_AUTHORIZATION_FAILED
//! for its partitions, and the others are deleted, as Kafka.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Answers an OffsetDelete request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let readable =
        |topic: &str| broker.authorize(session, Operation::Read, ResourceType::Topic, topic);
    let wanted: Vec<(String, i32)> = request
        .topics
        .iter()
        .filter(|t| readable(&t.name))
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let mut results =
        match super::group_coordinator(broker).delete_offsets(&request.group_id.0, &wanted) {
            Ok(results) => results.into_iter(),
            Err(e) => return OffsetDeleteResponse::default().with_error_code(e.code()),
        };
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let allowed = readable(&topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let error = if allowed {
                        results.next().flatten()
                    } else {
                        Some(ResponseError::TopicAuthorizationFailed)
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
