//! Produce (key 0) v11 against the rules Kafka checks before it stores a
//! batch: a CreateTime timestamp more than `message.timestamp.after.max.ms`
//! (1 hour) ahead gets INVALID_TIMESTAMP, a keyless record on a compacted
//! topic INVALID_RECORD (both with Kafka's messages and `record_errors`
//! naming the refused records), acks=all on a topic whose
//! `min.insync.replicas` is above the one in-sync replica NOT_ENOUGH_REPLICAS;
//! nothing is stored. The batch checks run in Kafka's order (magic, base
//! offset, size, CRC, header fields, then every record, compressed or not).

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, ListOffsetsRequest,
    ListOffsetsResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::support::{text, Client, TestBroker};

const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const MESSAGE_TOO_LARGE: i16 = 10;
const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("millis fit i64")
}

/// One uncompressed batch of records with these timestamps and keys.
fn batch(records: &[(i64, Option<&'static str>)]) -> Bytes {
    encode(records, Compression::None, (-1, -1, -1))
}

/// One batch of records with these timestamps and keys, compressed with
/// `compression`, written by `(producer id, epoch, base sequence)`.
fn encode(
    records: &[(i64, Option<&'static str>)],
    compression: Compression,
    (producer_id, producer_epoch, base_sequence): (i64, i16, i32),
) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .zip(0..)
        .map(|(&(timestamp, key), offset)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset,
            // A constant offset - sequence keeps the encoder to one batch.
            sequence: i32::try_from(offset).expect("small offset") + base_sequence,
            timestamp,
            key: key.map(|k| Bytes::from_static(k.as_bytes())),
            value: Some(Bytes::from_static(b"value")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf.freeze()
}

/// `bytes` with `edit` applied and the CRC-32C recomputed, as a client
/// that builds a wrong batch correctly would send it.
fn edited(bytes: &Bytes, edit: impl FnOnce(&mut [u8])) -> Bytes {
    let mut bytes = bytes.to_vec();
    edit(&mut bytes);
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(bytes)
}

async fn create_topic(client: &mut Client, name: &str, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(key, value)| {
            CreatableTopicConfig::default()
                .with_name(text(key))
                .with_value(Some(text(value)))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(configs)])
        .with_timeout_ms(5000);
    let response: CreateTopicsResponse = client.request(ApiKey::CreateTopics, 7, &request).await;
    assert_eq!(response.topics[0].error_code, 0, "create {name}");
}

/// Produce v11, acks=-1, of one batch to partition 0 of `topic`.
async fn produce(client: &mut Client, topic: &str, records: Bytes) -> PartitionProduceResponse {
    produce_with_acks(client, topic, -1, records).await
}

/// Produce v11 of one batch to partition 0 of `topic`.
async fn produce_with_acks(
    client: &mut Client,
    topic: &str,
    acks: i16,
    records: Bytes,
) -> PartitionProduceResponse {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(records))])]);
    let response: ProduceResponse = client.request(ApiKey::Produce, 11, &request).await;
    response.responses[0].partition_responses[0].clone()
}

/// The `(batch_index, message)` pairs of a response's record errors.
fn record_errors(response: &PartitionProduceResponse) -> Vec<(i32, String)> {
    response
        .record_errors
        .iter()
        .map(|e| {
            let message = e.batch_index_error_message.as_ref().map(|m| m.to_string());
            (e.batch_index, message.unwrap_or_default())
        })
        .collect()
}

