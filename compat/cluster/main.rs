//! Cluster tests: three real `strom` processes on 127.0.0.1 (own ports and
//! data dirs) sharing `controller.quorum.voters`, driven by rdkafka and by
//! raw requests.
//!
//! [`Cluster`] is the harness (`compat/support/cluster.rs`, shared with
//! the crash tests): free ports for the client and controller listeners,
//! one log per node (`DIR/node-N.log`, kept when a test fails), start
//! waits for every node's `strom started` line, SIGKILL, SIGTERM,
//! SIGSTOP/SIGCONT and restart per node, and every process killed on drop
//! (panics included). With [`Netns`] each node runs in a network namespace
//! of its own behind a bridge, so one node's link can be cut and healed
//! (namespaces deleted on drop).
//!
//! What is checked:
//! - every node lists the three brokers, the same cluster id and the same
//!   controller;
//! - a topic created on one node is described by every other one, each
//!   partition led by its first replica; clients bootstrapped on one node
//!   produce to and consume from all three leaders; a Produce sent to a
//!   non-leader gets NOT_LEADER_OR_FOLLOWER with the leader and its
//!   endpoint (KIP-951);
//! - the controller SIGKILLed: the other two elect a new one and keep
//!   creating topics; the killed node restarts, catches up on what it
//!   missed and keeps its data and the cluster id;
//! - replication: followers hold the leader's bytes, the ISR drops a
//!   stopped follower and takes it back once it caught up; SIGTERM hands
//!   leadership over at once (controlled shutdown); committed offsets
//!   survive the loss of their coordinator;
//! - failover under load ([`Workload`]: an idempotent acks=all producer,
//!   replication factor 3, `min.insync.replicas=2`, and two consumers of
//!   one group, all running throughout; [`check_workload`] afterwards):
//!   a partition leader SIGKILLed and restarted; a zombie leader
//!   (SIGSTOPped past the session timeout, fenced, SIGCONTed with an
//!   acks=all and an acks=1 Produce waiting in its socket: the acks=all
//!   one is refused or kept); a leader cut off the network past the
//!   session timeout and healed; a rolling restart of all three nodes; a
//!   replica restarted (still in the ISR) while its leader is stopped,
//!   which then takes over (it must not have cut acknowledged records on
//!   start: followers truncate by leader epoch, not to a checkpoint).
//!   Each ends with every replica in sync and byte-identical, every
//!   acknowledged value read exactly once at its acknowledged offset,
//!   each partition in send order, and every record the group read during
//!   the run still at that offset; each prints one `ok:` summary line;
//! - leader elections: preferred (ElectLeaders, and the controller's
//!   automatic rebalance) and unclean (ElectLeaders UNCLEAN, and the
//!   controller's for topics with `unclean.leader.election.enable`);
//! - a partition reassignment: in progress while an added replica is
//!   down (listed, cancelled), completed once it caught up, leadership
//!   moved off the removed replica, the replicas' bytes identical; a
//!   replication factor change refused when not allowed;
//! - transactions across brokers (`transactions.rs`);
//! - quorum settings that cannot work stop the broker with one line.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId,
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, MetadataResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message};

mod roles;
mod transactions;

#[path = "../support/raw_client.rs"]
#[allow(dead_code)]
mod raw_client;
use raw_client::{RawClient, CLIENT_DEADLINE};

#[path = "../support/cluster.rs"]
mod cluster;
use cluster::{
    free_port, isr, leader_of, topic, wait_all_in_sync, wait_identical, Cluster, Netns,
    START_DEADLINE,
};

const STROM: &str = env!("CARGO_BIN_EXE_strom");
fn brokers(m: &MetadataResponse) -> BTreeMap<i32, i32> {
    m.brokers.iter().map(|b| (b.node_id.0, b.port)).collect()
}

#[test]
fn every_node_lists_every_broker_and_one_controller() {
    let cluster = Cluster::start(3);
    let expected: BTreeMap<i32, i32> = cluster
        .nodes
        .iter()
        .map(|n| (n.id, i32::from(n.client.port())))
        .collect();
    let mut ids = BTreeSet::new();
    let mut controllers = BTreeSet::new();
    for node in &cluster.nodes {
        let m = cluster.wait_metadata(node.id, "three brokers", |m| {
            brokers(m) == expected && m.controller_id.0 > 0
        });
        ids.insert(m.cluster_id.clone().map(|c| c.to_string()));
        controllers.insert(m.controller_id.0);
    }
    assert_eq!(ids.len(), 1, "one cluster id: {ids:?}");
    assert_eq!(controllers.len(), 1, "one controller: {controllers:?}");
    let id = ids.into_iter().next().flatten().unwrap_or_default();
    assert_eq!(id.len(), 22, "a Kafka-style cluster id: {id}");
}

/// A v9 Produce of one record `value` to `topic`-`partition` with `acks`.
fn produce_request(topic: &str, partition: i32, acks: i16, value: &'static [u8]) -> ProduceRequest {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from_static(value)),
        headers: Default::default(),
    };
    let mut batch = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.freeze()))])])
}

/// A v9 acks=1 Produce of one record to `topic`-`partition`, sent to node
/// `to`: its error code.
fn produce_code(cluster: &Cluster, to: i32, topic: &str, partition: i32) -> i16 {
    let request = produce_request(topic, partition, 1, b"raw");
    let response: ProduceResponse = RawClient::connect(cluster.address(to))
        .and_then(|mut c| c.call(ApiKey::Produce, 9, &request))
        .expect("produce");
    response.responses[0].partition_responses[0].error_code
}

#[test]
fn topics_are_served_by_their_leaders_from_any_bootstrap() {
    let cluster = Cluster::start(3);
    cluster.create_topic(&[1], "orders", 3, 3);
    // Every node describes it: three partitions, three replicas each, led
    // by their first replica (one partition per node).
    let mut leaders = BTreeMap::new();
    for node in &cluster.nodes {
        let m = cluster.wait_metadata(node.id, "topic orders", |m| topic(m, "orders").is_some());
        let t = topic(&m, "orders").expect("orders");
        assert_eq!(t.partitions.len(), 3);
        for p in &t.partitions {
            assert_eq!(p.replica_nodes.len(), 3);
            assert_eq!(p.leader_id, p.replica_nodes[0]);
            leaders.insert(p.partition_index, p.leader_id.0);
        }
    }
    let distinct: BTreeSet<i32> = leaders.values().copied().collect();
    assert_eq!(distinct.len(), 3, "leaders spread: {leaders:?}");

    // A producer that knows only node 2 reaches every leader.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap(&[2]))
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "15000")
        .create()
        .expect("producer");
    let sent = 300;
    let deliveries: Vec<_> = (0..sent)
        .map(|i| {
            let key = format!("k{i}");
            let value = format!("v{i}");
            futures::executor::block_on(producer.send(
                FutureRecord::to("orders").key(&key).payload(&value),
                CLIENT_DEADLINE,
            ))
            .map(|delivery| delivery.partition)
            .map_err(|(e, _)| e.to_string())
        })
        .collect();
    let partitions: BTreeSet<i32> = deliveries
        .iter()
        .map(|d| *d.as_ref().expect("delivered"))
        .collect();
    assert_eq!(partitions.len(), 3, "keys spread over the partitions");

    // A group consumer that knows only node 3 reads them all.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap(&[3]))
        .set("group.id", "cluster-readers")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["orders"]).expect("subscribe");
    let mut values = BTreeSet::new();
    let deadline = Instant::now() + START_DEADLINE;
    while values.len() < sent && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            values.insert(
                String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            );
        }
    }
    assert_eq!(values.len(), sent, "every value read once");

    // A node that does not lead a partition refuses its writes.
    let (&partition, &leader) = leaders.iter().next().expect("a partition");
    let other = (1..=3).find(|id| *id != leader).expect("another node");
    assert_eq!(produce_code(&cluster, leader, "orders", partition), 0);
    assert_eq!(
        produce_code(&cluster, other, "orders", partition),
        6,
        "NOT_LEADER_OR_FOLLOWER from node {other}"
    );
    // KIP-951: the refusal names the leader and its endpoint (Produce v10+,
    // Fetch v12+ / v16+), so clients move without a Metadata round trip.
    let request = produce_request("orders", partition, 1, b"raw");
    let produced: ProduceResponse = RawClient::connect(cluster.address(other))
        .and_then(|mut c| c.call(ApiKey::Produce, 11, &request))
        .expect("produce v11");
    let answer = &produced.responses[0].partition_responses[0];
    assert_eq!(answer.error_code, 6);
    assert_eq!(answer.current_leader.leader_id.0, leader, "current_leader");
    let port = i32::from(cluster.address(leader).port());
    assert!(
        produced
            .node_endpoints
            .iter()
            .any(|e| e.node_id.0 == leader && e.port == port),
        "node_endpoints {:?}",
        produced.node_endpoints
    );
    let fetch = kafka_protocol::messages::FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_topics(vec![
            kafka_protocol::messages::fetch_request::FetchTopic::default()
                .with_topic_id(
                    topic(&cluster.metadata(other).expect("metadata"), "orders")
                        .expect("orders")
                        .topic_id,
                )
                .with_partitions(vec![
                    kafka_protocol::messages::fetch_request::FetchPartition::default()
                        .with_partition(partition)
                        .with_partition_max_bytes(1024),
                ]),
        ]);
    let fetched: kafka_protocol::messages::FetchResponse =
        RawClient::connect(cluster.address(other))
            .and_then(|mut c| c.call(ApiKey::Fetch, 16, &fetch))
            .expect("fetch v16");
    let answer = &fetched.responses[0].partitions[0];
    assert_eq!(answer.error_code, 6);
    assert_eq!(
        answer.current_leader.leader_id.0, leader,
        "fetch current_leader"
    );
    assert!(
        fetched
            .node_endpoints
            .iter()
            .any(|e| e.node_id.0 == leader && e.port == port),
        "fetch node_endpoints {:?}",
        fetched.node_endpoints
    );
}

