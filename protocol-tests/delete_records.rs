//! DeleteRecords and `cleanup.policy`: a compact-only topic refuses with
//! POLICY_VIOLATION (Kafka's `Partition.deleteRecordsOnLeader`: "Records of
//! partition <tp> can not be deleted due to the configured policy"; the
//! response carries only the code) and keeps its records; `delete` and
//! `compact,delete` topics move their log start.

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest,
    ListOffsetsResponse, TopicName,
};

use crate::support::{text, topic_with_records, Client, TestBroker};

const POLICY_VIOLATION: i16 = 44;

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
    topic_with_records(
        &mut client,
        "only-compact",
        &[("cleanup.policy", "compact")],
    )
    .await;
    topic_with_records(
        &mut client,
        "compact-delete",
        &[("cleanup.policy", "compact,delete")],
    )
    .await;
    topic_with_records(&mut client, "only-delete", &[("cleanup.policy", "delete")]).await;
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
