//! DescribeQuorum v0-v2: the metadata quorum as its leader sees it
//! (`kafka-metadata-quorum.sh describe --status / --replication`).
//!
//! The one partition asked about must be `__cluster_metadata`-0, else
//! that partition gets UNKNOWN_TOPIC_OR_PARTITION (Kafka's
//! `KafkaRaftClient.handleDescribeQuorumRequest`). Any node answers: a
//! follower asks the active controller over the controller network (a
//! Kafka broker forwards the request to it); with no active controller
//! known the partition gets NOT_LEADER_OR_FOLLOWER. The leader epoch is
//! the Raft term, offsets are Raft log indexes + 1 (the offset after the
//! last entry), the high watermark follows the last applied entry. A
//! voter's last fetch is its last broker heartbeat to the controller,
//! its last caught-up time the last heartbeat that found its log holding
//! everything the leader's has; the leader reports itself as fetching
//! and caught up now, as Kafka does. v2 adds `nodes`: every voter's
//! controller listener (the first of `controller.listener.names`).
//!
//! A single node (no quorum) answers as Kafka's combined single node
//! does, with itself as the only voter, leader in epoch 1; it has no
//! metadata log (offsets 0) and no controller listener, so its node
//! lists its client listener.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::cluster::quorum::{QuorumStatus, ReplicaStatus};

/// The metadata log's topic-partition.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// Answers a DescribeQuorum request.
pub async fn handle(
    broker: &Broker,
    version: i16,
    request: &DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let asked: Vec<(&str, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.topic_name.0.as_str(), p.partition_index))
        })
        .collect();
    if asked != [(METADATA_TOPIC, 0)] {
        // Every partition asked about gets the error, under its topic.
        let topics = request
            .topics
            .iter()
            .map(|t| {
                TopicData::default()
                    .with_topic_name(t.topic_name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                PartitionData::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            })
                            .collect(),
                    )
            })
            .collect();
        return DescribeQuorumResponse::default().with_topics(topics);
    }
    let (status, listener) = match broker.quorum() {
        Some(quorum) => {
            let listener = broker
                .config()
                .get("controller.listener.names")
                .and_then(|names| names.split(',').next())
                .map_or_else(|| "CONTROLLER".to_owned(), |n| n.trim().to_owned());
            match quorum.status().await {
                Ok(status) => (status, listener),
                Err(_) => {
                    let partition = PartitionData::default()
                        .with_error_code(ResponseError::NotLeaderOrFollower.code())
                        .with_leader_id(BrokerId(-1))
                        .with_leader_epoch(-1)
                        .with_high_watermark(-1);
                    return response_for(partition, Vec::new());
                }
            }
        }
        None => (single_node(broker), "PLAINTEXT".to_owned()),
    };
    let partition = PartitionData::default()
        .with_leader_id(BrokerId(status.leader_id))
        .with_leader_epoch(status.epoch)
        .with_high_watermark(status.high_watermark)
        .with_current_voters(status.voters.iter().map(replica_state).collect())
        .with_observers(status.observers.iter().map(replica_state).collect());
    let nodes = if version >= 2 {
        status
            .endpoints
            .iter()
            .filter_map(|(id, address)| {
                let (host, port) = address.rsplit_once(':')?;
                Some(Node::default().with_node_id(BrokerId(*id)).with_listeners(
                    vec![Listener::default()
                            .with_name(str_bytes(listener.clone()))
                            .with_host(str_bytes(host.trim_matches(['[', ']'])))
                            .with_port(port.parse().ok()?)],
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    response_for(partition, nodes)
}

fn response_for(partition: PartitionData, nodes: Vec<Node>) -> DescribeQuorumResponse {
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(topic_name(METADATA_TOPIC))
            .with_partitions(vec![partition.with_partition_index(0)])])
        .with_nodes(nodes)
}

fn replica_state(replica: &ReplicaStatus) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(replica.node_id))
        .with_log_end_offset(replica.log_end_offset)
        .with_last_fetch_timestamp(replica.last_fetch_ms)
        .with_last_caught_up_timestamp(replica.last_caught_up_ms)
}

/// A single node's quorum: itself.
fn single_node(broker: &Broker) -> QuorumStatus {
    let now = crate::log::now_ms();
    let cluster = broker.cluster();
    let node_id = cluster.node_id;
    QuorumStatus {
        leader_id: node_id,
        epoch: 1,
        high_watermark: 0,
        voters: vec![ReplicaStatus {
            node_id,
            log_end_offset: 0,
            last_fetch_ms: now,
            last_caught_up_ms: now,
        }],
        observers: Vec::new(),
        endpoints: cluster
            .broker(node_id)
            .map(|b| (node_id, format!("{}:{}", b.host, b.port)))
            .into_iter()
            .collect(),
    }
}
