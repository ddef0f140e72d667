//! Classic consumer groups through librdkafka: subscribe, rebalance on
//! join and leave, session expiry of a member that stops heartbeating
//! (a raw-protocol member: librdkafka heartbeats from a background
//! thread), librdkafka leaving for a stalled poller and rejoining,
//! committed offsets across a broker restart, static membership, the
//! range, roundrobin and cooperative-sticky assignors, and
//! list/describe/delete groups.
//!
//! Consumers are `BaseConsumer`s polled round-robin from one thread (inside
//! `block_in_place`), so a rebalance callback only runs inside a poll and
//! every assignment observed between polls is a consistent snapshot. Every
//! wait polls until a condition holds or a deadline passes.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, RequestHeader, ResponseHeader,
    SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{options, text, TestBroker, DEADLINE};

/// Broker settings for every test here: no initial rebalance delay, and
/// session timeouts down to one second (for the evicted raw member).
const BROKER: [(&str, &str); 2] = [
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.min.session.timeout.ms", "1000"),
];

/// How long a group may take to settle (join, rebalance, eviction).
const SETTLE: Duration = Duration::from_secs(20);

/// Partitions of a set as a sorted set.
type Parts = BTreeSet<i32>;

fn all(partitions: i32) -> Parts {
    (0..partitions).collect()
}

fn partitions_of(list: &TopicPartitionList) -> Parts {
    list.elements().iter().map(|e| e.partition()).collect()
}

/// A rebalance callback as one member saw it.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Assigned(Parts),
    /// Partitions revoked, and what the member held just before.
    Revoked {
        revoked: Parts,
        held: Parts,
    },
    Error(String),
}

/// Records every rebalance callback; librdkafka's default handling
/// (assign / incremental assign) still runs.
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let event = match rebalance {
            Rebalance::Assign(list) => Event::Assigned(partitions_of(list)),
            Rebalance::Revoke(list) => Event::Revoked {
                revoked: partitions_of(list),
                held: consumer
                    .assignment()
                    .map(|a| partitions_of(&a))
                    .unwrap_or_default(),
            },
            Rebalance::Error(e) => Event::Error(e.to_string()),
        };
        self.0.lock().expect("events").push(event);
    }
}

/// One subscribed group member. Dropping it closes the consumer (which
/// leaves the group unless it is static) off the async worker.
struct Member {
    name: String,
    consumer: Option<BaseConsumer<Recorder>>,
    events: Arc<Mutex<Vec<Event>>>,
    /// A static member (`group.instance.id`).
    is_static: bool,
}

impl Member {
    /// A consumer in `group` subscribed to `topic`; `settings` go on top
    /// of short session and heartbeat timeouts, manual commits and
    /// `auto.offset.reset=earliest`.
    fn join(
        broker: &TestBroker,
        name: &str,
        group: &str,
        topic: &str,
        settings: &[(&str, &str)],
    ) -> Self {
        let mut config = broker.client_config();
        config
            .set("group.id", group)
            .set("client.id", name)
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "100")
            .set("max.poll.interval.ms", "10000")
            .set("fetch.wait.max.ms", "100")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        let events = Arc::new(Mutex::new(Vec::new()));
        let consumer: BaseConsumer<Recorder> = config
            .create_with_context(Recorder(events.clone()))
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        Self {
            name: name.to_owned(),
            consumer: Some(consumer),
            events,
            is_static: settings.iter().any(|(k, _)| *k == "group.instance.id"),
        }
    }

    fn consumer(&self) -> &BaseConsumer<Recorder> {
        self.consumer.as_ref().expect("open consumer")
    }

    /// The partitions assigned right now.
    fn assigned(&self) -> Parts {
        partitions_of(&self.consumer().assignment().expect("assignment"))
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }

    /// One short poll (serving rebalance callbacks); fails the test on a
    /// consumer error other than "max.poll.interval.ms exceeded", which is
    /// recorded as an event.
    fn poll(&self) -> Option<OwnedMessage> {
        match self.consumer().poll(Duration::from_millis(20)) {
            None => None,
            Some(Ok(message)) => Some(message.detach()),
            Some(Err(e)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::PollExceeded) => {
                self.events
                    .lock()
                    .expect("events")
                    .push(Event::Error(e.to_string()));
                None
            }
            Some(Err(e)) => panic!("{}: consumer error: {e}", self.name),
        }
    }

    /// Commits the consumed position of every assigned partition,
    /// synchronously. librdkafka's local "no offset stored" (nothing new to
    /// commit, e.g. right after a rebalance reset its offset store) sends
    /// nothing to the broker and is not a failure; the tests check the
    /// committed offsets themselves.
    fn commit(&self) {
        match self.consumer().commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Err(e) => panic!("{}: commit: {e}", self.name),
        }
    }

    /// The group `group` as ListGroups/DescribeGroups show it to this member.
    fn describe(&self, group: &str) -> Option<(String, String, String, Vec<String>)> {
        describe(self.consumer().client(), group)
    }

    /// The group's committed offsets for partitions `0..partitions` of `topic`.
    fn committed(&self, topic: &str, partitions: i32) -> HashMap<i32, Offset> {
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = tokio::task::block_in_place(|| {
            self.consumer()
                .committed_offsets(list, DEADLINE)
                .expect("committed offsets")
        });
        committed
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect()
    }
}

