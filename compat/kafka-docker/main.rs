//! The same scenarios against Apache Kafka and against strom, compared
//! result by result: error codes, offsets, partition counts, config names.
//!
//! Kafka is the official image through testcontainers where a Docker
//! engine answers, else the Apache Kafka 4.1.0 distribution from
//! `../shared/kafka` as a process (`compat/lib/kafka.sh`'s `start_kafka`).
//! Only with neither is the Kafka side skipped, with a one-line reason.
//! Which Kafka was compared against is written to
//! `target/tmp/against-kafka.txt`, which `scripts/test.sh` prints.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

const DEADLINE: Duration = Duration::from_secs(30);
const KAFKA_IMAGE: (&str, &str) = ("apache/kafka", "4.1.0");

/// What one broker answered, in a form two brokers can be compared by.
#[derive(Debug, PartialEq)]
struct Outcome {
    create: Vec<Result<String, RDKafkaErrorCode>>,
    create_again: Vec<Result<String, RDKafkaErrorCode>>,
    bad_replication: Vec<Result<String, RDKafkaErrorCode>>,
    partitions: usize,
    high_watermarks: Vec<i64>,
    consumed: usize,
    config_names: BTreeSet<String>,
    delete: Vec<Result<String, RDKafkaErrorCode>>,
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

fn strip<E>(results: Vec<Result<String, (String, E)>>) -> Vec<Result<String, E>> {
    results.into_iter().map(|r| r.map_err(|(_, e)| e)).collect()
}

async fn scenarios(bootstrap: &str) -> Outcome {
    let admin: AdminClient<DefaultClientContext> = config(bootstrap).create().expect("admin");
    let options = AdminOptions::new().request_timeout(Some(DEADLINE));
    let topic = NewTopic::new("compare", 3, TopicReplication::Fixed(1));
    let create = strip(
        admin
            .create_topics([&topic], &options)
            .await
            .expect("create"),
    );
    let create_again = strip(
        admin
            .create_topics([&topic], &options)
            .await
            .expect("create again"),
    );
    let wide = NewTopic::new("too-wide", 1, TopicReplication::Fixed(3));
    let bad_replication = strip(
        admin
            .create_topics([&wide], &options)
            .await
            .expect("create rf3"),
    );

    let producer: FutureProducer = config(bootstrap).create().expect("producer");
    for i in 0..100 {
        let key = format!("key-{}", i % 7);
        let payload = format!("value-{i}");
        let record = FutureRecord::to("compare").key(&key).payload(&payload);
        producer.send(record, DEADLINE).await.expect("delivered");
    }

    let consumer: BaseConsumer = config(bootstrap)
        .set("group.id", "compare")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some("compare"), DEADLINE)
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len();
    let mut high_watermarks = Vec::new();
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        let partition = i32::try_from(p).expect("small");
        let (_, high) = consumer
            .fetch_watermarks("compare", partition, DEADLINE)
            .expect("watermarks");
        high_watermarks.push(high);
        assignment
            .add_partition_offset("compare", partition, Offset::Beginning)
            .expect("assign");
    }
    high_watermarks.sort_unstable();
    consumer.assign(&assignment).expect("assign");
    let mut consumed = 0;
    let until = std::time::Instant::now() + DEADLINE;
    while consumed < 100 && std::time::Instant::now() < until {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            assert!(message.payload().is_some());
            consumed += 1;
        }
    }

    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("compare")], &options)
        .await
        .expect("describe");
    let config_names = described[0]
        .as_ref()
        .map(|r| r.entries.iter().map(|e| e.name.clone()).collect())
        .unwrap_or_default();
    let delete = strip(
        admin
            .delete_topics(&["compare"], &options)
            .await
            .expect("delete"),
    );
    Outcome {
        create,
        create_again,
        bad_replication,
        partitions,
        high_watermarks,
        consumed,
        config_names,
        delete,
    }
}

/// Apache Kafka from the distribution, as a process; stopped (SIGTERM,
/// then SIGKILL after 30 s) and its state dir removed on drop.
struct KafkaProcess {
    pid: String,
    state: String,
    bootstrap: String,
}