#[tokio::test]
async fn future_timestamps_and_keyless_compacted_records_are_refused() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    create_topic(&mut client, "stamps", &[]).await;
    create_topic(&mut client, "compacted", &[("cleanup.policy", "compact")]).await;

    let now = now_ms();
    let ahead = now + 2 * HOUR;
    let refused = produce(&mut client, "stamps", batch(&[(now, None), (ahead, None)])).await;
    assert_eq!(refused.error_code, INVALID_TIMESTAMP);
    assert_eq!(
        refused.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    assert_eq!((refused.base_offset, refused.log_start_offset), (-1, 0));
    let errors = record_errors(&refused);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, 1);
    let prefix = format!("Timestamp {ahead} of message with offset 1 is out of range. ");
    assert!(errors[0].1.starts_with(&prefix), "{}", errors[0].1);
    // The window ends an hour after the broker's clock read the batch.
    let window = errors[0].1.rsplit_once(", ").expect("window").1;
    let high: i64 = window.trim_end_matches(']').parse().expect("window end");
    assert!((now + HOUR..ahead).contains(&high), "{high}");

    let keyless = batch(&[(now, Some("k")), (now, None)]);
    let refused = produce(&mut client, "compacted", keyless).await;
    assert_eq!(refused.error_code, INVALID_RECORD);
    let why = "Compacted topic cannot accept message without key in topic partition compacted-0";
    assert_eq!(record_errors(&refused), vec![(1, why.to_owned())]);
    assert_eq!(
        refused.error_message.as_deref(),
        Some(
            format!(
                "One or more records have been rejected due to 1 record errors in total, and only \
                 showing the first three errors at most: [RecordError(batchIndex=1, message='{why}')]"
            )
            .as_str()
        )
    );

    // Nothing was stored: the first accepted batches start at offset 0.
    for topic in ["stamps", "compacted"] {
        let accepted = produce(&mut client, topic, batch(&[(now, Some("k"))])).await;
        assert_eq!(
            (accepted.error_code, accepted.base_offset),
            (0, 0),
            "{topic}"
        );
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn acks_all_needs_min_insync_replicas() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    create_topic(&mut client, "strict", &[("min.insync.replicas", "2")]).await;
    let records = batch(&[(now_ms(), Some("k"))]);

    let refused = produce(&mut client, "strict", records.clone()).await;
    assert_eq!(refused.error_code, NOT_ENOUGH_REPLICAS);
    assert_eq!((refused.base_offset, refused.log_start_offset), (-1, 0));
    // acks=1 waits for no replica but the leader: stored at offset 0.
    let accepted = produce_with_acks(&mut client, "strict", 1, records).await;
    assert_eq!((accepted.error_code, accepted.base_offset), (0, 0));
    broker.shutdown().await;
}

#[tokio::test]
async fn batches_are_checked_in_kafkas_order_and_whole() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    create_topic(&mut client, "small", &[("max.message.bytes", "1000")]).await;
    let now = now_ms();
    let good = batch(&[(now, Some("k")), (now + 1, Some("k"))]);

    // (what, batch, error code Kafka answers)
    let mut bad_crc = good.to_vec();
    bad_crc[good.len() - 1] ^= 0xff;
    bad_crc.resize(1001, 0);
    let zstd = encode(&[(now, Some("k"))], Compression::Zstd, (-1, -1, -1));
    let cases = [
        ("magic 1", edited(&good, |b| b[16] = 1), INVALID_RECORD),
        (
            "base offset 5",
            edited(&good, |b| b[0..8].copy_from_slice(&5i64.to_be_bytes())),
            INVALID_RECORD,
        ),
        // Size comes before the CRC.
        (
            "1001 bytes, bad CRC",
            Bytes::from(bad_crc),
            MESSAGE_TOO_LARGE,
        ),
        (
            "a producer id without a sequence",
            encode(&[(now, Some("k"))], Compression::None, (9, 0, -1)),
            INVALID_RECORD,
        ),
        // A compressed batch claiming 2^31 - 1 records it does not hold.
        (
            "zstd, 2^31 - 1 records claimed",
            edited(&zstd, |b| {
                b[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
                b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
            }),
            INVALID_RECORD,
        ),
        // A record timestamp the batch header hides (max timestamp says now).
        (
            "gzip, a record 2 hours ahead",
            edited(
                &encode(
                    &[(now, Some("k")), (now + 2 * HOUR, Some("k"))],
                    Compression::Gzip,
                    (-1, -1, -1),
                ),
                |b| b[35..43].copy_from_slice(&now.to_be_bytes()),
            ),
            INVALID_TIMESTAMP,
        ),
    ];
    for (what, records, code) in cases {
        let refused = produce(&mut client, "small", records).await;
        assert_eq!(
            (refused.error_code, refused.base_offset),
            (code, -1),
            "{what}"
        );
    }

    // An idempotent producer the partition has never seen may start at
    // any sequence (its batches may have gone with retention).
    let stranger = encode(&[(now, Some("k"))], Compression::None, (77, 0, 5));
    let accepted = produce(&mut client, "small", stranger).await;
    assert_eq!((accepted.error_code, accepted.base_offset), (0, 0));
    // A timestamp lookup reads the stored records.
    let accepted = produce(&mut client, "small", good).await;
    assert_eq!((accepted.error_code, accepted.base_offset), (0, 1));
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(text("small")))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(now + 1)])]);
    let response: ListOffsetsResponse = client.request(ApiKey::ListOffsets, 7, &request).await;
    let found = &response.topics[0].partitions[0];
    assert_eq!(
        (found.error_code, found.offset, found.timestamp),
        (0, 2, now + 1)
    );
    broker.shutdown().await;
}
