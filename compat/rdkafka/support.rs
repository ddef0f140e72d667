//! Shared set-up: a broker on 127.0.0.1:0 with a temporary data dir, and
//! rdkafka clients pointed at it.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use strom::{BrokerConfig, RunningBroker};

/// How long any single client call may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running broker and the directory it keeps its data in.
pub struct TestBroker {
    pub running: RunningBroker,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker with `settings` (Kafka key, value) on a free port.
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, settings).await
    }

    /// Starts a broker on an existing data dir (for restart tests).
    pub async fn start_in(dir: tempfile::TempDir, settings: &[(&str, &str)]) -> Self {
        let mut config = BrokerConfig::new();
        config
            .set("listeners", "PLAINTEXT://127.0.0.1:0", "test")
            .expect("listeners");
        config
            .set("log.dirs", dir.path().to_str().expect("utf-8 path"), "test")
            .expect("log.dirs");
        for (key, value) in settings {
            config.set(key, value, "test").expect("setting");
        }
        let running = RunningBroker::start(config).await.expect("broker starts");
        Self { running, dir }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.running.local_addr().to_string()
    }

    /// Stops the broker and hands back its data dir.
    pub async fn stop(self) -> tempfile::TempDir {
        self.running.shutdown().await.expect("clean shutdown");
        self.dir
    }

    /// An rdkafka client config pointed at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("socket.timeout.ms", "10000");
        config
    }

    /// An admin client pointed at this broker.
    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().expect("admin client")
    }

    /// Creates `name` with `partitions` partitions and topic `configs`,
    /// failing the test if the broker refuses.
    pub async fn create_topic(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (key, value) in configs {
            topic = topic.set(key, value);
        }
        let created = self
            .admin()
            .create_topics([&topic], &options())
            .await
            .expect("create topics request");
        assert_eq!(created, vec![Ok(name.to_owned())], "create {name}");
    }

    /// A producer pointed at this broker, with `settings` on top.
    pub fn producer(&self, settings: &[(&str, &str)]) -> FutureProducer {
        let mut config = self.client_config();
        config.set("message.timeout.ms", "20000");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        config.create().expect("producer")
    }

    /// A consumer for `assign` only: no group membership, no commits.
    pub fn consumer(&self, settings: &[(&str, &str)]) -> StreamConsumer {
        let mut config = self.client_config();
        // librdkafka wants a group id even for `assign`; nothing joins it.
        config
            .set("group.id", "strom-compat-assign")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "error");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        config.create().expect("consumer")
    }
}

/// Assigns partitions `0..partitions` of `topic`, each starting at `offset`.
pub fn assign(consumer: &StreamConsumer, topic: &str, partitions: i32, offset: Offset) {
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, offset)
            .expect("offset");
    }
    consumer.assign(&list).expect("assign");
}

/// Receives exactly `count` messages, failing the test on a consumer error
/// or when `deadline` passes first.
pub async fn receive(
    consumer: &StreamConsumer,
    count: usize,
    deadline: Duration,
) -> Vec<OwnedMessage> {
    let until = tokio::time::Instant::now() + deadline;
    let mut messages = Vec::with_capacity(count);
    while messages.len() < count {
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Err(_) => panic!(
                "received {} of {count} messages before the deadline",
                messages.len()
            ),
            Ok(Err(e)) => panic!("consumer error after {} messages: {e}", messages.len()),
            Ok(Ok(message)) => messages.push(message.detach()),
        }
    }
    messages
}

/// (low, high) watermarks of one partition, asked of the broker.
pub fn watermarks(consumer: &StreamConsumer, topic: &str, partition: i32) -> (i64, i64) {
    tokio::task::block_in_place(|| consumer.fetch_watermarks(topic, partition, DEADLINE))
        .expect("watermarks")
}

/// A message's payload as text ("" for a null payload).
pub fn text(message: &OwnedMessage) -> String {
    String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned()
}

/// Admin options with the test deadline.
pub fn options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(DEADLINE))
}
