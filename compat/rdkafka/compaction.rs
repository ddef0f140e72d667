//! Log compaction end to end: 100,000 records over 1,000 keys into a
//! compacted topic, the broker's own cleaner thread, and a consumer from
//! the beginning that must see one record per key at the offset it was
//! produced at, with the latest value; tombstones go after
//! `delete.retention.ms`. A Streams-style changelog (the same keys written
//! over and over) keeps a bounded size on disk.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset};
use tokio::time::Instant;

use crate::support::{assign, watermarks, TestBroker};

const TOPIC: &str = "compacted";
const RECORDS: usize = 100_000;
const KEYS: usize = 1_000;
/// Keys whose last record is a tombstone.
const DELETED: usize = 10;

/// Every (offset, key, value) of partition 0 of `topic` from the log start
/// to the high watermark (whose last offset must be a record).
async fn read_all(consumer: &StreamConsumer, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let (_, high) = watermarks(consumer, topic, 0);
    assign(consumer, topic, 1, Offset::Beginning);
    let until = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.last().is_none_or(|(o, _, _)| *o < high - 1) {
        let message = tokio::time::timeout_at(until, consumer.recv())
            .await
            .expect("records before the deadline")
            .expect("consumer error");
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        out.push((
            message.offset(),
            text(message.key()).expect("key"),
            text(message.payload()),
        ));
    }
    out
}

async fn send(producer: &FutureProducer, key: &str, value: Option<&str>) -> i64 {
    let mut record = FutureRecord::<str, str>::to(TOPIC).partition(0).key(key);
    if let Some(value) = value {
        record = record.payload(value);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .expect("delivered")
        .offset
}

/// Produces a sentinel (a roll once `segment.ms` has passed, so the data
/// lands in closed segments) every 100 ms until `done` holds.
async fn poll_until(producer: &FutureProducer, what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < until, "{what}: not before the deadline");
        send(producer, "sentinel", Some("s")).await;
        // Poll interval, not a wait for luck: the loop ends on the condition.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_the_latest_value_per_key_at_its_offset() {
    let broker = TestBroker::start(&[("log.cleaner.backoff.ms", "50")]).await;
    broker
        .create_topic(
            TOPIC,
            1,
            &[
                ("cleanup.policy", "compact"),
                ("segment.bytes", "1048576"),
                ("segment.ms", "500"),
                ("min.cleanable.dirty.ratio", "0.01"),
                ("delete.retention.ms", "1500"),
                ("compression.type", "producer"),
            ],
        )
        .await;
    let producer = broker.producer(&[("linger.ms", "5"), ("compression.type", "lz4")]);
    let padding = "p".repeat(150);
    let mut latest: HashMap<String, (i64, Option<String>)> = HashMap::new();
    let mut pending = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("k{}", i % KEYS);
        let value = format!("v{i}-{padding}");
        let future = loop {
            let record = FutureRecord::to(TOPIC)
                .partition(0)
                .key(&key)
                .payload(&value);
            match producer.send_result(record) {
                Ok(future) => break future,
                // Queue full: let deliveries drain (the loop ends on success).
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        pending.push((key, Some(value), future));
    }
    for (key, value, future) in pending {
        let offset = future
            .await
            .expect("not cancelled")
            .expect("delivered")
            .offset;
        latest.insert(key, (offset, value));
    }
    for k in 0..DELETED {
        let key = format!("k{k}");
        let offset = send(&producer, &key, None).await;
        latest.insert(key, (offset, None));
    }
    let last_data = latest.values().map(|(o, _)| *o).max().expect("offsets");
    let log = broker.running.broker().logs.get(TOPIC, 0).expect("log");
    poll_until(&producer, "cleaned past the data", || {
        log.cleaner_checkpoint() > last_data
    })
    .await;

    let consumer = broker.consumer(&[]);
    let check = |records: &[(i64, String, Option<String>)]| {
        let data: Vec<_> = records.iter().filter(|r| r.0 <= last_data).collect();
        assert!(data.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
        let mut seen = HashMap::new();
        for (offset, key, value) in &data {
            assert!(seen.insert(key.clone(), *offset).is_none(), "{key} twice");
            assert_eq!(latest.get(key), Some(&(*offset, value.clone())), "{key}");
        }
        for (key, (offset, value)) in &latest {
            if value.is_some() {
                assert_eq!(seen.get(key), Some(offset), "{key} missing");
            }
        }
        data.iter().filter(|r| r.2.is_none()).count()
    };
    let records = read_all(&consumer, TOPIC).await;
    let tombstones = check(&records);
    assert!(records.len() < KEYS + 200, "{} records left", records.len());
    println!(
        "after the first clean: {} records, {tombstones} tombstones",
        records.len()
    );

    // Later cleans drop the tombstones once delete.retention.ms has passed.
    let mut left = tombstones;
    let until = Instant::now() + Duration::from_secs(60);
    while left > 0 {
        assert!(Instant::now() < until, "{left} tombstones still there");
        let checkpoint = log.cleaner_checkpoint();
        poll_until(&producer, "cleaned again", || {
            log.cleaner_checkpoint() > checkpoint
        })
        .await;
        let consumer = broker.consumer(&[]);
        left = check(&read_all(&consumer, TOPIC).await);
    }
}

/// The changelog of `a_changelog_stays_small`.
const CHANGELOG: &str = "store-changelog";
/// Keys of the store, rounds of updates (every key once per round), and
/// the value size.
const STORE_KEYS: usize = 1_000;
const ROUNDS: usize = 60;
const VALUE_BYTES: usize = 200;
/// Rounds between two size checks.
const CHECK_EVERY: usize = 10;
const SEGMENT_BYTES: u64 = 1_048_576;

/// Bytes of every file in `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("partition dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .metadata()
                .expect("metadata")
                .len()
        })
        .sum()
}

