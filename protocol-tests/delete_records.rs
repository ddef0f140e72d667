//! DeleteRecords and `cleanup.policy`: a compact-only topic refuses with
//! POLICY_VIOLATION (Kafka's `Partition.deleteRecordsOnLeader`: "Records of
//! partition <tp> can not be deleted due to the configured policy"; the
//! response carries only the code) and keeps its records; `delete` and
//! `compact,delete` topics move their log start.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::support::{text, Client, TestBroker};

const POLICY_VIOLATION: i16 = 44;

/// One uncompressed batch of `count` keyed records.
pub(crate) fn keyed_batch(count: i32) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // A constant offset - sequence keeps the encoder to one batch.
            sequence: i - 1,
            timestamp: 0,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf.freeze()
}

/// Creates `name` (one partition) with `cleanup.policy=policy` and
/// appends three records.
async fn topic_with_records(client: &mut Client, name: &str, policy: &str) {
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(text("cleanup.policy"))
                .with_value(Some(text(policy)))])])
        .with_timeout_ms(5000);
    let created: CreateTopicsResponse = client.request(ApiKey::CreateTopics, 7, &create).await;
    assert_eq!(created.topics[0].error_code, 0, "create {name}");
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(name)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(keyed_batch(3)))])]);
    let produced: ProduceResponse = client.request(ApiKey::Produce, 9, &produce).await;
    let answer = &produced.responses[0].partition_responses[0];
    assert_eq!(
        answer.error_code, 0,
        "produce to {name}: {:?}",
        answer.error_message
    );
}

/// DeleteRecords of `name`'s partition 0 before `offset` at `version`:
/// (error code, low watermark).
async fn delete_records(client: &mut Client, version: i16, name: &str, offset: i64) -> (i16, i64) {
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(text(name)))
            .with_partitions(vec![DeleteRecordsPartition::default()
                .with_partition_index(0)
                .with_offset(offset)])]);
    let response: DeleteRecordsResponse = client
        .request(ApiKey::DeleteRecords, version, &request)
        .await;
    let partition = &response.topics[0].partitions[0];
    (partition.error_code, partition.low_watermark)
}

/// The earliest offset of `name`'s partition 0 (ListOffsets, timestamp -2).
async fn earliest(client: &mut Client, name: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(text(name)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-2)])]);
    let response: ListOffsetsResponse = client.request(ApiKey::ListOffsets, 7, &request).await;
    let partition = &response.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0, "ListOffsets {name}");
    partition.offset
}

#[tokio::test]
async fn delete_records_on_a_compact_only_topic_is_a_policy_violation() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    topic_with_records(&mut client, "only-compact", "compact").await;
    topic_with_records(&mut client, "compact-delete", "compact,delete").await;
    topic_with_records(&mut client, "only-delete", "delete").await;
    for version in 0..=2 {
        // An offset in range, the high watermark (-1), one past it: the
        // policy is checked first.
        for offset in [1, -1, 99] {
            assert_eq!(
                delete_records(&mut client, version, "only-compact", offset).await,
                (POLICY_VIOLATION, -1),
                "v{version}, offset {offset}"
            );
        }
    }
    assert_eq!(
        earliest(&mut client, "only-compact").await,
        0,
        "nothing deleted"
    );
    assert_eq!(
        delete_records(&mut client, 2, "compact-delete", 1).await,
        (0, 1)
    );
    assert_eq!(
        delete_records(&mut client, 2, "only-delete", 2).await,
        (0, 2)
    );
    assert_eq!(earliest(&mut client, "compact-delete").await, 1);
    assert_eq!(earliest(&mut client, "only-delete").await, 2);
    broker.shutdown().await;
}
