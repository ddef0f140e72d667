//! The same scenarios against Apache Kafka (in Docker, via testcontainers)
//! and against strom, compared result by result: error codes, offsets,
//! partition counts, config names.
//!
//! Where no Docker engine answers (or the image cannot be had), the Kafka
//! side is skipped with a one-line reason and the scenarios still run
//! against strom alone, so the harness itself stays exercised.

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
        println!("skipped the Apache Kafka comparison: {reason}");
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
            println!(
                "skipped the Apache Kafka comparison: cannot start {}:{} ({e})",
                KAFKA_IMAGE.0, KAFKA_IMAGE.1
            );
            return;
        }
    };
    let theirs = scenarios(&format!("127.0.0.1:{port}")).await;
    drop(kafka);
    assert_eq!(ours, theirs, "strom and Apache Kafka answered differently");
}
