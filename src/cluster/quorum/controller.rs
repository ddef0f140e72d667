//! The active controller's broker liveness, as Kafka's
//! `BrokerHeartbeatManager`: every broker heartbeats to the Raft leader
//! every `broker.heartbeat.interval.ms`; the leader fences a broker not
//! heard from for `broker.session.timeout.ms` (its partitions get new
//! leaders from their ISR) and unfences it when it heartbeats again.
//! Heartbeats are kept in the leader's memory only; a new leader gives
//! every broker a full session before fencing it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use serde::{Deserialize, Serialize};

use super::image::{Election, MetadataCommand};
use super::network::{ProposeError, Reply, Request};
use super::{MetadataQuorum, NodeId, Raft};

/// Last heartbeats the active controller received, by broker.
#[derive(Debug, Default)]
pub struct Heartbeats {
    seen: Mutex<HashMap<i32, Instant>>,
    /// When each broker's heartbeat last found its copy of the metadata
    /// log holding everything the leader has (DescribeQuorum's
    /// last caught-up timestamp).
    caught_up: Mutex<HashMap<i32, Instant>>,
}

impl Heartbeats {
    /// Records `node_id`'s heartbeat if this node is the active controller.
    ///
    /// # Errors
    /// NotLeader otherwise.
    pub fn record(&self, raft: &Raft, node_id: i32) -> Result<(), ProposeError> {
        let metrics = raft.metrics().borrow().clone();
        if metrics.current_leader != Some(metrics.id) {
            return Err(ProposeError::NotLeader { leader: None });
        }
        let now = Instant::now();
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node_id, now);
        let matched = NodeId::try_from(node_id).ok().and_then(|id| {
            if id == metrics.id {
                return metrics.last_log_index;
            }
            let progress = metrics.replication.as_ref()?.get(&id)?.as_ref();
            Some(progress.map_or(0, |log_id| log_id.index))
        });
        if matched.is_some() && matched >= metrics.last_log_index {
            self.caught_up
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(node_id, now);
        }
        Ok(())
    }

    fn last(&self) -> HashMap<i32, Instant> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn reset(&self, brokers: impl Iterator<Item = i32>) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.clear();
        seen.extend(brokers.map(|id| (id, now)));
    }
}

/// Heartbeat and session settings.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// `broker.heartbeat.interval.ms`.
    pub interval: Duration,
    /// `broker.session.timeout.ms`.
    pub session: Duration,
}

/// The active controller's leader elections.
#[derive(Debug, Clone, Copy)]
pub struct Balancing {
    /// `auto.leader.rebalance.enable`: move leadership back to the
    /// preferred replica once it is live and in the ISR.
    pub auto_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub check_interval: Duration,
    /// `unclean.leader.election.enable` of the broker (a topic's override
    /// wins): a partition left without a live ISR member gets a live
    /// replica from outside the ISR as leader.
    pub unclean: bool,
}

impl Default for Balancing {
    fn default() -> Self {
        Self {
            auto_rebalance: true,
            check_interval: Duration::from_secs(300),
            unclean: false,
        }
    }
}

