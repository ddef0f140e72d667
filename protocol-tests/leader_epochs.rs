//! Leader epochs as clients see them on one node (KIP-320): where an
//! epoch ends (OffsetForLeaderEpoch v2-v4), the epoch ListOffsets answers
//! with each offset, and `current_leader_epoch` checked by both
//! (UNKNOWN_LEADER_EPOCH for a newer one; an older one, FENCED_LEADER_EPOCH,
//! needs a leader change: the cluster tests). Written from Kafka 4.1's answers: with `STROM_EXTERNAL_BOOTSTRAP`
//! the same test runs against a real one-node Kafka.

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, TopicName,
};

use crate::support::{text, topic_with_records, Client, Target};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

/// OffsetForLeaderEpoch of `topic`-0 at `version`: (error, epoch, end offset).
async fn epoch_end(
    client: &mut Client,
    version: i16,
    topic: &str,
    current: i32,
    epoch: i32,
) -> (i16, i32, i64) {
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(text(topic)))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)])]);
    let response: OffsetForLeaderEpochResponse = client
        .request(ApiKey::OffsetForLeaderEpoch, version, &request)
        .await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

/// ListOffsets v7 of `topic`-0 for `timestamp`: (error, offset, epoch).
async fn offset_and_epoch(
    client: &mut Client,
    topic: &str,
    current: i32,
    timestamp: i64,
) -> (i16, i64, i32) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(text(topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_current_leader_epoch(current)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = client.request(ApiKey::ListOffsets, 7, &request).await;
    let p = &response.topics[0].partitions[0];
    (p.error_code, p.offset, p.leader_epoch)
}

#[tokio::test]
async fn epochs_end_where_the_log_ends_and_fence_stale_clients() {
    let target = Target::start().await;
    let mut client = target.connect().await;
    let topic = target.topic("epochs");
    topic_with_records(&mut client, &topic, &[]).await;
    for version in 2..=4 {
        // The one epoch (0) ends at the log end, with or without the check.
        for current in [-1, 0] {
            assert_eq!(
                epoch_end(&mut client, version, &topic, current, 0).await,
                (0, 0, 3),
                "v{version} epoch 0, current {current}"
            );
        }
        // A newer epoch is not known: -1 / -1 without an error.
        assert_eq!(
            epoch_end(&mut client, version, &topic, -1, 7).await,
            (0, -1, -1),
            "v{version} epoch 7"
        );
        assert_eq!(
            epoch_end(&mut client, version, &topic, 3, 0).await.0,
            UNKNOWN_LEADER_EPOCH,
            "v{version} current epoch 3"
        );
        assert_eq!(
            epoch_end(&mut client, version, "no-such-topic-epochs", -1, 0)
                .await
                .0,
            UNKNOWN_TOPIC_OR_PARTITION,
            "v{version} unknown topic"
        );
    }
    // ListOffsets: earliest, latest and a timestamp lookup are in epoch 0;
    // a newer current epoch is UNKNOWN_LEADER_EPOCH.
    for timestamp in [-2, -1, 0] {
        let (error, _, epoch) = offset_and_epoch(&mut client, &topic, 0, timestamp).await;
        assert_eq!((error, epoch), (0, 0), "ListOffsets {timestamp}");
    }
    assert_eq!(
        offset_and_epoch(&mut client, &topic, 5, -1).await.0,
        UNKNOWN_LEADER_EPOCH
    );
}
