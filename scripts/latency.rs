//! End-to-end latency probe for scripts/bench.sh.
//!
//! One process, two clients: a producer sends `--rate` messages per second
//! for `--seconds` to partition 0 of `--topic` (acks=all by default), each
//! value stamped with its send time on a monotonic clock; a consumer (assign,
//! no group membership) reads the same partition and records receive − send.
//! Prints one JSON line with p50/p99/p99.9/max in milliseconds, and the
//! longest time between two acknowledgements (`max_ack_gap_ms`: with the
//! partition's leader killed mid-run, the failover as a producer sees it).
//!
//!   cargo run --release --example latency -- --bootstrap 127.0.0.1:9092 \
//!       --rate 5000 --seconds 20 --topic latency

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

#[derive(Parser, Debug)]
#[command(about = "End-to-end produce → consume latency at a steady rate")]
struct Args {
    /// Broker address list.
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Messages per second.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// How long to produce, in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Topic (auto-created by the first produce); partition 0 is used.
    #[arg(long, default_value = "latency")]
    topic: String,
    /// Value size in bytes (at least 8: the send stamp).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Producer acks.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Producer linger.ms (0: send each message as soon as possible).
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
}

/// Counts failed deliveries, and finds the longest time without an
/// acknowledgement (with a leader killed mid-run: its failover time).
struct Counting {
    failed: Arc<AtomicU64>,
    clock: Instant,
    /// When the last delivery was acknowledged, in ns on `clock` (0: none yet).
    last_ack_ns: Arc<AtomicU64>,
    /// The longest gap between two acknowledgements, and when it ended.
    max_gap_ns: Arc<AtomicU64>,
    max_gap_end_ns: Arc<AtomicU64>,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if self.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("latency: delivery failed: {e}");
            }
            return;
        }
        // Delivery reports arrive on the producer thread only.
        let now = self.clock.elapsed().as_nanos() as u64;
        let last = self.last_ack_ns.swap(now, Ordering::Relaxed);
        if last > 0 && now - last > self.max_gap_ns.load(Ordering::Relaxed) {
            self.max_gap_ns.store(now - last, Ordering::Relaxed);
            self.max_gap_end_ns.store(now, Ordering::Relaxed);
        }
    }
}

/// The `q`-quantile (nearest rank) of sorted nanoseconds, in milliseconds.
fn quantile_ms(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

fn json_num(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64((x * 1000.0).round() / 1000.0)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.rate > 0, "--rate must be positive");
    anyhow::ensure!(args.size >= 8, "--size must be at least 8");
    let clock = Instant::now();
    let failed = Arc::new(AtomicU64::new(0));
    let (max_gap_ns, max_gap_end_ns) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    let producer: BaseProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", &args.acks)
        .set("linger.ms", args.linger_ms.to_string())
        .set("message.timeout.ms", "30000")
        .create_with_context(Counting {
            failed: failed.clone(),
            clock,
            last_ack_ns: Arc::new(AtomicU64::new(0)),
            max_gap_ns: max_gap_ns.clone(),
            max_gap_end_ns: max_gap_end_ns.clone(),
        })?;

    // Warm-up: one message creates the topic and opens the connection; its
    // delivery means partition 0 exists.
    producer
        .send(
            BaseRecord::<(), [u8]>::to(&args.topic)
                .partition(0)
                .payload(&[0u8; 8][..]),
        )
        .map_err(|(e, _)| e)?;
    producer.flush(Duration::from_secs(30))?;
    anyhow::ensure!(
        failed.load(Ordering::Relaxed) == 0,
        "warm-up message was not delivered"
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", "strom-latency")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let (_, start) = consumer.fetch_watermarks(&args.topic, 0, Duration::from_secs(30))?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&args.topic, 0, Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    // Let the consumer connect and issue its first fetch before timing starts.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(1) {
        if let Some(Err(e)) = consumer.poll(Duration::from_millis(100)) {
            eprintln!("latency: consumer error during warm-up: {e}");
        }
    }

    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (rate, seconds, size, topic) = (args.rate, args.seconds, args.size, args.topic.clone());
    let (sent_p, done_p) = (sent.clone(), done.clone());
    let producer_thread = thread::spawn(move || -> anyhow::Result<Duration> {
        let total = rate * seconds;
        let began = Instant::now();
        let mut value = vec![0u8; size];
        for i in 0..total {
            let due = began + Duration::from_nanos(i * 1_000_000_000 / rate);
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            let stamp = clock.elapsed().as_nanos() as u64;
            value[..8].copy_from_slice(&stamp.to_le_bytes());
            loop {
                let record = BaseRecord::<(), [u8]>::to(&topic)
                    .partition(0)
                    .payload(&value[..]);
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        producer.poll(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(e.into()),
                }
            }
            sent_p.fetch_add(1, Ordering::Relaxed);
            producer.poll(Duration::ZERO);
        }
        let elapsed = began.elapsed();
        producer.flush(Duration::from_secs(30))?;
        done_p.store(true, Ordering::Release);
        Ok(elapsed)
    });

    let mut latencies: Vec<u64> = Vec::with_capacity((args.rate * args.seconds) as usize);
    let mut consume_errors = 0u64;
    let deadline = Instant::now() + Duration::from_secs(args.seconds + 40);
    loop {
        if done.load(Ordering::Acquire) && latencies.len() as u64 >= sent.load(Ordering::Relaxed) {
            break;
        }
        // Past the deadline, or the producer gave up (error) before finishing.
        let producer_failed = producer_thread.is_finished() && !done.load(Ordering::Acquire);
        if Instant::now() > deadline || producer_failed {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                let now = clock.elapsed().as_nanos() as u64;
                if let Some(v) = m.payload().and_then(|p| p.get(..8)) {
                    let stamp = u64::from_le_bytes(v.try_into().expect("8 bytes"));
                    latencies.push(now.saturating_sub(stamp));
                }
            }
            Some(Err(e)) => {
                consume_errors += 1;
                if consume_errors <= 5 {
                    eprintln!("latency: consumer error: {e}");
                }
            }
        }
    }
    let produce_time = producer_thread
        .join()
        .map_err(|_| anyhow::anyhow!("producer thread panicked"))??;

    let sent = sent.load(Ordering::Relaxed);
    let received = latencies.len() as u64;
    latencies.sort_unstable();
    let line = serde_json::json!({
        "topic": args.topic,
        "rate": args.rate,
        "seconds": args.seconds,
        "size": args.size,
        "acks": args.acks,
        "linger_ms": args.linger_ms,
        "sent": sent,
        "received": received,
        "delivery_failures": failed.load(Ordering::Relaxed),
        "consume_errors": consume_errors,
        "achieved_rate": json_num(sent as f64 / produce_time.as_secs_f64()),
        "max_ack_gap_ms": json_num(max_gap_ns.load(Ordering::Relaxed) as f64 / 1e6),
        "max_ack_gap_end_s": json_num(max_gap_end_ns.load(Ordering::Relaxed) as f64 / 1e9),
        "p50_ms": json_num(quantile_ms(&latencies, 0.50)),
        "p99_ms": json_num(quantile_ms(&latencies, 0.99)),
        "p999_ms": json_num(quantile_ms(&latencies, 0.999)),
        "max_ms": json_num(latencies.last().map_or(f64::NAN, |&n| n as f64 / 1e6)),
    });
    println!("{line}");
    if received < sent {
        anyhow::bail!("received {received} of {sent} messages");
    }
    Ok(())
}
