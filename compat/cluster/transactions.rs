//! Transactions across brokers: a transactional producer whose
//! coordinator, partition leaders and group coordinator are spread over
//! the three nodes (markers go to the leaders with WriteTxnMarkers,
//! writes are verified with the coordinator by AddPartitionsToTxn).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::{topic, Cluster, START_DEADLINE};

const DEADLINE: Duration = Duration::from_secs(30);

/// 30 transactions, each writing one record to each of three partitions
/// led by three different nodes and committing the consumed input's
/// offset (send_offsets_to_transaction); every third aborts. Then:
/// read_committed reads exactly the committed records, in order, on every
/// partition (no hanging transaction holds the last stable offset back),
/// read_uncommitted sees the aborted ones too, and the group's committed
/// offset is the last committed transaction's.
#[test]
fn transactions_span_the_brokers() {
    let cluster = Cluster::start(3);
    cluster.create_topic(&[1], "txn-out", 3, 3);
    cluster.create_topic(&[1], "txn-in", 1, 3);
    let m = cluster.wait_metadata(1, "three leaders", |m| {
        topic(m, "txn-out").is_some_and(|t| {
            let mut leaders: Vec<i32> = t.partitions.iter().map(|p| p.leader_id.0).collect();
            leaders.sort_unstable();
            leaders == [1, 2, 3]
        })
    });
    let leaders: Vec<i32> = topic(&m, "txn-out")
        .map(|t| t.partitions.iter().map(|p| p.leader_id.0).collect())
        .unwrap_or_default();
    let bootstrap = cluster.bootstrap(&[1, 2, 3]);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "across-brokers")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    producer.init_transactions(DEADLINE).expect("init");
    let group = "txn-across";
    let input: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut expected: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut all: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut last_committed = -1;
    for t in 0..30 {
        producer.begin_transaction().expect("begin");
        for partition in 0..3 {
            let value = format!("t{t}-p{partition}");
            producer
                .send(
                    BaseRecord::<(), String>::to("txn-out")
                        .partition(partition)
                        .payload(&value),
                )
                .map_err(|(e, _)| e)
                .expect("send");
            all.entry(partition).or_default().push(value);
        }
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("txn-in", 0, Offset::Offset(t))
            .expect("offset");
        let metadata = input.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&offsets, &metadata, DEADLINE)
            .expect("send offsets");
        if t % 3 == 2 {
            // Written first (an abort purges what is still queued), so the
            // partitions hold aborted data for read_committed to skip.
            producer.flush(DEADLINE).expect("flush");
            producer.abort_transaction(DEADLINE).expect("abort");
        } else {
            producer.commit_transaction(DEADLINE).expect("commit");
            last_committed = t;
            for partition in 0..3 {
                expected
                    .entry(partition)
                    .or_default()
                    .push(format!("t{t}-p{partition}"));
            }
        }
    }
    let committed = read_all(&bootstrap, "read_committed", 60);
    assert_eq!(committed, expected, "read_committed, leaders {leaders:?}");
    let uncommitted = read_all(&bootstrap, "read_uncommitted", 90);
    assert_eq!(uncommitted, all, "read_uncommitted");

    let mut wanted = TopicPartitionList::new();
    wanted.add_partition("txn-in", 0);
    let offset = input
        .committed_offsets(wanted, DEADLINE)
        .expect("committed offsets")
        .find_partition("txn-in", 0)
        .and_then(|e| e.offset().to_raw());
    assert_eq!(offset, Some(last_committed), "the group's committed offset");
    println!(
        "ok: 20 committed and 10 aborted transactions over partitions led by {leaders:?}; \
         read_committed saw exactly the committed records"
    );
}

/// Every record of `txn-out` a fresh `isolation` consumer reads, once it
/// has `n` of them and is at the end of every partition, by partition.
fn read_all(bootstrap: &str, isolation: &str, n: usize) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("txn-reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..3 {
        list.add_partition_offset("txn-out", p, Offset::Beginning)
            .expect("offset");
    }
    consumer.assign(&list).expect("assign");
    let mut got: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut at_end = [false; 3];
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                got.entry(m.partition()).or_default().push(value);
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                if let Some(end) = usize::try_from(p).ok().and_then(|p| at_end.get_mut(p)) {
                    *end = true;
                }
            }
            Some(Err(e)) => panic!("{isolation} consumer: {e}"),
            None => {}
        }
        let count: usize = got.values().map(Vec::len).sum();
        if count >= n && at_end.iter().all(|e| *e) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{isolation}: {count} of {n} records, at end {at_end:?}"
        );
    }
}
