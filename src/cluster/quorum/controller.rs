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

use super::image::MetadataCommand;
use super::network::{ProposeError, Reply, Request};
use super::{MetadataQuorum, Raft};

/// Last heartbeats the active controller received, by broker.
#[derive(Debug, Default)]
pub struct Heartbeats {
    seen: Mutex<HashMap<i32, Instant>>,
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
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node_id, Instant::now());
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

/// Sends this node's heartbeats and, while this node is the active
/// controller, fences and unfences brokers. Runs until the quorum stops.
pub async fn run(quorum: Arc<MetadataQuorum>, liveness: Liveness) {
    let mut ticks = tokio::time::interval(liveness.interval.min(liveness.session / 4));
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
            if let Err(e) = super::write_local(&quorum.raft, command).await {
                warn!(node_id = broker.node_id, cause = %e, "cannot change a broker's fencing");
            }
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
    let metrics = quorum.raft.metrics().borrow().clone();
    let Some(leader) = metrics.current_leader else {
        return;
    };
    if leader == quorum.node_id {
        let _ = quorum.heartbeats.record(&quorum.raft, node_id);
        return;
    }
    let Some(address) = metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.addr.clone())
    else {
        return;
    };
    let request = Request::Heartbeat { node_id };
    let mut peers = quorum.peers.lock().await;
    let peer = peers
        .entry(leader)
        .or_insert_with(|| super::network::Peer::new(address));
    match peer.call(&request, Duration::from_secs(2)).await {
        Ok(Reply::Heartbeat(_)) | Err(_) => {}
        Ok(_) => warn!("a heartbeat got a reply of another kind"),
    }
}