#[test]
fn a_lost_controller_is_replaced_and_its_node_catches_up() {
    let mut cluster = Cluster::start(3);
    let before = cluster.wait_metadata(1, "a controller", |m| m.controller_id.0 > 0);
    let controller = before.controller_id.0;
    cluster.create_topic(&[1, 2, 3], "kept", 3, 1);
    cluster.kill(controller);
    let survivors: Vec<i32> = (1..=3).filter(|id| *id != controller).collect();
    for id in &survivors {
        cluster.wait_metadata(*id, "a new controller", |m| {
            m.controller_id.0 > 0 && m.controller_id.0 != controller
        });
    }
    // The quorum keeps working with two of three.
    cluster.create_topic(&survivors, "while-away", 2, 2);
    cluster.restart(controller);
    let after = cluster.wait_metadata(controller, "the topic made while away", |m| {
        topic(m, "while-away").is_some() && topic(m, "kept").is_some()
    });
    assert_eq!(after.cluster_id, before.cluster_id);
    assert_eq!(brokers(&after).len(), 3);
}

/// Sends `count` values `prefix-<i>` with acks=all through node `via`;
/// every one must be acknowledged.
fn produce_all(cluster: &Cluster, via: i32, topic: &str, prefix: &str, count: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap(&[via]))
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    let values: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    let futures: Vec<_> = values
        .iter()
        .map(|value| {
            producer
                .send_result(FutureRecord::<(), String>::to(topic).payload(value))
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

#[test]
fn partitions_are_replicated_and_the_isr_follows_the_followers() {
    let mut cluster = Cluster::start_with(3, &["replica.lag.time.max.ms=2000"]);
    cluster.create_topic(&[1], "replicated", 1, 3);
    let m = cluster.wait_metadata(2, "the topic", |m| isr(m, "replicated", 0).len() == 3);
    let leader = topic(&m, "replicated").expect("topic").partitions[0]
        .leader_id
        .0;
    produce_all(&cluster, 2, "replicated", "first", 500);
    let size = wait_identical(&cluster, &[1, 2, 3], "replicated", 0);

    // A follower goes away: acks=all writes wait until the leader drops
    // it from the ISR (after replica.lag.time.max.ms), then succeed.
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    cluster.kill(follower);
    produce_all(&cluster, leader, "replicated", "second", 100);
    let m = cluster.metadata(leader).expect("metadata");
    assert!(
        !isr(&m, "replicated", 0).contains(&follower),
        "node {follower} still in the ISR {:?}",
        isr(&m, "replicated", 0)
    );

    // Back: it catches up and rejoins the ISR, with the same bytes.
    cluster.restart(follower);
    cluster.wait_metadata(leader, "the follower back in the ISR", |m| {
        isr(m, "replicated", 0).len() == 3
    });
    let grown = wait_identical(&cluster, &[1, 2, 3], "replicated", 0);
    assert!(grown > size, "the second writes replicated too");
}

/// Brokers replicate, and coordinate transactions, over an inter-broker
/// listener with SASL (PLAIN) over TLS, and the controllers talk over a
/// controller listener with SASL over TLS too, under an authorizer that
/// lets only the brokers' and controllers' own principals act for the
/// cluster; clients use a PLAINTEXT listener beside it. A broker with a
/// wrong controller password, and one logging in as a user without
/// CLUSTER_ACTION, are refused by the controllers and never join.
#[test]
fn brokers_replicate_over_sasl_ssl() {
    let certs = tempfile::tempdir().expect("temp dir");
    let tls = concat!(env!("CARGO_MANIFEST_DIR"), "/compat/lib/tls.sh");
    let made = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {tls} && tls_ca ca && tls_cert ca broker /O=strom/CN=localhost server"
        ))
        .current_dir(certs.path())
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let dir = certs.path().display();
    let settings = [
        "listeners=PLAINTEXT://{client},INTERNAL://{extra}".to_owned(),
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,CONTROLLER:SASL_SSL".to_owned(),
        "inter.broker.listener.name=INTERNAL".to_owned(),
        "sasl.enabled.mechanisms=PLAIN".to_owned(),
        "sasl.mechanism.inter.broker.protocol=PLAIN".to_owned(),
        "listener.name.internal.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" password=\"broker-secret\" user_broker=\"broker-secret\";".to_owned(),
        "sasl.mechanism.controller.protocol=PLAIN".to_owned(),
        controller_jaas("controller", "controller-secret"),
        "ssl.keystore.type=PEM".to_owned(),
        format!("ssl.keystore.location={dir}/broker.pem"),
        "ssl.truststore.type=PEM".to_owned(),
        format!("ssl.truststore.location={dir}/ca.pem"),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_owned(),
        // The test's own admin client comes over PLAINTEXT, as ANONYMOUS.
        "super.users=User:broker;User:controller;User:ANONYMOUS".to_owned(),
        "replica.lag.time.max.ms=2000".to_owned(),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let cluster = Cluster::start_with(3, &settings);
    cluster.create_topic(&[1], "secured", 1, 3);
    let m = cluster.wait_metadata(2, "the topic", |m| isr(m, "secured", 0).len() == 3);
    let leader = topic(&m, "secured").expect("topic").partitions[0]
        .leader_id
        .0;
    produce_all(&cluster, leader, "secured", "v", 300);
    wait_identical(&cluster, &[1, 2, 3], "secured", 0);
    // Metadata on the PLAINTEXT listener names the PLAINTEXT addresses.
    let brokers: BTreeSet<String> = m
        .brokers
        .iter()
        .map(|b| format!("{}:{}", b.host.as_str(), b.port))
        .collect();
    let clients: BTreeSet<String> = cluster.nodes.iter().map(|n| n.client.to_string()).collect();
    assert_eq!(brokers, clients);
    // The followers fetched as User:broker over INTERNAL.
    assert_broker_login(&cluster, leader);
    // The controllers logged each other in over TLS.
    let logs = || -> String {
        cluster
            .nodes
            .iter()
            .map(|n| std::fs::read_to_string(&n.log).unwrap_or_default())
            .collect()
    };
    assert!(
        logs()
            .lines()
            .any(|l| l.contains("controller listener: authenticated")
                && l.contains("User:controller")),
        "no SASL login of a controller"
    );

    // Intruders: a broker-only node with a wrong password, and one with a
    // valid login but no CLUSTER_ACTION; brokers only, they need no
    // keystore to reach the controllers over TLS.
    let intruder = |id: i32, user: &str, password: &str| {
        let mut args = vec![
            "process.roles=broker".to_owned(),
            format!("node.id={id}"),
            format!("controller.quorum.voters={}", cluster.voters),
            controller_jaas(user, password),
        ];
        args.extend(
            settings
                .iter()
                .filter(|s| {
                    !s.contains("jaas")
                        && !s.starts_with("listeners=")
                        && !s.starts_with("inter.broker")
                        && !s.starts_with("ssl.keystore")
                })
                .map(|s| (*s).to_owned()),
        );
        Intruder::spawn(&args, &certs.path().join(format!("intruder-{id}")))
    };
    let _wrong_password = intruder(4, "controller", "guess");
    let _unauthorized = intruder(5, "intruder", "intruder-secret");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = logs();
        let refused_login = text.contains("controller listener: authentication failed");
        let refused_request = text.lines().any(|l| {
            l.contains("controller listener: refused, no CLUSTER_ACTION")
                && l.contains("User:intruder")
        });
        if refused_login && refused_request {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the controllers did not refuse both intruders (login refused: {refused_login}, \
             request refused: {refused_request})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = cluster.metadata(1).expect("metadata");
    let ids: BTreeSet<i32> = m.brokers.iter().map(|b| b.node_id.0).collect();
    assert_eq!(ids, BTreeSet::from([1, 2, 3]), "an intruder registered");
}

/// Brokers log in to each other with SCRAM-SHA-512 on a SASL_PLAINTEXT
/// inter-broker listener, the credential made at start by `--add-scram`
/// (kept in the metadata quorum): followers replicate once it is there.
#[test]
fn brokers_replicate_over_scram() {
    let settings = [
        "listeners=PLAINTEXT://{client},INTERNAL://{extra}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_PLAINTEXT",
        "inter.broker.listener.name=INTERNAL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        "listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"broker-secret\";",
        "replica.lag.time.max.ms=2000",
    ];
    let cluster = Cluster::start_with_args(
        3,
        &settings,
        &[
            "--add-scram",
            "SCRAM-SHA-512=[name=broker,password=broker-secret]",
        ],
        None,
    );
    cluster.create_topic(&[1], "scram", 1, 3);
    let m = cluster.wait_metadata(2, "the topic", |m| isr(m, "scram", 0).len() == 3);
    let leader = leader_of(&m, "scram", 0);
    produce_all(&cluster, leader, "scram", "v", 200);
    wait_identical(&cluster, &[1, 2, 3], "scram", 0);
    assert_broker_login(&cluster, leader);
}

/// The leader's log shows a broker (User:broker) logging in over INTERNAL.
fn assert_broker_login(cluster: &Cluster, leader: i32) {
    let leader_log = std::fs::read_to_string(&cluster.nodes[leader_index(cluster, leader)].log)
        .expect("leader's log");
    assert!(
        leader_log.lines().any(|l| l.contains("authenticated")
            && l.contains("INTERNAL")
            && l.contains("User:broker")),
        "no SASL login of a broker in the leader's log"
    );
}

/// The controller listener's JAAS config: logs in as `user` with
/// `password`, accepts `controller` and `intruder`.
fn controller_jaas(user: &str, password: &str) -> String {
    format!(
        "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \
         required username=\"{user}\" password=\"{password}\" user_controller=\"controller-secret\" \
         user_intruder=\"intruder-secret\";"
    )
}

/// A strom process that is no member of the test's cluster, killed on drop.
struct Intruder(std::process::Child);

impl Intruder {
    fn spawn(settings: &[String], dir: &std::path::Path) -> Self {
        let child = Command::new(STROM)
            .args(["--listen", &free_port().to_string(), "--data-dir"])
            .arg(dir)
            .args(settings.iter().flat_map(|s| ["--set", s.as_str()]))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start strom");
        Self(child)
    }
}

impl Drop for Intruder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn leader_index(cluster: &Cluster, id: i32) -> usize {
    cluster
        .nodes
        .iter()
        .position(|n| n.id == id)
        .expect("a node of the cluster")
}

/// Settings of the failover tests: a broker silent for 1.5 s is fenced, a
/// follower 2 s behind leaves the ISR, acks=all needs two in-sync replicas.
const FAILOVER_SETTINGS: [&str; 4] = [
    "broker.session.timeout.ms=1500",
    "broker.heartbeat.interval.ms=200",
    "replica.lag.time.max.ms=2000",
    "min.insync.replicas=2",
];

/// What the producer of a [`Workload`] sent.
#[derive(Debug, Default)]
struct Produced {
    /// Acknowledged values and where: partition, offset.
    acked: BTreeMap<String, (i32, i64)>,
    /// Values the producer gave up on, with the error.
    failed: Vec<(String, String)>,
}

/// A record a consumer read: partition, offset, value.
type Seen = (i32, i64, String);

/// Clients running throughout a failover: an idempotent acks=all producer
/// sending `v-<i>` (keys `k<i % 16>`, so every partition gets values in
/// send order) and two consumers of one group reading, each on a thread
/// of its own until [`Workload::finish`].
struct Workload {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    /// Set when the producer cannot go on (librdkafka's fatal errors, e.g.
    /// when a broker lost records it had acknowledged).
    fatal: Arc<std::sync::Mutex<Option<String>>>,
    producer: Option<std::thread::JoinHandle<Produced>>,
    consumers: Vec<std::thread::JoinHandle<Vec<Seen>>>,
}

impl Workload {
    fn start(cluster: &Cluster, topic: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let fatal = Arc::new(std::sync::Mutex::new(None));
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap(&[1, 2, 3]))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "40000")
            .set("request.timeout.ms", "5000")
            // A request to a stopped or cut-off broker is given up on
            // after this (librdkafka's default: a minute).
            .set("socket.timeout.ms", "5000")
            .set("retry.backoff.ms", "50")
            .set("topic.metadata.refresh.interval.ms", "500")
            .create()
            .expect("producer");
        let producer = {
            let (topic, stop, acked) = (topic.to_owned(), stop.clone(), acked.clone());
            let fatal = fatal.clone();
            std::thread::spawn(move || {
                let produced = produce_until(&producer, &topic, &stop, &acked);
                if let Some(e) = producer.client().fatal_error() {
                    *fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{e:?}"));
                }
                produced
            })
        };
        let consumers = (0..2)
            .map(|_| {
                let consumer: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", cluster.bootstrap(&[1, 2, 3]))
                    .set("group.id", format!("{topic}-readers"))
                    .set("auto.offset.reset", "earliest")
                    .set("auto.commit.interval.ms", "500")
                    .set("session.timeout.ms", "6000")
                    .set("socket.timeout.ms", "5000")
                    .set("topic.metadata.refresh.interval.ms", "500")
                    .create()
                    .expect("consumer");
                consumer.subscribe(&[topic]).expect("subscribe");
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                            let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
                            seen.push((m.partition(), m.offset(), value.into_owned()));
                        }
                    }
                    seen
                })
            })
            .collect();
        Self {
            stop,
            acked,
            fatal,
            producer: Some(producer),
            consumers,
        }
    }

    /// Waits until `more` further values are acknowledged (the cluster
    /// takes writes); how many are by then.
    fn wait_acked(&self, more: usize, what: &str) -> usize {
        let target = self.acked.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let now = self.acked.load(Ordering::Relaxed);
            if now >= target {
                return now;
            }
            if let Some(e) = &*self.fatal.lock().unwrap_or_else(|e| e.into_inner()) {
                panic!("{what}: the producer stopped with a fatal error: {e}");
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {now} of {target} values acknowledged within {START_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the clients: what was produced, and what the group read.
    fn finish(mut self) -> (Produced, Vec<Seen>) {
        self.stop.store(true, Ordering::Relaxed);
        let produced = self
            .producer
            .take()
            .map(|p| p.join().expect("producer thread"))
            .unwrap_or_default();
        let seen = self
            .consumers
            .drain(..)
            .flat_map(|c| c.join().expect("consumer thread"))
            .collect();
        (produced, seen)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The producer thread of a [`Workload`]: sends until `stop`, at most
/// 50 values in flight, then waits for every report.
fn produce_until(
    producer: &FutureProducer,
    topic: &str,
    stop: &AtomicBool,
    acked: &AtomicUsize,
) -> Produced {
    let mut produced = Produced::default();
    let mut settle = |pending: &mut Vec<(String, rdkafka::producer::DeliveryFuture)>| {
        for (value, future) in pending.drain(..) {
            let Ok(delivered) = futures::executor::block_on(future) else {
                panic!("{value}: no delivery report");
            };
            match delivered {
                Ok(d) => {
                    produced.acked.insert(value, (d.partition, d.offset));
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Err((e, _)) => produced.failed.push((value, e.to_string())),
            }
        }
    };
    let mut pending = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let value = format!("v-{i:07}");
        let key = format!("k{}", i % 16);
        // Refused only once the producer is unusable (a fatal error).
        let Ok(future) = producer.send_result(FutureRecord::to(topic).key(&key).payload(&value))
        else {
            break;
        };
        pending.push((value, future));
        if pending.len() >= 50 {
            settle(&mut pending);
            // Paced: about 2000 values a second at most.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    settle(&mut pending);
    produced
}

/// The leader of `topic`-`partition` in node `via`'s Metadata (-1 if none).
fn leader(cluster: &Cluster, via: i32, topic_name: &str, partition: i32) -> i32 {
    cluster
        .metadata(via)
        .map_or(-1, |m| leader_of(&m, topic_name, partition))
}

/// What [`check_workload`] found: the final log, read from the start.
struct Verdict {
    /// Every record: (partition, offset) → value.
    records: BTreeMap<(i32, i64), String>,
    acked: usize,
    failed: usize,
    seen: usize,
    /// Offsets (all partitions) every replica holds identically.
    offsets: i64,
}

impl Verdict {
    /// The test's one summary line.
    fn summary(&self, what: &str) -> String {
        format!(
            "ok: {} acknowledged, 0 lost, 0 duplicated ({} given up by the producer, {} read by \
             the group meanwhile, all where the log has them); {what}; replicas identical at {} \
             offsets",
            self.acked, self.failed, self.seen, self.offsets
        )
    }
}

/// After a failover: waits until every replica of `topic`'s `partitions` is
/// in sync and holds the same bytes, then reads every partition from the
/// start to its high watermark and checks that every acknowledged value is
/// there exactly once, at the offset it was acknowledged with; that no
/// value is there twice; that each partition holds the workload's values
/// in send order; and that what the group read meanwhile is in the log
/// where it read it (nobody read a record that was later lost).
fn check_workload(
    cluster: &Cluster,
    topic_name: &str,
    partitions: i32,
    (produced, seen): &(Produced, Vec<Seen>),
) -> Verdict {
    wait_all_in_sync(cluster, 1, topic_name);
    for partition in 0..partitions {
        wait_identical(cluster, &[1, 2, 3], topic_name, partition);
    }
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap(&[1, 2, 3]))
        .set("group.id", format!("{topic_name}-checker"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut ends = BTreeMap::new();
    let mut assignment = rdkafka::TopicPartitionList::new();
    for partition in 0..partitions {
        let (_, high) = reader
            .fetch_watermarks(topic_name, partition, CLIENT_DEADLINE)
            .expect("watermarks");
        ends.insert(partition, high);
        assignment
            .add_partition_offset(topic_name, partition, rdkafka::Offset::Beginning)
            .expect("assignment");
    }
    reader.assign(&assignment).expect("assign");
    let mut records: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let mut doubled = Vec::new();
    let mut where_read: BTreeMap<String, (i32, i64)> = BTreeMap::new();
    let deadline = Instant::now() + START_DEADLINE;
    while next.iter().any(|(p, n)| *n < ends[p]) {
        assert!(
            Instant::now() < deadline,
            "read up to {next:?}, the high watermarks are {ends:?}"
        );
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            let at = (m.partition(), m.offset());
            next.insert(at.0, at.1 + 1);
            if let Some(before) = where_read.insert(value.clone(), at) {
                doubled.push((value.clone(), before, at));
            }
            records.insert(at, value);
        }
    }
    let lost: Vec<(&String, &(i32, i64))> = produced
        .acked
        .iter()
        .filter(|(v, at)| records.get(at) != Some(*v))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged values not where they were acknowledged (e.g. {:?}, the log has {:?} there)",
        lost.len(),
        lost.first(),
        lost.first().and_then(|(_, at)| records.get(at))
    );
    assert!(doubled.is_empty(), "stored twice: {doubled:?}");
    for partition in 0..partitions {
        let values: Vec<&String> = records
            .range((partition, 0)..(partition + 1, 0))
            .map(|(_, v)| v)
            .filter(|v| v.starts_with("v-"))
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "partition {partition} not in send order"
        );
    }
    let moved: Vec<&Seen> = seen
        .iter()
        .filter(|(p, o, v)| records.get(&(*p, *o)) != Some(v))
        .collect();
    assert!(
        moved.is_empty(),
        "{} values the group read are not in the log where it read them (e.g. {:?}, the log has {:?})",
        moved.len(),
        moved.first(),
        moved.first().and_then(|(p, o, _)| records.get(&(*p, *o)))
    );
    assert!(
        !produced.acked.is_empty() && !seen.is_empty(),
        "the clients did work"
    );
    Verdict {
        records,
        acked: produced.acked.len(),
        failed: produced.failed.len(),
        seen: seen.len(),
        offsets: ends.values().sum(),
    }
}

/// The leader of a replicated partition is SIGKILLed while an idempotent
/// acks=all producer writes and a group reads: the controller fences it, a
/// follower from the ISR takes over, the clients carry on; the restarted
/// node ends with the same bytes as the others ([`check_workload`]).
#[test]
fn a_lost_leader_loses_no_acknowledged_record() {
    let mut cluster = Cluster::start_with(3, &FAILOVER_SETTINGS);
    cluster.create_topic(&[1], "failover", 2, 3);
    let m = wait_all_in_sync(&cluster, 1, "failover");
    let victim = topic(&m, "failover").expect("topic").partitions[0]
        .leader_id
        .0;
    let workload = Workload::start(&cluster, "failover");
    workload.wait_acked(500, "before the kill");
    cluster.kill(victim);
    workload.wait_acked(1000, "after the kill");
    let survivor = (1..=3).find(|id| *id != victim).expect("a survivor");
    let m = cluster.metadata(survivor).expect("metadata");
    let now_led = topic(&m, "failover").expect("topic").partitions[0]
        .leader_id
        .0;
    assert_ne!(now_led, victim, "partition 0 has a new leader");
    assert!(
        !brokers(&m).contains_key(&victim),
        "Metadata lists live brokers only"
    );
    let described: kafka_protocol::messages::DescribeClusterResponse =
        RawClient::connect(cluster.address(survivor))
            .and_then(|mut c| {
                c.call(
                    ApiKey::DescribeCluster,
                    2,
                    &kafka_protocol::messages::DescribeClusterRequest::default()
                        .with_endpoint_type(1)
                        .with_include_fenced_brokers(true),
                )
            })
            .expect("describe cluster");
    assert!(
        described
            .brokers
            .iter()
            .any(|b| b.broker_id.0 == victim && b.is_fenced),
        "DescribeCluster v2 lists the fenced broker: {:?}",
        described.brokers
    );
    cluster.restart(victim);
    wait_all_in_sync(&cluster, survivor, "failover");
    workload.wait_acked(300, "after the restart");
    let outcome = workload.finish();
    let verdict = check_workload(&cluster, "failover", 2, &outcome);
    println!(
        "{}",
        verdict.summary(&format!(
            "leader killed and restarted, moved {victim} -> {now_led}"
        ))
    );
}

/// A zombie leader: the leader of partition 0 is SIGSTOPped past the
/// session timeout (fenced, another ISR replica leads, the clients carry
/// on), then SIGCONTed. A Produce acks=all and one acks=1 are waiting in
/// its socket when it resumes, before it has seen that it lost the
/// leadership: the acks=all one must be refused, or be in the final log
/// where it was acknowledged; the acks=1 one may be lost (Kafka's acks=1).
/// The zombie then follows the new leader, truncates what only it had and
/// ends with the same bytes as the others.
#[test]
fn a_zombie_leader_loses_no_acknowledged_record() {
    let cluster = Cluster::start_with(3, &FAILOVER_SETTINGS);
    cluster.create_topic(&[1], "zombie", 2, 3);
    let m = wait_all_in_sync(&cluster, 1, "zombie");
    let zombie = topic(&m, "zombie").expect("topic").partitions[0]
        .leader_id
        .0;
    let survivor = (1..=3).find(|id| *id != zombie).expect("a survivor");
    let workload = Workload::start(&cluster, "zombie");
    workload.wait_acked(500, "before the stop");
    cluster.signal(zombie, "STOP");
    let m = cluster.wait_metadata(survivor, "a new leader of partition 0", |m| {
        topic(m, "zombie").is_some_and(|t| {
            let p = &t.partitions[0];
            p.leader_id.0 > 0
                && p.leader_id.0 != zombie
                && !p.isr_nodes.iter().any(|b| b.0 == zombie)
        })
    });
    let new_leader = topic(&m, "zombie").expect("topic").partitions[0]
        .leader_id
        .0;
    workload.wait_acked(500, "with the zombie stopped");
    // Both requests sit in the zombie's socket before it runs again.
    let mut all = RawClient::connect(cluster.address(zombie)).expect("connect");
    let mut one = RawClient::connect(cluster.address(zombie)).expect("connect");
    all.send(
        ApiKey::Produce,
        9,
        &produce_request("zombie", 0, -1, b"zombie-acks-all"),
    )
    .expect("send");
    one.send(
        ApiKey::Produce,
        9,
        &produce_request("zombie", 0, 1, b"zombie-acks-1"),
    )
    .expect("send");
    cluster.signal(zombie, "CONT");
    let answer = |client: &mut RawClient| {
        let response: ProduceResponse = client.receive(ApiKey::Produce, 9).expect("produce");
        let p = &response.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    };
    let (all_code, all_offset) = answer(&mut all);
    let (one_code, one_offset) = answer(&mut one);
    // NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS(_AFTER_APPEND).
    assert!(
        [0, 6, 7, 19, 20].contains(&all_code),
        "acks=all to the zombie: error {all_code}"
    );
    wait_all_in_sync(&cluster, survivor, "zombie");
    workload.wait_acked(300, "after the zombie's return");
    let outcome = workload.finish();
    let verdict = check_workload(&cluster, "zombie", 2, &outcome);
    if all_code == 0 {
        assert_eq!(
            verdict.records.get(&(0, all_offset)).map(String::as_str),
            Some("zombie-acks-all"),
            "the zombie acknowledged acks=all at offset {all_offset}: it must be there"
        );
    }
    let kept_one = one_code == 0
        && verdict.records.get(&(0, one_offset)).map(String::as_str) == Some("zombie-acks-1");
    println!(
        "{}",
        verdict.summary(&format!(
            "leader {zombie} stopped, fenced, moved {zombie} -> {new_leader}, resumed; \
             acks=all to the zombie: error {all_code}; acks=1: error {one_code}, {}",
            if kept_one { "kept" } else { "not kept" }
        ))
    );
}

/// A network partition: the leader of partition 0 loses its only link
/// (network namespaces: [`Netns`]) for longer than the session timeout; the
/// others fence it and carry on, it keeps running alone. Healed, it learns
/// it no longer leads, follows, truncates, and ends with the same bytes.
/// Skipped, with the reason printed, where namespaces cannot be made.
#[test]
fn a_partitioned_leader_loses_no_acknowledged_record() {
    let net = match Netns::create(3) {
        Ok(net) => net,
        Err(why) => {
            println!("skipped: no network namespaces here ({why})");
            return;
        }
    };
    let cluster = Cluster::start_in(3, &FAILOVER_SETTINGS, Some(net));
    cluster.create_topic(&[1, 2, 3], "partitioned", 2, 3);
    let m = wait_all_in_sync(&cluster, 1, "partitioned");
    let cut = topic(&m, "partitioned").expect("topic").partitions[0]
        .leader_id
        .0;
    let survivor = (1..=3).find(|id| *id != cut).expect("a survivor");
    let workload = Workload::start(&cluster, "partitioned");
    workload.wait_acked(500, "before the cut");
    let net = cluster.net.as_ref().expect("namespaces");
    net.link(cut, false);
    let cut_at = Instant::now();
    cluster.wait_metadata(survivor, "the cut node fenced", |m| {
        !brokers(m).contains_key(&cut)
            && topic(m, "partitioned").is_some_and(|t| {
                t.partitions
                    .iter()
                    .all(|p| p.leader_id.0 > 0 && p.leader_id.0 != cut)
            })
    });
    let new_leader = leader(&cluster, survivor, "partitioned", 0);
    workload.wait_acked(500, "with a node cut off");
    let cut_for = cut_at.elapsed();
    net.link(cut, true);
    wait_all_in_sync(&cluster, survivor, "partitioned");
    workload.wait_acked(300, "after healing");
    let outcome = workload.finish();
    let verdict = check_workload(&cluster, "partitioned", 2, &outcome);
    println!(
        "{}",
        verdict.summary(&format!(
            "node {cut} cut off for {:.1} s, leader moved {cut} -> {new_leader}",
            cut_for.as_secs_f64()
        ))
    );
}

/// A rolling restart: each node in turn gets SIGTERM (controlled
/// shutdown), the clients carry on without it, it starts again and the
/// next one goes only once it is back in every ISR.
#[test]
fn a_rolling_restart_loses_no_acknowledged_record() {
    let mut cluster = Cluster::start_with(3, &FAILOVER_SETTINGS);
    cluster.create_topic(&[1], "rolling", 3, 3);
    wait_all_in_sync(&cluster, 1, "rolling");
    let workload = Workload::start(&cluster, "rolling");
    workload.wait_acked(500, "before the restarts");
    let mut leaders = Vec::new();
    for id in 1..=3 {
        let other = id % 3 + 1;
        assert!(cluster.terminate(id).success(), "node {id} stopped cleanly");
        workload.wait_acked(300, &format!("with node {id} stopped"));
        cluster.restart(id);
        cluster.wait_metadata(other, &format!("node {id} back in every ISR"), |m| {
            brokers(m).contains_key(&id)
                && !m.topics.is_empty()
                && m.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .all(|p| p.isr_nodes.iter().any(|b| b.0 == id))
        });
        leaders.push(
            (0..3)
                .map(|p| leader(&cluster, other, "rolling", p).to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        workload.wait_acked(300, &format!("with node {id} back"));
    }
    let outcome = workload.finish();
    let verdict = check_workload(&cluster, "rolling", 3, &outcome);
    println!(
        "{}",
        verdict.summary(&format!(
            "nodes 1, 2, 3 restarted in turn; leaders of partitions 0,1,2 after each: {}",
            leaders.join(" / ")
        ))
    );
}

/// A replica that restarts keeps what it has until its leader tells it
/// where their logs diverge: the second replica of a partition is
/// SIGKILLed and restarted at once (still in the ISR) while the leader is
/// SIGSTOPped, so it cannot fetch; the leader is fenced and the restarted
/// replica, the first live one in the ISR, takes over. Truncating to its
/// checkpointed high watermark on start (older than what was acknowledged)
/// would lose acknowledged records and leave the third replica with other
/// records at the same offsets.
#[test]
fn a_restarted_replica_that_takes_over_loses_no_acknowledged_record() {
    let mut cluster = Cluster::start_with(
        3,
        &[
            "broker.session.timeout.ms=4000",
            "broker.heartbeat.interval.ms=200",
            "replica.lag.time.max.ms=10000",
            "min.insync.replicas=2",
        ],
    );
    cluster.create_topic(&[1], "epochs", 3, 3);
    let m = wait_all_in_sync(&cluster, 1, "epochs");
    // The partition whose third replica is the controller: stopping its
    // leader and restarting its second replica leaves the quorum's leader
    // alone, so the restarted node is back (not fenced) at once.
    let controller = m.controller_id.0;
    let (partition, replicas): (i32, Vec<i32>) = topic(&m, "epochs")
        .expect("topic")
        .partitions
        .iter()
        .map(|p| {
            let replicas = p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>();
            (p.partition_index, replicas)
        })
        .find(|(_, r)| r.len() == 3 && r[2] == controller)
        .expect("a partition with the controller third");
    let (leader_before, second, third) = (replicas[0], replicas[1], replicas[2]);
    let workload = Workload::start(&cluster, "epochs");
    workload.wait_acked(1000, "before the kill");
    cluster.kill(second);
    cluster.signal(leader_before, "STOP");
    cluster.restart(second);
    cluster.wait_metadata(third, "the restarted replica leading", |m| {
        leader_of(m, "epochs", partition) == second
    });
    workload.wait_acked(500, "with the restarted replica leading");
    cluster.signal(leader_before, "CONT");
    wait_all_in_sync(&cluster, third, "epochs");
    workload.wait_acked(300, "with every replica back");
    let outcome = workload.finish();
    let verdict = check_workload(&cluster, "epochs", 3, &outcome);
    println!(
        "{}",
        verdict.summary(&format!(
            "partition {partition}: replica {second} killed and restarted with leader \
             {leader_before} stopped, leader moved {leader_before} -> {second}"
        ))
    );
}

/// SIGTERM: the node hands its partitions' leadership to the other
/// in-sync replicas before it stops (controlled shutdown), long before
/// the controller would notice its silence.
#[test]
fn a_stopping_node_hands_over_its_leadership() {
    let mut cluster = Cluster::start_with(3, &["broker.session.timeout.ms=60000"]);
    cluster.create_topic(&[1], "handover", 3, 3);
    let m = cluster.wait_metadata(1, "the topic", |m| {
        topic(m, "handover").is_some_and(|t| t.partitions.iter().all(|p| p.isr_nodes.len() == 3))
    });
    let leaving = topic(&m, "handover").expect("topic").partitions[0]
        .leader_id
        .0;
    let started = Instant::now();
    assert!(cluster.terminate(leaving).success());
    let survivor = (1..=3).find(|id| *id != leaving).expect("a survivor");
    let m = cluster.wait_metadata(survivor, "new leaders", |m| {
        topic(m, "handover").is_some_and(|t| {
            t.partitions
                .iter()
                .all(|p| p.leader_id.0 != leaving && p.leader_id.0 > 0)
        }) && !brokers(m).contains_key(&leaving)
    });
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "handed over in {:?}",
        started.elapsed()
    );
    assert!(topic(&m, "handover")
        .expect("topic")
        .partitions
        .iter()
        .all(|p| !p.isr_nodes.iter().any(|b| b.0 == leaving)));
}

/// A topic created through one node is known to every other one as soon
/// as the creation is answered (CreateTopics waits until the live members
/// applied it), so a client that lists topics on another node right after
/// finds it; deletion likewise.
#[test]
fn a_created_topic_is_known_everywhere_when_answered() {
    let cluster = Cluster::start(3);
    for i in 0..10 {
        let name = format!("everywhere-{i}");
        let via = 1 + i % 3;
        cluster.create_topic(&[via], &name, 1, 3);
        for id in 1..=3 {
            let m = cluster.metadata(id).expect("metadata");
            assert!(
                topic(&m, &name).is_some(),
                "node {id} does not list {name} created via node {via}"
            );
        }
    }
    println!("ok: 10 topics, each listed by all three nodes when its creation was answered");
}

/// Leader epochs as clients see them across a leader change (KIP-320):
/// OffsetForLeaderEpoch on the new leader says where the old epoch ended
/// and that the new one ends at the log end; ListOffsets answers the new
/// epoch and refuses a client still in the old one (FENCED_LEADER_EPOCH).
#[test]
fn leader_epochs_follow_a_leader_change() {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::{
        BrokerId, ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
        OffsetForLeaderEpochResponse,
    };
    let mut cluster = Cluster::start_with(3, &["broker.session.timeout.ms=60000"]);
    cluster.create_topic(&[1], "epochs", 1, 3);
    let state = |m: &MetadataResponse| {
        topic(m, "epochs")
            .map(|t| (t.partitions[0].leader_id.0, t.partitions[0].leader_epoch))
            .unwrap_or((-1, -1))
    };
    let m = cluster.wait_metadata(1, "the topic", |m| isr(m, "epochs", 0).len() == 3);
    let (first, old_epoch) = state(&m);
    for _ in 0..10 {
        assert_eq!(produce_code(&cluster, first, "epochs", 0), 0);
    }
    assert!(cluster.terminate(first).success());
    let survivor = (1..=3).find(|id| *id != first).expect("a survivor");
    let m = cluster.wait_metadata(survivor, "a new leader", |m| {
        let (leader, _) = state(m);
        leader > 0 && leader != first
    });
    let (second, new_epoch) = state(&m);
    assert!(new_epoch > old_epoch, "epoch {old_epoch} -> {new_epoch}");
    for _ in 0..5 {
        assert_eq!(produce_code(&cluster, second, "epochs", 0), 0);
    }
    let mut client = RawClient::connect(cluster.address(second)).expect("connect");
    let mut epoch_end = |epoch: i32| {
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![OffsetForLeaderTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("epochs")))
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(new_epoch)
                    .with_leader_epoch(epoch)])]);
        let response: OffsetForLeaderEpochResponse = client
            .call(ApiKey::OffsetForLeaderEpoch, 4, &request)
            .expect("OffsetForLeaderEpoch");
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    assert_eq!(epoch_end(old_epoch), (0, old_epoch, 10), "the old epoch");
    assert_eq!(epoch_end(new_epoch), (0, new_epoch, 15), "the new epoch");
    let mut client = RawClient::connect(cluster.address(second)).expect("connect");
    let mut latest = |current: i32| {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("epochs")))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_current_leader_epoch(current)
                    .with_timestamp(-1)])]);
        let response: ListOffsetsResponse = client
            .call(ApiKey::ListOffsets, 7, &request)
            .expect("ListOffsets");
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.offset, p.leader_epoch)
    };
    assert_eq!(latest(new_epoch), (0, 15, new_epoch));
    assert_eq!(latest(old_epoch).0, 74, "FENCED_LEADER_EPOCH");
    println!(
        "ok: leader {first} -> {second}, epoch {old_epoch} ended at 10, epoch {new_epoch} at 15"
    );
}

