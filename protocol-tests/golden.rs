//! Golden replay: request frames recorded between stock clients and Apache
//! Kafka 4.1 (`../shared/golden/*.jsonl`, see its README) are replayed to
//! strom, and strom's responses are compared with Kafka's by shape.
//!
//! One broker per client file (sessions run in file order, so a topic made
//! in one session exists in the next, as it did on Kafka), started with
//! `group.initial.rebalance.delay.ms=0` like the recording broker; one
//! connection per (session, conn); requests in recorded order (`seq`), each
//! answered before the next is sent. Every key strom serves is replayed;
//! the others (DescribeTopicPartitions, ConsumerGroupDescribe,
//! ListPartitionReassignments in the Java recording) are skipped with a
//! printed reason: a client learns from ApiVersions that strom lacks them
//! and never sends them.
//!
//! Compared everywhere: both responses decode at the recorded version with
//! nothing left over, the correlation id, and every error code (top level,
//! per topic, partition, resource, group, member). Per API, also:
//! - Metadata, CreateTopics, DeleteTopics, DescribeConfigs, DescribeCluster,
//!   ApiVersions: partition counts of named topics, config names, types and
//!   flags of topic resources, floors of the ApiVersions table, brokers.
//! - Produce: base offsets (every topic is fresh in its file, so they are
//!   deterministic), log start offsets, log append times (-1 for
//!   CreateTime), record error counts. acks=0: strom must send nothing
//!   (an ApiVersions probe on the same connection is answered first) and
//!   the records must be appended (a ListOffsets probe).
//! - Fetch: per partition high watermark, last stable offset, log start,
//!   preferred replica, aborted-transaction list presence, and the whole
//!   record batches returned: base offset, record count, attributes,
//!   timestamps, producer epoch and sequence, producer id (through the id
//!   map below) and the record bytes after the batch header.
//! - ListOffsets: offset and timestamp of every partition (earliest,
//!   latest and by timestamp: the batches are replayed byte for byte, so
//!   record timestamps are Kafka's).
//! - InitProducerId: producer epoch, that a producer id is issued.
//! - FindCoordinator: that a coordinator with an address is named.
//! - JoinGroup: generation (the same progression), protocol type and name,
//!   leader and member ids (through the id map), members and their
//!   metadata, skip_assignment. SyncGroup: assignment bytes, protocol type
//!   and name. LeaveGroup: members. OffsetCommit: per partition.
//!   OffsetFetch: committed offsets, leader epochs, metadata.
//!   DescribeGroups: state, protocol, members (client id, metadata,
//!   assignment). ListGroups, DeleteGroups, OffsetDelete, DeleteRecords
//!   (no recording has them yet): their results.
//!
//! Not compared: hosts, ports, node and cluster ids, timestamps of the run
//! (Kafka's throttle times, `log_append_time_ms` of LogAppendTime topics),
//! leader epochs, config values and sources, error messages.
//!
//! Substitutions. Some request fields carry values Kafka issued earlier in
//! the recording; before such a request is replayed it is decoded with
//! kafka-protocol, strom's value for the same step is put in, and it is
//! re-encoded at the recorded version (requests without such values go
//! byte for byte). [`Ids`] maps Kafka's values to strom's, learnt from the
//! pairs of responses:
//! - topic ids (Metadata v10+, CreateTopics v7+, by topic name), in
//!   Produce v13+, Fetch v13+ (topics and forgotten topics), Metadata and
//!   DeleteTopics by id;
//! - producer ids (InitProducerId), in InitProducerId and in the headers of
//!   produced record batches (the batch CRC-32C is recomputed);
//! - member ids (JoinGroup: MEMBER_ID_REQUIRED and joined answers) and
//!   generations (JoinGroup), in JoinGroup, SyncGroup, Heartbeat,
//!   LeaveGroup, OffsetCommit, OffsetFetch;
//! - fetch sessions (KIP-227). strom creates none: its Fetch responses have
//!   session id 0, which KIP-227 allows, and which tells a client to keep
//!   sending full fetches (the Java client then sends session 0, epoch 0).
//!   So an incremental fetch in a Kafka session is replayed as that full
//!   fetch: the session's partitions as the client last described them
//!   (its first full fetch, updated by the incremental ones, minus
//!   forgotten topics). Kafka's incremental answer lists only partitions
//!   that changed; a partition strom returns that Kafka left out must be
//!   error-free, carry no records and repeat what Kafka last said of it
//!   (high watermark, last stable offset, log start). A session close
//!   (epoch -1) is replayed as a sessionless fetch of what it lists, as
//!   Kafka too answers it sessionless. Were strom to create sessions, its
//!   session id would be put in and the request left incremental.
//!
//! Accepted differences (printed when they occur): Kafka answers a
//! topic's auto-creation with LEADER_NOT_AVAILABLE and no partitions where
//! strom creates it at once; Kafka creates fetch sessions, strom answers 0.
//! Where Kafka's answer was not recorded (the client closed the connection
//! first), strom's must still decode.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteGroupsResponse,
    DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterResponse,
    DescribeConfigsResponse, DescribeGroupsResponse, FetchRequest, FetchResponse,
    FindCoordinatorResponse, HeartbeatResponse, InitProducerIdRequest, InitProducerIdResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader,
    ResponseKind, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use uuid::Uuid;

use crate::support::{
    api_versions_request, decode_response_at, request_frame, with_size_prefix, Client, TestBroker,
};

/// The client files the README lists.
const FILES: &[&str] = &[
    "kcat.jsonl",
    "confluent-kafka.jsonl",
    "kafka-python.jsonl",
    "kafkajs.jsonl",
    "java-cli.jsonl",
];

/// Kafka's resource type number for topics (DescribeConfigs).
const TOPIC_RESOURCE: i8 = 2;

/// The recording broker's settings that strom shares (see the README).
const RECORDING_SETTINGS: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0")];

/// Correlation ids of the probes sent after an acks=0 Produce (no recorded
/// request uses them).
const PROBE_API_VERSIONS: i32 = 0x5052_4F42;
const PROBE_LIST_OFFSETS: i32 = 0x5052_4F43;

fn golden_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/golden");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping golden replay: {} is missing (no recorded Kafka frames here)",
            dir.display()
        );
        None
    }
}

/// One recorded request/response pair.
#[derive(Debug, Clone)]
struct Record {
    session: String,
    conn: i64,
    seq: i64,
    api_key: i16,
    api_version: i16,
    correlation_id: i32,
    request: Vec<u8>,
    response: Option<Vec<u8>>,
}

impl Record {
    fn label(&self, client: &str) -> String {
        format!(
            "{client}/{} conn {} seq {} {:?} v{}",
            self.session,
            self.conn,
            self.seq,
            ApiKey::try_from(self.api_key).map_err(|()| self.api_key),
            self.api_version
        )
    }
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn load(path: &Path) -> Vec<Record> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
            let int = |k: &str| {
                v[k].as_i64()
                    .unwrap_or_else(|| panic!("{}:{}: no {k}", path.display(), n + 1))
            };
            let small = |k: &str| i16::try_from(int(k)).expect("fits i16");
            Record {
                session: v["session"].as_str().expect("session").to_owned(),
                conn: int("conn"),
                seq: int("seq"),
                api_key: small("api_key"),
                api_version: small("api_version"),
                correlation_id: i32::try_from(int("correlation_id")).expect("fits i32"),
                request: hex(v["request_hex"].as_str().expect("request_hex")),
                response: v["response_hex"].as_str().map(hex),
            }
        })
        .collect()
}

/// The keys strom serves; all of them are replayed and compared.
fn replayed(key: i16) -> Option<ApiKey> {
    let key = ApiKey::try_from(key).ok()?;
    matches!(
        key,
        ApiKey::ApiVersions
            | ApiKey::Metadata
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::DescribeConfigs
            | ApiKey::DescribeCluster
            | ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::DeleteRecords
            | ApiKey::InitProducerId
            | ApiKey::FindCoordinator
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::LeaveGroup
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
            | ApiKey::DescribeGroups
            | ApiKey::ListGroups
            | ApiKey::DeleteGroups
            | ApiKey::OffsetDelete
    )
    .then_some(key)
}

/// Differences found, one line each.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn check<T: PartialEq + std::fmt::Debug>(&mut self, at: &str, field: &str, kafka: T, strom: T) {
        if kafka != strom {
            self.lines
                .push(format!("{at}: {field}: Kafka {kafka:?}, strom {strom:?}"));
        }
    }

    fn fail(&mut self, at: &str, what: impl std::fmt::Display) {
        self.lines.push(format!("{at}: {what}"));
    }
}

/// Decodes the body of a recorded request (after its header).
fn request_body<T: Decodable>(record: &Record, key: ApiKey) -> T {
    let mut bytes = Bytes::from(record.request.clone());
    let version = record.api_version;
    RequestHeader::decode(&mut bytes, key.request_header_version(version))
        .unwrap_or_else(|e| panic!("recorded {key:?} v{version} header: {e}"));
    T::decode(&mut bytes, version)
        .unwrap_or_else(|e| panic!("recorded {key:?} v{version} request: {e}"))
}

