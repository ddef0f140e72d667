//! The cluster admin APIs on one node: DescribeQuorum (55), DescribeLogDirs
//! (35), ElectLeaders (43), AlterPartitionReassignments (45) and
//! ListPartitionReassignments (46). Several brokers are covered by
//! `compat/cluster`.
//!
//! With `STROM_EXTERNAL_BOOTSTRAP=host:port` the same tests run against
//! that broker (a one-node Apache Kafka 4.1, combined broker and
//! controller, from compat/lib/kafka.sh) to check the expectations.

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};

use crate::support::{text, topic_with_records, Target};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

fn quorum_request(topic: &str, partition: i32) -> DescribeQuorumRequest {
    DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(text(topic)))
        .with_partitions(vec![
            PartitionData::default().with_partition_index(partition)
        ])])
}

/// A one-node quorum: the node leads and is the only voter, caught up; v2
/// names its listener; a partition other than `__cluster_metadata`-0 gets
/// UNKNOWN_TOPIC_OR_PARTITION.
#[tokio::test]
async fn describe_quorum_on_one_node_names_it_the_only_voter() {
    let target = Target::start().await;
    let mut client = target.connect().await;
    for version in 0..=2 {
        let response: DescribeQuorumResponse = client
            .request(
                ApiKey::DescribeQuorum,
                version,
                &quorum_request("__cluster_metadata", 0),
            )
            .await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(response.topics.len(), 1, "v{version}");
        assert_eq!(
            response.topics[0].topic_name.0.as_str(),
            "__cluster_metadata"
        );
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            (partition.partition_index, partition.error_code),
            (0, 0),
            "v{version}"
        );
        let leader = partition.leader_id;
        assert!(leader.0 >= 0, "v{version}: a leader");
        assert!(partition.leader_epoch >= 1, "v{version}: {partition:?}");
        assert!(partition.high_watermark >= 0, "v{version}: {partition:?}");
        assert_eq!(partition.current_voters.len(), 1, "v{version}");
        assert!(partition.observers.is_empty(), "v{version}");
        let voter = &partition.current_voters[0];
        assert_eq!(voter.replica_id, leader, "v{version}");
        if version >= 1 {
            assert!(voter.last_fetch_timestamp > 0, "v{version}: {voter:?}");
            assert!(voter.last_caught_up_timestamp > 0, "v{version}: {voter:?}");
        }
        if version >= 2 {
            assert_eq!(response.nodes.len(), 1, "v{version}");
            assert_eq!(response.nodes[0].node_id, leader);
            let listener = &response.nodes[0].listeners[0];
            assert!(listener.port > 0, "{listener:?}");
        } else {
            assert!(response.nodes.is_empty());
        }
    }
    for (topic, partition) in [("__cluster_metadata", 1), ("other", 0)] {
        let response: DescribeQuorumResponse = client
            .request(ApiKey::DescribeQuorum, 2, &quorum_request(topic, partition))
            .await;
        assert_eq!(response.error_code, 0);
        assert_eq!(response.topics[0].topic_name.0.as_str(), topic);
        let answer = &response.topics[0].partitions[0];
        assert_eq!(
            (answer.partition_index, answer.error_code),
            (partition, UNKNOWN_TOPIC_OR_PARTITION),
            "{topic}-{partition}"
        );
    }
}

fn log_dirs_request(topics: Option<Vec<(&str, Vec<i32>)>>) -> DescribeLogDirsRequest {
    DescribeLogDirsRequest::default().with_topics(topics.map(|topics| {
        topics
            .into_iter()
            .map(|(name, partitions)| {
                DescribableLogDirTopic::default()
                    .with_topic(TopicName(text(name)))
                    .with_partitions(partitions)
            })
            .collect()
    }))
}