/// Committed offsets live in the replicated `__consumer_offsets`: when
/// the group's coordinator is SIGKILLed, the partition's new leader
/// replays it and answers with every acknowledged commit.
#[test]
fn committed_offsets_survive_the_coordinators_loss() {
    let mut cluster = Cluster::start_with(
        3,
        &[
            "broker.session.timeout.ms=1500",
            "broker.heartbeat.interval.ms=200",
        ],
    );
    cluster.create_topic(&[1], "tracked", 4, 3);
    let group = "survivors";
    let consumer = |bootstrap: String| -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer")
    };
    let committer = consumer(cluster.bootstrap(&[1, 2, 3]));
    let mut offsets = rdkafka::TopicPartitionList::new();
    for partition in 0..4 {
        offsets
            .add_partition_offset(
                "tracked",
                partition,
                rdkafka::Offset::Offset(i64::from(partition) * 10 + 7),
            )
            .expect("offset");
    }
    committer
        .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
    drop(committer);
    let request = kafka_protocol::messages::FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str(group))
        .with_key_type(0);
    let found: kafka_protocol::messages::FindCoordinatorResponse =
        RawClient::connect(cluster.address(1))
            .and_then(|mut c| c.call(ApiKey::FindCoordinator, 3, &request))
            .expect("find coordinator");
    assert_eq!(found.error_code, 0);
    let coordinator = found.node_id.0;
    cluster.kill(coordinator);
    let survivors: Vec<i32> = (1..=3).filter(|id| *id != coordinator).collect();
    let reader = consumer(cluster.bootstrap(&survivors));
    let mut wanted = rdkafka::TopicPartitionList::new();
    for partition in 0..4 {
        wanted.add_partition("tracked", partition);
    }
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        let committed = reader.committed_offsets(wanted.clone(), Duration::from_secs(5));
        let seen: Vec<Option<i64>> = committed
            .map(|list| {
                (0..4)
                    .map(|p| {
                        list.find_partition("tracked", p)
                            .and_then(|e| e.offset().to_raw())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<Option<i64>> = (0..4).map(|p| Some(i64::from(p) * 10 + 7)).collect();
        if seen == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "committed offsets after losing coordinator {coordinator}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs strom with `args` (and a throwaway data dir): it must exit
/// non-zero at once with one line naming `key`.
fn refuses(args: &[&str], key: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    refuses_in(dir.path(), args, key);
}

/// As [`refuses`], with the data dir `dir`.
fn refuses_in(dir: &std::path::Path, args: &[&str], key: &str) {
    let listen = free_port().to_string();
    let mut child = Command::new(STROM)
        .args(["--listen", &listen, "--data-dir"])
        .arg(dir)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run strom");
    // A refusal is immediate; a node that starts instead is killed.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    assert!(
        status.is_some_and(|s| !s.success()),
        "{args:?} was accepted: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("strom: ") && last.contains(key),
        "{args:?}: {stderr}"
    );
}

/// A single node's data dir (its topics are not the cluster's) is not
/// turned into a cluster member, which would delete them.
#[test]
fn a_single_nodes_data_dir_does_not_join_a_quorum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = free_port();
    let mut single = Command::new(STROM)
        .args(["--listen", &listen.to_string(), "--data-dir"])
        .arg(dir.path())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start strom");
    let deadline = Instant::now() + START_DEADLINE;
    while TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "single node not up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", listen.to_string())
        .create()
        .expect("admin");
    let options = AdminOptions::new().request_timeout(Some(CLIENT_DEADLINE));
    let topic = NewTopic::new("precious", 1, TopicReplication::Fixed(1));
    let created =
        futures::executor::block_on(admin.create_topics([&topic], &options)).expect("create");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    let _ = Command::new("kill")
        .args(["-TERM", &single.id().to_string()])
        .status();
    assert!(single.wait().expect("wait").success());
    let voters = format!("controller.quorum.voters=1@{}", free_port());
    refuses_in(
        dir.path(),
        &["--node-id", "1", "--set", &voters],
        "single-node",
    );
}

#[test]
fn impossible_quorum_settings_stop_with_one_line() {
    let voters = format!("1@{},2@{}", free_port(), free_port());
    let set_voters = format!("controller.quorum.voters={voters}");
    refuses(
        &["--node-id", "3", "--set", &set_voters],
        "controller.quorum.voters",
    );
    refuses(
        &[
            "--node-id",
            "1",
            "--set",
            "controller.quorum.voters=1@nohostport",
        ],
        "controller.quorum.voters",
    );
    refuses(
        &[
            "--node-id",
            "1",
            "--set",
            &set_voters,
            "--set",
            "process.roles=broker",
        ],
        "process.roles",
    );
    refuses(
        &["--set", "process.roles=broker,zookeeper"],
        "process.roles",
    );
    refuses(&["--set", "process.roles=broker"], "process.roles");
    refuses(&["--set", "process.roles=controller"], "process.roles");
    // Several bootstrap servers alone: a dynamic voter set (one is a
    // quorum of one, as Kafka's default server.properties).
    let bootstrap = format!(
        "controller.quorum.bootstrap.servers={},{}",
        free_port(),
        free_port()
    );
    refuses(
        &["--set", &bootstrap, "--set", "process.roles=controller"],
        "controller.quorum.bootstrap.servers",
    );
}

/// ElectLeaders v2 of one partition, asked of node `via`: (code, message).
fn elect(
    cluster: &Cluster,
    via: i32,
    election_type: i8,
    topic_name: &str,
    partition: i32,
) -> (i16, Option<String>) {
    let request = ElectLeadersRequest::default()
        .with_election_type(election_type)
        .with_timeout_ms(10_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(TopicName(StrBytes::from_string(topic_name.to_owned())))
            .with_partitions(vec![partition])]));
    let response: ElectLeadersResponse = RawClient::connect(cluster.address(via))
        .and_then(|mut c| c.call(ApiKey::ElectLeaders, 2, &request))
        .expect("ElectLeaders");
    assert_eq!(response.error_code, 0);
    let result = &response.replica_election_results[0].partition_result[0];
    (
        result.error_code,
        result.error_message.as_ref().map(ToString::to_string),
    )
}