impl KafkaProcess {
    /// Starts a one-node KRaft Kafka on free loopback ports.
    fn start() -> Result<Self, String> {
        let root = env!("CARGO_MANIFEST_DIR");
        let script = format!(
            "source {root}/compat/lib/broker.sh && source {root}/compat/lib/kafka.sh || exit 2; \
             kafka_dist || {{ echo \"no Kafka distribution at $KAFKA_TARBALL\" >&2; exit 3; }}; \
             start_kafka >&2 || exit 4; \
             echo \"$KAFKA_BOOTSTRAP $KAFKA_PID $KAFKA_STATE\""
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("bash: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut fields = stdout.split_whitespace();
        match (
            out.status.success(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) {
            (true, Some(bootstrap), Some(pid), Some(state)) => Ok(Self {
                pid: pid.to_owned(),
                state: state.to_owned(),
                bootstrap: bootstrap.to_owned(),
            }),
            _ => Err(String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("Kafka did not start")
                .to_owned()),
        }
    }
}

impl Drop for KafkaProcess {
    fn drop(&mut self) {
        let signal = |name: &str| {
            Command::new("kill")
                .args([name, &self.pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        signal("-TERM");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while signal("-0") {
            if std::time::Instant::now() > deadline {
                signal("-KILL");
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// Records which Kafka the comparison ran against, for the test run's summary.
fn record_comparison(line: &str) {
    println!("{line}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("against-kafka.txt");
    let _ = std::fs::write(path, format!("{line}\n"));
}

/// Whether a Docker engine answers; the reason if not.
fn docker_unavailable() -> Option<String> {
    match Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => None,
        Ok(_) => Some("no Docker engine answers `docker info`".into()),
        Err(e) => Some(format!("no docker command ({e})")),
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

async fn start_strom() -> (strom::RunningBroker, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = strom::BrokerConfig::new();
    for (key, value) in [
        ("listeners", "PLAINTEXT://127.0.0.1:0"),
        ("log.dirs", dir.path().to_str().expect("utf-8")),
        ("group.initial.rebalance.delay.ms", "0"),
    ] {
        config.set(key, value, "test").expect("setting");
    }
    (
        strom::RunningBroker::start(config)
            .await
            .expect("strom starts"),
        dir,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn same_answers_as_apache_kafka() {
    let (strom, _dir) = start_strom().await;
    let ours = scenarios(&strom.local_addr().to_string()).await;
    assert_eq!(ours.create, vec![Ok("compare".to_owned())]);
    assert_eq!(
        ours.create_again,
        vec![Err(RDKafkaErrorCode::TopicAlreadyExists)]
    );
    assert_eq!(ours.consumed, 100);
    assert_eq!(ours.high_watermarks.iter().sum::<i64>(), 100);
    strom.shutdown().await.expect("shutdown");

    if let Some(reason) = docker_unavailable() {
        let kafka = match KafkaProcess::start() {
            Ok(kafka) => kafka,
            Err(e) => {
                record_comparison(&format!(
                    "skipped the Apache Kafka comparison: {reason}, and the distribution: {e}"
                ));
                return;
            }
        };
        let theirs = scenarios(&kafka.bootstrap).await;
        drop(kafka);
        assert_eq!(ours, theirs, "strom and Apache Kafka answered differently");
        record_comparison(
            "compared against a live Apache Kafka 4.1.0: the distribution from ../shared/kafka as a process",
        );
        return;
    }
    let port = free_port();
    let kafka = GenericImage::new(KAFKA_IMAGE.0, KAFKA_IMAGE.1)
        .with_wait_for(WaitFor::message_on_stdout("Kafka Server started"))
        .with_mapped_port(port, 9092.tcp())
        .with_env_var("KAFKA_NODE_ID", "1")
        .with_env_var("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env_var("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env_var(
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        )
        .with_env_var("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env_var(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        )
        .with_env_var("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env_var("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env_var("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_startup_timeout(Duration::from_secs(180))
        .start()
        .await;
    let kafka = match kafka {
        Ok(container) => container,
        Err(e) => {
            record_comparison(&format!(
                "skipped the Apache Kafka comparison: cannot start {}:{} ({e})",
                KAFKA_IMAGE.0, KAFKA_IMAGE.1
            ));
            return;
        }
    };
    let theirs = scenarios(&format!("127.0.0.1:{port}")).await;
    drop(kafka);
    assert_eq!(ours, theirs, "strom and Apache Kafka answered differently");
    record_comparison(&format!(
        "compared against a live Apache Kafka 4.1.0: the {}:{} image in Docker",
        KAFKA_IMAGE.0, KAFKA_IMAGE.1
    ));
}
