//! Transaction load for scripts/bench.sh, through librdkafka (the rdkafka
//! crate), so that strom and Apache Kafka are driven by the same client.
//! Three subcommands, each printing one JSON line:
//!
//! * `rate`: `--producers` transactional producers (each its own
//!   `transactional.id` and its own partition of `--topic`, created with one
//!   partition per producer), each in a loop of begin, `--records` records of
//!   `--size` bytes, commit (which waits for the records' acks and the
//!   EndTxn answer), for `--seconds`; transactions/s over all producers.
//! * `fill`: one transactional producer writes `--messages` records of
//!   `--size` bytes to partition 0 of `--topic` (one partition), in
//!   transactions of `--per-txn` records, each committed; msgs/s.
//! * `consume`: a consumer with `isolation.level=read_committed` (or
//!   `--isolation`; assign, no group) reads partition 0 of `--topic` from the beginning until it has
//!   `--messages` records; msgs/s from the first record to the last (as
//!   rdkafka_performance counts).
//!
//!   cargo run --release --example txn_bench -- rate --bootstrap 127.0.0.1:9092

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Parser, Debug)]
#[command(about = "Transactions/s and read_committed consume throughput")]
struct Args {
    /// Broker address list.
    #[arg(long, default_value = "127.0.0.1:9092", global = true)]
    bootstrap: String,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5, global = true)]
    linger_ms: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Concurrent transactional producers committing small transactions.
    Rate {
        #[arg(long, default_value_t = 4)]
        producers: usize,
        /// Records per transaction.
        #[arg(long, default_value_t = 10)]
        records: usize,
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value = "txn-bench-rate")]
        topic: String,
        /// Transactional ids are PREFIX-<producer>.
        #[arg(long, default_value = "txn-bench-rate")]
        id_prefix: String,
    },
    /// Writes records in committed transactions.
    Fill {
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        #[arg(long, default_value_t = 1000)]
        per_txn: usize,
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[arg(long, default_value = "txn-bench-rc")]
        topic: String,
        #[arg(long, default_value = "txn-bench-fill")]
        transactional_id: String,
    },
    /// Reads the records back with isolation.level=read_committed.
    Consume {
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        #[arg(long, default_value = "txn-bench-rc")]
        topic: String,
        /// The consumer's isolation.level.
        #[arg(long, default_value = "read_committed")]
        isolation: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        deadline_s: u64,
    },
}

/// Counts failed deliveries (a failed record also fails its commit).
struct Counting {
    failed: Arc<AtomicU64>,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating the admin client")?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics(
        [&topic],
        &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
    ))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => bail!("CreateTopics {t}: {code}"),
        }
    }
    Ok(())
}

fn transactional_producer(
    bootstrap: &str,
    id: &str,
    linger_ms: u64,
    failed: &Arc<AtomicU64>,
) -> Result<BaseProducer<Counting>> {
    let producer: BaseProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("linger.ms", linger_ms.to_string())
        .create_with_context(Counting {
            failed: failed.clone(),
        })
        .with_context(|| format!("creating producer {id}"))?;
    producer
        .init_transactions(TIMEOUT)
        .with_context(|| format!("init_transactions {id}"))?;
    Ok(producer)
}

/// Sends one record, serving delivery reports while librdkafka's queue is full.
fn send(
    producer: &BaseProducer<Counting>,
    topic: &str,
    partition: i32,
    payload: &[u8],
) -> Result<()> {
    let mut record = BaseRecord::<(), [u8]>::to(topic)
        .partition(partition)
        .payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => bail!("send: {e}"),
        }
    }
}

/// Waits for every record's delivery report, then commits. (The crate's own
/// `commit_transaction` flushes first, but its `BaseProducer::poll` runs for
/// the whole 100 ms slice it is given, so each commit would take 100 ms
/// more on any broker; polling in 1 ms slices here leaves it nothing to wait for.)
fn commit(producer: &BaseProducer<Counting>, id: &str) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            bail!("{id}: records not acknowledged within {TIMEOUT:?}");
        }
        producer.poll(Duration::from_millis(1));
    }
    producer
        .commit_transaction(TIMEOUT)
        .with_context(|| format!("commit_transaction {id}"))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[allow(clippy::too_many_arguments)]