/// Decodes both responses at the recorded version; records a difference if
/// strom's does not decode (Kafka's not decoding is a broken recording).
fn both<R: Decodable>(
    report: &mut Report,
    at: &str,
    record: &Record,
    key: ApiKey,
    kafka: &[u8],
    strom: Bytes,
) -> Option<(R, R)> {
    let version = record.api_version;
    let header_version = key.response_header_version(version);
    let (_, kafka) = decode_response_at::<R>(header_version, version, Bytes::from(kafka.to_vec()))
        .unwrap_or_else(|e| panic!("{at}: Kafka's recorded response: {e}"));
    match decode_response_at::<R>(header_version, version, strom) {
        Ok((correlation_id, strom)) => {
            report.check(at, "correlation id", record.correlation_id, correlation_id);
            Some((kafka, strom))
        }
        Err(e) => {
            report.fail(at, format!("strom's response: {e}"));
            None
        }
    }
}

/// A topic as one side's response names it: by name, or (versions that
/// address topics by id) by the name that id was learnt for.
type TopicKey = String;

/// Values Kafka issued during the recording, mapped to the ones strom
/// issued at the same step of the replay. One per client file: topics and
/// groups outlive their session.
#[derive(Default)]
struct Ids {
    /// Topic ids, Kafka's → strom's (learnt by name).
    topics: HashMap<Uuid, Uuid>,
    /// strom's topic ids → names.
    names: HashMap<Uuid, String>,
    /// Producer ids, Kafka's → strom's.
    producers: HashMap<i64, i64>,
    /// Member ids, Kafka's → strom's.
    members: HashMap<String, String>,
    /// Generations, (group, Kafka's) → strom's.
    generations: HashMap<(String, i32), i32>,
    /// Fetch sessions Kafka created, by Kafka's session id.
    fetch_sessions: HashMap<i32, FetchSession>,
}

/// A fetch session Kafka created during the recording (KIP-227).
struct FetchSession {
    /// The session id strom answered the creating request with (0: none).
    strom_id: i32,
    /// The session's partitions as the client last described them, in
    /// order, under the recorded topic (name and Kafka's id).
    partitions: Vec<(TopicName, Uuid, FetchPartition)>,
    /// What Kafka last said of each partition.
    last: HashMap<(TopicKey, i32), PartitionState>,
}

/// The per-partition values an incremental fetch response leaves out when
/// they did not change.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PartitionState {
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
}

impl Ids {
    /// Learns that Kafka's topic `kafka` is strom's `strom` (same name).
    fn learn_topic(&mut self, report: &mut Report, at: &str, name: &str, kafka: Uuid, strom: Uuid) {
        if kafka.is_nil() || strom.is_nil() {
            return;
        }
        self.names.insert(strom, name.to_owned());
        match self.topics.entry(kafka) {
            Entry::Vacant(entry) => {
                entry.insert(strom);
            }
            Entry::Occupied(entry) => {
                if *entry.get() != strom {
                    report.fail(
                        at,
                        format!(
                            "topic {name}: strom's topic id changed from {} to {strom}",
                            entry.get()
                        ),
                    );
                }
            }
        }
    }

    /// Learns a member id from a pair of JoinGroup answers (or checks it
    /// against the one learnt before).
    fn learn_member(
        &mut self,
        report: &mut Report,
        at: &str,
        field: &str,
        kafka: &str,
        strom: &str,
    ) {
        if kafka.is_empty() {
            report.check(at, &format!("{field} is empty"), true, strom.is_empty());
            return;
        }
        match self.members.get(kafka) {
            Some(known) if known != strom => report.fail(
                at,
                format!(
                    "{field}: strom earlier issued {known} where Kafka issued {kafka}, now answers {strom}"
                ),
            ),
            Some(_) => {}
            None if strom.is_empty() => {
                report.fail(at, format!("{field}: Kafka issued {kafka}, strom none"))
            }
            None => {
                self.members.insert(kafka.to_owned(), strom.to_owned());
            }
        }
    }

    fn topic_id(&self, id: &mut Uuid) {
        if let Some(strom) = self.topics.get(id) {
            *id = *strom;
        }
    }

    fn member(&self, id: &mut StrBytes) {
        if let Some(strom) = self.members.get(id.as_str()) {
            *id = StrBytes::from_string(strom.clone());
        }
    }

    fn generation(&self, group: &str, generation: &mut i32) {
        if let Some(strom) = self.generations.get(&(group.to_owned(), *generation)) {
            *generation = *strom;
        }
    }

    /// Kafka's topic as a key: its name, or for `by_id` versions the name
    /// strom's id for it was learnt under.
    fn kafka_topic(&self, by_id: bool, name: &TopicName, id: Uuid) -> TopicKey {
        if !by_id {
            return name.0.to_string();
        }
        match self.topics.get(&id) {
            Some(strom) => self.strom_topic(true, name, *strom),
            None => format!("<Kafka's topic id {id}, no strom id learnt for it>"),
        }
    }

    /// strom's topic as a key, like [`Ids::kafka_topic`].
    fn strom_topic(&self, by_id: bool, name: &TopicName, id: Uuid) -> TopicKey {
        if !by_id {
            return name.0.to_string();
        }
        match self.names.get(&id) {
            Some(name) => name.clone(),
            None => format!("<strom's topic id {id}, not seen in a Metadata answer>"),
        }
    }
}

/// One record batch (magic 2) of a produce or fetch payload.
#[derive(Debug, Clone, PartialEq)]
struct Batch {
    base_offset: i64,
    last_offset_delta: i32,
    record_count: i32,
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    /// Everything after the 61-byte header: the (maybe compressed) records.
    records: Bytes,
}

/// Offsets in a magic-2 batch header (Kafka's DefaultRecordBatch).
const BATCH_LENGTH: usize = 8;
const BATCH_MAGIC: usize = 16;
const BATCH_CRC: usize = 17;
const BATCH_ATTRIBUTES: usize = 21;
const BATCH_PRODUCER_ID: usize = 43;
const BATCH_HEADER: usize = 61;

fn be<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("slice of N bytes")
}

/// The byte ranges of the whole magic-2 batches in `records`; a trailing
/// partial batch (a fetch may cut one) is left out.
fn batch_ranges(records: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut pos = 0;
    while pos + BATCH_HEADER <= records.len() {
        let length = i32::from_be_bytes(be(records, pos + BATCH_LENGTH));
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let end = pos + 12 + length;
        if end > records.len() || end < pos + BATCH_HEADER || records[pos + BATCH_MAGIC] != 2 {
            break;
        }
        ranges.push(pos..end);
        pos = end;
    }
    ranges
}

fn batches(records: Option<&Bytes>) -> Vec<Batch> {
    let Some(records) = records else {
        return Vec::new();
    };
    batch_ranges(records)
        .into_iter()
        .map(|r| {
            let b = &records[r.clone()];
            Batch {
                base_offset: i64::from_be_bytes(be(b, 0)),
                last_offset_delta: i32::from_be_bytes(be(b, 23)),
                record_count: i32::from_be_bytes(be(b, 57)),
                attributes: i16::from_be_bytes(be(b, BATCH_ATTRIBUTES)),
                base_timestamp: i64::from_be_bytes(be(b, 27)),
                max_timestamp: i64::from_be_bytes(be(b, 35)),
                producer_id: i64::from_be_bytes(be(b, BATCH_PRODUCER_ID)),
                producer_epoch: i16::from_be_bytes(be(b, 51)),
                base_sequence: i32::from_be_bytes(be(b, 53)),
                records: records.slice(r.start + BATCH_HEADER..r.end),
            }
        })
        .collect()
}

/// Puts strom's producer ids into the batches of a produce payload and
/// recomputes their CRC-32C (over everything from the attributes on).
fn substitute_producer_ids(records: &Bytes, producers: &HashMap<i64, i64>) -> Bytes {
    let mut out = records.to_vec();
    let mut changed = false;
    for range in batch_ranges(records) {
        let start = range.start;
        let id = i64::from_be_bytes(be(&out, start + BATCH_PRODUCER_ID));
        if let Some(strom) = producers.get(&id) {
            out[start + BATCH_PRODUCER_ID..start + BATCH_PRODUCER_ID + 8]
                .copy_from_slice(&strom.to_be_bytes());
            let crc = crc32c::crc32c(&out[start + BATCH_ATTRIBUTES..range.end]);
            out[start + BATCH_CRC..start + BATCH_CRC + 4].copy_from_slice(&crc.to_be_bytes());
            changed = true;
        }
    }
    if changed {
        Bytes::from(out)
    } else {
        records.clone()
    }
}

/// How a recorded request goes to strom.
enum Plan {
    /// Send `frame`; `answered` is false for an acks=0 Produce.
    Send { frame: Vec<u8>, answered: bool },
    /// Not replayable; the reason is printed.
    Skip(String),
}

