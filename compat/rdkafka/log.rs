//! The log through librdkafka: Produce, Fetch, ListOffsets, DeleteRecords
//! and InitProducerId as a real producer and consumer use them. Keyed
//! partitioning, every compression codec, headers and null fields, size
//! limits, timestamps and the record rules, a restart, idempotence,
//! DeleteRecords and retention.
//! Consumers use `assign` with explicit offsets (no group membership).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};
use tokio::time::Instant;

use crate::support::{assign, options, receive, text, watermarks, TestBroker, DEADLINE};

/// Longer than [`DEADLINE`] for the tests that move thousands of messages.
const BULK_DEADLINE: Duration = Duration::from_secs(60);

/// Queues one record, failing the test if librdkafka refuses it locally.
fn enqueue(producer: &FutureProducer, record: FutureRecord<'_, str, str>) -> DeliveryFuture {
    producer
        .send_result(record)
        .map_err(|(e, _)| e)
        .expect("record queued")
}

/// Waits for one delivery report until `until`, returning the outcome.
async fn report(future: DeliveryFuture, until: Instant) -> Result<Delivery, KafkaError> {
    tokio::time::timeout_at(until, future)
        .await
        .expect("delivery report before the deadline")
        .expect("delivery future not cancelled")
        .map_err(|(e, _)| e)
}

/// Waits for one successful delivery until `until`.
async fn delivered(future: DeliveryFuture, until: Instant) -> Delivery {
    report(future, until).await.expect("delivered")
}

/// Produces `values` to partition 0 of `topic` one after the other.
async fn produce_in_order(producer: &FutureProducer, topic: &str, values: &[String]) {
    let until = Instant::now() + DEADLINE;
    for value in values {
        let record = FutureRecord::to(topic).partition(0).payload(value.as_str());
        delivered(enqueue(producer, record), until).await;
    }
}

/// The total size of the segment files of one partition on disk.
fn segment_bytes(dir: &Path, topic: &str, partition: i32) -> u64 {
    std::fs::read_dir(dir.join(format!("logs/{topic}-{partition}")))
        .expect("partition dir")
        .map(|entry| entry.expect("dir entry"))
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
        .map(|entry| entry.metadata().expect("metadata").len())
        .sum()
}

/// `offsets_for_times` for partition 0 of `topic`: the first offset whose
/// timestamp is at least `timestamp` ([`Offset::End`] if none).
fn offset_for_time(consumer: &StreamConsumer, topic: &str, timestamp: i64) -> Offset {
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset(topic, 0, Offset::Offset(timestamp))
        .expect("query");
    let answer = tokio::task::block_in_place(|| consumer.offsets_for_times(query, DEADLINE))
        .expect("offsets_for_times");
    let element = answer.find_partition(topic, 0).expect("partition 0");
    element.error().expect("no partition error");
    element.offset()
}

/// A message's headers as (key, value) pairs.
fn headers_of(message: &OwnedMessage) -> Vec<(String, Option<Vec<u8>>)> {
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn keyed_messages_keep_partition_and_order() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("keyed", 3, &[]).await;
    let producer = broker.producer(&[("acks", "all"), ("linger.ms", "5")]);
    let until = Instant::now() + BULK_DEADLINE;
    let mut pending = Vec::new();
    for i in 0..10_000 {
        let key = format!("key-{}", i % 100);
        let value = format!("{key}:{}", i / 100);
        let future = enqueue(
            &producer,
            FutureRecord::to("keyed")
                .key(key.as_str())
                .payload(value.as_str()),
        );
        pending.push((key, future));
    }
    let mut partition_of: HashMap<String, i32> = HashMap::new();
    for (key, future) in pending {
        let delivery = delivered(future, until).await;
        let first = *partition_of
            .entry(key.clone())
            .or_insert(delivery.partition);
        assert_eq!(
            first, delivery.partition,
            "{key} produced to two partitions"
        );
    }

    let consumer = broker.consumer(&[]);
    assign(&consumer, "keyed", 3, Offset::Beginning);
    let messages = receive(&consumer, 10_000, BULK_DEADLINE).await;
    let mut seen = HashSet::new();
    let mut sequences: HashMap<String, Vec<u32>> = HashMap::new();
    let mut per_partition = [0i64; 3];
    for message in &messages {
        assert!(
            seen.insert((message.partition(), message.offset())),
            "offset {} of partition {} received twice",
            message.offset(),
            message.partition()
        );
        let key = String::from_utf8(message.key().expect("key").to_vec()).expect("utf-8 key");
        let value = text(message);
        let (value_key, sequence) = value.split_once(':').expect("key:sequence");
        assert_eq!(value_key, key, "value under the wrong key");
        assert_eq!(
            partition_of[&key],
            message.partition(),
            "{key} consumed from another partition than it was produced to"
        );
        sequences
            .entry(key)
            .or_default()
            .push(sequence.parse().expect("sequence number"));
        per_partition[usize::try_from(message.partition()).expect("partition")] += 1;
    }
    assert_eq!(sequences.len(), 100);
    for (key, got) in &sequences {
        assert_eq!(got, &(0..100).collect::<Vec<u32>>(), "sequence of {key}");
    }
    for (partition, count) in (0..3).zip(per_partition) {
        assert!(count > 0, "partition {partition} got no keys");
        assert_eq!(
            watermarks(&consumer, "keyed", partition),
            (0, count),
            "watermarks of partition {partition}"
        );
    }
}