/// The preferred replica (the first of the assignment) SIGKILLed: another
/// ISR member leads; back and in the ISR it stays a follower (automatic
/// rebalance off) until a preferred ElectLeaders moves leadership back in
/// a new epoch, after which the election is not needed. A partition whose
/// only replica is down has neither a preferred nor an unclean candidate.
#[test]
fn a_preferred_election_moves_leadership_back() {
    let mut cluster = Cluster::start_with(
        3,
        &[
            "broker.session.timeout.ms=1500",
            "broker.heartbeat.interval.ms=200",
            "replica.lag.time.max.ms=2000",
            "auto.leader.rebalance.enable=false",
        ],
    );
    cluster.create_topic(&[1], "elect", 1, 3);
    cluster.create_topic(&[1], "lonely", 1, 1);
    let m = cluster.wait_metadata(1, "the topics", |m| {
        isr(m, "elect", 0).len() == 3 && leader_of(m, "lonely", 0) >= 0
    });
    let preferred = topic(&m, "elect").expect("topic").partitions[0].replica_nodes[0].0;
    assert_eq!(leader_of(&m, "elect", 0), preferred);
    let lonely = leader_of(&m, "lonely", 0);
    let other = (1..=3).find(|id| *id != preferred).expect("a survivor");
    cluster.kill(preferred);
    cluster.wait_metadata(other, "another leader", |m| {
        let now = leader_of(m, "elect", 0);
        now >= 0 && now != preferred
    });
    if lonely == preferred {
        cluster.wait_metadata(other, "no leader for lonely", |m| {
            leader_of(m, "lonely", 0) == -1
        });
        assert_eq!(
            elect(&cluster, other, 1, "lonely", 0),
            (
                83,
                Some("Eligible topic partition leaders are not available.".into())
            )
        );
        assert_eq!(
            elect(&cluster, other, 0, "lonely", 0),
            (80, Some("The preferred leader was not available.".into()))
        );
    }
    assert_eq!(
        elect(&cluster, other, 0, "elect", 0),
        (80, Some("The preferred leader was not available.".into())),
        "the preferred replica is down"
    );
    cluster.restart(preferred);
    let m = cluster.wait_metadata(other, "the preferred replica back in the ISR", |m| {
        isr(m, "elect", 0).contains(&preferred)
    });
    assert_ne!(
        leader_of(&m, "elect", 0),
        preferred,
        "no automatic rebalance"
    );
    assert_eq!(elect(&cluster, other, 0, "elect", 0), (0, None));
    let m = cluster.wait_metadata(preferred, "the preferred leader", |m| {
        leader_of(m, "elect", 0) == preferred
    });
    assert_eq!(leader_of(&m, "elect", 0), preferred);
    assert_eq!(
        elect(&cluster, preferred, 0, "elect", 0),
        (
            84,
            Some("Leader election not needed for topic partition.".into())
        )
    );
    assert_eq!(
        elect(&cluster, preferred, 1, "elect", 0),
        (
            84,
            Some("Leader election not needed for topic partition.".into())
        ),
        "an unclean election is needed only without a leader"
    );
    // The partition still takes writes and replicates under its new leader.
    produce_all(&cluster, preferred, "elect", "after", 50);
    wait_identical(&cluster, &[1, 2, 3], "elect", 0);
}