/// Decodes a recorded request, lets `edit` put strom's values in and, if
/// anything changed, re-encodes it at the recorded version with the
/// recorded header; otherwise the recorded bytes go as they are.
fn edit<T>(record: &Record, key: ApiKey, edit: impl FnOnce(&mut T)) -> (Vec<u8>, T)
where
    T: Decodable + Encodable + Clone + PartialEq,
{
    let version = record.api_version;
    let header_version = key.request_header_version(version);
    let mut bytes = Bytes::from(record.request.clone());
    let header = RequestHeader::decode(&mut bytes, header_version)
        .unwrap_or_else(|e| panic!("recorded {key:?} v{version} header: {e}"));
    let recorded = T::decode(&mut bytes, version)
        .unwrap_or_else(|e| panic!("recorded {key:?} v{version} request: {e}"));
    let mut body = recorded.clone();
    edit(&mut body);
    if body == recorded {
        return (record.request.clone(), body);
    }
    let encode = |body: &T| {
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, header_version)
            .unwrap_or_else(|e| panic!("re-encoding {key:?} v{version} header: {e}"));
        body.encode(&mut frame, version)
            .unwrap_or_else(|e| panic!("re-encoding {key:?} v{version} request: {e}"));
        frame.to_vec()
    };
    // The substitution must be the only change: the recorded request
    // itself re-encodes byte for byte.
    assert_eq!(
        encode(&recorded),
        record.request,
        "recorded {key:?} v{version} does not re-encode to its own bytes"
    );
    (encode(&body), body)
}

/// Prepares one recorded request for strom: substitutes what Kafka issued.
fn plan(ids: &mut Ids, record: &Record, key: ApiKey) -> Plan {
    let send = |frame: Vec<u8>| Plan::Send {
        frame,
        answered: true,
    };
    match key {
        ApiKey::Produce => {
            let (frame, request) = edit::<ProduceRequest>(record, key, |r| {
                for topic in &mut r.topic_data {
                    ids.topic_id(&mut topic.topic_id);
                    for partition in &mut topic.partition_data {
                        if let Some(records) = &partition.records {
                            partition.records =
                                Some(substitute_producer_ids(records, &ids.producers));
                        }
                    }
                }
            });
            Plan::Send {
                frame,
                answered: request.acks != 0,
            }
        }
        ApiKey::Fetch => plan_fetch(ids, record, key),
        ApiKey::Metadata => send(
            edit::<MetadataRequest>(record, key, |r| {
                for topic in r.topics.iter_mut().flatten() {
                    ids.topic_id(&mut topic.topic_id);
                }
            })
            .0,
        ),
        ApiKey::DeleteTopics => send(
            edit::<DeleteTopicsRequest>(record, key, |r| {
                for topic in &mut r.topics {
                    ids.topic_id(&mut topic.topic_id);
                }
            })
            .0,
        ),
        ApiKey::InitProducerId => send(
            edit::<InitProducerIdRequest>(record, key, |r| {
                if let Some(strom) = ids.producers.get(&r.producer_id.0) {
                    r.producer_id.0 = *strom;
                }
            })
            .0,
        ),
        ApiKey::JoinGroup => {
            send(edit::<JoinGroupRequest>(record, key, |r| ids.member(&mut r.member_id)).0)
        }
        ApiKey::SyncGroup => send(
            edit::<SyncGroupRequest>(record, key, |r| {
                ids.member(&mut r.member_id);
                ids.generation(&r.group_id.0, &mut r.generation_id);
                for assignment in &mut r.assignments {
                    ids.member(&mut assignment.member_id);
                }
            })
            .0,
        ),
        ApiKey::Heartbeat => send(
            edit::<kafka_protocol::messages::HeartbeatRequest>(record, key, |r| {
                ids.member(&mut r.member_id);
                ids.generation(&r.group_id.0, &mut r.generation_id);
            })
            .0,
        ),
        ApiKey::LeaveGroup => send(
            edit::<LeaveGroupRequest>(record, key, |r| {
                ids.member(&mut r.member_id);
                for member in &mut r.members {
                    ids.member(&mut member.member_id);
                }
            })
            .0,
        ),
        ApiKey::OffsetCommit => send(
            edit::<OffsetCommitRequest>(record, key, |r| {
                ids.member(&mut r.member_id);
                ids.generation(&r.group_id.0, &mut r.generation_id_or_member_epoch);
                for topic in &mut r.topics {
                    ids.topic_id(&mut topic.topic_id);
                }
            })
            .0,
        ),
        ApiKey::OffsetFetch => send(
            edit::<OffsetFetchRequest>(record, key, |r| {
                for group in &mut r.groups {
                    if let Some(member) = &mut group.member_id {
                        ids.member(member);
                    }
                    for topic in group.topics.iter_mut().flatten() {
                        ids.topic_id(&mut topic.topic_id);
                    }
                }
            })
            .0,
        ),
        _ => send(record.request.clone()),
    }
}

/// A Fetch: topic ids substituted; a request in a Kafka fetch session is
/// rewritten as described in the module comment.
fn plan_fetch(ids: &mut Ids, record: &Record, key: ApiKey) -> Plan {
    let recorded: FetchRequest = request_body(record, key);
    // (strom's session id, the full partition list for a sessionless replay)
    let mut session_rewrite: Option<(i32, Option<Vec<FetchTopic>>)> = None;
    if recorded.session_id != 0 {
        let Some(session) = ids.fetch_sessions.get_mut(&recorded.session_id) else {
            return Plan::Skip(format!(
                "fetch session {} (epoch {}) was not created in this recording; \
                 strom's answer to it could not be compared",
                recorded.session_id, recorded.session_epoch
            ));
        };
        if recorded.session_epoch == -1 {
            // Closing: Kafka answers sessionless, and so must strom.
            let strom_id = session.strom_id;
            ids.fetch_sessions.remove(&recorded.session_id);
            session_rewrite = Some((strom_id, None));
        } else {
            session.apply(&recorded);
            let full = (session.strom_id == 0).then(|| session.full_topics());
            session_rewrite = Some((session.strom_id, full));
        }
    }
    let (frame, _) = edit::<FetchRequest>(record, key, |r| {
        if let Some((strom_id, full)) = session_rewrite {
            r.session_id = strom_id;
            if let Some(topics) = full {
                // What a client sends after a session id 0 answer: a full
                // fetch that asks for a new session (epoch 0).
                r.session_epoch = 0;
                r.topics = topics;
                r.forgotten_topics_data.clear();
            }
        }
        for topic in &mut r.topics {
            ids.topic_id(&mut topic.topic_id);
        }
        for topic in &mut r.forgotten_topics_data {
            ids.topic_id(&mut topic.topic_id);
        }
    });
    Plan::Send {
        frame,
        answered: true,
    }
}

impl FetchSession {
    fn new(strom_id: i32, request: &FetchRequest) -> Self {
        let mut session = Self {
            strom_id,
            partitions: Vec::new(),
            last: HashMap::new(),
        };
        session.apply(request);
        session
    }

    /// Applies a fetch request's partitions (added or updated) and
    /// forgotten topics (removed) to the session.
    fn apply(&mut self, request: &FetchRequest) {
        for forgotten in &request.forgotten_topics_data {
            self.partitions.retain(|(name, id, p)| {
                !(*name == forgotten.topic
                    && *id == forgotten.topic_id
                    && forgotten.partitions.contains(&p.partition))
            });
        }
        for topic in &request.topics {
            for partition in &topic.partitions {
                let existing = self.partitions.iter_mut().find(|(name, id, p)| {
                    *name == topic.topic
                        && *id == topic.topic_id
                        && p.partition == partition.partition
                });
                match existing {
                    Some((_, _, p)) => *p = partition.clone(),
                    None => self.partitions.push((
                        topic.topic.clone(),
                        topic.topic_id,
                        partition.clone(),
                    )),
                }
            }
        }
    }

    /// The session's partitions as the topics of a full fetch (Kafka's ids).
    fn full_topics(&self) -> Vec<FetchTopic> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (name, id, partition) in &self.partitions {
            match topics
                .iter_mut()
                .find(|t| t.topic == *name && t.topic_id == *id)
            {
                Some(topic) => topic.partitions.push(partition.clone()),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(name.clone())
                        .with_topic_id(*id)
                        .with_partitions(vec![partition.clone()]),
                ),
            }
        }
        topics
    }
}

