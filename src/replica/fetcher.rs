//! Follower fetchers: one task per leader this node follows partitions
//! of, sending that leader ordinary Fetch requests (v12, `replica_id` =
//! this node) for all of them at once, as Kafka's replica fetcher threads
//! do. Fetched batches are appended as the leader stored them; the
//! leader's high watermark comes back in every answer.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tracing::{debug, warn};

use super::Followed;
use crate::cluster::peers::exchange;
use crate::log::{now_ms, PartitionLog};
use crate::security::client::{PeerSecurity, PeerStream};

/// The Fetch version followers send.
const VERSION: i16 = 12;
/// The longest a fetch waits at the leader for new data.
const MAX_WAIT_MS: i32 = 500;
/// Bytes per partition and per fetch.
const PARTITION_MAX_BYTES: i32 = 4 << 20;
const MAX_BYTES: i32 = 32 << 20;
/// How long one exchange may take before the connection is dropped.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after a failed connection or an error answer.
const BACKOFF: Duration = Duration::from_millis(100);

/// Where a fetcher finds the logs it appends to.
pub trait ReplicaLogs: Send + Sync + 'static {
    /// The local log of `topic`-`partition`.
    fn replica_log(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>>;

    /// Whether this node still follows `topic`-`partition` in leader epoch
    /// `epoch` (a fetch answered after a leader change is dropped).
    fn follows(&self, topic: &str, partition: i32, epoch: i32) -> bool;
}

/// What one fetcher task fetches, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    address: String,
    partitions: Vec<Followed>,
}

/// This node's fetcher tasks, by leader.
pub struct Fetchers {
    node_id: i32,
    logs: Arc<dyn ReplicaLogs>,
    tasks: Mutex<HashMap<i32, watch::Sender<Assignment>>>,
    /// How connections to the leaders are secured.
    security: PeerSecurity,
}

