//! Transactions through librdkafka (the rdkafka crate): a transactional
//! producer committing and aborting across two partitions, read back by
//! read_committed and read_uncommitted consumers; a consume-transform-produce
//! loop with the consumer's offsets sent to the transaction (KIP-447 group
//! metadata) and every third transaction aborted; a second producer with the
//! same transactional.id fencing the first.
//!
//! Every read goes to the end of the log: a fresh consumer (assign, no
//! group) polls until the expected records arrived AND its position on every
//! partition reached the high watermark, so it stepped over every marker and
//! anything it should not see would have come; then the records are compared
//! exactly. The clients are blocking librdkafka handles, driven inside
//! `block_in_place`.
//!
//! `STROM_EXTERNAL_BOOTSTRAP=host:port` runs these tests against that broker
//! instead of an in-process strom (e.g. Apache Kafka, to check the tests
//! themselves); topic names and transactional ids are unique per run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::support::{options, TestBroker, DEADLINE};

/// The broker under test: an in-process strom, or the one named by
/// `STROM_EXTERNAL_BOOTSTRAP`.
struct Target {
    _broker: Option<TestBroker>,
    bootstrap: String,
}

impl Target {
    async fn start() -> Self {
        match std::env::var("STROM_EXTERNAL_BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.is_empty() => Self {
                _broker: None,
                bootstrap,
            },
            _ => {
                let broker = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
                let bootstrap = broker.bootstrap();
                Self {
                    _broker: Some(broker),
                    bootstrap,
                }
            }
        }
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("socket.timeout.ms", "10000");
        config
    }

    async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().expect("admin");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let created = admin
            .create_topics([&topic], &options())
            .await
            .expect("create topics request");
        assert_eq!(created, vec![Ok(name.to_owned())], "create {name}");
    }

    /// A transactional producer with `init_transactions` done (blocking).
    fn txn_producer(&self, transactional_id: &str) -> BaseProducer {
        let producer: BaseProducer = self
            .config()
            .set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", "60000")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "20000")
            .create()
            .expect("transactional producer");
        producer
            .init_transactions(DEADLINE)
            .expect("init_transactions");
        producer
    }

    /// A consumer with `isolation.level` `isolation`, in `group` (to
    /// subscribe) or in a throwaway group for `assign` only.
    fn consumer(&self, isolation: &str, group: Option<&str>) -> BaseConsumer {
        let assign_group = unique("rdkafka-txn-assign");
        self.config()
            .set("group.id", group.unwrap_or(&assign_group))
            .set("isolation.level", isolation)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer")
    }

    /// High watermarks of partitions `0..partitions`, asked by a
    /// read_uncommitted client (librdkafka asks ListOffsets with the
    /// client's isolation level).
    fn high_watermarks(&self, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        let c = self.consumer("read_uncommitted", None);
        (0..partitions)
            .map(|p| {
                let (_, high) = c.fetch_watermarks(topic, p, DEADLINE).expect("watermarks");
                (p, high)
            })
            .collect()
    }

    /// A fresh consumer reads partitions `0..partitions` of `topic` from the
    /// beginning until it has at least `n` records and its position on
    /// every partition reached the high watermark.
    fn read_to_end(
        &self,
        topic: &str,
        partitions: i32,
        isolation: &str,
        n: usize,
    ) -> Vec<OwnedMessage> {
        let hw = self.high_watermarks(topic, partitions);
        let c = self.consumer(isolation, None);
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition_offset(topic, p, Offset::Beginning)
                .expect("offset");
        }
        c.assign(&list).expect("assign");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                got.push(m.expect("consumer error").detach());
                continue;
            }
            let pos = positions(&c);
            if got.len() >= n && hw.iter().all(|(p, h)| pos.get(p).is_some_and(|o| o >= h)) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{isolation} consumer of {topic}: {} of {n} records, position {pos:?}, high watermarks {hw:?}",
                got.len()
            );
        }
    }
}