/// The partitions of `topic` in every log dir of `response`: (partition,
/// size, offset lag, is future).
fn hosted(response: &DescribeLogDirsResponse, topic: &str) -> Vec<(i32, i64, i64, bool)> {
    response
        .results
        .iter()
        .flat_map(|dir| &dir.topics)
        .filter(|t| t.name.0.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .map(|p| {
            (
                p.partition_index,
                p.partition_size,
                p.offset_lag,
                p.is_future_key,
            )
        })
        .collect()
}

/// One log dir holding the partition with its bytes, no lag, not a
/// future replica; v4 sizes the file system; a topic not asked about, or
/// not hosted, is left out.
#[tokio::test]
async fn describe_log_dirs_lists_the_partitions_with_their_sizes() {
    let target = Target::start().await;
    let mut client = target.connect().await;
    let topic = target.topic("log-dirs");
    topic_with_records(&mut client, &topic, &[]).await;
    for version in 1..=4 {
        let response: DescribeLogDirsResponse = client
            .request(ApiKey::DescribeLogDirs, version, &log_dirs_request(None))
            .await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(response.results.len(), 1, "v{version}: one log dir");
        let dir = &response.results[0];
        assert_eq!(dir.error_code, 0, "v{version}");
        assert!(dir.log_dir.starts_with('/'), "v{version}: {}", dir.log_dir);
        let partitions = hosted(&response, &topic);
        assert_eq!(partitions.len(), 1, "v{version}: {partitions:?}");
        let (index, size, lag, future) = partitions[0];
        assert_eq!((index, lag, future), (0, 0, false), "v{version}");
        assert!(size > 0, "v{version}: three records take bytes");
        if version >= 4 {
            assert!(
                dir.total_bytes >= dir.usable_bytes && dir.usable_bytes > 0,
                "v{version}: {} total, {} usable",
                dir.total_bytes,
                dir.usable_bytes
            );
        } else {
            assert_eq!((dir.total_bytes, dir.usable_bytes), (-1, -1), "v{version}");
        }
    }
    let other = target.topic("never-created");
    let asked = log_dirs_request(Some(vec![(&topic, vec![0, 7]), (&other, vec![0])]));
    let response: DescribeLogDirsResponse =
        client.request(ApiKey::DescribeLogDirs, 4, &asked).await;
    assert_eq!(response.error_code, 0);
    assert_eq!(hosted(&response, &topic).len(), 1, "partition 7 left out");
    assert!(hosted(&response, &other).is_empty());
    let topics: Vec<&str> = response.results[0]
        .topics
        .iter()
        .map(|t| t.name.0.as_str())
        .collect();
    assert_eq!(topics, [topic.as_str()], "only the topic asked about");
}

const INVALID_REQUEST: i16 = 42;
const ELECTION_NOT_NEEDED: i16 = 84;

fn elect_request(election_type: i8, topics: Option<Vec<(&str, Vec<i32>)>>) -> ElectLeadersRequest {
    ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(5000)
        .with_topic_partitions(topics.map(|topics| {
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    TopicPartitions::default()
                        .with_topic(TopicName(text(name)))
                        .with_partitions(partitions)
                })
                .collect()
        }))
}

/// (topic, partition, code, message) of every result.
fn elections(response: &ElectLeadersResponse) -> Vec<(String, i32, i16, Option<String>)> {
    response
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(|p| {
                (
                    t.topic.0.to_string(),
                    p.partition_id,
                    p.error_code,
                    p.error_message.as_ref().map(ToString::to_string),
                )
            })
        })
        .collect()
}

/// One node leads every partition as its preferred replica: preferred and
/// unclean elections are not needed; unknown topics and partitions get
/// Kafka's messages; asking for every partition leaves out those needing
/// nothing; an unknown election type is INVALID_REQUEST.
#[tokio::test]
async fn elect_leaders_on_one_node_needs_no_election() {
    let target = Target::start().await;
    let mut client = target.connect().await;
    let topic = target.topic("elect");
    topic_with_records(&mut client, &topic, &[]).await;
    let missing = target.topic("elect-missing");
    let not_needed = Some("Leader election not needed for topic partition.".to_owned());
    for (version, election_type) in [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1)] {
        let asked = elect_request(
            election_type,
            Some(vec![(&topic, vec![0, 3]), (&missing, vec![0])]),
        );
        let response: ElectLeadersResponse =
            client.request(ApiKey::ElectLeaders, version, &asked).await;
        assert_eq!(response.error_code, 0, "v{version}");
        assert_eq!(
            elections(&response),
            [
                (topic.clone(), 0, ELECTION_NOT_NEEDED, not_needed.clone()),
                (
                    topic.clone(),
                    3,
                    UNKNOWN_TOPIC_OR_PARTITION,
                    Some(format!("No such partition as {topic}-3"))
                ),
                (
                    missing.clone(),
                    0,
                    UNKNOWN_TOPIC_OR_PARTITION,
                    Some(format!("No such topic as {missing}"))
                ),
            ],
            "v{version}, type {election_type}"
        );
    }
    let every: ElectLeadersResponse = client
        .request(ApiKey::ElectLeaders, 2, &elect_request(0, None))
        .await;
    assert_eq!(every.error_code, 0);
    assert!(elections(&every).is_empty(), "{every:?}");
    let listed = every
        .replica_election_results
        .iter()
        .any(|t| t.topic.0.as_str() == topic);
    assert!(listed, "each topic keeps its (empty) entry");

    let bad: ElectLeadersResponse = client
        .request(
            ApiKey::ElectLeaders,
            2,
            &elect_request(5, Some(vec![(&topic, vec![0])])),
        )
        .await;
    assert_eq!(bad.error_code, INVALID_REQUEST);
    assert_eq!(
        elections(&bad),
        [(
            topic.clone(),
            0,
            INVALID_REQUEST,
            Some("Unknown election type 5".to_owned())
        )]
    );
}