fn compare(
    report: &mut Report,
    ids: &mut Ids,
    at: &str,
    record: &Record,
    key: ApiKey,
    kafka: &[u8],
    strom: Bytes,
) {
    let version = record.api_version;
    match key {
        ApiKey::ApiVersions => {
            if let Some((k, s)) = both::<ApiVersionsResponse>(report, at, record, key, kafka, strom)
            {
                compare_api_versions(report, at, &k, &s);
            }
        }
        ApiKey::Metadata => {
            let request: MetadataRequest = request_body(record, key);
            if let Some((k, s)) = both::<MetadataResponse>(report, at, record, key, kafka, strom) {
                learn_metadata_ids(report, ids, at, &k, &s);
                compare_metadata(report, at, version, &request, &k, &s);
            }
        }
        ApiKey::CreateTopics => {
            let request: CreateTopicsRequest = request_body(record, key);
            if let Some((k, s)) =
                both::<CreateTopicsResponse>(report, at, record, key, kafka, strom)
            {
                for kt in &k.topics {
                    if let Some(st) = s.topics.iter().find(|st| st.name == kt.name) {
                        ids.learn_topic(report, at, &kt.name.0, kt.topic_id, st.topic_id);
                    }
                }
                compare_create_topics(report, at, version, &request, &k, &s);
            }
        }
        ApiKey::DeleteTopics => {
            // Only checks that the recorded request decodes; results are
            // matched by the names in the responses.
            let _: DeleteTopicsRequest = request_body(record, key);
            if let Some((k, s)) =
                both::<DeleteTopicsResponse>(report, at, record, key, kafka, strom)
            {
                compare_delete_topics(report, at, &k, &s);
            }
        }
        ApiKey::DescribeConfigs => {
            if let Some((k, s)) =
                both::<DescribeConfigsResponse>(report, at, record, key, kafka, strom)
            {
                compare_describe_configs(report, at, version, &k, &s);
            }
        }
        ApiKey::DescribeCluster => {
            if let Some((k, s)) =
                both::<DescribeClusterResponse>(report, at, record, key, kafka, strom)
            {
                compare_describe_cluster(report, at, version, &k, &s);
            }
        }
        ApiKey::Produce => {
            if let Some((k, s)) = both::<ProduceResponse>(report, at, record, key, kafka, strom) {
                compare_produce(report, ids, at, version, &k, &s);
            }
        }
        ApiKey::Fetch => {
            let request: FetchRequest = request_body(record, key);
            if let Some((k, s)) = both::<FetchResponse>(report, at, record, key, kafka, strom) {
                compare_fetch(report, ids, at, version, &request, &k, &s);
            }
        }
        ApiKey::ListOffsets => {
            if let Some((k, s)) = both::<ListOffsetsResponse>(report, at, record, key, kafka, strom)
            {
                compare_list_offsets(report, at, &k, &s);
            }
        }
        ApiKey::DeleteRecords => {
            if let Some((k, s)) =
                both::<DeleteRecordsResponse>(report, at, record, key, kafka, strom)
            {
                compare_delete_records(report, at, &k, &s);
            }
        }
        ApiKey::InitProducerId => {
            if let Some((k, s)) =
                both::<InitProducerIdResponse>(report, at, record, key, kafka, strom)
            {
                compare_init_producer_id(report, ids, at, &k, &s);
            }
        }
        ApiKey::FindCoordinator => {
            if let Some((k, s)) =
                both::<FindCoordinatorResponse>(report, at, record, key, kafka, strom)
            {
                compare_find_coordinator(report, at, version, &k, &s);
            }
        }
        ApiKey::JoinGroup => {
            let request: JoinGroupRequest = request_body(record, key);
            if let Some((k, s)) = both::<JoinGroupResponse>(report, at, record, key, kafka, strom) {
                compare_join_group(report, ids, at, version, &request, &k, &s);
            }
        }
        ApiKey::SyncGroup => {
            if let Some((k, s)) = both::<SyncGroupResponse>(report, at, record, key, kafka, strom) {
                report.check(at, "error_code", k.error_code, s.error_code);
                report.check(at, "protocol_type", k.protocol_type, s.protocol_type);
                report.check(at, "protocol_name", k.protocol_name, s.protocol_name);
                report.check(at, "assignment", k.assignment, s.assignment);
            }
        }
        ApiKey::Heartbeat => {
            if let Some((k, s)) = both::<HeartbeatResponse>(report, at, record, key, kafka, strom) {
                report.check(at, "error_code", k.error_code, s.error_code);
            }
        }
        ApiKey::LeaveGroup => {
            if let Some((k, s)) = both::<LeaveGroupResponse>(report, at, record, key, kafka, strom)
            {
                compare_leave_group(report, ids, at, &k, &s);
            }
        }
        ApiKey::OffsetCommit => {
            if let Some((k, s)) =
                both::<OffsetCommitResponse>(report, at, record, key, kafka, strom)
            {
                let results = |r: &OffsetCommitResponse| {
                    r.topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|p| ((t.name.0.to_string(), p.partition_index), p.error_code))
                        })
                        .collect::<BTreeMap<_, _>>()
                };
                compare_results(report, at, "error_code", results(&k), results(&s));
            }
        }
        ApiKey::OffsetFetch => {
            if let Some((k, s)) = both::<OffsetFetchResponse>(report, at, record, key, kafka, strom)
            {
                compare_offset_fetch(report, at, &k, &s);
            }
        }
        ApiKey::DescribeGroups => {
            if let Some((k, s)) =
                both::<DescribeGroupsResponse>(report, at, record, key, kafka, strom)
            {
                compare_describe_groups(report, ids, at, &k, &s);
            }
        }
        ApiKey::ListGroups => {
            if let Some((k, s)) = both::<ListGroupsResponse>(report, at, record, key, kafka, strom)
            {
                compare_list_groups(report, at, &k, &s);
            }
        }
        ApiKey::DeleteGroups => {
            if let Some((k, s)) =
                both::<DeleteGroupsResponse>(report, at, record, key, kafka, strom)
            {
                let results = |r: &DeleteGroupsResponse| {
                    r.results
                        .iter()
                        .map(|g| (g.group_id.0.to_string(), g.error_code))
                        .collect::<BTreeMap<_, _>>()
                };
                compare_results(report, at, "error_code", results(&k), results(&s));
            }
        }
        ApiKey::OffsetDelete => {
            if let Some((k, s)) =
                both::<OffsetDeleteResponse>(report, at, record, key, kafka, strom)
            {
                report.check(at, "error_code", k.error_code, s.error_code);
                let results = |r: &OffsetDeleteResponse| {
                    r.topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|p| ((t.name.0.to_string(), p.partition_index), p.error_code))
                        })
                        .collect::<BTreeMap<_, _>>()
                };
                compare_results(report, at, "error_code", results(&k), results(&s));
            }
        }
        other => unreachable!("{other:?} is not replayed"),
    }
}

/// Compares keyed results: the same keys, and equal values under each.
fn compare_results<K, V>(
    report: &mut Report,
    at: &str,
    what: &str,
    kafka: BTreeMap<K, V>,
    strom: BTreeMap<K, V>,
) where
    K: Ord + std::fmt::Debug,
    V: PartialEq + std::fmt::Debug,
{
    for (key, k) in &kafka {
        match strom.get(key) {
            None => report.fail(at, format!("{key:?}: missing from strom's response")),
            Some(s) => report.check(at, &format!("{key:?}.{what}"), k, s),
        }
    }
    for key in strom.keys().filter(|key| !kafka.contains_key(key)) {
        report.fail(at, format!("{key:?}: in strom's response, not in Kafka's"));
    }
}

/// Learns topic ids from a pair of Metadata answers (every topic both
/// name, including those of all-topics answers).
fn learn_metadata_ids(
    report: &mut Report,
    ids: &mut Ids,
    at: &str,
    kafka: &MetadataResponse,
    strom: &MetadataResponse,
) {
    for k in &kafka.topics {
        let name = topic_name(k.name.as_ref());
        if let Some(s) = strom
            .topics
            .iter()
            .find(|s| topic_name(s.name.as_ref()) == name)
        {
            ids.learn_topic(report, at, &name, k.topic_id, s.topic_id);
        }
    }
}

/// One partition's Produce result, compared whole.
#[derive(Debug, PartialEq)]
struct ProduceResult {
    error_code: i16,
    base_offset: i64,
    /// `log_append_time_ms` is not -1: the topic uses LogAppendTime (the
    /// time itself is the run's).
    log_append_time_set: bool,
    log_start_offset: i64,
    record_errors: usize,
}