impl Drop for Member {
    /// Leaves the group before closing: unsubscribes and polls until the
    /// revocation is served. rust-rdkafka's close serves a rebalance
    /// still pending by asking librdkafka for the rebalance protocol, which
    /// the closing consumer group never answers (a hang seen under load);
    /// served by a normal poll first, nothing is pending at close.
    fn drop(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            tokio::task::block_in_place(|| {
                // A static member's close keeps its place (no LeaveGroup):
                // what the static-membership test checks.
                if self.is_static {
                    return drop(consumer);
                }
                consumer.unsubscribe();
                let until = Instant::now() + Duration::from_secs(10);
                while consumer.assignment().is_ok_and(|a| a.count() > 0) && Instant::now() < until {
                    let _ = consumer.poll(Duration::from_millis(20));
                }
                drop(consumer)
            });
        }
    }
}

/// Polls every member round-robin until `done` holds, failing the test
/// after `SETTLE`. Returns the messages received meanwhile, by member index.
fn poll_until(
    members: &[&Member],
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Vec<(usize, OwnedMessage)> {
    let until = Instant::now() + SETTLE;
    let mut received = Vec::new();
    tokio::task::block_in_place(|| loop {
        for (i, member) in members.iter().enumerate() {
            if let Some(message) = member.poll() {
                received.push((i, message));
            }
        }
        if done() {
            return;
        }
        if Instant::now() >= until {
            let state: Vec<String> = members
                .iter()
                .map(|m| {
                    format!(
                        "{} holds {:?}, events {:?}",
                        m.name,
                        m.assigned(),
                        m.events()
                    )
                })
                .collect();
            panic!("not {what} within {SETTLE:?}: {state:#?}");
        }
    });
    received
}

/// Whether `sets` are all non-empty, pairwise disjoint, and cover `0..partitions`.
fn split_evenly(sets: &[Parts], partitions: i32) -> bool {
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: Parts = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == union.len() && union == all(partitions)
}

/// Polls `members` until their assignments split `0..partitions` among
/// them; returns the assignments.
fn settle(members: &[&Member], partitions: i32) -> Vec<Parts> {
    let received = poll_until(members, "split the partitions", || {
        let sets: Vec<Parts> = members.iter().map(|m| m.assigned()).collect();
        split_evenly(&sets, partitions)
    });
    assert!(received.is_empty(), "unexpected messages: {received:?}");
    members.iter().map(|m| m.assigned()).collect()
}

/// The group as librdkafka's ListGroups/DescribeGroups sees it:
/// (state, protocol type, protocol, member client ids), or `None` if the
/// group is not listed.
fn describe<C: ClientContext>(
    client: &Client<C>,
    group: &str,
) -> Option<(String, String, String, Vec<String>)> {
    let list = tokio::task::block_in_place(|| {
        client.fetch_group_list(None, DEADLINE).expect("group list")
    });
    list.groups().iter().find(|g| g.name() == group).map(|g| {
        let mut clients: Vec<String> = g
            .members()
            .iter()
            .map(|m| m.client_id().to_owned())
            .collect();
        clients.sort();
        (
            g.state().to_owned(),
            g.protocol_type().to_owned(),
            g.protocol().to_owned(),
            clients,
        )
    })
}

/// Produces `count` messages "m0".."m{count-1}" round-robin over
/// `partitions` partitions; returns (partition, offset) of each.
async fn produce(
    broker: &TestBroker,
    topic: &str,
    partitions: i32,
    count: usize,
) -> Vec<(i32, i64)> {
    let producer = broker.producer(&[("linger.ms", "5")]);
    let until = tokio::time::Instant::now() + DEADLINE;
    let mut futures = Vec::with_capacity(count);
    for i in 0..count {
        let value = format!("m{i}");
        let partition = i32::try_from(i).expect("small") % partitions;
        let record = FutureRecord::<str, str>::to(topic)
            .partition(partition)
            .payload(&value);
        futures.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
    }
    let mut delivered = Vec::with_capacity(count);
    for future in futures {
        let delivery = tokio::time::timeout_at(until, future)
            .await
            .expect("delivered before the deadline")
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
        delivered.push((delivery.partition, delivery.offset));
    }
    delivered
}

#[tokio::test(flavor = "multi_thread")]
async fn two_consumers_split_partitions() {
    let broker = TestBroker::start(&BROKER).await;
    broker.create_topic("split", 4, &[]).await;
    let a = Member::join(&broker, "a", "split-group", "split", &[]);
    poll_until(&[&a], "assigned alone", || a.assigned() == all(4));
    let b = Member::join(&broker, "b", "split-group", "split", &[]);
    let sets = settle(&[&a, &b], 4);
    assert_eq!(sets[0].len(), 2, "range gives 2 + 2: {sets:?}");
    let (state, protocol_type, protocol, clients) = a.describe("split-group").expect("listed");
    assert_eq!(
        (state.as_str(), protocol_type.as_str(), protocol.as_str()),
        ("Stable", "consumer", "range")
    );
    assert_eq!(clients, ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn leave_hands_partitions_over_without_loss() {
    const N: usize = 200;
    let broker = TestBroker::start(&BROKER).await;
    broker.create_topic("handover", 4, &[]).await;
    let a = Member::join(&broker, "a", "handover-group", "handover", &[]);
    let b = Member::join(&broker, "b", "handover-group", "handover", &[]);
    settle(&[&a, &b], 4);
    let produced: BTreeSet<(i32, i64)> = produce(&broker, "handover", 4, N)
        .await
        .into_iter()
        .collect();
    assert_eq!(produced.len(), N);

    // Both process (and commit after every message) until each has done
    // a share; then A leaves.
    let mut processed = Vec::new();
    let until = Instant::now() + SETTLE;
    tokio::task::block_in_place(|| loop {
        for member in [&a, &b] {
            if let Some(message) = member.poll() {
                process(member, &message, &mut processed);
            }
        }
        let by_a = processed.iter().filter(|p| p.0 == "a").count();
        let by_b = processed.len() - by_a;
        if by_a >= N / 8 && by_b >= N / 8 {
            break;
        }
        assert!(Instant::now() < until, "only {by_a} + {by_b} processed");
    });
    let a_last = processed.len();
    drop(a);

    let until = Instant::now() + SETTLE;
    tokio::task::block_in_place(|| loop {
        if let Some(message) = b.poll() {
            process(&b, &message, &mut processed);
        }
        if processed.len() >= N && b.assigned() == all(4) {
            break;
        }
        assert!(
            Instant::now() < until,
            "{} of {N} processed; b holds {:?}, events {:?}",
            processed.len(),
            b.assigned(),
            b.events()
        );
    });
    let mut counts: HashMap<(i32, i64), Vec<&str>> = HashMap::new();
    for (who, partition, offset) in &processed {
        counts
            .entry((*partition, *offset))
            .or_default()
            .push(who.as_str());
    }
    let twice: Vec<_> = counts.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "processed twice (a left after {a_last}): {twice:?}"
    );
    let seen: BTreeSet<(i32, i64)> = counts.keys().copied().collect();
    assert_eq!(seen, produced, "every message processed");
    let committed = b.committed("handover", 4);
    for partition in 0..4 {
        assert_eq!(
            committed[&partition],
            Offset::Offset(50),
            "partition {partition}"
        );
    }
}

/// Records that `member` processed `message`, then commits it.
fn process(member: &Member, message: &OwnedMessage, processed: &mut Vec<(String, i32, i64)>) {
    processed.push((member.name.clone(), message.partition(), message.offset()));
    member.commit();
}

/// A raw-protocol connection for a member that joins and then goes silent.
struct Raw {
    stream: TcpStream,
    correlation: i32,
}

impl Raw {
    async fn connect(broker: &TestBroker) -> Self {
        let stream = tokio::time::timeout(DEADLINE, TcpStream::connect(broker.bootstrap()))
            .await
            .expect("connect before the deadline")
            .expect("connect");
        Self {
            stream,
            correlation: 0,
        }
    }

    /// Sends one request and reads its response.
    async fn call<Q: Encodable, R: Decodable>(&mut self, key: ApiKey, version: i16, body: &Q) -> R {
        self.correlation += 1;
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw-member")))
            .encode(&mut frame, key.request_header_version(version))
            .expect("encode header");
        body.encode(&mut frame, version).expect("encode body");
        let size = i32::try_from(frame.len()).expect("small frame");
        let stream = &mut self.stream;
        let response = tokio::time::timeout(DEADLINE, async move {
            stream.write_all(&size.to_be_bytes()).await?;
            stream.write_all(&frame).await?;
            let mut size = [0u8; 4];
            stream.read_exact(&mut size).await?;
            let mut response = vec![0u8; usize::try_from(i32::from_be_bytes(size)).unwrap_or(0)];
            stream.read_exact(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        })
        .await
        .unwrap_or_else(|_| panic!("{key:?} answered before the deadline"))
        .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, key.response_header_version(version))
            .expect("response header");
        assert_eq!(header.correlation_id, self.correlation);
        let body = R::decode(&mut response, version).expect("response body");
        assert!(!response.has_remaining(), "{key:?}: trailing bytes");
        body
    }
}

/// Consumer-protocol metadata subscribing to `topic` (version 0).
fn subscription(topic: &str) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_string(topic.to_owned())])
        .encode(&mut buf, 0)
        .expect("subscription");
    buf.freeze()
}