/// With `auto.leader.rebalance.enable` (Kafka's default) the active
/// controller moves leadership back to the preferred replica by itself
/// once it is back in the ISR (checked every
/// `leader.imbalance.check.interval.seconds`).
#[test]
fn the_controller_rebalances_leadership_to_the_preferred_replica() {
    let mut cluster = Cluster::start_with(
        3,
        &[
            "broker.session.timeout.ms=1500",
            "broker.heartbeat.interval.ms=200",
            "replica.lag.time.max.ms=2000",
            "leader.imbalance.check.interval.seconds=1",
        ],
    );
    cluster.create_topic(&[1], "balanced", 1, 3);
    let m = cluster.wait_metadata(1, "the topic", |m| isr(m, "balanced", 0).len() == 3);
    let preferred = topic(&m, "balanced").expect("topic").partitions[0].replica_nodes[0].0;
    let other = (1..=3).find(|id| *id != preferred).expect("a survivor");
    cluster.kill(preferred);
    cluster.wait_metadata(other, "another leader", |m| {
        let now = leader_of(m, "balanced", 0);
        now >= 0 && now != preferred
    });
    cluster.restart(preferred);
    cluster.wait_metadata(other, "the preferred leader again", |m| {
        leader_of(m, "balanced", 0) == preferred && isr(m, "balanced", 0).len() == 3
    });
}