/// Sends this node's heartbeats and, while this node is the active
/// controller, fences and unfences brokers and elects leaders. Runs until
/// the quorum stops.
pub async fn run(quorum: Arc<MetadataQuorum>, liveness: Liveness, balancing: Balancing) {
    let mut ticks = tokio::time::interval(liveness.interval.min(liveness.session / 4));
    let mut last_balance = Instant::now();
    let mut was_leader = false;
    let mut fenced_since: HashMap<i32, Instant> = HashMap::new();
    let mut stopped = quorum.shutdown.subscribe();
    let mut last_tick = Instant::now();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => return,
        }
        // This task did not run for a long while (the process was
        // stopped, e.g. SIGSTOP, or starved): the heartbeats that arrived
        // meanwhile may still sit unread in the sockets, so the times
        // recorded say nothing about the brokers. Found in a test: a
        // leader SIGSTOPped for 3 s and resumed fenced both healthy
        // brokers at once. Start their sessions over, as a new leader does.
        let paused = last_tick.elapsed() > liveness.session / 2;
        last_tick = Instant::now();
        heartbeat(&quorum).await;
        let leader = quorum.leader() == i32::try_from(quorum.node_id).ok();
        if !leader {
            was_leader = false;
            continue;
        }
        let image = quorum.image();
        if !was_leader || paused {
            // A full session for everyone before this controller fences.
            quorum.heartbeats.reset(image.brokers.keys().copied());
            was_leader = true;
            continue;
        }
        let seen = quorum.heartbeats.last();
        let now = Instant::now();
        for broker in image.brokers.values() {
            let last = seen.get(&broker.node_id);
            let alive = last.is_some_and(|t| now.duration_since(*t) < liveness.session);
            // A fenced broker is unfenced only by a heartbeat sent after it
            // was fenced (one that stopped on purpose must stay fenced).
            let since = *fenced_since.entry(broker.node_id).or_insert(now);
            if !broker.fenced {
                fenced_since.remove(&broker.node_id);
            }
            let alive = alive && (!broker.fenced || last.is_some_and(|t| *t > since));
            let command = match (broker.fenced, alive) {
                (false, false) => MetadataCommand::FenceBroker {
                    node_id: broker.node_id,
                },
                (true, true) => MetadataCommand::UnfenceBroker {
                    node_id: broker.node_id,
                },
                _ => continue,
            };
            info!(
                node_id = broker.node_id,
                ?command,
                "broker liveness changed"
            );
            // Written only while this node leads, never forwarded: a node
            // that lost the leadership without knowing it yet (resumed
            // after a pause) decided on its own stale heartbeat times, and
            // the new leader must not apply that decision (`propose`
            // forwarded it, and the new leader fenced healthy brokers).
            let Some(raft) = &quorum.raft else {
                break;
            };
            if let Err(e) = super::write_local(raft, command).await {
                warn!(node_id = broker.node_id, cause = %e, "cannot change a broker's fencing");
            }
        }
        let balance =
            balancing.auto_rebalance && last_balance.elapsed() >= balancing.check_interval;
        if balance {
            last_balance = Instant::now();
        }
        elect_leaders(&quorum, balancing, balance).await;
    }
}

/// Proposes the elections the image calls for: unclean ones for
/// partitions without a leader whose `unclean.leader.election.enable`
/// holds (Kafka's controller checks these periodically too), and with
/// `rebalance` preferred ones for partitions led by another replica than
/// their preferred one while it is live and in the ISR.
async fn elect_leaders(quorum: &MetadataQuorum, balancing: Balancing, rebalance: bool) {
    let image = quorum.image();
    let mut elections = Vec::new();
    // The topic's override, else the dynamic cluster-wide default, else
    // this controller's own setting (Kafka's precedence).
    let key = "unclean.leader.election.enable";
    let default = image
        .cluster_configs
        .get(key)
        .map_or(balancing.unclean, |v| v.eq_ignore_ascii_case("true"));
    for (topic, meta) in &image.topics {
        let unclean = meta
            .configs
            .get(key)
            .map_or(default, |v| v.eq_ignore_ascii_case("true"));
        for partition in 0..meta.partition_count() {
            let wanted = [
                (unclean, Election::Unclean),
                (rebalance, Election::Preferred),
            ];
            for (enabled, election) in wanted {
                if enabled && image.election(topic, partition, election).is_ok() {
                    elections.push((topic.clone(), partition, election));
                }
            }
        }
    }
    for (topic, partition, election) in elections {
        info!(topic, partition, ?election, "electing a partition leader");
        let command = MetadataCommand::ElectLeader {
            topic,
            partition,
            election,
        };
        if let Err(e) = quorum.propose(command).await {
            warn!(cause = %e, "cannot elect a partition leader");
        }
    }
}

