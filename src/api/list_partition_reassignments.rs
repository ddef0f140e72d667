//! ListPartitionReassignments v0 (`kafka-reassign-partitions.sh --verify
//! / --list`): the ongoing reassignments with their current replicas
//! (target + removing), adding and removing replicas. Null topics lists
//! every one; topics and partitions asked about that are unknown or not
//! being reassigned are left out (Kafka's `listPartitionReassignments`).
//! A single node never reassigns: the list is empty.

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::topic_name;
use crate::broker::Broker;

/// Answers a ListPartitionReassignments request.
pub fn handle(
    broker: &Broker,
    request: &ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let Some(quorum) = broker.quorum() else {
        return ListPartitionReassignmentsResponse::default();
    };
    let image = quorum.image();
    let asked: Vec<(String, Option<Vec<i32>>)> = match &request.topics {
        None => image.topics.keys().map(|t| (t.clone(), None)).collect(),
        Some(topics) => topics
            .iter()
            .map(|t| (t.name.0.to_string(), Some(t.partition_indexes.clone())))
            .collect(),
    };
    let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let topics = asked
        .into_iter()
        .filter_map(|(name, partitions)| {
            let meta = image.topics.get(&name)?;
            let partitions = partitions.unwrap_or_else(|| (0..meta.partition_count()).collect());
            let ongoing: Vec<OngoingPartitionReassignment> = partitions
                .into_iter()
                .filter_map(|p| {
                    let state = image.partition(&name, p)?;
                    let replicas = meta.partitions.get(usize::try_from(p).ok()?)?;
                    (!state.adding.is_empty() || !state.removing.is_empty()).then(|| {
                        OngoingPartitionReassignment::default()
                            .with_partition_index(p)
                            .with_replicas(ids(replicas))
                            .with_adding_replicas(ids(&state.adding))
                            .with_removing_replicas(ids(&state.removing))
                    })
                })
                .collect();
            (!ongoing.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(topic_name(&name))
                    .with_partitions(ongoing)
            })
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