impl std::fmt::Debug for Fetchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetchers")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Fetchers {
    /// No fetchers yet.
    pub fn new(node_id: i32, logs: Arc<dyn ReplicaLogs>, security: PeerSecurity) -> Self {
        Self {
            node_id,
            logs,
            security,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches `follow` (leader → partitions) from then on: new leaders get
    /// a task, changed assignments reach theirs, leaders no longer followed
    /// lose theirs. `addresses` gives each broker's `host:port`.
    pub fn update(&self, follow: BTreeMap<i32, Vec<Followed>>, addresses: &BTreeMap<i32, String>) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|leader, _| follow.contains_key(leader));
        for (leader, partitions) in follow {
            let Some(address) = addresses.get(&leader) else {
                continue;
            };
            let assignment = Assignment {
                address: address.clone(),
                partitions,
            };
            match tasks.get(&leader) {
                Some(sender) => {
                    sender.send_if_modified(|current| {
                        let changed = *current != assignment;
                        *current = assignment;
                        changed
                    });
                }
                None => {
                    let (sender, receiver) = watch::channel(assignment);
                    tokio::spawn(run(
                        self.node_id,
                        leader,
                        receiver,
                        self.logs.clone(),
                        self.security.clone(),
                    ));
                    tasks.insert(leader, sender);
                }
            }
        }
    }

    /// Stops every fetcher.
    pub fn stop(&self) {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// One fetcher: fetches its assignment from `leader` until its sender is
/// dropped.
async fn run(
    node_id: i32,
    leader: i32,
    mut assignment: watch::Receiver<Assignment>,
    logs: Arc<dyn ReplicaLogs>,
    security: PeerSecurity,
) {
    let mut connection: Option<(String, PeerStream)> = None;
    let mut correlation = 0i32;
    loop {
        if assignment.has_changed().is_err() {
            return;
        }
        let current = assignment.borrow_and_update().clone();
        if current.partitions.is_empty() {
            if assignment.changed().await.is_err() {
                return;
            }
            continue;
        }
        let stream = match &mut connection {
            Some((address, stream)) if *address == current.address => stream,
            _ => match tokio::time::timeout(
                EXCHANGE_TIMEOUT,
                crate::cluster::peers::connect(&security, &current.address),
            )
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
            {
                Ok(stream) => &mut connection.insert((current.address.clone(), stream)).1,
                Err(e) => {
                    debug!(leader, address = %current.address, cause = %e, "cannot reach the leader");
                    connection = None;
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            },
        };
        let logs_now: Vec<(Followed, Arc<PartitionLog>)> = current
            .partitions
            .iter()
            .filter_map(|f| Some((f.clone(), logs.replica_log(&f.topic, f.partition)?)))
            .collect();
        if logs_now.is_empty() {
            // No local log yet (or any more): an empty fetch would come
            // straight back; wait for the next assignment instead.
            tokio::select! {
                changed = assignment.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(BACKOFF) => {}
            }
            continue;
        }
        correlation = correlation.wrapping_add(1);
        let request = fetch_request(node_id, &logs_now);
        let exchange =
            tokio::time::timeout(EXCHANGE_TIMEOUT, call(stream, correlation, &request)).await;
        let response = match exchange {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                debug!(leader, cause = %e, "fetch from the leader failed");
                connection = None;
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
            Err(_) => {
                connection = None;
                continue;
            }
        };
        if !apply(leader, &response, &logs_now, logs.as_ref()) {
            tokio::time::sleep(BACKOFF).await;
        }
    }
}

fn fetch_request(node_id: i32, logs: &[(Followed, Arc<PartitionLog>)]) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (followed, log) in logs {
        topics.entry(&followed.topic).or_default().push(
            FetchPartition::default()
                .with_partition(followed.partition)
                .with_current_leader_epoch(followed.leader_epoch)
                .with_fetch_offset(log.offsets().log_end_offset)
                .with_log_start_offset(-1)
                .with_last_fetched_epoch(log.last_epoch())
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(node_id))
        .with_max_wait_ms(MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(MAX_BYTES)
        .with_session_epoch(-1)
        .with_topics(
            topics
                .into_iter()
                .map(|(topic, partitions)| {
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// Appends what the leader answered; whether every partition was fine.
fn apply(
    leader: i32,
    response: &FetchResponse,
    logs: &[(Followed, Arc<PartitionLog>)],
    current: &dyn ReplicaLogs,
) -> bool {
    let mut fine = response.error_code == 0;
    for topic in &response.responses {
        for data in &topic.partitions {
            let Some((followed, log)) = logs.iter().find(|(f, _)| {
                f.topic == topic.topic.0.as_str() && f.partition == data.partition_index
            }) else {
                continue;
            };
            if !current.follows(&followed.topic, followed.partition, followed.leader_epoch) {
                continue;
            }
            if data.error_code != 0 {
                debug!(leader, topic = %log.topic, partition = log.partition, error = data.error_code, "the leader refused a fetch");
                fine = false;
                continue;
            }
            let diverging = &data.diverging_epoch;
            if diverging.epoch >= 0 || diverging.end_offset >= 0 {
                if let Err(e) = truncate_diverging(log, diverging.epoch, diverging.end_offset) {
                    warn!(leader, topic = %log.topic, partition = log.partition, cause = %e, "cannot truncate a diverging log");
                    fine = false;
                }
                continue;
            }
            if let Some(records) = &data.records {
                if let Err(e) = append_batches(log, records) {
                    warn!(leader, topic = %log.topic, partition = log.partition, cause = %e, "cannot append fetched batches");
                    fine = false;
                    continue;
                }
            }
            log.advance_high_watermark(data.high_watermark);
        }
    }
    fine
}

/// Cuts a follower's log where the leader said it diverges: the leader's
/// log has `epoch` (the largest not above the follower's last) ending at
/// `end_offset`. The follower keeps what both hold in that epoch: up to
/// the smaller of the two ends; if its own log has an older largest epoch
/// up to there, it cuts at that epoch's end and the next fetch checks
/// again. An epoch the leader does not know at all (`-1`) leaves only
/// what the leader holds from its log start.
fn truncate_diverging(log: &PartitionLog, epoch: i32, end_offset: i64) -> io::Result<()> {
    let to = if epoch < 0 {
        end_offset
    } else {
        match log.end_offset_for_epoch(epoch) {
            (own, own_end) if own == epoch => own_end.min(end_offset),
            (own, own_end) if own >= 0 => own_end,
            // None of the follower's epochs is that old.
            _ => end_offset,
        }
    };
    let from = log.offsets().log_end_offset;
    let cut = log.truncate_to(to)?;
    debug!(topic = %log.topic, partition = log.partition, epoch, end_offset, from, cut, "truncated where the leader's log diverges");
    Ok(())
}

/// Appends every whole batch in `records` (a trailing partial one is
/// fetched again next time).
fn append_batches(log: &PartitionLog, records: &Bytes) -> Result<(), String> {
    let mut rest = &records[..];
    while rest.len() >= 12 {
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Some(size) = usize::try_from(length).ok().and_then(|l| l.checked_add(12)) else {
            return Err(format!("a batch of length {length}"));
        };
        if size > rest.len() {
            break;
        }
        let (batch, tail) = rest.split_at(size);
        let base_offset = i64::from_be_bytes(batch[0..8].try_into().map_err(|_| "short batch")?);
        if base_offset >= log.offsets().log_end_offset {
            log.append_replica(batch.to_vec(), now_ms())
                .map_err(|e| e.to_string())?;
        }
        rest = tail;
    }
    Ok(())
}

/// One Fetch exchange on `stream`.
async fn call(
    stream: &mut PeerStream,
    correlation: i32,
    request: &FetchRequest,
) -> io::Result<FetchResponse> {
    // A response holds at most MAX_BYTES of records plus framing.
    let limit = usize::try_from(MAX_BYTES)
        .unwrap_or(usize::MAX)
        .saturating_mul(2);
    exchange(
        stream,
        "strom-replica-fetcher",
        correlation,
        VERSION,
        request,
        limit,
    )
    .await
}