fn compare_produce(
    report: &mut Report,
    ids: &Ids,
    at: &str,
    version: i16,
    kafka: &ProduceResponse,
    strom: &ProduceResponse,
) {
    let by_id = version >= 13;
    let results = |r: &ProduceResponse, kafka_side: bool| {
        r.responses
            .iter()
            .flat_map(|t| {
                let topic = if kafka_side {
                    ids.kafka_topic(by_id, &t.name, t.topic_id)
                } else {
                    ids.strom_topic(by_id, &t.name, t.topic_id)
                };
                t.partition_responses.iter().map(move |p| {
                    let result = ProduceResult {
                        error_code: p.error_code,
                        base_offset: p.base_offset,
                        log_append_time_set: p.log_append_time_ms != -1,
                        log_start_offset: p.log_start_offset,
                        record_errors: p.record_errors.len(),
                    };
                    ((topic.clone(), p.index), result)
                })
            })
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(
        report,
        at,
        "result",
        results(kafka, true),
        results(strom, false),
    );
}

/// One partition's Fetch result besides its records, compared whole.
#[derive(Debug, PartialEq)]
struct FetchResult {
    error_code: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    preferred_read_replica: i32,
    /// None for a null list (Kafka: read_uncommitted), else its length.
    aborted_transactions: Option<usize>,
}

fn fetch_results(
    ids: &Ids,
    by_id: bool,
    kafka_side: bool,
    response: &FetchResponse,
) -> BTreeMap<(TopicKey, i32), (FetchResult, Vec<Batch>)> {
    response
        .responses
        .iter()
        .flat_map(|t| {
            let topic = if kafka_side {
                ids.kafka_topic(by_id, &t.topic, t.topic_id)
            } else {
                ids.strom_topic(by_id, &t.topic, t.topic_id)
            };
            t.partitions.iter().map(move |p| {
                let result = FetchResult {
                    error_code: p.error_code,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    preferred_read_replica: p.preferred_read_replica.0,
                    aborted_transactions: p.aborted_transactions.as_ref().map(Vec::len),
                };
                (
                    (topic.clone(), p.partition_index),
                    (result, batches(p.records.as_ref())),
                )
            })
        })
        .collect()
}

fn compare_fetch(
    report: &mut Report,
    ids: &mut Ids,
    at: &str,
    version: i16,
    request: &FetchRequest,
    kafka: &FetchResponse,
    strom: &FetchResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    if kafka.session_id == 0 {
        report.check(at, "session_id", 0, strom.session_id);
    } else if strom.session_id == 0 {
        eprintln!(
            "{at}: session_id: Kafka {}, strom 0 (no fetch session; KIP-227 allows it): accepted",
            kafka.session_id
        );
    }
    let by_id = version >= 13;
    let k = fetch_results(ids, by_id, true, kafka);
    let s = fetch_results(ids, by_id, false, strom);
    // Kafka's answer is incremental (leaves out unchanged partitions) when
    // the recorded request continued a session.
    let incremental = request.session_id != 0 && request.session_epoch > 0;
    let session = if incremental {
        ids.fetch_sessions.get_mut(&request.session_id)
    } else {
        None
    };
    for (key, (kr, kb)) in &k {
        let Some((sr, sb)) = s.get(key) else {
            report.fail(at, format!("{key:?}: missing from strom's response"));
            continue;
        };
        report.check(at, &format!("{key:?}.partition"), kr, sr);
        compare_batches(report, &ids.producers, at, &format!("{key:?}"), kb, sb);
    }
    for (key, (sr, sb)) in s.iter().filter(|(key, _)| !k.contains_key(*key)) {
        match &session {
            Some(session) => {
                // Left out of Kafka's incremental answer: unchanged, no data.
                let field = format!("{key:?} (unchanged in Kafka's incremental answer)");
                report.check(at, &format!("{field}.error_code"), 0, sr.error_code);
                report.check(at, &format!("{field}.batches"), 0, sb.len());
                if let Some(last) = session.last.get(key) {
                    let now = PartitionState {
                        high_watermark: sr.high_watermark,
                        last_stable_offset: sr.last_stable_offset,
                        log_start_offset: sr.log_start_offset,
                    };
                    report.check(at, &format!("{field}.state"), *last, now);
                }
                eprintln!(
                    "{at}: {key:?}: left out of Kafka's incremental answer; strom's full answer \
                     checked against Kafka's last state of it"
                );
            }
            None => report.fail(at, format!("{key:?}: in strom's response, not in Kafka's")),
        }
    }
    let states = k.iter().map(|(key, (r, _))| {
        let state = PartitionState {
            high_watermark: r.high_watermark,
            last_stable_offset: r.last_stable_offset,
            log_start_offset: r.log_start_offset,
        };
        (key.clone(), state)
    });
    if let Some(session) = session {
        session.last.extend(states);
    } else if request.session_id == 0 && request.session_epoch == 0 && kafka.session_id != 0 {
        // Kafka created a session with this full fetch.
        let mut session = FetchSession::new(strom.session_id, request);
        session.last.extend(states);
        ids.fetch_sessions.insert(kafka.session_id, session);
    }
}

/// Compares the whole record batches of one partition.
fn compare_batches(
    report: &mut Report,
    producers: &HashMap<i64, i64>,
    at: &str,
    field: &str,
    kafka: &[Batch],
    strom: &[Batch],
) {
    let counts = |b: &[Batch]| b.iter().map(|b| b.record_count).collect::<Vec<_>>();
    report.check(
        at,
        &format!("{field}: record counts of the batches returned"),
        counts(kafka),
        counts(strom),
    );
    for (k, s) in kafka.iter().zip(strom) {
        let mut expected = k.clone();
        if let Some(strom_id) = producers.get(&k.producer_id) {
            expected.producer_id = *strom_id;
        }
        if expected.records != s.records {
            report.fail(
                at,
                format!(
                    "{field}: batch at offset {}: records differ ({} bytes from Kafka, {} from strom)",
                    k.base_offset,
                    k.records.len(),
                    s.records.len()
                ),
            );
        }
        expected.records = s.records.clone();
        report.check(
            at,
            &format!(
                "{field}: batch at offset {} (Kafka's producer id mapped to strom's)",
                k.base_offset
            ),
            &expected,
            s,
        );
    }
}

/// One partition's ListOffsets result.
#[derive(Debug, PartialEq)]
struct ListOffsetsResult {
    error_code: i16,
    timestamp: i64,
    offset: i64,
}

fn compare_list_offsets(
    report: &mut Report,
    at: &str,
    kafka: &ListOffsetsResponse,
    strom: &ListOffsetsResponse,
) {
    let results = |r: &ListOffsetsResponse| {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let result = ListOffsetsResult {
                        error_code: p.error_code,
                        timestamp: p.timestamp,
                        offset: p.offset,
                    };
                    ((t.name.0.to_string(), p.partition_index), result)
                })
            })
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(report, at, "result", results(kafka), results(strom));
}

/// One partition's DeleteRecords result.
#[derive(Debug, PartialEq)]
struct DeleteRecordsResult {
    error_code: i16,
    low_watermark: i64,
}

fn compare_delete_records(
    report: &mut Report,
    at: &str,
    kafka: &DeleteRecordsResponse,
    strom: &DeleteRecordsResponse,
) {
    let results = |r: &DeleteRecordsResponse| {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let result = DeleteRecordsResult {
                        error_code: p.error_code,
                        low_watermark: p.low_watermark,
                    };
                    ((t.name.0.to_string(), p.partition_index), result)
                })
            })
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(report, at, "result", results(kafka), results(strom));
}

fn compare_init_producer_id(
    report: &mut Report,
    ids: &mut Ids,
    at: &str,
    kafka: &InitProducerIdResponse,
    strom: &InitProducerIdResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    report.check(
        at,
        "producer_epoch",
        kafka.producer_epoch,
        strom.producer_epoch,
    );
    report.check(
        at,
        "producer_id issued",
        kafka.producer_id.0 >= 0,
        strom.producer_id.0 >= 0,
    );
    if kafka.producer_id.0 >= 0 && strom.producer_id.0 >= 0 {
        ids.producers
            .insert(kafka.producer_id.0, strom.producer_id.0);
    }
}