/// A Kafka Streams state store's changelog: a compacted topic written with
/// the same keys over and over (here [`ROUNDS`] updates of each of
/// [`STORE_KEYS`] keys, ~15 MB in all). Every [`CHECK_EVERY`] rounds the
/// partition's files must come down (a condition with a deadline, while
/// the cleaner runs) below three times the size of one value per key plus
/// one active segment, and stay there to the end: the log does not grow
/// with the number of updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_stays_small() {
    let broker = TestBroker::start(&[("log.cleaner.backoff.ms", "50")]).await;
    broker
        .create_topic(
            CHANGELOG,
            1,
            &[
                ("cleanup.policy", "compact"),
                ("segment.bytes", "1048576"),
                ("segment.ms", "500"),
                ("min.cleanable.dirty.ratio", "0.01"),
            ],
        )
        .await;
    let dir = broker
        .dir
        .path()
        .join("logs")
        .join(format!("{CHANGELOG}-0"));
    assert!(dir.is_dir(), "{} exists", dir.display());
    let producer = broker.producer(&[("linger.ms", "5")]);
    let padding = "v".repeat(VALUE_BYTES);
    // One record on disk: the value, the key, record and batch overhead.
    let record_bytes = u64::try_from(VALUE_BYTES + 100).expect("small");
    let bound = 3 * STORE_KEYS as u64 * record_bytes + SEGMENT_BYTES;
    let mut written = 0u64;
    let mut sizes = Vec::new();
    for round in 0..ROUNDS {
        let mut pending = Vec::with_capacity(STORE_KEYS);
        for k in 0..STORE_KEYS {
            let key = format!("key-{k}");
            let value = format!("{round}:{padding}");
            written += u64::try_from(key.len() + value.len()).expect("small");
            let future = loop {
                let record = FutureRecord::to(CHANGELOG)
                    .partition(0)
                    .key(&key)
                    .payload(&value);
                match producer.send_result(record) {
                    Ok(future) => break future,
                    // Queue full: let deliveries drain (the loop ends on success).
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            };
            pending.push(future);
        }
        for future in pending {
            future.await.expect("not cancelled").expect("delivered");
        }
        if (round + 1) % CHECK_EVERY == 0 {
            let before = dir_size(&dir);
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                let size = dir_size(&dir);
                if size <= bound {
                    sizes.push((round + 1, before, size));
                    break;
                }
                assert!(
                    Instant::now() < until,
                    "after {} rounds ({written} bytes of keys and values written) the \
                     partition holds {size} bytes, over {bound}: files {:?}",
                    round + 1,
                    std::fs::read_dir(&dir)
                        .expect("dir")
                        .map(|e| {
                            let e = e.expect("entry");
                            (e.file_name(), e.metadata().expect("metadata").len())
                        })
                        .collect::<Vec<_>>()
                );
                // Poll interval: the loop ends on the condition.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    println!(
        "{ROUNDS} rounds over {STORE_KEYS} keys, {written} bytes written; partition size \
         (rounds, before the wait, after) {sizes:?}, bound {bound}"
    );
}

/// Transaction markers in the log, from its start to the high watermark
/// (read straight from the partition).
fn markers(log: &strom::log::PartitionLog) -> usize {
    let mut offset = log.offsets().log_start_offset;
    let mut found = 0;
    loop {
        let read = log.read(offset, 1 << 20, None).expect("read the log");
        let Some(region) = read.records else {
            return found;
        };
        let bytes = region.read().expect("read the batches");
        let mut at = 0;
        while at < bytes.len() {
            let header = strom::log::BatchHeader::parse(&bytes[at..]).expect("a batch");
            if header.is_control() {
                found += 1;
            }
            offset = header.last_offset() + 1;
            at += header.size;
        }
    }
}

/// Transactions into a compacted topic (the same 10 keys in each, every
/// third aborted): the cleaner drops aborted data at once and each marker
/// once no data of its transaction is left and `delete.retention.ms` has
/// passed, until only the last transaction's marker is there; read
/// committed still returns the last committed value of each key, and after
/// a restart nothing is left open (last stable offset = high watermark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_markers_go_with_their_data() {
    const TXN_TOPIC: &str = "txn-compacted";
    const TRANSACTIONS: usize = 30;
    let settings = [("log.cleaner.backoff.ms", "50")];
    let broker = TestBroker::start(&settings).await;
    broker
        .create_topic(
            TXN_TOPIC,
            1,
            &[
                ("cleanup.policy", "compact"),
                ("segment.ms", "300"),
                ("min.cleanable.dirty.ratio", "0.01"),
                ("delete.retention.ms", "1000"),
            ],
        )
        .await;
    let producer = broker.producer(&[("transactional.id", "compacted-txn"), ("linger.ms", "5")]);
    producer
        .init_transactions(Duration::from_secs(30))
        .expect("init_transactions");
    let mut committed: HashMap<String, String> = HashMap::new();
    for t in 0..TRANSACTIONS {
        producer.begin_transaction().expect("begin");
        let mut values = HashMap::new();
        for k in 0..10 {
            let (key, value) = (format!("k{k}"), format!("t{t}-{k}"));
            producer
                .send(
                    FutureRecord::to(TXN_TOPIC)
                        .partition(0)
                        .key(&key)
                        .payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .expect("delivered");
            values.insert(key, value);
        }
        if t % 3 == 1 {
            producer
                .abort_transaction(Duration::from_secs(30))
                .expect("abort");
        } else {
            producer
                .commit_transaction(Duration::from_secs(30))
                .expect("commit");
            committed.extend(values);
        }
        // Segments roll by time: each transaction in a segment of its own.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let log = broker.running.broker().logs.get(TXN_TOPIC, 0).expect("log");
    // The cleaner is already at work (a marker per transaction was written;
    // without them read_committed below would never get past the first).
    let plain = broker.producer(&[("linger.ms", "0")]);
    let until = Instant::now() + Duration::from_secs(90);
    while markers(&log) > 1 {
        assert!(Instant::now() < until, "{} markers left", markers(&log));
        // Rolls segments so the last transaction's becomes cleanable.
        let sentinel = FutureRecord::to(TXN_TOPIC)
            .partition(0)
            .key("sentinel")
            .payload("s");
        plain
            .send(sentinel, Duration::from_secs(10))
            .await
            .expect("delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let check = |broker: &TestBroker| {
        let consumer = broker.consumer(&[("isolation.level", "read_committed")]);
        async move {
            let mut seen = HashMap::new();
            for (_, key, value) in read_all(&consumer, TXN_TOPIC).await {
                if key != "sentinel" {
                    assert!(
                        seen.insert(key.clone(), value.clone()).is_none(),
                        "{key} twice"
                    );
                }
            }
            seen
        }
    };
    let seen = check(&broker).await;
    let expected: HashMap<String, Option<String>> = committed
        .iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    assert_eq!(
        seen, expected,
        "read_committed: the last committed value of each key"
    );

    drop((log, producer, plain));
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &settings).await;
    let log = broker.running.broker().logs.get(TXN_TOPIC, 0).expect("log");
    let offsets = log.offsets();
    assert_eq!(
        offsets.last_stable_offset, offsets.high_watermark,
        "nothing open after a restart"
    );
    assert_eq!(check(&broker).await, expected, "after a restart");
}
