//! `__consumer_offsets` as clients see it: created by the first
//! FindCoordinator for a group, with `offsets.topic.num.partitions`
//! partitions, listed with `is_internal`; Produce to it is
//! INVALID_TOPIC_EXCEPTION (Kafka's "Cannot append to internal topic"),
//! DeleteTopics INVALID_REQUEST; a group lives in partition
//! `abs(hashCode) % partitions`, which a commit's record shows.

use bytes::Bytes;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;

use crate::support::{text, TestBroker};

const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUEST: i16 = 42;
const TOPIC: &str = "__consumer_offsets";

#[tokio::test]
async fn consumer_offsets_is_internal_and_read_only() {
    let broker = TestBroker::start_with(&[("offsets.topic.num.partitions", "5")]).await;
    let mut client = broker.connect().await;
    let metadata = |name: &str| {
        MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(TopicName(text(name))))
            ]))
    };
    let before: MetadataResponse = client.request(ApiKey::Metadata, 12, &metadata(TOPIC)).await;
    assert_eq!(
        before.topics[0].error_code, 3,
        "not created before first use"
    );

    let find = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![text("hello")]);
    let found: FindCoordinatorResponse = client.request(ApiKey::FindCoordinator, 4, &find).await;
    assert_eq!(found.coordinators[0].error_code, 0);
    let after: MetadataResponse = client.request(ApiKey::Metadata, 12, &metadata(TOPIC)).await;
    let topic = &after.topics[0];
    assert_eq!((topic.error_code, topic.is_internal), (0, true));
    assert_eq!(topic.partitions.len(), 5);

    // A commit of group "hello" lands in partition 99162322 % 5 = 2.
    let create = CreateTopicsRequest::default().with_topics(vec![
        kafka_protocol::messages::create_topics_request::CreatableTopic::default()
            .with_name(TopicName(text("t")))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let _: CreateTopicsResponse = client.request(ApiKey::CreateTopics, 5, &create).await;
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("hello")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(text("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(7)])]);
    let committed: OffsetCommitResponse = client.request(ApiKey::OffsetCommit, 8, &commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(text(TOPIC)))
            .with_partitions(
                (0..5)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    let fetched: FetchResponse = client.request(ApiKey::Fetch, 12, &fetch).await;
    let holding: Vec<i32> = fetched.responses[0]
        .partitions
        .iter()
        .filter(|p| p.records.as_ref().is_some_and(|r| !r.is_empty()))
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(
        holding,
        [2],
        "clients may read it; the group's partition holds the record"
    );

    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(TOPIC)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from_static(b"not even a batch")))])]);
    let produced: ProduceResponse = client.request(ApiKey::Produce, 9, &produce).await;
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code,
        INVALID_TOPIC_EXCEPTION
    );

    let delete = DeleteTopicsRequest::default()
        .with_topics(vec![
            DeleteTopicState::default().with_name(Some(TopicName(text(TOPIC))))
        ])
        .with_timeout_ms(5000);
    let deleted: DeleteTopicsResponse = client.request(ApiKey::DeleteTopics, 6, &delete).await;
    assert_eq!(deleted.responses[0].error_code, INVALID_REQUEST);
}