fn compare_find_coordinator(
    report: &mut Report,
    at: &str,
    version: i16,
    kafka: &FindCoordinatorResponse,
    strom: &FindCoordinatorResponse,
) {
    let address = |node: i32, host: &StrBytes, port: i32| node >= 0 && !host.is_empty() && port > 0;
    if version < 4 {
        report.check(at, "error_code", kafka.error_code, strom.error_code);
        report.check(
            at,
            "coordinator named",
            address(kafka.node_id.0, &kafka.host, kafka.port),
            address(strom.node_id.0, &strom.host, strom.port),
        );
        return;
    }
    let results = |r: &FindCoordinatorResponse| {
        r.coordinators
            .iter()
            .map(|c| {
                (
                    c.key.to_string(),
                    (c.error_code, address(c.node_id.0, &c.host, c.port)),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(
        report,
        at,
        "(error_code, coordinator named)",
        results(kafka),
        results(strom),
    );
}

fn compare_join_group(
    report: &mut Report,
    ids: &mut Ids,
    at: &str,
    version: i16,
    request: &JoinGroupRequest,
    kafka: &JoinGroupResponse,
    strom: &JoinGroupResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    report.check(
        at,
        "generation_id",
        kafka.generation_id,
        strom.generation_id,
    );
    ids.learn_member(report, at, "member_id", &kafka.member_id, &strom.member_id);
    if kafka.error_code != 0 {
        return;
    }
    if kafka.generation_id >= 0 {
        ids.generations.insert(
            (request.group_id.0.to_string(), kafka.generation_id),
            strom.generation_id,
        );
    }
    ids.learn_member(report, at, "leader", &kafka.leader, &strom.leader);
    if version >= 7 {
        report.check(
            at,
            "protocol_type",
            &kafka.protocol_type,
            &strom.protocol_type,
        );
    }
    report.check(
        at,
        "protocol_name",
        &kafka.protocol_name,
        &strom.protocol_name,
    );
    report.check(
        at,
        "skip_assignment",
        kafka.skip_assignment,
        strom.skip_assignment,
    );
    report.check(
        at,
        "members.len()",
        kafka.members.len(),
        strom.members.len(),
    );
    for k in &kafka.members {
        let mapped = ids.members.get(k.member_id.as_str());
        let Some(s) = strom
            .members
            .iter()
            .find(|s| Some(&s.member_id.to_string()) == mapped)
        else {
            report.fail(
                at,
                format!(
                    "member {} (Kafka's id): missing from strom's response",
                    k.member_id
                ),
            );
            continue;
        };
        let field = format!("members[{}]", k.member_id);
        report.check(
            at,
            &format!("{field}.group_instance_id"),
            &k.group_instance_id,
            &s.group_instance_id,
        );
        report.check(at, &format!("{field}.metadata"), &k.metadata, &s.metadata);
    }
}

fn compare_leave_group(
    report: &mut Report,
    ids: &Ids,
    at: &str,
    kafka: &LeaveGroupResponse,
    strom: &LeaveGroupResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    // Members by strom's id (Kafka's mapped).
    let results = |r: &LeaveGroupResponse, kafka_side: bool| {
        r.members
            .iter()
            .map(|m| {
                let id = m.member_id.to_string();
                let id = match ids.members.get(&id) {
                    Some(strom) if kafka_side => strom.clone(),
                    _ => id,
                };
                ((id, m.group_instance_id.clone()), m.error_code)
            })
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(
        report,
        at,
        "error_code",
        results(kafka, true),
        results(strom, false),
    );
}

/// One partition's committed offset (OffsetFetch).
#[derive(Debug, PartialEq)]
struct Committed {
    error_code: i16,
    committed_offset: i64,
    committed_leader_epoch: i32,
    metadata: Option<String>,
}

fn compare_offset_fetch(
    report: &mut Report,
    at: &str,
    kafka: &OffsetFetchResponse,
    strom: &OffsetFetchResponse,
) {
    // v0-7: one group, at the top level; v8+: per group.
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    let top = |r: &OffsetFetchResponse| {
        r.topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let committed = Committed {
                        error_code: p.error_code,
                        committed_offset: p.committed_offset,
                        committed_leader_epoch: p.committed_leader_epoch,
                        metadata: p.metadata.as_ref().map(|m| m.to_string()),
                    };
                    (
                        (String::new(), t.name.0.to_string(), p.partition_index),
                        committed,
                    )
                })
            })
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(report, at, "committed", top(kafka), top(strom));
    let groups = |r: &OffsetFetchResponse| {
        r.groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.error_code))
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(report, at, "error_code", groups(kafka), groups(strom));
    let per_group = |r: &OffsetFetchResponse| {
        r.groups
            .iter()
            .flat_map(|g| {
                g.topics.iter().flat_map(move |t| {
                    t.partitions.iter().map(move |p| {
                        let committed = Committed {
                            error_code: p.error_code,
                            committed_offset: p.committed_offset,
                            committed_leader_epoch: p.committed_leader_epoch,
                            metadata: p.metadata.as_ref().map(|m| m.to_string()),
                        };
                        (
                            (
                                g.group_id.0.to_string(),
                                t.name.0.to_string(),
                                p.partition_index,
                            ),
                            committed,
                        )
                    })
                })
            })
            .collect::<BTreeMap<_, _>>()
    };
    compare_results(report, at, "committed", per_group(kafka), per_group(strom));
}

fn compare_describe_groups(
    report: &mut Report,
    ids: &Ids,
    at: &str,
    kafka: &DescribeGroupsResponse,
    strom: &DescribeGroupsResponse,
) {
    report.check(at, "groups.len()", kafka.groups.len(), strom.groups.len());
    for k in &kafka.groups {
        let Some(s) = strom.groups.iter().find(|s| s.group_id == k.group_id) else {
            report.fail(
                at,
                format!("group {}: missing from strom's response", k.group_id.0),
            );
            continue;
        };
        let field = format!("groups[{}]", k.group_id.0);
        report.check(
            at,
            &format!("{field}.error_code"),
            k.error_code,
            s.error_code,
        );
        report.check(
            at,
            &format!("{field}.group_state"),
            &k.group_state,
            &s.group_state,
        );
        report.check(
            at,
            &format!("{field}.protocol_type"),
            &k.protocol_type,
            &s.protocol_type,
        );
        report.check(
            at,
            &format!("{field}.protocol_data"),
            &k.protocol_data,
            &s.protocol_data,
        );
        report.check(
            at,
            &format!("{field}.authorized_operations"),
            k.authorized_operations,
            s.authorized_operations,
        );
        report.check(
            at,
            &format!("{field}.members.len()"),
            k.members.len(),
            s.members.len(),
        );
        for km in &k.members {
            let mapped = ids.members.get(km.member_id.as_str());
            let Some(sm) = s
                .members
                .iter()
                .find(|sm| Some(&sm.member_id.to_string()) == mapped)
            else {
                report.fail(
                    at,
                    format!(
                        "{field}: member {} (Kafka's id) missing from strom's",
                        km.member_id
                    ),
                );
                continue;
            };
            let field = format!("{field}.members[{}]", km.member_id);
            report.check(
                at,
                &format!("{field}.client_id"),
                &km.client_id,
                &sm.client_id,
            );
            report.check(
                at,
                &format!("{field}.group_instance_id"),
                &km.group_instance_id,
                &sm.group_instance_id,
            );
            report.check(
                at,
                &format!("{field}.member_metadata"),
                &km.member_metadata,
                &sm.member_metadata,
            );
            report.check(
                at,
                &format!("{field}.member_assignment"),
                &km.member_assignment,
                &sm.member_assignment,
            );
        }
    }
}

fn compare_list_groups(
    report: &mut Report,
    at: &str,
    kafka: &ListGroupsResponse,
    strom: &ListGroupsResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    // Kafka's list also holds the unrecorded warm-up's group, so only the
    // groups strom lists are looked up in Kafka's.
    for s in &strom.groups {
        let Some(k) = kafka.groups.iter().find(|k| k.group_id == s.group_id) else {
            report.fail(
                at,
                format!("group {}: listed by strom, not by Kafka", s.group_id.0),
            );
            continue;
        };
        let field = format!("groups[{}]", s.group_id.0);
        report.check(
            at,
            &format!("{field}.protocol_type"),
            &k.protocol_type,
            &s.protocol_type,
        );
        report.check(
            at,
            &format!("{field}.group_state"),
            &k.group_state,
            &s.group_state,
        );
        report.check(
            at,
            &format!("{field}.group_type"),
            &k.group_type,
            &s.group_type,
        );
    }
}
fn compare_api_versions(
    report: &mut Report,
    at: &str,
    kafka: &ApiVersionsResponse,
    strom: &ApiVersionsResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    if strom.api_keys.is_empty() {
        report.fail(at, "strom's api_keys table is empty");
    }
    let kafka_table: BTreeMap<i16, (i16, i16)> = kafka
        .api_keys
        .iter()
        .map(|a| (a.api_key, (a.min_version, a.max_version)))
        .collect();
    for api in &strom.api_keys {
        let field = format!("api_keys[{}]", api.api_key);
        match kafka_table.get(&api.api_key) {
            None => report.fail(at, format!("{field}: advertised by strom, not by Kafka")),
            Some(&(min, max)) => {
                // Floors must match Kafka's (librdkafka probes them).
                report.check(at, &format!("{field}.min_version"), min, api.min_version);
                if api.max_version > max {
                    report.fail(
                        at,
                        format!(
                            "{field}.max_version: strom {} above Kafka's {max}",
                            api.max_version
                        ),
                    );
                }
            }
        }
    }
}

fn topic_name(name: Option<&kafka_protocol::messages::TopicName>) -> String {
    name.map(|n| n.0.to_string()).unwrap_or_default()
}

fn compare_metadata(
    report: &mut Report,
    at: &str,
    version: i16,
    request: &MetadataRequest,
    kafka: &MetadataResponse,
    strom: &MetadataResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    if strom.brokers.is_empty() {
        report.fail(at, "strom lists no brokers");
    }
    if version >= 2 {
        report.check(
            at,
            "cluster_id present",
            kafka.cluster_id.is_some(),
            strom.cluster_id.is_some(),
        );
    }
    if version >= 1 && kafka.controller_id.0 >= 0 {
        let known = strom
            .brokers
            .iter()
            .any(|b| b.node_id == strom.controller_id);
        if !known {
            report.fail(
                at,
                format!(
                    "controller_id {} is not in strom's broker list",
                    strom.controller_id.0
                ),
            );
        }
    }
    // Only topics the request names explicitly: Kafka's all-topics answers
    // include golden-warmup and __consumer_offsets, which strom never saw.
    let named: Vec<String> = match &request.topics {
        Some(list) if !(version == 0 && list.is_empty()) => {
            list.iter().map(|t| topic_name(t.name.as_ref())).collect()
        }
        _ => return,
    };
    report.check(at, "topics.len()", kafka.topics.len(), strom.topics.len());
    for name in named {
        let find = |r: &'_ MetadataResponse| {
            r.topics
                .iter()
                .find(|t| topic_name(t.name.as_ref()) == name)
                .cloned()
        };
        let (Some(k), Some(s)) = (find(kafka), find(strom)) else {
            report.fail(at, format!("topic {name}: missing from strom's response"));
            continue;
        };
        let field = format!("topics[{name}]");
        // Kafka (KRaft) auto-creates through its controller and answers the
        // request that triggers it with UNKNOWN_TOPIC_OR_PARTITION (or
        // LEADER_NOT_AVAILABLE) and no partitions; the client asks again.
        // strom creates the topic before answering, so the first answer is
        // already the complete topic: a timing artefact, not a difference.
        if request.allow_auto_topic_creation
            && matches!(k.error_code, 3 | 5)
            && k.partitions.is_empty()
            && s.error_code == 0
            && !s.partitions.is_empty()
        {
            eprintln!(
                "{at}: {field}: Kafka {} (auto-creation in progress), strom 0 with {} partition(s): accepted",
                k.error_code,
                s.partitions.len()
            );
            continue;
        }
        report.check(
            at,
            &format!("{field}.error_code"),
            k.error_code,
            s.error_code,
        );
        report.check(
            at,
            &format!("{field}.is_internal"),
            k.is_internal,
            s.is_internal,
        );
        if version >= 10 {
            report.check(
                at,
                &format!("{field}.topic_id is nil"),
                k.topic_id.is_nil(),
                s.topic_id.is_nil(),
            );
        }
        report.check(
            at,
            &format!("{field}.partitions.len()"),
            k.partitions.len(),
            s.partitions.len(),
        );
        for (kp, sp) in k.partitions.iter().zip(&s.partitions) {
            let field = format!("{field}.partitions[{}]", kp.partition_index);
            report.check(
                at,
                &format!("{field}.partition_index"),
                kp.partition_index,
                sp.partition_index,
            );
            report.check(
                at,
                &format!("{field}.error_code"),
                kp.error_code,
                sp.error_code,
            );
            report.check(
                at,
                &format!("{field}.leader known"),
                kp.leader_id.0 >= 0,
                sp.leader_id.0 >= 0,
            );
            report.check(
                at,
                &format!("{field}.replica_nodes.len()"),
                kp.replica_nodes.len(),
                sp.replica_nodes.len(),
            );
            report.check(
                at,
                &format!("{field}.isr_nodes.len()"),
                kp.isr_nodes.len(),
                sp.isr_nodes.len(),
            );
        }
    }
}