const INVALID_REPLICA_ASSIGNMENT: i16 = 39;

/// (topic, partition, target replicas, expected code, expected message).
type ReassignCase<'a> = (&'a str, i32, Option<Vec<BrokerId>>, i16, Option<String>);
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

/// On one node: the node itself is the only valid target (accepted);
/// empty, unregistered and repeated targets get Kafka's
/// INVALID_REPLICA_ASSIGNMENT messages, unknown partitions theirs, a
/// cancel without a reassignment NO_REASSIGNMENT_IN_PROGRESS; nothing is
/// listed as being reassigned.
#[tokio::test]
async fn reassignments_on_one_node() {
    let target = Target::start().await;
    let mut client = target.connect().await;
    let topic = target.topic("reassign");
    topic_with_records(&mut client, &topic, &[]).await;
    let described: DescribeQuorumResponse = client
        .request(
            ApiKey::DescribeQuorum,
            0,
            &quorum_request("__cluster_metadata", 0),
        )
        .await;
    let me = described.topics[0].partitions[0].leader_id;
    let missing = target.topic("reassign-missing");
    let cases: Vec<ReassignCase> = vec![
        (&topic, 0, Some(vec![me]), 0, None),
        (
            &topic,
            0,
            Some(vec![]),
            INVALID_REPLICA_ASSIGNMENT,
            Some("The manual partition assignment includes an empty replica list.".into()),
        ),
        (
            &topic,
            0,
            Some(vec![me, BrokerId(4242)]),
            INVALID_REPLICA_ASSIGNMENT,
            Some(
                "The manual partition assignment includes broker 4242, but no such broker is registered."
                    .into(),
            ),
        ),
        (
            &topic,
            0,
            Some(vec![me, me]),
            INVALID_REPLICA_ASSIGNMENT,
            Some(format!(
                "The manual partition assignment includes the broker {} more than once.",
                me.0
            )),
        ),
        (
            &topic,
            0,
            None,
            NO_REASSIGNMENT_IN_PROGRESS,
            None,
        ),
        (
            &topic,
            9,
            Some(vec![me]),
            UNKNOWN_TOPIC_OR_PARTITION,
            Some(format!("Unable to find partition {topic}:9.")),
        ),
        (
            &missing,
            0,
            Some(vec![me]),
            UNKNOWN_TOPIC_OR_PARTITION,
            Some(format!("Unable to find a topic named {missing}.")),
        ),
    ];
    for version in 0..=1 {
        for (name, partition, replicas, code, message) in &cases {
            let request = AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![ReassignableTopic::default()
                    .with_name(TopicName(text(name)))
                    .with_partitions(vec![ReassignablePartition::default()
                        .with_partition_index(*partition)
                        .with_replicas(replicas.clone())])]);
            let response: AlterPartitionReassignmentsResponse = client
                .request(ApiKey::AlterPartitionReassignments, version, &request)
                .await;
            assert_eq!(response.error_code, 0, "v{version}");
            let answer = &response.responses[0].partitions[0];
            assert_eq!(
                (
                    answer.partition_index,
                    answer.error_code,
                    answer.error_message.as_ref().map(ToString::to_string)
                ),
                (*partition, *code, message.clone()),
                "v{version}: {name}-{partition} to {replicas:?}"
            );
        }
    }
    for topics in [
        None,
        Some(vec![ListPartitionReassignmentsTopics::default()
            .with_name(TopicName(text(&topic)))
            .with_partition_indexes(vec![0, 9])]),
    ] {
        let request = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(topics);
        let listed: ListPartitionReassignmentsResponse = client
            .request(ApiKey::ListPartitionReassignments, 0, &request)
            .await;
        assert_eq!(listed.error_code, 0);
        assert!(
            listed.topics.iter().all(|t| t.name.0.as_str() != topic),
            "{listed:?}"
        );
    }
}
