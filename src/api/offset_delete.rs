//! OffsetDelete v0: removes a group's committed offsets for some
//! partitions. GROUP_ID_NOT_FOUND for an unknown group; a topic that live
//! members subscribe to is GROUP_SUBSCRIBED_TO_TOPIC for its partitions.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::broker::Broker;

/// Answers an OffsetDelete request.
pub fn handle(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = request.group_id.0.as_str();
    if !broker.groups.exists(group) {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code());
    }
    let subscribed = broker.groups.subscribed_topics(group);
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let error = if subscribed.contains(&name) {
                        Some(ResponseError::GroupSubscribedToTopic)
                    } else {
                        broker
                            .groups
                            .offsets
                            .remove_where(group, |t, index, _| {
                                t == name && index == p.partition_index
                            })
                            .err()
                            .map(|_| ResponseError::UnknownServerError)
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