fn compare_create_topics(
    report: &mut Report,
    at: &str,
    version: i16,
    request: &CreateTopicsRequest,
    kafka: &CreateTopicsResponse,
    strom: &CreateTopicsResponse,
) {
    report.check(at, "topics.len()", kafka.topics.len(), strom.topics.len());
    for wanted in &request.topics {
        let name = wanted.name.0.as_str();
        let find = |r: &'_ CreateTopicsResponse| {
            r.topics.iter().find(|t| t.name.0.as_str() == name).cloned()
        };
        let (Some(k), Some(s)) = (find(kafka), find(strom)) else {
            report.fail(at, format!("topic {name}: missing from strom's response"));
            continue;
        };
        let field = format!("topics[{name}]");
        report.check(
            at,
            &format!("{field}.error_code"),
            k.error_code,
            s.error_code,
        );
        if version >= 5 {
            report.check(
                at,
                &format!("{field}.num_partitions"),
                k.num_partitions,
                s.num_partitions,
            );
            report.check(
                at,
                &format!("{field}.replication_factor"),
                k.replication_factor,
                s.replication_factor,
            );
            report.check(
                at,
                &format!("{field}.topic_config_error_code"),
                k.topic_config_error_code,
                s.topic_config_error_code,
            );
            let names = |r: &Option<
                Vec<kafka_protocol::messages::create_topics_response::CreatableTopicConfigs>,
            >| {
                r.as_ref().map(|list| {
                    list.iter()
                        .map(|c| c.name.to_string())
                        .collect::<BTreeSet<_>>()
                })
            };
            config_names(
                report,
                at,
                &format!("{field}.configs"),
                names(&k.configs),
                names(&s.configs),
            );
            for kc in k.configs.iter().flatten() {
                let sc = s.configs.iter().flatten().find(|sc| sc.name == kc.name);
                if let Some(sc) = sc {
                    let field = format!("{field}.configs[{}]", kc.name);
                    report.check(
                        at,
                        &format!("{field}.read_only"),
                        kc.read_only,
                        sc.read_only,
                    );
                    report.check(
                        at,
                        &format!("{field}.is_sensitive"),
                        kc.is_sensitive,
                        sc.is_sensitive,
                    );
                    default_value(
                        report,
                        at,
                        &field,
                        (kc.config_source, &kc.value),
                        (sc.config_source, &sc.value),
                    );
                }
            }
        }
        if version >= 7 {
            report.check(
                at,
                &format!("{field}.topic_id is nil"),
                k.topic_id.is_nil(),
                s.topic_id.is_nil(),
            );
        }
    }
}

/// Kafka's config source number for a built-in default.
const DEFAULT_CONFIG: i8 = 5;

/// Where both brokers report a config at its built-in default, the values
/// must agree (strom reports Kafka 4.1's defaults). Values that come from
/// the recording broker's own settings (other sources) are not compared.
fn default_value(
    report: &mut Report,
    at: &str,
    field: &str,
    kafka: (i8, &Option<kafka_protocol::protocol::StrBytes>),
    strom: (i8, &Option<kafka_protocol::protocol::StrBytes>),
) {
    if kafka.0 == DEFAULT_CONFIG && strom.0 == DEFAULT_CONFIG {
        report.check(
            at,
            &format!("{field}.value (default)"),
            kafka.1.as_ref().map(|v| v.as_str()),
            strom.1.as_ref().map(|v| v.as_str()),
        );
    }
}

/// Compares two sets of config names and spells out the difference.
fn config_names(
    report: &mut Report,
    at: &str,
    field: &str,
    kafka: Option<BTreeSet<String>>,
    strom: Option<BTreeSet<String>>,
) {
    match (kafka, strom) {
        (Some(k), Some(s)) if k != s => {
            let missing: Vec<_> = k.difference(&s).collect();
            let extra: Vec<_> = s.difference(&k).collect();
            report.fail(
                at,
                format!(
                    "{field}: names differ (Kafka {}, strom {}); missing in strom: {missing:?}; only in strom: {extra:?}",
                    k.len(),
                    s.len()
                ),
            );
        }
        (k, s) if k.is_some() != s.is_some() => {
            report.check(at, &format!("{field} present"), k.is_some(), s.is_some());
        }
        _ => {}
    }
}

fn compare_delete_topics(
    report: &mut Report,
    at: &str,
    kafka: &DeleteTopicsResponse,
    strom: &DeleteTopicsResponse,
) {
    report.check(
        at,
        "responses.len()",
        kafka.responses.len(),
        strom.responses.len(),
    );
    for k in &kafka.responses {
        let name = topic_name(k.name.as_ref());
        let Some(s) = strom
            .responses
            .iter()
            .find(|s| topic_name(s.name.as_ref()) == name)
        else {
            report.fail(at, format!("topic {name}: missing from strom's response"));
            continue;
        };
        report.check(
            at,
            &format!("responses[{name}].error_code"),
            k.error_code,
            s.error_code,
        );
    }
}

fn compare_describe_configs(
    report: &mut Report,
    at: &str,
    version: i16,
    kafka: &DescribeConfigsResponse,
    strom: &DescribeConfigsResponse,
) {
    report.check(
        at,
        "results.len()",
        kafka.results.len(),
        strom.results.len(),
    );
    for k in &kafka.results {
        let Some(s) = strom
            .results
            .iter()
            .find(|s| s.resource_type == k.resource_type && s.resource_name == k.resource_name)
        else {
            report.fail(
                at,
                format!(
                    "resource {}:{} missing from strom's response",
                    k.resource_type, k.resource_name
                ),
            );
            continue;
        };
        let field = format!("results[{}:{}]", k.resource_type, k.resource_name);
        report.check(
            at,
            &format!("{field}.error_code"),
            k.error_code,
            s.error_code,
        );
        if k.resource_type != TOPIC_RESOURCE || k.error_code != 0 {
            continue;
        }
        let names =
            |r: &kafka_protocol::messages::describe_configs_response::DescribeConfigsResult| {
                r.configs
                    .iter()
                    .map(|c| c.name.to_string())
                    .collect::<BTreeSet<_>>()
            };
        config_names(
            report,
            at,
            &format!("{field}.configs"),
            Some(names(k)),
            Some(names(s)),
        );
        for kc in &k.configs {
            let Some(sc) = s.configs.iter().find(|sc| sc.name == kc.name) else {
                continue;
            };
            let field = format!("{field}.configs[{}]", kc.name);
            report.check(
                at,
                &format!("{field}.read_only"),
                kc.read_only,
                sc.read_only,
            );
            report.check(
                at,
                &format!("{field}.is_sensitive"),
                kc.is_sensitive,
                sc.is_sensitive,
            );
            if version >= 3 {
                report.check(
                    at,
                    &format!("{field}.config_type"),
                    kc.config_type,
                    sc.config_type,
                );
            }
            default_value(
                report,
                at,
                &field,
                (kc.config_source, &kc.value),
                (sc.config_source, &sc.value),
            );
        }
    }
}