/// AlterPartitionReassignments v1 of one partition via node `via`:
/// (code, message).
fn reassign(
    cluster: &Cluster,
    via: i32,
    topic_name: &str,
    replicas: Option<Vec<i32>>,
) -> (i16, Option<String>) {
    reassign_with(cluster, via, topic_name, replicas, true)
}

fn reassign_with(
    cluster: &Cluster,
    via: i32,
    topic_name: &str,
    replicas: Option<Vec<i32>>,
    allow_replication_factor_change: bool,
) -> (i16, Option<String>) {
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_allow_replication_factor_change(allow_replication_factor_change)
        .with_topics(vec![ReassignableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic_name.to_owned())))
            .with_partitions(vec![ReassignablePartition::default()
                .with_partition_index(0)
                .with_replicas(
                    replicas.map(|r| r.into_iter().map(BrokerId).collect()),
                )])]);
    let response: AlterPartitionReassignmentsResponse = RawClient::connect(cluster.address(via))
        .and_then(|mut c| c.call(ApiKey::AlterPartitionReassignments, 1, &request))
        .expect("AlterPartitionReassignments");
    let result = &response.responses[0].partitions[0];
    (
        result.error_code,
        result.error_message.as_ref().map(ToString::to_string),
    )
}

/// An ongoing reassignment: (topic, partition, replicas, adding, removing).
type Ongoing = (String, i32, Vec<i32>, Vec<i32>, Vec<i32>);

