//! Kafka's answers at the edges of Fetch and OffsetCommit: the broker's
//! `fetch.max.bytes` caps what a Fetch may ask for, and OffsetCommit within
//! a generation of a group that does not exist is GROUP_ID_NOT_FOUND from
//! v9 on, ILLEGAL_GENERATION before.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse,
    GroupId, OffsetCommitRequest, OffsetCommitResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::support::{text, TestBroker};

const ILLEGAL_GENERATION: i16 = 22;
const GROUP_ID_NOT_FOUND: i16 = 69;

/// One uncompressed batch holding one record with a `size`-byte value.
fn batch_of_size(size: usize) -> Bytes {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from(vec![b'v'; size])),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &[record], &options).expect("encode batch");
    buf.freeze()
}

#[tokio::test]
async fn fetch_max_bytes_is_capped_by_the_broker() {
    let broker = TestBroker::start_with(&[("fetch.max.bytes", "1024")]).await;
    let mut client = broker.connect().await;
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text("capped")))
            .with_num_partitions(2)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let created: CreateTopicsResponse = client.request(ApiKey::CreateTopics, 7, &create).await;
    assert_eq!(created.topics[0].error_code, 0);
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text("capped")))
            .with_partition_data(
                (0..2)
                    .map(|p| {
                        PartitionProduceData::default()
                            .with_index(p)
                            .with_records(Some(batch_of_size(700)))
                    })
                    .collect(),
            )]);
    let produced: ProduceResponse = client.request(ApiKey::Produce, 9, &produce).await;
    for p in &produced.responses[0].partition_responses {
        assert_eq!(p.error_code, 0, "partition {}", p.index);
    }
    // Asks for 1 GiB; the broker's 1 KiB cap leaves room for one batch.
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 30)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(text("capped")))
            .with_partitions(
                (0..2)
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    let fetched: FetchResponse = client.request(ApiKey::Fetch, 12, &fetch).await;
    let sizes: Vec<usize> = fetched.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, Bytes::len))
        .collect();
    assert!(sizes[0] > 700, "{sizes:?}");
    assert_eq!(sizes[1], 0, "{sizes:?}");
    broker.shutdown().await;
}

#[tokio::test]
async fn commits_within_a_generation_of_an_unknown_group() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    for (version, code) in [(8, ILLEGAL_GENERATION), (9, GROUP_ID_NOT_FOUND)] {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text("nobody")))
            .with_generation_id_or_member_epoch(1)
            .with_member_id(text("member-1"))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(text("any")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(5)])]);
        let response: OffsetCommitResponse = client
            .request(ApiKey::OffsetCommit, version, &request)
            .await;
        assert_eq!(
            response.topics[0].partitions[0].error_code, code,
            "OffsetCommit v{version}"
        );
    }
    broker.shutdown().await;
}