/// `name` with a suffix unique to this process and moment.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "{name}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// The consumer's position per assigned partition (absent: not known yet).
fn positions(c: &BaseConsumer) -> BTreeMap<i32, i64> {
    c.position()
        .expect("position")
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Values per partition in consumed order; offsets must strictly increase.
fn values_by_partition(messages: &[OwnedMessage], what: &str) -> BTreeMap<i32, Vec<String>> {
    let mut out: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for m in messages {
        if let Some(prev) = last.insert(m.partition(), m.offset()) {
            assert!(
                prev < m.offset(),
                "{what}: partition {} offset {} after {prev}",
                m.partition(),
                m.offset()
            );
        }
        out.entry(m.partition())
            .or_default()
            .push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
    }
    out
}

/// A record to send: (partition, key, value).
type Rec<'a> = (i32, Option<&'a [u8]>, &'a [u8]);

/// Sends `(partition, key, value)` records and waits until all are written.
fn send(producer: &BaseProducer, topic: &str, records: &[Rec<'_>]) -> KafkaResult<()> {
    for (partition, key, value) in records {
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).partition(*partition).payload(*value);
        if let Some(key) = key {
            record = record.key(*key);
        }
        producer.send(record).map_err(|(e, _)| e)?;
    }
    producer.flush(DEADLINE)
}

fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_commit_read_committed_and_uncommitted() {
    let target = Target::start().await;
    let topic = unique("rdkafka-txn-commit");
    target.create_topic(&topic, 2).await;
    let values: BTreeMap<i32, Vec<String>> = (0..2)
        .map(|p| (p, (0..10).map(|i| format!("commit-{p}-{i}")).collect()))
        .collect();
    tokio::task::block_in_place(|| {
        let producer = target.txn_producer(&format!("{topic}-txn"));
        producer.begin_transaction().expect("begin");
        let records: Vec<Rec<'_>> = values
            .iter()
            .flat_map(|(p, vs)| vs.iter().map(move |v| (*p, None, v.as_bytes())))
            .collect();
        send(&producer, &topic, &records).expect("send");

        // Open transaction: read_uncommitted gets the records; read_committed,
        // fetching over the same time and longer, none.
        let rc = target.consumer("read_committed", None);
        let mut list = TopicPartitionList::new();
        for p in 0..2 {
            list.add_partition_offset(&topic, p, Offset::Beginning)
                .expect("offset");
        }
        rc.assign(&list).expect("assign");
        let open = target.read_to_end(&topic, 2, "read_uncommitted", 20);
        assert_eq!(values_by_partition(&open, "read_uncommitted, open"), values);
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            if let Some(m) = rc.poll(Duration::from_millis(100)) {
                panic!(
                    "read_committed consumer got a record of an open transaction: {:?}",
                    m.map(|m| m.detach())
                );
            }
        }
        producer.commit_transaction(DEADLINE).expect("commit");
        let mut after = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        while after.len() < 20 {
            assert!(
                Instant::now() < deadline,
                "read_committed after the commit: {} of 20",
                after.len()
            );
            if let Some(m) = rc.poll(Duration::from_millis(100)) {
                after.push(m.expect("consumer error").detach());
            }
        }
        assert_eq!(
            values_by_partition(&after, "read_committed after the commit"),
            values
        );

        for isolation in ["read_committed", "read_uncommitted"] {
            let got = target.read_to_end(&topic, 2, isolation, 20);
            assert_eq!(values_by_partition(&got, isolation), values, "{isolation}");
        }
        // 10 records and the commit marker on each partition.
        assert_eq!(
            target.high_watermarks(&topic, 2),
            BTreeMap::from([(0, 11), (1, 11)])
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_abort_skipped_by_read_committed() {
    let target = Target::start().await;
    let topic = unique("rdkafka-txn-abort");
    target.create_topic(&topic, 2).await;
    tokio::task::block_in_place(|| {
        let producer = target.txn_producer(&format!("{topic}-txn"));
        let mut committed: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        let mut all: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for name in ["first", "second", "third"] {
            let abort = name == "second";
            let values: Vec<(i32, String)> = (0..2)
                .flat_map(|p| (0..3).map(move |i| (p, format!("{name}-{p}-{i}"))))
                .collect();
            for (p, v) in &values {
                all.entry(*p).or_default().push(v.clone());
                if !abort {
                    committed.entry(*p).or_default().push(v.clone());
                }
            }
            producer.begin_transaction().expect("begin");
            let records: Vec<Rec<'_>> = values
                .iter()
                .map(|(p, v)| (*p, None, v.as_bytes()))
                .collect();
            send(&producer, &topic, &records).expect("send");
            if abort {
                producer.abort_transaction(DEADLINE).expect("abort");
            } else {
                producer.commit_transaction(DEADLINE).expect("commit");
            }
        }
        let got = target.read_to_end(&topic, 2, "read_committed", 12);
        assert_eq!(values_by_partition(&got, "read_committed"), committed);
        let got = target.read_to_end(&topic, 2, "read_uncommitted", 18);
        assert_eq!(values_by_partition(&got, "read_uncommitted"), all);
        // 9 records and 3 markers on each partition.
        assert_eq!(
            target.high_watermarks(&topic, 2),
            BTreeMap::from([(0, 12), (1, 12)])
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_consume_transform_produce() {
    let target = Target::start().await;
    let src = unique("rdkafka-txn-ctp-in");
    let dst = unique("rdkafka-txn-ctp-out");
    let group = unique("rdkafka-txn-ctp-g");
    target.create_topic(&src, 2).await;
    target.create_topic(&dst, 2).await;
    let n = 60usize;
    tokio::task::block_in_place(|| {
        let plain: BaseProducer = target.config().create().expect("producer");
        let inputs: Vec<(i32, String, String)> = (0..n)
            .map(|i| ((i % 2) as i32, format!("k{i}"), format!("in-{i:03}")))
            .collect();
        let records: Vec<Rec<'_>> = inputs
            .iter()
            .map(|(p, k, v)| (*p, Some(k.as_bytes()), v.as_bytes()))
            .collect();
        send(&plain, &src, &records).expect("fill the input topic");
        let end = BTreeMap::from([(0, (n / 2) as i64), (1, (n / 2) as i64)]);

        let consumer = target.consumer("read_committed", Some(&group));
        consumer.subscribe(&[&src]).expect("subscribe");
        let producer = target.txn_producer(&format!("{group}-txn"));
        let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
        let (mut batches, mut commits, mut aborts, mut aborted_records) = (0, 0, 0, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        while committed != end {
            assert!(
                Instant::now() < deadline,
                "committed {committed:?} of {end:?} after {batches} batches"
            );
            // A batch: up to 7 records, as far as they come without waiting.
            let mut batch = Vec::new();
            while batch.len() < 7 {
                match consumer.poll(Duration::from_millis(if batch.is_empty() {
                    100
                } else {
                    0
                })) {
                    Some(m) => batch.push(m.expect("consumer error").detach()),
                    None => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            batches += 1;
            producer.begin_transaction().expect("begin");
            let out: Vec<(i32, Vec<u8>, String)> = batch
                .iter()
                .map(|m| {
                    let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                    (
                        m.partition(),
                        m.key().unwrap_or_default().to_vec(),
                        format!("out-{}", &v[3..]),
                    )
                })
                .collect();
            let records: Vec<Rec<'_>> = out
                .iter()
                .map(|(p, k, v)| (*p, Some(k.as_slice()), v.as_bytes()))
                .collect();
            send(&producer, &dst, &records).expect("send");
            let mut offsets: BTreeMap<i32, i64> = BTreeMap::new();
            for m in &batch {
                let next = offsets.entry(m.partition()).or_insert(0);
                *next = (*next).max(m.offset() + 1);
            }
            let mut list = TopicPartitionList::new();
            for (p, o) in &offsets {
                list.add_partition_offset(&src, *p, Offset::Offset(*o))
                    .expect("offset");
            }
            let metadata = consumer.group_metadata().expect("group metadata");
            producer
                .send_offsets_to_transaction(&list, &metadata, DEADLINE)
                .expect("send_offsets_to_transaction");
            if batches % 3 == 0 {
                // Aborted: output and offsets discarded; rewind to the last
                // committed position, as an EOS application does.
                producer.abort_transaction(DEADLINE).expect("abort");
                aborts += 1;
                aborted_records += batch.len();
                for p in offsets.keys() {
                    let back = Offset::Offset(committed.get(p).copied().unwrap_or(0));
                    consumer.seek(&src, *p, back, DEADLINE).expect("seek back");
                }
            } else {
                producer.commit_transaction(DEADLINE).expect("commit");
                commits += 1;
                committed.extend(offsets);
            }
        }
        assert!(
            aborts >= 1 && commits >= 2,
            "commits {commits}, aborts {aborts}"
        );

        let mut list = TopicPartitionList::new();
        list.add_partition(&src, 0);
        list.add_partition(&src, 1);
        let group_offsets: BTreeMap<i32, Offset> = consumer
            .committed_offsets(list, DEADLINE)
            .expect("committed offsets")
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect();
        let want_offsets: BTreeMap<i32, Offset> =
            end.iter().map(|(p, o)| (*p, Offset::Offset(*o))).collect();
        assert_eq!(
            group_offsets, want_offsets,
            "group offsets after the last transaction"
        );
        drop(consumer);

        let mut want: BTreeMap<i32, Vec<String>> = BTreeMap::new();
        for i in 0..n {
            want.entry((i % 2) as i32)
                .or_default()
                .push(format!("out-{i:03}"));
        }
        let got = target.read_to_end(&dst, 2, "read_committed", n);
        let mut got = values_by_partition(&got, "read_committed output");
        got.values_mut().for_each(|v| v.sort());
        assert_eq!(
            got, want,
            "read_committed output: each input's transform exactly once"
        );
        let all = target.read_to_end(&dst, 2, "read_uncommitted", n + aborted_records);
        assert_eq!(
            all.len(),
            n + aborted_records,
            "read_uncommitted output, aborted transactions included"
        );
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn txn_fencing() {
    let target = Target::start().await;
    let topic = unique("rdkafka-txn-fencing");
    let tid = format!("{topic}-txn");
    target.create_topic(&topic, 1).await;
    tokio::task::block_in_place(|| {
        let p1 = target.txn_producer(&tid);
        p1.begin_transaction().expect("begin");
        send(&p1, &topic, &[(0, None, b"p1-committed")]).expect("send");
        p1.commit_transaction(DEADLINE).expect("commit");
        p1.begin_transaction().expect("begin");
        send(&p1, &topic, &[(0, None, b"p1-open")]).expect("send");

        // Same transactional.id: InitProducerId aborts p1's open transaction
        // and bumps the epoch.
        let p2 = target.txn_producer(&tid);
        let err = send(&p1, &topic, &[(0, None, b"p1-zombie")])
            .and_then(|()| p1.commit_transaction(DEADLINE))
            .expect_err("the fenced producer's send and commit succeeded");
        assert!(
            is_fenced(&err),
            "fenced producer failed with {err}, not a fenced error"
        );

        p2.begin_transaction().expect("begin");
        send(&p2, &topic, &[(0, None, b"p2-committed")]).expect("send");
        p2.commit_transaction(DEADLINE).expect("commit");

        let got = target.read_to_end(&topic, 1, "read_committed", 2);
        assert_eq!(
            values_by_partition(&got, "read_committed"),
            BTreeMap::from([(
                0,
                vec!["p1-committed".to_owned(), "p2-committed".to_owned()]
            )])
        );
    });
}
