//! The metadata quorum: the cluster's metadata as a Raft log replicated
//! by openraft among the controllers (`controller.quorum.voters`), its log
//! and snapshots in sled, applied to a [`MetadataImage`] every node reads.
//! The Raft leader is the active controller.
//!
//! The API is small: [`MetadataQuorum::start`], [`MetadataQuorum::propose`]
//! (from any node: a follower hands the command to the leader),
//! [`MetadataQuorum::image`] / [`MetadataQuorum::subscribe`], and
//! [`MetadataQuorum::leader`].
//!
//! No format step: every voter starts with the same voter list, and the
//! lowest voter initializes the Raft membership with it on first start;
//! the first cluster id proposed is the cluster's.

mod controller;
mod image;
mod network;
mod storage;

pub use controller::{Balancing, Liveness, QuorumStatus, ReplicaStatus};
pub use image::{
    elect, BrokerRegistration, Election, MetadataCommand, MetadataImage, MetadataResult,
    PartitionState, Refusal,
};
pub use network::{ControllerSecurity, ProposeError};

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::BasicNode;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tracing::{info, warn};

use network::{Network, Peer, Reply, Request};
use storage::{LogStore, StateMachine};

/// Raft node ids (Kafka's `node.id`, widened).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's types for the metadata log.
    pub TypeConfig:
        D = MetadataCommand,
        R = MetadataResult,
);

/// The Raft node.
pub type Raft = openraft::Raft<TypeConfig>;

/// How long a proposal may wait for a leader and its commit.
const PROPOSE_DEADLINE: Duration = Duration::from_secs(15);

/// What a controller needs to join the quorum.
#[derive(Debug)]
pub struct QuorumConfig {
    /// This node's id; it must be one of `voters`.
    pub node_id: i32,
    /// Every voter's node id and controller `host:port`.
    pub voters: BTreeMap<i32, String>,
    /// The bound controller listener.
    pub listener: TcpListener,
    /// `controller.quorum.election.timeout.ms`: elections start after a
    /// random wait between half of it and all of it without a leader.
    pub election_timeout_ms: u64,
    /// Broker heartbeats and sessions.
    pub liveness: Liveness,
    /// Leader elections the active controller makes on its own.
    pub balancing: Balancing,
    /// How the controller listener is secured.
    pub security: Arc<ControllerSecurity>,
}