/// The ongoing reassignments node `via` lists.
fn reassignments(cluster: &Cluster, via: i32) -> Vec<Ongoing> {
    let response: ListPartitionReassignmentsResponse = RawClient::connect(cluster.address(via))
        .and_then(|mut c| {
            c.call(
                ApiKey::ListPartitionReassignments,
                0,
                &ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000),
            )
        })
        .expect("ListPartitionReassignments");
    let ids = |ids: &[BrokerId]| ids.iter().map(|b| b.0).collect::<Vec<_>>();
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect()
}

/// The replicas of `topic`-0 in `m`.
fn replicas(m: &MetadataResponse, topic_name: &str) -> Vec<i32> {
    topic(m, topic_name)
        .and_then(|t| t.partitions.first())
        .map(|p| p.replica_nodes.iter().map(|b| b.0).collect())
        .unwrap_or_default()
}

/// A reassignment adding a node that is down stays in progress (listed
/// with its adding replica) until cancelled, which restores the
/// assignment. With the node up, a reassignment from [1, 2] to [3, 2]
/// completes by itself: node 3 fetches the partition, catches up and
/// joins the ISR, node 1 leaves and hands its leadership to node 3, and
/// the new replicas hold the same bytes.
#[test]
fn a_reassignment_moves_a_replica_and_can_be_cancelled() {
    let mut cluster = Cluster::start_with(3, &["replica.lag.time.max.ms=2000"]);
    cluster.create_topic(&[1], "moving", 1, 2);
    let m = cluster.wait_metadata(1, "the topic", |m| isr(m, "moving", 0).len() == 2);
    assert_eq!(replicas(&m, "moving"), [1, 2]);
    produce_all(&cluster, 1, "moving", "before", 200);

    cluster.kill(3);
    assert_eq!(
        reassign(&cluster, 1, "moving", Some(vec![1, 2, 3])),
        (0, None)
    );
    let listed = reassignments(&cluster, 2);
    assert_eq!(
        listed,
        [("moving".to_owned(), 0, vec![1, 2, 3], vec![3], vec![])],
        "node 3 is down: it cannot catch up"
    );
    assert_eq!(reassign(&cluster, 2, "moving", None), (0, None));
    let m = cluster.wait_metadata(1, "the assignment restored", |m| {
        replicas(m, "moving") == [1, 2]
    });
    assert_eq!(isr(&m, "moving", 0).len(), 2);
    assert!(reassignments(&cluster, 1).is_empty());
    assert_eq!(reassign(&cluster, 1, "moving", None), (85, None));

    cluster.restart(3);
    assert_eq!(reassign(&cluster, 3, "moving", Some(vec![3, 2])), (0, None));
    let m = cluster.wait_metadata(2, "the reassignment complete", |m| {
        replicas(m, "moving") == [3, 2]
    });
    let mut in_sync = isr(&m, "moving", 0);
    in_sync.sort_unstable();
    assert_eq!(in_sync, [2, 3]);
    assert_eq!(
        leader_of(&m, "moving", 0),
        3,
        "node 1 handed over leadership"
    );
    assert!(reassignments(&cluster, 2).is_empty());
    produce_all(&cluster, 3, "moving", "after", 100);
    wait_identical(&cluster, &[2, 3], "moving", 0);
}