fn compare_describe_cluster(
    report: &mut Report,
    at: &str,
    version: i16,
    kafka: &DescribeClusterResponse,
    strom: &DescribeClusterResponse,
) {
    report.check(at, "error_code", kafka.error_code, strom.error_code);
    if version >= 1 {
        report.check(
            at,
            "endpoint_type",
            kafka.endpoint_type,
            strom.endpoint_type,
        );
    }
    if strom.brokers.is_empty() {
        report.fail(at, "strom lists no brokers");
    }
    if strom.cluster_id.is_empty() {
        report.fail(at, "strom's cluster_id is empty");
    }
    report.check(
        at,
        "controller_id known",
        kafka.controller_id.0 >= 0,
        strom.controller_id.0 >= 0,
    );
}

/// Whether `frame` decodes as a `key` response at `version`, nothing left.
fn decodes(key: ApiKey, version: i16, mut frame: Bytes) -> Result<(), String> {
    let header = key.response_header_version(version);
    ResponseHeader::decode(&mut frame, header)
        .map_err(|e| format!("header v{header} does not decode: {e}"))?;
    ResponseKind::decode(key, &mut frame, version)
        .map_err(|e| format!("body v{version} does not decode: {e}"))?;
    if frame.has_remaining() {
        return Err(format!(
            "{} bytes left after the v{version} body",
            frame.remaining()
        ));
    }
    Ok(())
}

/// After an acks=0 Produce: strom must not answer it (the next frame on
/// the connection answers an ApiVersions probe), and the records must be
/// in the log (a ListOffsets probe: the latest offset covers them).
async fn check_acks0(report: &mut Report, at: &str, record: &Record, connection: &mut Client) {
    let probe = request_frame(
        ApiKey::ApiVersions,
        3,
        PROBE_API_VERSIONS,
        &api_versions_request(),
    );
    connection.send_frame(&probe).await;
    let frame = connection.read_frame().await;
    match decode_response_at::<ApiVersionsResponse>(0, 3, frame) {
        Ok((correlation_id, _)) => report.check(
            at,
            "the next frame after acks=0 (an ApiVersions probe's correlation id)",
            PROBE_API_VERSIONS,
            correlation_id,
        ),
        Err(e) => report.fail(
            at,
            format!("the frame after an acks=0 Produce is not the probe's answer: {e}"),
        ),
    }
    let produced: ProduceRequest = request_body(record, ApiKey::Produce);
    let mut wanted = Vec::new();
    let mut expected = BTreeMap::new();
    for topic in &produced.topic_data {
        if record.api_version >= 13 {
            // By id only; the probe needs a name.
            continue;
        }
        let mut partitions = Vec::new();
        for p in &topic.partition_data {
            let count: i64 = batches(p.records.as_ref())
                .iter()
                .map(|b| i64::from(b.record_count))
                .sum();
            expected.insert((topic.name.0.to_string(), p.index), count);
            partitions.push(
                ListOffsetsPartition::default()
                    .with_partition_index(p.index)
                    .with_timestamp(-1),
            );
        }
        wanted.push(
            ListOffsetsTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    if wanted.is_empty() {
        return;
    }
    let probe = request_frame(
        ApiKey::ListOffsets,
        1,
        PROBE_LIST_OFFSETS,
        &ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(wanted),
    );
    connection.send_frame(&probe).await;
    let frame = connection.read_frame().await;
    let response = match decode_response_at::<ListOffsetsResponse>(0, 1, frame) {
        Ok((_, response)) => response,
        Err(e) => {
            report.fail(at, format!("ListOffsets probe after acks=0: {e}"));
            return;
        }
    };
    for topic in &response.topics {
        for p in &topic.partitions {
            let key = (topic.name.0.to_string(), p.partition_index);
            let count = expected.get(&key).copied().unwrap_or(0);
            if p.error_code != 0 || p.offset < count {
                report.fail(
                    at,
                    format!(
                        "{key:?}: after an acks=0 Produce of {count} records, latest offset {} (error {})",
                        p.offset, p.error_code
                    ),
                );
            }
        }
    }
}

/// What one client file's replay did.
#[derive(Default)]
struct Outcome {
    report: Report,
    /// Responses compared with Kafka's, per API.
    compared: BTreeMap<String, usize>,
    /// Requests replayed whose Kafka answer was not recorded.
    unanswered: usize,
    /// Requests not replayed, with the reason.
    skipped: Vec<String>,
}

/// Replays one client's file against a fresh strom.
async fn replay(client: &str, records: Vec<Record>) -> Outcome {
    let broker = TestBroker::start_with(RECORDING_SETTINGS).await;
    let mut out = Outcome::default();
    let mut ids = Ids::default();
    // Sessions in file order; within a session, requests in `seq` order.
    let mut sessions: Vec<(String, Vec<Record>)> = Vec::new();
    for record in records {
        match sessions.iter_mut().find(|(s, _)| *s == record.session) {
            Some((_, list)) => list.push(record),
            None => sessions.push((record.session.clone(), vec![record])),
        }
    }
    for (_, mut list) in sessions {
        list.sort_by_key(|r| r.seq);
        let mut connections: HashMap<i64, Client> = HashMap::new();
        for record in list {
            let at = record.label(client);
            let Some(key) = replayed(record.api_key) else {
                let reason = format!("{at}: skipped: strom does not serve this API");
                eprintln!("{reason}");
                out.skipped.push(reason);
                continue;
            };
            let (frame, answered) = match plan(&mut ids, &record, key) {
                Plan::Send { frame, answered } => (frame, answered),
                Plan::Skip(why) => {
                    let reason = format!("{at}: skipped: {why}");
                    eprintln!("{reason}");
                    out.skipped.push(reason);
                    continue;
                }
            };
            let connection = match connections.entry(record.conn) {
                Entry::Occupied(entry) => entry.into_mut(),
                Entry::Vacant(entry) => entry.insert(broker.connect().await),
            };
            connection.write_raw(&with_size_prefix(&frame)).await;
            if !answered {
                if record.response.is_some() {
                    out.report
                        .fail(&at, "Kafka answered a request strom treats as unanswered");
                }
                check_acks0(&mut out.report, &at, &record, connection).await;
                *out.compared.entry(format!("{key:?} (acks=0)")).or_default() += 1;
                continue;
            }
            let response = connection.read_frame().await;
            match &record.response {
                Some(kafka) => {
                    compare(
                        &mut out.report,
                        &mut ids,
                        &at,
                        &record,
                        key,
                        kafka,
                        response,
                    );
                    *out.compared.entry(format!("{key:?}")).or_default() += 1;
                }
                None => {
                    // Kafka's answer was not recorded: strom's must still decode.
                    if let Err(e) = decodes(key, record.api_version, response) {
                        out.report.fail(&at, format!("strom's response: {e}"));
                    }
                    out.unanswered += 1;
                }
            }
        }
    }
    broker.shutdown().await;
    out
}

async fn replay_file(file: &str) {
    let Some(dir) = golden_dir() else {
        return;
    };
    let path = dir.join(file);
    let records = load(&path);
    let client = file.trim_end_matches(".jsonl");
    let total = records.len();
    let out = replay(client, records).await;
    let compared: usize = out.compared.values().sum();
    eprintln!(
        "{client}: {total} recorded requests; compared {compared} responses {:?}; \
         {} replayed without a recorded answer (decode checked); {} skipped",
        out.compared,
        out.unanswered,
        out.skipped.len()
    );
    assert!(compared > 0, "{client}: nothing was compared");
    if !out.report.lines.is_empty() {
        let mut text = String::new();
        for line in &out.report.lines {
            let _ = writeln!(text, "  {line}");
        }
        panic!(
            "{client}: {} differences from Kafka 4.1:\n{text}",
            out.report.lines.len()
        );
    }
}

#[test]
fn golden_files_are_all_covered() {
    let Some(dir) = golden_dir() else {
        return;
    };
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .expect("read golden dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    found.sort();
    let mut expected: Vec<String> = FILES.iter().map(|s| (*s).to_owned()).collect();
    expected.sort();
    assert_eq!(found, expected, "a golden file without a replay test");
}

#[tokio::test]
async fn golden_kcat() {
    replay_file("kcat.jsonl").await;
}

#[tokio::test]
async fn golden_confluent_kafka() {
    replay_file("confluent-kafka.jsonl").await;
}

#[tokio::test]
async fn golden_kafka_python() {
    replay_file("kafka-python.jsonl").await;
}

#[tokio::test]
async fn golden_kafkajs() {
    replay_file("kafkajs.jsonl").await;
}

#[tokio::test]
async fn golden_java_cli() {
    replay_file("java-cli.jsonl").await;
}