fn rate(
    bootstrap: &str,
    linger_ms: u64,
    producers: usize,
    records: usize,
    size: usize,
    seconds: u64,
    topic: &str,
    prefix: &str,
) -> Result<()> {
    create_topic(bootstrap, topic, i32::try_from(producers)?)?;
    let failed = Arc::new(AtomicU64::new(0));
    // Every producer is initialised (FindCoordinator, InitProducerId) before
    // the clock starts.
    let ready = Arc::new(Barrier::new(producers + 1));
    let start_gate = Arc::new(Barrier::new(producers + 1));
    let mut threads = Vec::new();
    for i in 0..producers {
        let (bootstrap, topic, id) = (
            bootstrap.to_owned(),
            topic.to_owned(),
            format!("{prefix}-{i}"),
        );
        let (ready, start_gate, failed) = (ready.clone(), start_gate.clone(), failed.clone());
        threads.push(thread::spawn(move || -> Result<(u64, f64)> {
            let producer = transactional_producer(&bootstrap, &id, linger_ms, &failed);
            ready.wait();
            start_gate.wait();
            let producer = producer?;
            let payload = vec![b'x'; size];
            let partition = i32::try_from(i)?;
            let start = Instant::now();
            let end = start + Duration::from_secs(seconds);
            let mut commits = 0u64;
            while Instant::now() < end {
                producer.begin_transaction()?;
                for _ in 0..records {
                    send(&producer, &topic, partition, &payload)?;
                }
                commit(&producer, &id)?;
                commits += 1;
            }
            Ok((commits, start.elapsed().as_secs_f64()))
        }));
    }
    ready.wait();
    start_gate.wait();
    let (mut commits, mut secs) = (0u64, 0f64);
    for t in threads {
        let (c, s) = t
            .join()
            .map_err(|_| anyhow!("a producer thread panicked"))??;
        commits += c;
        secs = secs.max(s);
    }
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({"producers": producers, "records_per_txn": records, "record_bytes": size,
               "seconds": round3(secs), "transactions": commits, "failed_deliveries": failed,
               "transactions_per_s": (commits as f64 / secs).round(),
               "records_per_s": ((commits * records as u64) as f64 / secs).round()})
    );
    if failed > 0 {
        bail!("{failed} records failed");
    }
    Ok(())
}

fn fill(
    bootstrap: &str,
    linger_ms: u64,
    messages: usize,
    per_txn: usize,
    size: usize,
    topic: &str,
    id: &str,
) -> Result<()> {
    create_topic(bootstrap, topic, 1)?;
    let failed = Arc::new(AtomicU64::new(0));
    let producer = transactional_producer(bootstrap, id, linger_ms, &failed)?;
    let payload = vec![b'x'; size];
    let start = Instant::now();
    let (mut sent, mut txns) = (0usize, 0u64);
    while sent < messages {
        producer.begin_transaction()?;
        let n = per_txn.min(messages - sent);
        for _ in 0..n {
            send(&producer, topic, 0, &payload)?;
        }
        commit(&producer, id)?;
        sent += n;
        txns += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({"messages": sent, "transactions": txns, "record_bytes": size, "seconds": round3(secs),
               "failed_deliveries": failed, "msgs_per_s": (sent as f64 / secs).round()})
    );
    if failed > 0 {
        bail!("{failed} records failed");
    }
    Ok(())
}

fn consume(
    bootstrap: &str,
    messages: usize,
    topic: &str,
    isolation: &str,
    deadline_s: u64,
) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "txn-bench-consume")
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        // librdkafka >= 2.1 stops fetching for fetch.queue.backoff.ms
        // (default 1000) whenever its prefetch queue is over
        // queued.max.messages (100,000): a broker that serves faster than
        // the queue drains would be measured as 1 s stalls every 100k
        // records. 1 ms keeps the consumer fetching as it drains (the
        // rdkafka_performance 2.0.2 of the plain consume row has no such
        // backoff).
        .set("fetch.queue.backoff.ms", "1")
        .create()
        .context("creating the consumer")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(deadline_s);
    let (mut count, mut bytes) = (0usize, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = t0;
    while count < messages {
        if Instant::now() > deadline {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = now;
                count += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
            }
            Some(Err(e)) => bail!("consume: {e}"),
            None => {}
        }
    }
    let secs = first.map_or(0.0, |f| last.duration_since(f).as_secs_f64());
    let rate = if secs > 0.0 { count as f64 / secs } else { 0.0 };
    println!(
        "{}",
        json!({"messages": count, "bytes": bytes, "seconds": round3(secs),
               "wall_s": round3(t0.elapsed().as_secs_f64()), "msgs_per_s": rate.round(),
               "mb_per_s": ((bytes as f64 / secs.max(1e-9)) / 1e5).round() / 10.0,
               "complete": count == messages})
    );
    if count != messages {
        bail!("{count} of {messages} records within {deadline_s} s");
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    match args.cmd {
        Cmd::Rate {
            producers,
            records,
            size,
            seconds,
            topic,
            id_prefix,
        } => rate(
            &args.bootstrap,
            args.linger_ms,
            producers,
            records,
            size,
            seconds,
            &topic,
            &id_prefix,
        ),
        Cmd::Fill {
            messages,
            per_txn,
            size,
            topic,
            transactional_id,
        } => fill(
            &args.bootstrap,
            args.linger_ms,
            messages,
            per_txn,
            size,
            &topic,
            &transactional_id,
        ),
        Cmd::Consume {
            messages,
            topic,
            isolation,
            deadline_s,
        } => consume(&args.bootstrap, messages, &topic, &isolation, deadline_s),
    }
}