/// Sends `signal` (STOP, CONT) to node `id`.
fn signal(cluster: &Cluster, id: i32, signal: &str) {
    let node = &cluster.nodes[cluster.index(id)];
    let pid = node.child.as_ref().expect("running").id().to_string();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    assert!(sent.success(), "kill -{signal} {pid}");
}

/// Node 2, a follower of two partitions led by node 1, is frozen
/// (SIGSTOP) until it leaves their ISRs; node 1 then dies and node 2
/// comes back: the partitions are left without a leader, node 2 being
/// live but out of sync. The one with `unclean.leader.election.enable`
/// gets node 2 as leader from the controller, alone in its ISR; the other
/// waits for an UNCLEAN ElectLeaders, which does the same.
#[test]
fn an_unclean_election_picks_a_live_replica_outside_the_isr() {
    let mut cluster = Cluster::start_with(
        3,
        &[
            "broker.session.timeout.ms=1500",
            "broker.heartbeat.interval.ms=200",
            "replica.lag.time.max.ms=1000",
        ],
    );
    let admin = cluster.admin(&[3]);
    let options = AdminOptions::new().request_timeout(Some(CLIENT_DEADLINE));
    let auto = NewTopic::new("unclean-auto", 1, TopicReplication::Fixed(2))
        .set("unclean.leader.election.enable", "true");
    let asked = NewTopic::new("unclean-asked", 1, TopicReplication::Fixed(2));
    let created = futures::executor::block_on(admin.create_topics([&auto, &asked], &options))
        .expect("create topics");
    for result in created {
        result.unwrap_or_else(|(name, code)| panic!("create {name}: {code}"));
    }
    let m = cluster.wait_metadata(3, "both topics in sync", |m| {
        isr(m, "unclean-auto", 0).len() == 2 && isr(m, "unclean-asked", 0).len() == 2
    });
    assert_eq!(replicas(&m, "unclean-auto"), [1, 2]);
    assert_eq!(replicas(&m, "unclean-asked"), [1, 2]);

    signal(&cluster, 2, "STOP");
    cluster.wait_metadata(3, "node 2 out of both ISRs", |m| {
        isr(m, "unclean-auto", 0) == [1] && isr(m, "unclean-asked", 0) == [1]
    });
    cluster.kill(1);
    signal(&cluster, 2, "CONT");
    let m = cluster.wait_metadata(3, "an unclean leader for unclean-auto", |m| {
        leader_of(m, "unclean-auto", 0) == 2
    });
    assert_eq!(isr(&m, "unclean-auto", 0), [2]);
    assert_eq!(
        leader_of(&m, "unclean-asked", 0),
        -1,
        "unclean elections are off for unclean-asked"
    );
    assert_eq!(elect(&cluster, 3, 0, "unclean-asked", 0).0, 80);
    assert_eq!(elect(&cluster, 3, 1, "unclean-asked", 0), (0, None));
    let m = cluster.wait_metadata(3, "an unclean leader for unclean-asked", |m| {
        leader_of(m, "unclean-asked", 0) == 2
    });
    assert_eq!(isr(&m, "unclean-asked", 0), [2]);
}