/// Produces compressible records with `codec`, reads them back, and checks
/// the broker stored the batches as sent (compressed on disk).
async fn codec_round_trip(codec: &str) {
    let broker = TestBroker::start(&[]).await;
    let topic = format!("codec-{codec}");
    broker.create_topic(&topic, 1, &[]).await;
    let producer = broker.producer(&[("compression.type", codec), ("linger.ms", "20")]);
    let until = Instant::now() + DEADLINE;
    let values: Vec<String> = (0..500)
        .map(|i| format!("{codec} record number {i:05}; ").repeat(20))
        .collect();
    let raw: usize = values.iter().map(String::len).sum();
    let keys: Vec<String> = (0..500).map(|i| format!("k{i}")).collect();
    let pending: Vec<DeliveryFuture> = keys
        .iter()
        .zip(&values)
        .map(|(key, value)| {
            enqueue(
                &producer,
                FutureRecord::to(&topic)
                    .key(key.as_str())
                    .payload(value.as_str()),
            )
        })
        .collect();
    for future in pending {
        delivered(future, until).await;
    }

    let consumer = broker.consumer(&[]);
    assign(&consumer, &topic, 1, Offset::Beginning);
    let messages = receive(&consumer, 500, DEADLINE).await;
    for (i, message) in messages.iter().enumerate() {
        assert_eq!(message.offset(), i64::try_from(i).expect("offset"));
        assert_eq!(message.key(), Some(keys[i].as_bytes()), "key {i}");
        assert_eq!(text(message), values[i], "value {i}");
    }
    assert_eq!(watermarks(&consumer, &topic, 0), (0, 500));

    let stored = segment_bytes(broker.dir.path(), &topic, 0);
    if codec == "none" {
        assert!(stored > raw as u64, "{stored} bytes stored for {raw} raw");
    } else {
        assert!(
            stored < raw as u64 / 4,
            "{codec}: {stored} bytes stored for {raw} raw, not compressed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn codec_none() {
    codec_round_trip("none").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn codec_gzip() {
    codec_round_trip("gzip").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn codec_snappy() {
    codec_round_trip("snappy").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn codec_lz4() {
    codec_round_trip("lz4").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn codec_zstd() {
    codec_round_trip("zstd").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_nulls_and_large_values() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("shapes", 1, &[]).await;
    let producer = broker.producer(&[("message.max.bytes", "2000000")]);
    let until = Instant::now() + DEADLINE;

    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "trace",
            value: Some("abc"),
        })
        .insert(Header {
            key: "empty",
            value: Some(""),
        })
        .insert(Header {
            key: "null",
            value: None::<&str>,
        })
        .insert(Header {
            key: "trace",
            value: Some("second"),
        });
    let large: String = (0..900 * 1024)
        .map(|i| char::from(b'a' + u8::try_from(i % 26).expect("letter")))
        .collect();
    let records = [
        FutureRecord::to("shapes")
            .partition(0)
            .key("with-headers")
            .payload("headed")
            .headers(headers),
        FutureRecord::to("shapes").partition(0).payload("no key"),
        FutureRecord::to("shapes").partition(0).key("tombstone"),
        FutureRecord::to("shapes")
            .partition(0)
            .key("large")
            .payload(large.as_str()),
    ];
    for (i, record) in records.into_iter().enumerate() {
        let delivery = delivered(enqueue(&producer, record), until).await;
        assert_eq!(delivery.offset, i64::try_from(i).expect("offset"));
    }

    let consumer = broker.consumer(&[]);
    assign(&consumer, "shapes", 1, Offset::Beginning);
    let messages = receive(&consumer, 4, DEADLINE).await;
    let expected_headers = vec![
        ("trace".to_owned(), Some(b"abc".to_vec())),
        ("empty".to_owned(), Some(Vec::new())),
        ("null".to_owned(), None),
        ("trace".to_owned(), Some(b"second".to_vec())),
    ];
    assert_eq!(headers_of(&messages[0]), expected_headers);
    assert_eq!(messages[0].key(), Some(&b"with-headers"[..]));
    assert_eq!(messages[0].payload(), Some(&b"headed"[..]));

    assert_eq!(messages[1].key(), None, "null key came back non-null");
    assert_eq!(messages[1].payload(), Some(&b"no key"[..]));
    assert!(headers_of(&messages[1]).is_empty());

    assert_eq!(messages[2].key(), Some(&b"tombstone"[..]));
    assert_eq!(messages[2].payload(), None, "tombstone came back non-null");

    assert_eq!(messages[3].key(), Some(&b"large"[..]));
    assert_eq!(messages[3].payload().map(<[u8]>::len), Some(large.len()));
    assert!(
        messages[3].payload() == Some(large.as_bytes()),
        "large value changed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn value_over_topic_limit_is_refused() {
    let broker = TestBroker::start(&[]).await;
    broker
        .create_topic("small", 1, &[("max.message.bytes", "10000")])
        .await;
    // librdkafka's own limit is far above the topic's: the broker refuses.
    let producer = broker.producer(&[("message.max.bytes", "2000000")]);
    let until = Instant::now() + DEADLINE;
    let too_big = "x".repeat(20_000);
    let refused = report(
        enqueue(
            &producer,
            FutureRecord::to("small")
                .partition(0)
                .payload(too_big.as_str()),
        ),
        until,
    )
    .await;
    match refused {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {}
        other => panic!("expected MessageSizeTooLarge, got {other:?}"),
    }
    let fits = "y".repeat(5_000);
    let delivery = delivered(
        enqueue(
            &producer,
            FutureRecord::to("small")
                .partition(0)
                .payload(fits.as_str()),
        ),
        until,
    )
    .await;
    assert_eq!(delivery.offset, 0, "the refused batch took an offset");

    let consumer = broker.consumer(&[]);
    assert_eq!(watermarks(&consumer, "small", 0), (0, 1));
    assign(&consumer, "small", 1, Offset::Beginning);
    let messages = receive(&consumer, 1, DEADLINE).await;
    assert_eq!(text(&messages[0]), fits);
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("millis fit i64")
}

#[tokio::test(flavor = "multi_thread")]
async fn record_rules_refuse_future_timestamps_and_keyless_compacted_records() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("stamps", 1, &[]).await;
    broker
        .create_topic(
            "lenient",
            1,
            &[("message.timestamp.after.max.ms", "86400000")],
        )
        .await;
    broker
        .create_topic("compacted", 1, &[("cleanup.policy", "compact")])
        .await;
    let producer = broker.producer(&[]);
    let until = Instant::now() + DEADLINE;
    let two_hours_ahead = now_ms() + 2 * 3_600_000;
    let future = |topic| {
        FutureRecord::to(topic)
            .partition(0)
            .payload("from the future")
            .timestamp(two_hours_ahead)
    };

    // Kafka 4's default allows timestamps at most one hour ahead.
    match report(enqueue(&producer, future("stamps")), until).await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp)) => {}
        other => panic!("expected InvalidTimestamp, got {other:?}"),
    }
    let lenient = delivered(enqueue(&producer, future("lenient")), until).await;
    assert_eq!(lenient.offset, 0);

    // Keys on a compacted topic, in every codec's framing as librdkafka
    // writes it (compressed batches are inflated for this rule).
    let value = "compressible ".repeat(100);
    for (offset, codec) in (0..).zip(["none", "gzip", "snappy", "lz4", "zstd"]) {
        let producer = broker.producer(&[("compression.codec", codec)]);
        let keyless = FutureRecord::to("compacted")
            .partition(0)
            .payload(value.as_str());
        match report(enqueue(&producer, keyless), until).await {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::InvalidRecord)) => {}
            other => panic!("{codec}: expected InvalidRecord, got {other:?}"),
        }
        let keyed = FutureRecord::to("compacted")
            .partition(0)
            .key("k")
            .payload(value.as_str());
        let delivery = delivered(enqueue(&producer, keyed), until).await;
        assert_eq!(delivery.offset, offset, "{codec}");
    }
    let now = FutureRecord::to("stamps").partition(0).payload("now");
    assert_eq!(delivered(enqueue(&producer, now), until).await.offset, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_all_is_refused_below_min_insync_replicas() {
    let broker = TestBroker::start(&[]).await;
    broker
        .create_topic("strict", 1, &[("min.insync.replicas", "2")])
        .await;
    let until = Instant::now() + DEADLINE;
    // NOT_ENOUGH_REPLICAS is retriable; without retries it is reported at once.
    let all = broker.producer(&[("acks", "all"), ("retries", "0")]);
    let record = FutureRecord::to("strict").partition(0).payload("durable?");
    match report(enqueue(&all, record), until).await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::NotEnoughReplicas)) => {}
        other => panic!("expected NotEnoughReplicas, got {other:?}"),
    }
    let one = broker.producer(&[("acks", "1")]);
    let record = FutureRecord::to("strict")
        .partition(0)
        .payload("leader only");
    assert_eq!(delivered(enqueue(&one, record), until).await.offset, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn offsets_for_times_and_watermarks() {
    let broker = TestBroker::start(&[]).await;
    // Timestamps near the epoch are long past any retention: keep them.
    broker
        .create_topic("times", 1, &[("retention.ms", "-1")])
        .await;
    let producer = broker.producer(&[("linger.ms", "50")]);
    let until = Instant::now() + DEADLINE;
    // Three batches: 1000..=5000, 6000..=10000, then out of order 20000, 15000.
    let batches: [&[i64]; 3] = [
        &[1000, 2000, 3000, 4000, 5000],
        &[6000, 7000, 8000, 9000, 10000],
        &[20000, 15000],
    ];
    let mut offset = 0;
    for batch in batches {
        let values: Vec<String> = batch.iter().map(|t| format!("at {t}")).collect();
        let pending: Vec<DeliveryFuture> = batch
            .iter()
            .zip(&values)
            .map(|(t, value)| {
                let record = FutureRecord::to("times")
                    .partition(0)
                    .payload(value.as_str())
                    .timestamp(*t);
                enqueue(&producer, record)
            })
            .collect();
        for future in pending {
            assert_eq!(delivered(future, until).await.offset, offset);
            offset += 1;
        }
    }

    let consumer = broker.consumer(&[]);
    assert_eq!(watermarks(&consumer, "times", 0), (0, 12));
    let cases = [
        (0, Offset::Offset(0)),
        (1000, Offset::Offset(0)),
        (1001, Offset::Offset(1)),
        (2500, Offset::Offset(2)),
        (5000, Offset::Offset(4)),
        (5001, Offset::Offset(5)),
        (7000, Offset::Offset(6)),
        (10000, Offset::Offset(9)),
        (10001, Offset::Offset(10)),
        (15000, Offset::Offset(10)),
        (20000, Offset::Offset(10)),
        (20001, Offset::End),
    ];
    for (timestamp, expected) in cases {
        assert_eq!(
            offset_for_time(&consumer, "times", timestamp),
            expected,
            "first offset at or after {timestamp}"
        );
    }

    assign(&consumer, "times", 1, Offset::Beginning);
    let messages = receive(&consumer, 12, DEADLINE).await;
    let timestamps: Vec<Timestamp> = messages.iter().map(Message::timestamp).collect();
    let expected: Vec<Timestamp> = batches
        .concat()
        .into_iter()
        .map(Timestamp::CreateTime)
        .collect();
    assert_eq!(timestamps, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_restart() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("durable", 2, &[]).await;
    let producer = broker.producer(&[("acks", "all")]);
    let until = Instant::now() + DEADLINE;
    let values: Vec<String> = (0..1000).map(|i| format!("durable-{i}")).collect();
    let pending: Vec<DeliveryFuture> = values
        .iter()
        .map(|value| {
            let key = value.rsplit('-').next().unwrap_or_default();
            enqueue(
                &producer,
                FutureRecord::to("durable").key(key).payload(value),
            )
        })
        .collect();
    let mut placed: HashMap<String, (i32, i64)> = HashMap::new();
    for (value, future) in values.iter().zip(pending) {
        let delivery = delivered(future, until).await;
        placed.insert(value.clone(), (delivery.partition, delivery.offset));
    }
    let consumer = broker.consumer(&[]);
    let before = [
        watermarks(&consumer, "durable", 0),
        watermarks(&consumer, "durable", 1),
    ];
    assert_eq!(before[0].1 + before[1].1, 1000);
    drop(consumer);
    drop(producer);
    let dir = broker.stop().await;

    let broker = TestBroker::start_in(dir, &[]).await;
    let consumer = broker.consumer(&[]);
    let after = [
        watermarks(&consumer, "durable", 0),
        watermarks(&consumer, "durable", 1),
    ];
    assert_eq!(after, before, "watermarks changed across the restart");
    assign(&consumer, "durable", 2, Offset::Beginning);
    let messages = receive(&consumer, 1000, DEADLINE).await;
    for message in &messages {
        let value = text(message);
        assert_eq!(
            placed.remove(&value),
            Some((message.partition(), message.offset())),
            "{value} not where it was acknowledged (or received twice)"
        );
    }
    assert!(placed.is_empty(), "{} messages missing", placed.len());

    // The restarted broker keeps appending after the recovered end.
    let producer = broker.producer(&[("acks", "all")]);
    let delivery = delivered(
        enqueue(
            &producer,
            FutureRecord::to("durable").partition(0).payload("after"),
        ),
        Instant::now() + DEADLINE,
    )
    .await;
    assert_eq!(delivery.offset, before[0].1);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotent_producer_exactly_once_in_order() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("idem", 1, &[]).await;
    let producer = broker.producer(&[
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("batch.num.messages", "50"),
        ("linger.ms", "1"),
    ]);
    let until = Instant::now() + BULK_DEADLINE;
    let values: Vec<String> = (0..5000).map(|i| format!("idem-{i}")).collect();
    let pending: Vec<DeliveryFuture> = values
        .iter()
        .map(|value| {
            enqueue(
                &producer,
                FutureRecord::to("idem").partition(0).payload(value),
            )
        })
        .collect();
    for (i, future) in pending.into_iter().enumerate() {
        let delivery = delivered(future, until).await;
        assert_eq!(
            delivery.offset,
            i64::try_from(i).expect("offset"),
            "offset of {i}"
        );
    }

    let consumer = broker.consumer(&[]);
    assign(&consumer, "idem", 1, Offset::Beginning);
    let messages = receive(&consumer, 5000, BULK_DEADLINE).await;
    for (i, message) in messages.iter().enumerate() {
        assert_eq!(message.offset(), i64::try_from(i).expect("offset"));
        assert_eq!(text(message), values[i]);
    }
    assert_eq!(watermarks(&consumer, "idem", 0), (0, 5000));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_moves_low_watermark() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("trim", 1, &[]).await;
    let producer = broker.producer(&[]);
    let values: Vec<String> = (0..100).map(|i| format!("trim-{i}")).collect();
    produce_in_order(&producer, "trim", &values).await;

    let admin = broker.admin();
    let delete = |offset: Offset| {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset("trim", 0, offset)
            .expect("offset");
        let admin = &admin;
        async move {
            let result = admin
                .delete_records(&list, &options())
                .await
                .expect("delete records request");
            let element = result.find_partition("trim", 0).expect("partition 0");
            element.error().map(|()| element.offset())
        }
    };
    assert_eq!(delete(Offset::Offset(50)).await, Ok(Offset::Offset(50)));
    // Below the log start: nothing to do, the low watermark stays.
    assert_eq!(delete(Offset::Offset(30)).await, Ok(Offset::Offset(50)));
    // Past the high watermark.
    assert_eq!(
        delete(Offset::Offset(1000)).await,
        Err(KafkaError::OffsetFetch(RDKafkaErrorCode::OffsetOutOfRange))
    );

    let consumer = broker.consumer(&[]);
    assert_eq!(watermarks(&consumer, "trim", 0), (50, 100));
    assign(&consumer, "trim", 1, Offset::Beginning);
    let messages = receive(&consumer, 50, DEADLINE).await;
    for (message, offset) in messages.iter().zip(50..) {
        assert_eq!(message.offset(), offset);
        assert_eq!(
            text(message),
            values[usize::try_from(offset).expect("index")]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_records_inside_a_batch() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("split", 1, &[]).await;
    // One batch of 100 records (offsets 0..=99), timestamps base + 10 * i.
    let producer = broker.producer(&[("linger.ms", "100")]);
    let base = strom::log::now_ms();
    let values: Vec<String> = (0..100).map(|i| format!("split-{i}")).collect();
    let pending: Vec<DeliveryFuture> = values
        .iter()
        .zip(0..)
        .map(|(value, i)| {
            let record = FutureRecord::to("split")
                .partition(0)
                .payload(value.as_str())
                .timestamp(base + 10 * i);
            enqueue(&producer, record)
        })
        .collect();
    let until = Instant::now() + DEADLINE;
    for future in pending {
        delivered(future, until).await;
    }

    let mut list = TopicPartitionList::new();
    list.add_partition_offset("split", 0, Offset::Offset(50))
        .expect("offset");
    let result = broker
        .admin()
        .delete_records(&list, &options())
        .await
        .expect("delete records request");
    let element = result.find_partition("split", 0).expect("partition 0");
    assert_eq!(
        element.error().map(|()| element.offset()),
        Ok(Offset::Offset(50))
    );

    let consumer = broker.consumer(&[]);
    assert_eq!(watermarks(&consumer, "split", 0), (50, 100));
    // The fetch at 50 returns the whole batch from offset 0; librdkafka
    // must drop the records below 50.
    assign(&consumer, "split", 1, Offset::Beginning);
    let messages = receive(&consumer, 50, DEADLINE).await;
    for (message, offset) in messages.iter().zip(50..) {
        assert_eq!(message.offset(), offset);
        assert_eq!(
            text(message),
            values[usize::try_from(offset).expect("index")]
        );
    }

    assert_eq!(
        offset_for_time(&consumer, "split", base + 600),
        Offset::Offset(60)
    );
    // Kafka answers the first offset at or after the log start whose
    // timestamp is at least the one asked for, also when the batch holding
    // it starts below the log start.
    assert_eq!(
        offset_for_time(&consumer, "split", base + 200),
        Offset::Offset(50),
        "timestamp of a deleted record"
    );
    assert_eq!(
        offset_for_time(&consumer, "split", 0),
        Offset::Offset(50),
        "timestamp 0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_old_segments() {
    let broker = TestBroker::start(&[("log.retention.check.interval.ms", "100")]).await;
    broker
        .create_topic(
            "aging",
            1,
            &[("retention.ms", "1000"), ("segment.ms", "100")],
        )
        .await;
    let producer = broker.producer(&[]);
    let consumer = broker.consumer(&[]);
    let hour_ago = strom::log::now_ms() - 3_600_000;
    let until = Instant::now() + DEADLINE;
    // Each append after segment.ms rolls the segment; the maintenance pass
    // then deletes the closed one, whose records are an hour old.
    let mut last = None;
    for i in 0.. {
        assert!(
            Instant::now() < until,
            "low watermark still 0 after {i} messages"
        );
        let value = format!("aging-{i}");
        let record = FutureRecord::to("aging")
            .partition(0)
            .payload(value.as_str())
            .timestamp(hour_ago + i);
        let delivery = delivered(enqueue(&producer, record), until).await;
        last = Some((value, delivery.offset));
        if watermarks(&consumer, "aging", 0).0 > 0 {
            break;
        }
        // Poll interval, not a wait for luck: the loop ends on the condition.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (last_value, last_offset) = last.expect("produced");
    let (low, high) = watermarks(&consumer, "aging", 0);
    assert!(low > 0 && low <= last_offset, "low watermark {low}");
    assert_eq!(high, last_offset + 1);
    assert!(
        !broker
            .dir
            .path()
            .join(format!("logs/aging-0/{:020}.log", 0))
            .exists(),
        "first segment still on disk"
    );

    assign(&consumer, "aging", 1, Offset::Beginning);
    let messages = receive(
        &consumer,
        usize::try_from(high - low).expect("count"),
        DEADLINE,
    )
    .await;
    assert_eq!(
        messages[0].offset(),
        low,
        "consumption starts at the log start"
    );
    let newest = messages.last().expect("newest");
    assert_eq!(newest.offset(), last_offset);
    assert_eq!(text(newest), last_value);
}