/// The partitions in a consumer-protocol assignment.
fn assignment_partitions(mut bytes: Bytes) -> Parts {
    if bytes.len() < 2 {
        return Parts::new();
    }
    let version = bytes.get_i16();
    let assignment =
        ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3)).expect("assignment");
    assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().copied())
        .collect()
}

/// Joins `group` as a raw JoinGroup v5 / SyncGroup v3 member with a
/// 2-second session; returns (member id, generation, assigned partitions).
async fn raw_join(raw: &mut Raw, group: &str, topic: &str) -> (StrBytes, i32, Parts) {
    let mut request = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_session_timeout_ms(2000)
        .with_rebalance_timeout_ms(2000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(subscription(topic))]);
    let first: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 5, &request).await;
    assert_eq!(
        first.error_code,
        kafka_protocol::error::ResponseError::MemberIdRequired.code()
    );
    request.member_id = first.member_id.clone();
    let joined: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 5, &request).await;
    assert_eq!(joined.error_code, 0, "rejoin: {joined:?}");
    assert_ne!(
        joined.leader, joined.member_id,
        "the rdkafka consumer leads"
    );
    let sync = SyncGroupRequest::default()
        .with_group_id(request.group_id.clone())
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    let synced: SyncGroupResponse = raw.call(ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!(synced.error_code, 0, "sync: {synced:?}");
    (
        joined.member_id,
        joined.generation_id,
        assignment_partitions(synced.assignment),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_member_evicted_after_session_timeout() {
    let broker = TestBroker::start(&BROKER).await;
    broker.create_topic("evict", 4, &[]).await;
    let live = Member::join(&broker, "live", "evict-group", "evict", &[]);
    poll_until(&[&live], "assigned alone", || live.assigned() == all(4));

    let mut raw = Raw::connect(&broker).await;
    let join = tokio::spawn(async move {
        let joined = raw_join(&mut raw, "evict-group", "evict").await;
        (raw, joined)
    });
    poll_until(&[&live], "rejoined with the raw member", || {
        join.is_finished() && live.assigned().len() < 4 && !live.assigned().is_empty()
    });
    let synced_at = Instant::now();
    let (mut raw, (member_id, generation, raw_parts)) = join.await.expect("raw join task");
    assert!(
        split_evenly(&[live.assigned(), raw_parts.clone()], 4),
        "live {:?}, raw {raw_parts:?}",
        live.assigned()
    );
    let (state, _, _, clients) = live.describe("evict-group").expect("listed");
    assert_eq!((state.as_str(), clients.len()), ("Stable", 2));

    // The raw member never heartbeats: after its 2 s session it is removed
    // and the live consumer gets everything.
    poll_until(&[&live], "owning all after the eviction", || {
        live.assigned() == all(4)
    });
    let elapsed = synced_at.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1800),
        "evicted after only {elapsed:?}"
    );
    let (state, _, _, clients) = live.describe("evict-group").expect("listed");
    assert_eq!(
        (state, clients),
        ("Stable".to_owned(), vec!["live".to_owned()])
    );
    let heartbeat = HeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("evict-group")))
        .with_generation_id(generation)
        .with_member_id(member_id);
    let answer: HeartbeatResponse = raw.call(ApiKey::Heartbeat, 3, &heartbeat).await;
    assert_eq!(
        answer.error_code,
        kafka_protocol::error::ResponseError::UnknownMemberId.code()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_poller_leaves_and_rejoins() {
    let broker = TestBroker::start(&BROKER).await;
    broker.create_topic("stall", 4, &[]).await;
    let stalled = Member::join(
        &broker,
        "stalled",
        "stall-group",
        "stall",
        &[
            ("session.timeout.ms", "1000"),
            ("max.poll.interval.ms", "1500"),
        ],
    );
    poll_until(&[&stalled], "assigned alone", || {
        stalled.assigned() == all(4)
    });
    let busy = Member::join(&broker, "busy", "stall-group", "stall", &[]);
    settle(&[&stalled, &busy], 4);

    // `stalled` is not polled: librdkafka leaves the group for it after
    // max.poll.interval.ms, and `busy` gets every partition.
    let stalled_at = Instant::now();
    poll_until(&[&busy], "owning all after the stall", || {
        busy.assigned() == all(4)
    });
    let elapsed = stalled_at.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400),
        "rebalanced after only {elapsed:?}"
    );
    let (state, _, _, clients) = busy.describe("stall-group").expect("listed");
    assert_eq!(
        (state.as_str(), clients),
        ("Stable", vec!["busy".to_owned()])
    );

    // Polling again, it rejoins with a new member id and gets its share back.
    settle(&[&stalled, &busy], 4);
    assert!(
        stalled
            .events()
            .iter()
            .any(|e| matches!(e, Event::Error(m) if m.contains("poll"))),
        "no max.poll.interval.ms error: {:?}",
        stalled.events()
    );
    let (state, _, _, clients) = busy.describe("stall-group").expect("listed");
    assert_eq!((state.as_str(), clients.len()), ("Stable", 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_survive_restart() {
    let broker = TestBroker::start(&BROKER).await;
    broker.create_topic("resume", 1, &[]).await;
    produce(&broker, "resume", 1, 10).await;
    {
        let consumer = Member::join(&broker, "first", "resume-group", "resume", &[]);
        let mut got = Vec::new();
        let until = Instant::now() + SETTLE;
        tokio::task::block_in_place(|| {
            while got.len() < 4 {
                if let Some(message) = consumer.poll() {
                    got.push(message.offset());
                }
                assert!(Instant::now() < until, "received {got:?}");
            }
        });
        assert_eq!(got, [0, 1, 2, 3]);
        consumer.commit();
        assert_eq!(consumer.committed("resume", 1)[&0], Offset::Offset(4));
    }
    let dir = broker.stop().await;
    let broker = TestBroker::start_in(dir, &BROKER).await;
    let consumer = Member::join(&broker, "second", "resume-group", "resume", &[]);
    assert_eq!(consumer.committed("resume", 1)[&0], Offset::Offset(4));
    let until = Instant::now() + SETTLE;
    let first = tokio::task::block_in_place(|| loop {
        if let Some(message) = consumer.poll() {
            break message;
        }
        assert!(Instant::now() < until, "nothing received after the restart");
    });
    assert_eq!((first.offset(), text(&first)), (4, "m4".to_owned()));
}

#[tokio::test(flavor = "multi_thread")]
async fn static_member_restart_keeps_assignment() {
    let broker = TestBroker::start(&BROKER).await;
    broker.create_topic("static", 4, &[]).await;
    let statik = |name: &str| {
        Member::join(
            &broker,
            name,
            "static-group",
            "static",
            &[("group.instance.id", name), ("session.timeout.ms", "10000")],
        )
    };
    let one = statik("one");
    poll_until(&[&one], "assigned alone", || one.assigned() == all(4));
    let two = statik("two");
    let sets = settle(&[&one, &two], 4);
    let two_events = two.events();
    let before = two.describe("static-group").expect("listed");
    assert_eq!((before.0.as_str(), before.3.len()), ("Stable", 2));

    // A static member closes without LeaveGroup: it stays in the group.
    drop(one);
    let (state, _, _, clients) = two.describe("static-group").expect("listed");
    assert_eq!(
        (state.as_str(), clients.len()),
        ("Stable", 2),
        "after close"
    );

    // Restarted within the session timeout: the same partitions, and no
    // rebalance (the other member would have had its partitions revoked).
    let one = statik("one");
    poll_until(&[&one, &two], "reassigned after the restart", || {
        !one.assigned().is_empty()
    });
    assert_eq!(one.assigned(), sets[0]);
    assert_eq!(two.assigned(), sets[1]);
    assert_eq!(two.events(), two_events, "the other member saw a rebalance");
    assert_eq!(one.events(), vec![Event::Assigned(sets[0].clone())]);
    let (state, _, _, clients) = two.describe("static-group").expect("listed");
    assert_eq!(
        (state.as_str(), clients.len()),
        ("Stable", 2),
        "after restart"
    );
}

/// Two consumers with `strategy` split a 4-partition topic; returns them.
async fn two_with(broker: &TestBroker, strategy: &str) -> (Member, Member) {
    let topic = format!("assign-{strategy}");
    let group = format!("{topic}-group");
    broker.create_topic(&topic, 4, &[]).await;
    let settings = [("partition.assignment.strategy", strategy)];
    let a = Member::join(broker, "a", &group, &topic, &settings);
    poll_until(&[&a], "assigned alone", || a.assigned() == all(4));
    let b = Member::join(broker, "b", &group, &topic, &settings);
    let sets = settle(&[&a, &b], 4);
    assert_eq!(
        (sets[0].len(), sets[1].len()),
        (2, 2),
        "{strategy}: {sets:?}"
    );
    let (state, _, protocol, _) = a.describe(&group).expect("listed");
    assert_eq!((state.as_str(), protocol.as_str()), ("Stable", strategy));
    (a, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn assignor_range() {
    let broker = TestBroker::start(&BROKER).await;
    two_with(&broker, "range").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn assignor_roundrobin() {
    let broker = TestBroker::start(&BROKER).await;
    let (a, b) = two_with(&broker, "roundrobin").await;
    // Round-robin alternates partitions between the two members.
    let mut sets = [a.assigned(), b.assigned()];
    sets.sort();
    assert_eq!(sets, [Parts::from([0, 2]), Parts::from([1, 3])]);
}

#[tokio::test(flavor = "multi_thread")]
async fn assignor_cooperative_sticky() {
    let broker = TestBroker::start(&BROKER).await;
    let (a, b) = two_with(&broker, "cooperative-sticky").await;
    assert!(matches!(
        a.consumer().rebalance_protocol(),
        rdkafka::consumer::RebalanceProtocol::Cooperative
    ));
    let before = [a.assigned(), b.assigned()];
    let (a_seen, b_seen) = (a.events().len(), b.events().len());
    let c = Member::join(
        &broker,
        "c",
        "assign-cooperative-sticky-group",
        "assign-cooperative-sticky",
        &[("partition.assignment.strategy", "cooperative-sticky")],
    );
    // At every observation no partition is held twice; in the end all
    // three hold some and together all four.
    let members = [&a, &b, &c];
    poll_until(&members, "split among three", || {
        let sets: Vec<Parts> = members.iter().map(|m| m.assigned()).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: Parts = sets.iter().flatten().copied().collect();
        assert_eq!(total, union.len(), "a partition held twice: {sets:?}");
        split_evenly(&sets, 4)
    });
    // Incremental: the old members only gave up partitions, never all they held.
    for (member, seen, had) in [(&a, a_seen, &before[0]), (&b, b_seen, &before[1])] {
        let events = &member.events()[seen..];
        for event in events {
            match event {
                Event::Revoked { revoked, held } => {
                    assert!(
                        revoked.len() < held.len(),
                        "{}: full revoke {event:?}",
                        member.name
                    )
                }
                Event::Assigned(_) => {}
                Event::Error(e) => panic!("{}: rebalance error {e}", member.name),
            }
        }
        assert!(
            member.assigned().is_subset(had),
            "{} gained partitions: {:?} from {had:?}",
            member.name,
            member.assigned()
        );
    }
    let (state, _, protocol, clients) = a
        .describe("assign-cooperative-sticky-group")
        .expect("listed");
    assert_eq!(
        (state.as_str(), protocol.as_str(), clients.len()),
        ("Stable", "cooperative-sticky", 3)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn list_describe_delete_groups() {
    let broker = TestBroker::start(&BROKER).await;
    broker.create_topic("admin", 2, &[]).await;
    let one = Member::join(&broker, "one", "admin-group", "admin", &[]);
    poll_until(&[&one], "assigned alone", || one.assigned() == all(2));
    let two = Member::join(&broker, "two", "admin-group", "admin", &[]);
    settle(&[&one, &two], 2);
    produce(&broker, "admin", 2, 10).await;
    let mut got = 0;
    let until = Instant::now() + SETTLE;
    tokio::task::block_in_place(|| {
        while got < 10 {
            for member in [&one, &two] {
                if member.poll().is_some() {
                    got += 1;
                    member.commit();
                }
            }
            assert!(Instant::now() < until, "received {got} of 10");
        }
    });
    let committed = one.committed("admin", 2);
    assert_eq!(
        (committed[&0], committed[&1]),
        (Offset::Offset(5), Offset::Offset(5))
    );

    let (state, protocol_type, protocol, clients) = one.describe("admin-group").expect("listed");
    assert_eq!(
        (state.as_str(), protocol_type.as_str(), protocol.as_str()),
        ("Stable", "consumer", "range")
    );
    assert_eq!(clients, ["one", "two"]);

    let admin = broker.admin();
    let deleted = admin
        .delete_groups(&["admin-group"], &options())
        .await
        .expect("delete request");
    assert_eq!(
        deleted,
        vec![Err((
            "admin-group".to_owned(),
            RDKafkaErrorCode::NonEmptyGroup
        ))]
    );
    let unknown = admin
        .delete_groups(&["no-such-group"], &options())
        .await
        .expect("delete request");
    assert_eq!(
        unknown,
        vec![Err((
            "no-such-group".to_owned(),
            RDKafkaErrorCode::GroupIdNotFound
        ))]
    );

    drop(two);
    // `one` is still open to ask with; it leaves next.
    let (state, _, _, clients) = one.describe("admin-group").expect("listed");
    assert_eq!(clients, ["one"], "{state}");
    let observer: BaseConsumer = broker.client_config().create().expect("observer");
    drop(one);
    let (state, _, _, clients) = describe(observer.client(), "admin-group").expect("still listed");
    assert_eq!((state.as_str(), clients.len()), ("Empty", 0));

    let deleted = admin
        .delete_groups(&["admin-group"], &options())
        .await
        .expect("delete request");
    assert_eq!(deleted, vec![Ok("admin-group".to_owned())]);
    assert!(
        describe(observer.client(), "admin-group").is_none(),
        "listed after delete"
    );

    let fresh = Member::join(&broker, "fresh", "admin-group", "admin", &[]);
    let committed = fresh.committed("admin", 2);
    assert_eq!(
        (committed[&0], committed[&1]),
        (Offset::Invalid, Offset::Invalid)
    );
    let mut offsets = BTreeSet::new();
    let until = Instant::now() + SETTLE;
    tokio::task::block_in_place(|| {
        while offsets.len() < 10 {
            if let Some(message) = fresh.poll() {
                offsets.insert((message.partition(), message.offset()));
            }
            assert!(Instant::now() < until, "fresh consumer got {offsets:?}");
        }
    });
    assert_eq!(
        offsets.iter().filter(|(_, o)| *o == 0).count(),
        2,
        "from the start"
    );
}
