//! Separate roles, as a KRaft `server.properties` may ask: three
//! controller-only nodes (`process.roles=controller`: metadata quorum
//! voters serving no clients) and two broker-only nodes
//! (`process.roles=broker`: they fetch the metadata from the controllers,
//! one finding them through `controller.quorum.voters`, the other through
//! `controller.quorum.bootstrap.servers`).

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

use super::{brokers, free_port, RawClient, CLIENT_DEADLINE, START_DEADLINE, STROM};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use kafka_protocol::protocol::StrBytes;

/// Processes killed on drop (panics included).
struct Nodes {
    children: Vec<(i32, Child)>,
    dir: tempfile::TempDir,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.dir.path().display());
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("dir")).keep();
        }
    }
}

impl Nodes {
    fn spawn(&mut self, id: i32, listen: SocketAddr, settings: &[String]) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{id}.log")))
            .expect("log");
        let child = Command::new(STROM)
            .args([
                "--node-id",
                &id.to_string(),
                "--listen",
                &listen.to_string(),
            ])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("node-{id}")))
            .args(["--set", "controller.quorum.election.timeout.ms=500"])
            .args(["--set", "broker.session.timeout.ms=1500"])
            .args(["--set", "broker.heartbeat.interval.ms=200"])
            .args(settings.iter().flat_map(|s| ["--set", s.as_str()]))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start strom");
        self.children.push((id, child));
    }

    fn wait_started(&self, id: i32) {
        let path = self.dir.path().join(format!("node-{id}.log"));
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.contains("strom started") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {id} not up within {START_DEADLINE:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self, id: i32) {
        if let Some(i) = self.children.iter().position(|(n, _)| *n == id) {
            let (_, mut child) = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The active controller, as DescribeQuorum asked of a broker says (-1
/// when it knows none).
fn active_controller(address: SocketAddr) -> i32 {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response: Result<DescribeQuorumResponse, String> =
        RawClient::connect(address).and_then(|mut c| c.call(ApiKey::DescribeQuorum, 1, &request));
    response
        .ok()
        .and_then(|r| Some(r.topics.first()?.partitions.first()?.leader_id.0))
        .unwrap_or(-1)
}

fn metadata(address: SocketAddr) -> Result<MetadataResponse, String> {
    RawClient::connect(address)?.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
}

/// Waits until `done` holds for the Metadata of the broker at `address`.
fn wait_metadata(address: SocketAddr, what: &str, done: impl Fn(&MetadataResponse) -> bool) {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        let seen = metadata(address);
        match &seen {
            Ok(m) if done(m) => return,
            _ if Instant::now() > deadline => {
                panic!("{what} not within {START_DEADLINE:?}: {seen:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn produce(bootstrap: &str, topic: &str, prefix: &str, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    let futures: Vec<_> = (0..count)
        .map(|i| {
            producer
                .send_result(
                    FutureRecord::<(), String>::to(topic).payload(&format!("{prefix}-{i}")),
                )
                .map_err(|(e, _)| e)
        })
        .collect();
    for (i, future) in futures.into_iter().enumerate() {
        let delivered =
            futures::executor::block_on(future.expect("queued")).expect("a delivery report");
        if let Err((e, _)) = delivered {
            panic!("{prefix}-{i} not acknowledged: {e}");
        }
    }
}

fn read(bootstrap: &str, topic: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("roles-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut got = Vec::new();
    let deadline = Instant::now() + START_DEADLINE;
    while got.len() < count {
        assert!(Instant::now() < deadline, "read {} of {count}", got.len());
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    got
}

#[test]
fn controllers_and_brokers_in_separate_processes() {
    let mut nodes = Nodes {
        children: Vec::new(),
        dir: tempfile::Builder::new()
            .prefix("strom-roles-")
            .tempdir()
            .expect("dir"),
    };
    let controllers: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect();
    let voters = (1..)
        .zip(&controllers)
        .map(|(id, a)| format!("{id}@{a}"))
        .collect::<Vec<_>>()
        .join(",");
    let bootstrap_servers = controllers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let unused: Vec<SocketAddr> = (0..3).map(|_| free_port()).collect();
    for id in 1..=3 {
        nodes.spawn(
            id,
            unused[usize::try_from(id - 1).expect("index")],
            &[
                "process.roles=controller".into(),
                format!("controller.quorum.voters={voters}"),
            ],
        );
    }
    let (b4, b5) = (free_port(), free_port());
    nodes.spawn(
        4,
        b4,
        &[
            "process.roles=broker".into(),
            format!("controller.quorum.voters={voters}"),
        ],
    );
    nodes.spawn(
        5,
        b5,
        &[
            "process.roles=broker".into(),
            format!("controller.quorum.bootstrap.servers={bootstrap_servers}"),
        ],
    );
    for id in 1..=5 {
        nodes.wait_started(id);
    }
    // Controllers serve no clients.
    for address in &unused {
        assert!(
            TcpStream::connect_timeout(address, Duration::from_millis(200)).is_err(),
            "a controller listens on {address}"
        );
    }
    // The brokers, and only they, are in every broker's Metadata; the
    // controller clients are told of is a broker (they cannot reach the
    // controllers; Kafka's brokers forward controller requests).
    for address in [b4, b5] {
        wait_metadata(address, "brokers 4 and 5", |m| {
            brokers(m).keys().copied().collect::<Vec<_>>() == [4, 5]
                && [4, 5].contains(&m.controller_id.0)
        });
    }
    let bootstrap = format!("{b4},{b5}");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin");
    let options = AdminOptions::new().request_timeout(Some(CLIENT_DEADLINE));
    let create = |name: &str| {
        let topic = NewTopic::new(name, 2, TopicReplication::Fixed(2));
        let created =
            futures::executor::block_on(admin.create_topics([&topic], &options)).expect("create");
        assert!(created.iter().all(Result::is_ok), "{created:?}");
    };
    create("split");
    produce(&bootstrap, "split", "first", 200);
    assert_eq!(read(&bootstrap, "split", 200).len(), 200);

    // The active controller SIGKILLed: the other two elect one, and the
    // brokers follow it (new topics, fencing).
    let active = active_controller(b4);
    assert!((1..=3).contains(&active), "active controller {active}");
    nodes.kill(active);
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        let now = active_controller(b5);
        if (1..=3).contains(&now) && now != active {
            break;
        }
        assert!(Instant::now() < deadline, "no new controller: {now}");
        std::thread::sleep(Duration::from_millis(50));
    }
    create("after-failover");
    produce(&bootstrap, "after-failover", "second", 100);
    assert_eq!(read(&bootstrap, "after-failover", 100).len(), 100);
    // A broker stopped is fenced by the new controller.
    nodes.kill(5);
    wait_metadata(b4, "broker 5 fenced", |m| {
        brokers(m).keys().copied().collect::<Vec<_>>() == [4]
    });
    println!(
        "ok: controllers 1-3 (no client listener), brokers 4 (voters) and 5 (bootstrap servers); \
         controller {active} killed, a new one took over; broker 5 killed, fenced"
    );
}

/// Kafka 4.1's own `config/server.properties` (its KRaft defaults: a
/// combined node whose `controller.quorum.bootstrap.servers` is its own
/// controller listener, as after `kafka-storage.sh format --standalone`)
/// starts a node as it is, with only ports and `log.dirs` changed: a
/// quorum of one that serves clients and keeps its data across a restart.
#[test]
fn kafkas_default_server_properties_start_a_node() {
    let mut nodes = Nodes {
        children: Vec::new(),
        dir: tempfile::Builder::new()
            .prefix("strom-kafka-properties-")
            .tempdir()
            .expect("dir"),
    };
    let (client, controller) = (free_port(), free_port());
    let (cport, pport) = (controller.port(), client.port());
    let file = nodes.dir.path().join("server.properties");
    std::fs::write(
        &file,
        format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=localhost:{cport}\n\
             listeners=PLAINTEXT://localhost:{pport},CONTROLLER://:{cport}\n\
             inter.broker.listener.name=PLAINTEXT\n\
             advertised.listeners=PLAINTEXT://localhost:{pport},CONTROLLER://localhost:{cport}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
             num.network.threads=3\n\
             num.io.threads=8\n\
             socket.send.buffer.bytes=102400\n\
             socket.receive.buffer.bytes=102400\n\
             socket.request.max.bytes=104857600\n\
             log.dirs={}\n\
             num.partitions=1\n\
             num.recovery.threads.per.data.dir=1\n\
             offsets.topic.replication.factor=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             log.retention.hours=168\n\
             log.segment.bytes=1073741824\n\
             log.retention.check.interval.ms=300000\n",
            nodes.dir.path().join("kafka-logs").display()
        ),
    )
    .expect("write server.properties");
    let start = |nodes: &mut Nodes| {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(nodes.dir.path().join("node-1.log"))
            .expect("log");
        let child = Command::new(STROM)
            .arg("--config")
            .arg(&file)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start strom");
        nodes.children.push((1, child));
    };
    start(&mut nodes);
    nodes.wait_started(1);
    let bootstrap = format!("localhost:{pport}");
    produce(&bootstrap, "defaults", "kept", 50);
    // SIGTERM, start again on the same file: the data is there.
    let (_, mut child) = nodes.children.remove(0);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().expect("wait").success());
    std::fs::write(nodes.dir.path().join("node-1.log"), "").expect("truncate log");
    start(&mut nodes);
    nodes.wait_started(1);
    assert_eq!(read(&bootstrap, "defaults", 50).len(), 50);
    println!("ok: Kafka 4.1's server.properties (ports and log.dirs changed) ran a node twice; 50 records kept");
}