/// This node's member of the metadata quorum.
pub struct MetadataQuorum {
    /// This node's Raft member; `None` on a broker that is no controller
    /// (`process.roles=broker`): an observer that fetches the image.
    raft: Option<Raft>,
    node_id: NodeId,
    /// An observer's controllers (node id → controller address), and the
    /// active controller it heard of last.
    controllers: BTreeMap<NodeId, String>,
    leader_hint: std::sync::Mutex<Option<(NodeId, String)>>,
    image: watch::Receiver<Arc<MetadataImage>>,
    shutdown: watch::Sender<bool>,
    /// Connections for handing proposals and heartbeats to the leader.
    peers: Mutex<HashMap<NodeId, Peer>>,
    /// How connections to controllers are secured.
    peer_security: Arc<crate::security::client::PeerSecurity>,
    /// What the active controller knows of broker heartbeats.
    heartbeats: Arc<controller::Heartbeats>,
    /// Set when this broker is stopping: it heartbeats no more.
    leaving: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for MetadataQuorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataQuorum")
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl MetadataQuorum {
    /// Starts this node's Raft member over `db` and serves the controller
    /// listener; initializes the membership on first start.
    ///
    /// # Errors
    /// The stored Raft state cannot be read, or openraft refuses the config.
    pub async fn start(config: QuorumConfig, db: &sled::Db) -> Result<Arc<Self>, String> {
        let node_id = NodeId::try_from(config.node_id)
            .map_err(|_| format!("node.id {} is negative", config.node_id))?;
        let (publish, image) = watch::channel(Arc::new(MetadataImage::default()));
        let log = LogStore::open(db).map_err(|e| format!("metadata log: {e}"))?;
        let machine = StateMachine::open(db, publish)?;
        let election = config.election_timeout_ms.max(20);
        let raft_config = openraft::Config {
            cluster_name: "strom".into(),
            heartbeat_interval: (election / 10).max(5),
            election_timeout_min: election / 2,
            election_timeout_max: election,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| format!("metadata quorum config: {e}"))?;
        let network = Network {
            security: config.security.client(),
        };
        let raft = Raft::new(node_id, Arc::new(raft_config), network, log, machine)
            .await
            .map_err(|e| format!("metadata quorum: {e}"))?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let heartbeats = Arc::new(controller::Heartbeats::default());
        tokio::spawn(network::serve(
            config.listener,
            raft.clone(),
            heartbeats.clone(),
            image.clone(),
            config.security.clone(),
            shutdown_rx,
        ));
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| format!("metadata quorum: {e}"))?;
        // The lowest voter initializes the membership on first start (the
        // others learn it from its first AppendEntries), so the voters
        // never race to initialize.
        let lowest = config.voters.keys().next() == Some(&config.node_id);
        if !initialized && lowest {
            let members: BTreeMap<NodeId, BasicNode> = config
                .voters
                .iter()
                .filter_map(|(id, address)| {
                    Some((NodeId::try_from(*id).ok()?, BasicNode::new(address)))
                })
                .collect();
            match raft.initialize(members).await {
                Ok(()) => info!(voters = ?config.voters, "initialized the metadata quorum"),
                // Another voter's initialization reached this node first.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => warn!(cause = %e, "cannot initialize the metadata quorum"),
            }
        }
        let quorum = Arc::new(Self {
            raft: Some(raft),
            node_id,
            controllers: BTreeMap::new(),
            leader_hint: std::sync::Mutex::new(None),
            image,
            shutdown,
            peers: Mutex::new(HashMap::new()),
            peer_security: config.security.client(),
            heartbeats,
            leaving: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(controller::run(
            quorum.clone(),
            config.liveness,
            config.balancing,
        ));
        Ok(quorum)
    }

    /// Starts a broker that is no controller (`process.roles=broker`): it
    /// holds no Raft log and keeps its image by fetching it from the
    /// `controllers` (node id → controller address; Kafka's observers
    /// fetch the metadata log), hands proposals and heartbeats to the
    /// active controller, and serves nothing on a controller listener.
    ///
    /// # Errors
    /// A negative node id, or no controller.
    pub fn start_observer(
        node_id: i32,
        controllers: BTreeMap<i32, String>,
        liveness: Liveness,
        security: &ControllerSecurity,
    ) -> Result<Arc<Self>, String> {
        let node_id =
            NodeId::try_from(node_id).map_err(|_| format!("node.id {node_id} is negative"))?;
        let controllers: BTreeMap<NodeId, String> = controllers
            .into_iter()
            .filter_map(|(id, address)| Some((NodeId::try_from(id).ok()?, address)))
            .collect();
        if controllers.is_empty() {
            return Err("no controller to fetch the metadata from".into());
        }
        let (publish, image) = watch::channel(Arc::new(MetadataImage::default()));
        let (shutdown, _) = watch::channel(false);
        let quorum = Arc::new(Self {
            raft: None,
            node_id,
            controllers,
            leader_hint: std::sync::Mutex::new(None),
            image,
            shutdown,
            peers: Mutex::new(HashMap::new()),
            peer_security: security.client(),
            heartbeats: Arc::new(controller::Heartbeats::default()),
            leaving: std::sync::atomic::AtomicBool::new(false),
        });
        tokio::spawn(observe(quorum.clone(), publish));
        tokio::spawn(controller::run(
            quorum.clone(),
            liveness,
            Balancing::default(),
        ));
        Ok(quorum)
    }

    /// The active controller's id and controller address, if known.
    fn leader_address(&self) -> Option<(NodeId, String)> {
        match &self.raft {
            Some(raft) => leader_address(raft),
            None => self
                .leader_hint
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Appends `command` to the metadata log through the leader (this node
    /// or another) and returns what applying it did, once committed.
    ///
    /// # Errors
    /// No leader within [`PROPOSE_DEADLINE`], or the quorum failed.
    pub async fn propose(&self, command: MetadataCommand) -> Result<MetadataResult, ProposeError> {
        let deadline = Instant::now() + PROPOSE_DEADLINE;
        loop {
            let local = match &self.raft {
                Some(raft) => write_local(raft, command.clone()).await,
                None => Err(ProposeError::NotLeader {
                    leader: self.leader_address(),
                }),
            };
            let outcome = match local {
                Err(ProposeError::NotLeader {
                    leader: Some((leader, address)),
                }) if leader != self.node_id => self.forward(leader, address, &command).await,
                other => other,
            };
            match outcome {
                Err(ProposeError::NotLeader { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Read your writes: this node's image includes the command
                // before the caller hears it was applied.
                Ok(result) => {
                    let mut image = self.image.clone();
                    let applied = image.wait_for(|i| i.applied_index >= result.index);
                    return match tokio::time::timeout_at(deadline.into(), applied).await {
                        Ok(Ok(_)) => Ok(result),
                        _ => Err(ProposeError::Failed(
                            "committed, but not applied on this node in time".into(),
                        )),
                    };
                }
                other => return other,
            }
        }
    }

    /// As [`MetadataQuorum::propose`], and then waits (briefly) until every
    /// other live member applied the command too: a topic created through
    /// one node is at once known to all, as a client listing topics on
    /// another node right after expects. A member that does not answer in
    /// time is not waited for.
    ///
    /// # Errors
    /// As [`MetadataQuorum::propose`].
    pub async fn propose_everywhere(
        &self,
        command: MetadataCommand,
    ) -> Result<MetadataResult, ProposeError> {
        let result = self.propose(command).await?;
        let image = self.image();
        let voters: Vec<(NodeId, String)> = match &self.raft {
            Some(raft) => raft
                .metrics()
                .borrow()
                .membership_config
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
            None => self.controllers.clone().into_iter().collect(),
        };
        let members: Vec<(NodeId, String)> = voters
            .into_iter()
            .filter(|(id, _)| {
                *id != self.node_id && image.is_live(i32::try_from(*id).unwrap_or(-1))
            })
            .collect();
        // Fresh connections, all at once: the shared ones carry this
        // node's heartbeats, which must not wait behind a slow member.
        let index = result.index;
        let waits = members.into_iter().map(|(id, address)| async move {
            let mut peer = Peer::new(address, self.peer_security.clone());
            let applied = peer
                .call(&Request::Applied { index }, Duration::from_millis(1500))
                .await;
            if !matches!(applied, Ok(Reply::Applied(true))) {
                tracing::debug!(node = id, index, "a member did not apply a change in time");
            }
        });
        futures::future::join_all(waits).await;
        Ok(result)
    }

    async fn forward(
        &self,
        leader: NodeId,
        address: String,
        command: &MetadataCommand,
    ) -> Result<MetadataResult, ProposeError> {
        let mut peers = self.peers.lock().await;
        let peer = peers
            .entry(leader)
            .or_insert_with(|| Peer::new(address.clone(), self.peer_security.clone()));
        match peer
            .call(&Request::Propose(command.clone()), Duration::from_secs(5))
            .await
        {
            Ok(Reply::Propose(outcome)) => outcome,
            Ok(_) => Err(ProposeError::Failed("a reply of another kind".into())),
            // The leader may be gone: ask again (the caller retries).
            Err(_) => Err(ProposeError::NotLeader { leader: None }),
        }
    }

    /// The quorum's status as the active controller sees it (this node,
    /// or asked over the controller network).
    ///
    /// # Errors
    /// No active controller is known or reachable.
    pub async fn status(&self) -> Result<QuorumStatus, ProposeError> {
        let (leader, address) = self
            .leader_address()
            .ok_or(ProposeError::NotLeader { leader: None })?;
        if let Some(raft) = self.raft.as_ref().filter(|_| leader == self.node_id) {
            return controller::status(raft, &self.heartbeats);
        }
        let mut peers = self.peers.lock().await;
        let peer = peers
            .entry(leader)
            .or_insert_with(|| Peer::new(address, self.peer_security.clone()));
        match peer.call(&Request::Describe, Duration::from_secs(5)).await {
            Ok(Reply::Describe(outcome)) => outcome,
            Ok(_) => Err(ProposeError::Failed("a reply of another kind".into())),
            Err(_) => Err(ProposeError::NotLeader { leader: None }),
        }
    }

    /// The metadata as this node has applied it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    /// A receiver that sees every newly applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.clone()
    }

    /// The active controller (the Raft leader), if one is known.
    pub fn leader(&self) -> Option<i32> {
        match &self.raft {
            Some(raft) => raft.metrics().borrow().current_leader,
            None => self.leader_address().map(|(id, _)| id),
        }
        .and_then(|id| i32::try_from(id).ok())
    }

    /// Controlled shutdown: this broker stops heartbeating and asks to be
    /// fenced, so its partitions get other leaders before it stops.
    ///
    /// # Errors
    /// The fence was not applied.
    pub async fn leave(&self) -> Result<(), ProposeError> {
        self.leaving
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let node_id = i32::try_from(self.node_id).unwrap_or(-1);
        self.propose(MetadataCommand::FenceBroker { node_id })
            .await
            .map(|_| ())
    }

    /// Stops the Raft member and the controller listener.
    pub async fn shutdown(&self) {
        let _ = self.shutdown.send(true);
        if let Some(raft) = &self.raft {
            if let Err(e) = raft.shutdown().await {
                warn!(cause = %e, "metadata quorum did not stop cleanly");
            }
        }
    }
}

/// The leader `raft` knows of, with its controller address.
fn leader_address(raft: &Raft) -> Option<(NodeId, String)> {
    let metrics = raft.metrics().borrow().clone();
    let leader = metrics.current_leader?;
    let address = metrics
        .membership_config
        .membership()
        .get_node(&leader)?
        .addr
        .clone();
    Some((leader, address))
}

/// An observer's image: fetched from its controllers in turn (the one
/// that answered last first), each answer within a second of a change;
/// the active controller they name is where its proposals and heartbeats
/// go. Runs until the quorum stops.
async fn observe(quorum: Arc<MetadataQuorum>, publish: watch::Sender<Arc<MetadataImage>>) {
    let mut stopped = quorum.shutdown.subscribe();
    let controllers: Vec<String> = quorum.controllers.values().cloned().collect();
    let mut peers: Vec<Peer> = controllers
        .iter()
        .map(|address| Peer::new(address.clone(), quorum.peer_security.clone()))
        .collect();
    let mut turn = 0;
    loop {
        if *stopped.borrow() {
            return;
        }
        let since = publish.borrow().applied_index;
        let request = Request::FetchImage { since };
        let i = turn % peers.len();
        let answer = tokio::select! {
            answer = peers[i].call(&request, Duration::from_secs(5)) => answer,
            _ = stopped.changed() => return,
        };
        match answer {
            Ok(Reply::Image { image, leader }) => {
                if let Some(image) = image.filter(|i| i.applied_index > since) {
                    publish.send_replace(Arc::new(image));
                }
                if leader.is_some() {
                    *quorum.leader_hint.lock().unwrap_or_else(|e| e.into_inner()) = leader;
                }
            }
            other => {
                if let Err(e) = other {
                    tracing::debug!(controller = %controllers[i], cause = %e, "cannot fetch the metadata");
                }
                turn += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Appends `command` on this node if it is the leader.
async fn write_local(
    raft: &Raft,
    command: MetadataCommand,
) -> Result<MetadataResult, ProposeError> {
    match raft.client_write(command).await {
        Ok(response) => {
            // Followers learn the new commit index at once instead of at
            // the next heartbeat, so they apply it within a round trip.
            let _ = raft.trigger().heartbeat().await;
            Ok(response.data)
        }
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
            Err(ProposeError::NotLeader {
                leader: forward
                    .leader_id
                    .zip(forward.leader_node.map(|node| node.addr)),
            })
        }
        Err(e) => Err(ProposeError::Failed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three voters in one process, on loopback: they elect a leader,
    /// agree on one cluster id, and every member applies a proposal made
    /// on a follower; after the leader stops, the other two elect a new
    /// one and keep applying.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_voters_agree_and_survive_a_lost_leader() {
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut listeners = Vec::new();
        let mut voters = BTreeMap::new();
        for id in 1..=3 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            voters.insert(id, listener.local_addr().unwrap().to_string());
            listeners.push(listener);
        }
        let mut nodes = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let db = sled::open(dirs[i].path()).unwrap();
            let config = QuorumConfig {
                node_id: i32::try_from(i + 1).unwrap(),
                voters: voters.clone(),
                listener,
                election_timeout_ms: 300,
                liveness: Liveness {
                    interval: Duration::from_millis(100),
                    session: Duration::from_secs(60),
                },
                balancing: Balancing::default(),
                security: Arc::default(),
            };
            nodes.push(MetadataQuorum::start(config, &db).await.unwrap());
        }
        let ids: Vec<_> = futures::future::join_all(nodes.iter().enumerate().map(|(i, n)| {
            n.propose(MetadataCommand::InitCluster {
                cluster_id: format!("id-{i}"),
            })
        }))
        .await
        .into_iter()
        .map(|r| r.unwrap().cluster_id.unwrap())
        .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");

        let leader = nodes[0].leader().unwrap();
        let follower = nodes
            .iter()
            .position(|n| n.leader() != Some(n.node_id as i32))
            .unwrap();
        let register = |node_id| MetadataCommand::RegisterBroker {
            node_id,
            incarnation: "x".into(),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            listeners: Vec::new(),
        };
        nodes[follower].propose(register(7)).await.unwrap();
        for node in &nodes {
            let mut image = node.subscribe();
            tokio::time::timeout(
                Duration::from_secs(5),
                image.wait_for(|i| i.brokers.contains_key(&7)),
            )
            .await
            .unwrap()
            .unwrap();
        }

        let gone = usize::try_from(leader - 1).unwrap();
        nodes[gone].shutdown().await;
        let survivor = (gone + 1) % 3;
        nodes[survivor].propose(register(8)).await.unwrap();
        assert_ne!(nodes[survivor].leader(), Some(leader));
        assert!(nodes[survivor].image().brokers.contains_key(&8));
        for node in &nodes {
            node.shutdown().await;
        }
    }
}
