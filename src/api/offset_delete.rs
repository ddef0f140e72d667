//! OffsetDelete v0: removes a group's committed offsets for some
//! partitions. GROUP_ID_NOT_FOUND for an unknown group; a topic that live
//! members subscribe to is GROUP_SUBSCRIBED_TO_TOPIC for its partitions.
//! The removal is a tombstone per offset in `__consumer_offsets`, written
//! before the response.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::broker::Broker;

/// Answers an OffsetDelete request.
pub fn handle(broker: &Broker, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let wanted: Vec<(String, i32)> = request
        .topics
        .iter()
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
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let error = results.next().flatten();
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