/// One heartbeat to the active controller (this node, or over the
/// controller network).
async fn heartbeat(quorum: &MetadataQuorum) {
    let Ok(node_id) = i32::try_from(quorum.node_id) else {
        return;
    };
    if quorum.leaving.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let Some((leader, address)) = quorum.leader_address() else {
        return;
    };
    if let Some(raft) = quorum.raft.as_ref().filter(|_| leader == quorum.node_id) {
        let _ = quorum.heartbeats.record(raft, node_id);
        return;
    }
    let request = Request::Heartbeat { node_id };
    let mut peers = quorum.peers.lock().await;
    let peer = peers
        .entry(leader)
        .or_insert_with(|| super::network::Peer::new(address, quorum.peer_security.clone()));
    match peer.call(&request, Duration::from_secs(2)).await {
        Ok(Reply::Heartbeat(_)) | Err(_) => {}
        Ok(_) => warn!("a heartbeat got a reply of another kind"),
    }
}

/// One member of the metadata quorum as the active controller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// The node.
    pub node_id: i32,
    /// The offset after the last metadata log entry it holds (-1 unknown).
    pub log_end_offset: i64,
    /// Wall-clock ms of its last heartbeat to the controller (-1 none).
    pub last_fetch_ms: i64,
    /// Wall-clock ms of the last heartbeat that found it caught up (-1 none).
    pub last_caught_up_ms: i64,
}

/// The metadata quorum as the active controller sees it (Kafka's
/// DescribeQuorum answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumStatus {
    /// The active controller.
    pub leader_id: i32,
    /// Its Raft term (Kafka's leader epoch of the metadata log).
    pub epoch: i32,
    /// The offset after the last applied metadata log entry.
    pub high_watermark: i64,
    /// The voters, by node id.
    pub voters: Vec<ReplicaStatus>,
    /// Members that replicate the log without voting (learners).
    pub observers: Vec<ReplicaStatus>,
    /// Every member's controller `host:port`, by node id.
    pub endpoints: Vec<(i32, String)>,
}

/// The quorum's status, if this node is the active controller.
///
/// # Errors
/// NotLeader otherwise.
pub fn status(raft: &Raft, heartbeats: &Heartbeats) -> Result<QuorumStatus, ProposeError> {
    let metrics = raft.metrics().borrow().clone();
    if metrics.current_leader != Some(metrics.id) {
        return Err(ProposeError::NotLeader { leader: None });
    }
    let now = Instant::now();
    let now_ms = crate::log::now_ms();
    let wall = |at: Option<&Instant>| {
        at.map_or(-1, |t| {
            let ago = i64::try_from(now.saturating_duration_since(*t).as_millis()).unwrap_or(0);
            now_ms - ago
        })
    };
    let offset = |index: Option<u64>| index.map_or(0, |i| i64::try_from(i).unwrap_or(i64::MAX) + 1);
    let seen = heartbeats.last();
    let caught_up = heartbeats
        .caught_up
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let replica = |id: NodeId| {
        let node_id = i32::try_from(id).unwrap_or(-1);
        if id == metrics.id {
            // Kafka reports the leader as fetching and caught up now.
            return ReplicaStatus {
                node_id,
                log_end_offset: offset(metrics.last_log_index),
                last_fetch_ms: now_ms,
                last_caught_up_ms: now_ms,
            };
        }
        let matched = metrics
            .replication
            .as_ref()
            .and_then(|r| r.get(&id))
            .map(|m| m.as_ref().map(|log_id| log_id.index));
        ReplicaStatus {
            node_id,
            log_end_offset: matched.map_or(-1, offset),
            last_fetch_ms: wall(seen.get(&node_id)),
            last_caught_up_ms: wall(caught_up.get(&node_id)),
        }
    };
    let membership = metrics.membership_config.membership();
    let voters = membership.voter_ids().map(replica).collect();
    let observers = membership.learner_ids().map(replica).collect();
    let endpoints = membership
        .nodes()
        .filter_map(|(id, node)| Some((i32::try_from(*id).ok()?, node.addr.clone())))
        .collect();
    Ok(QuorumStatus {
        leader_id: i32::try_from(metrics.id).unwrap_or(-1),
        epoch: i32::try_from(metrics.current_term).unwrap_or(i32::MAX),
        high_watermark: offset(metrics.last_applied.map(|log_id| log_id.index)),
        voters,
        observers,
        endpoints,
    })
}
