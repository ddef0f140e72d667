//! The cluster metadata the quorum replicates: the image every node holds,
//! and the commands that change it (the entries of the Raft log).
//!
//! `apply` is deterministic: every node applies the same commands in the
//! same order and ends with the same image. A command that does not apply
//! (a second cluster id) changes nothing and says so in its result, so a
//! retried or raced proposal is harmless.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cluster::TopicMeta;

/// One registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Its node id.
    pub node_id: i32,
    /// The registration's epoch: the Raft log index that registered it,
    /// so a restarted broker always gets a larger one (Kafka's broker
    /// epoch is the offset of its registration record).
    pub epoch: i64,
    /// A random id per process start: a repeated registration of the same
    /// process keeps its epoch.
    pub incarnation: String,
    /// The advertised host and port clients connect to.
    pub host: String,
    /// See `host`.
    pub port: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Its address on each client listener (`host:port` above is the
    /// inter-broker listener's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<crate::cluster::ListenerEndpoint>,
    /// Fenced by the controller: its heartbeats stopped. A fenced broker
    /// leads nothing, is in no ISR, and Metadata does not list it.
    #[serde(default)]
    pub fenced: bool,
}

/// A partition's leadership: who leads, in which epoch, and which
/// replicas are in sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The leader's node id.
    pub leader: i32,
    /// Bumped at every leader change; stamped on the batches it appends.
    pub leader_epoch: i32,
    /// The in-sync replicas, the leader among them.
    pub isr: Vec<i32>,
    /// Bumped at every change of this state (leader, ISR, reassignment),
    /// as Kafka's partition epoch: an ISR change computed from an older
    /// state is refused.
    #[serde(default)]
    pub partition_epoch: i32,
    /// An ongoing reassignment's new replicas (already in the assignment;
    /// they fetch, catch up and join the ISR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<i32>,
    /// An ongoing reassignment's replicas to drop once every target
    /// replica is in the ISR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
}

impl PartitionState {
    /// The state of a new partition with `replicas` (leader first): every
    /// replica starts in sync (all are empty).
    pub fn new(replicas: &[i32]) -> Self {
        Self {
            leader: replicas.first().copied().unwrap_or(-1),
            leader_epoch: 0,
            isr: replicas.to_vec(),
            ..Self::default()
        }
    }
}

/// The replicated metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// The index of the last log entry applied to this image.
    pub applied_index: u64,
    /// Chosen once, by the first node that proposes one.
    pub cluster_id: Option<String>,
    /// Registered brokers by node id.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Topics by name: id, replica assignment (leader first), config
    /// overrides.
    pub topics: BTreeMap<String, TopicMeta>,
    /// Each topic's partitions' leadership, in partition order.
    #[serde(default)]
    pub partitions: BTreeMap<String, Vec<PartitionState>>,
    /// The start of the next producer id block to hand out.
    #[serde(default)]
    pub next_producer_id_block: i64,
    /// Dynamic broker configs for every broker (`--entity-default`).
    #[serde(default)]
    pub cluster_configs: BTreeMap<String, String>,
    /// Dynamic broker configs of one broker, by node id.
    #[serde(default)]
    pub node_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// The ACLs.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub acls: std::collections::BTreeSet<crate::security::acl::AclBinding>,
    /// SCRAM credentials by user and mechanism.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scram_credentials: BTreeMap<String, crate::cluster::credentials::UserCredentials>,
}

/// A change to the image: one entry of the metadata log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id if none is set yet.
    InitCluster {
        /// The proposed id.
        cluster_id: String,
    },
    /// Registers (or re-registers) a broker.
    RegisterBroker {
        /// Its node id.
        node_id: i32,
        /// See [`BrokerRegistration::incarnation`].
        incarnation: String,
        /// Advertised host.
        host: String,
        /// Advertised port.
        port: i32,
        /// `broker.rack`.
        rack: Option<String>,
        /// Its address on each client listener.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        listeners: Vec<crate::cluster::ListenerEndpoint>,
    },
    /// Creates a topic, unless one has its name.
    CreateTopic(TopicMeta),
    /// Appends partitions (their replica lists) to a topic, if it has
    /// `from` partitions.
    AddPartitions {
        /// The topic.
        name: String,
        /// Its partition count the change was computed from.
        from: usize,
        /// Replica lists of the new partitions.
        assignments: Vec<Vec<i32>>,
    },
    /// Replaces a topic's config overrides.
    SetTopicConfigs {
        /// The topic.
        name: String,
        /// The new overrides.
        configs: BTreeMap<String, String>,
    },
    /// Deletes a topic.
    DeleteTopic {
        /// The topic.
        name: String,
    },
    /// Fences a broker whose heartbeats stopped: its partitions get new
    /// leaders from their ISR (a partition with none left has no leader,
    /// -1), and it leaves every ISR.
    FenceBroker {
        /// The broker.
        node_id: i32,
    },
    /// Unfences a broker that heartbeats again: partitions left without a
    /// leader whose ISR holds it get it as leader.
    UnfenceBroker {
        /// The broker.
        node_id: i32,
    },
    /// Reserves the next block of producer ids for `node_id` (Kafka's
    /// AllocateProducerIds).
    AllocateProducerIds {
        /// The node that will hand them out.
        node_id: i32,
        /// Ids in the block.
        size: i64,
    },
    /// Replaces dynamic broker configs (Kafka's ConfigRecords of a broker
    /// resource), if they are still `previous` (two alters computed from
    /// the same configs must not lose each other's keys).
    SetBrokerConfigs {
        /// The broker, or `None` for every broker's defaults.
        node: Option<i32>,
        /// The configs the change was computed from.
        previous: BTreeMap<String, String>,
        /// The new configs.
        configs: BTreeMap<String, String>,
    },
    /// Sets and removes SCRAM credentials (Kafka's UserScramCredentialRecord
    /// and RemoveUserScramCredentialRecord).
    AlterScramCredentials(Vec<crate::cluster::credentials::CredentialChange>),
    /// Adds ACLs (Kafka's AccessControlEntryRecord).
    CreateAcls(Vec<crate::security::acl::AclBinding>),
    /// Removes ACLs (Kafka's RemoveAccessControlEntryRecord).
    DeleteAcls(Vec<crate::security::acl::AclBinding>),
    /// A leader changes its partition's in-sync replicas (Kafka's
    /// AlterPartition), if the partition is still in `leader_epoch`.
    AlterIsr {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The leader epoch the change was computed in.
        leader_epoch: i32,
        /// The partition epoch of the state it was computed from (absent
        /// in entries written before partition epochs: not checked).
        #[serde(default)]
        partition_epoch: Option<i32>,
        /// The new ISR (the leader among them).
        isr: Vec<i32>,
    },
    /// Elects a partition's leader (Kafka's ElectLeaders, the controller's
    /// leader rebalance and unclean elections), decided on the image as
    /// this entry applies: see [`elect`]. The leader epoch is bumped.
    ElectLeader {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Which leader to pick.
        election: Election,
    },
    /// Starts (or changes) a partition's reassignment to `target`
    /// replicas, or cancels the ongoing one (`None`), as Kafka's
    /// AlterPartitionReassignments: the assignment becomes target +
    /// removing, the added replicas catch up, and once every target
    /// replica is in the ISR the assignment becomes the target (an ISR
    /// change completes it; leadership moves if the leader is removed).
    AlterReassignment {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The new replicas (validated by the proposer), or `None` to cancel.
        target: Option<Vec<i32>>,
    },
}

/// Why a command changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    /// A topic with that name exists.
    TopicExists,
    /// No topic has that name.
    UnknownTopic,
    /// The topic changed since the command was computed.
    Conflict,
    /// ElectLeader: the partition already has the leader the election
    /// would give it.
    ElectionNotNeeded,
    /// ElectLeader (preferred): the preferred replica is fenced or out of
    /// the ISR.
    PreferredLeaderNotAvailable,
    /// ElectLeader (unclean): no live replica to lead.
    EligibleLeadersNotAvailable,
    /// AlterReassignment (cancel): the partition is not being reassigned.
    NoReassignmentInProgress,
}

/// Which leader an [`MetadataCommand::ElectLeader`] picks (Kafka's
/// ElectionType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Election {
    /// The first replica of the assignment, if it is live and in the ISR.
    Preferred,
    /// For a partition without a leader: a live ISR member, else the first
    /// live replica (which may lack acknowledged records), alone in the ISR.
    Unclean,
}

/// The leadership `election` gives a partition with `replicas` now in
/// `state`, where `is_live` says which brokers are registered and not
/// fenced (Kafka's `ReplicationControlManager.electLeader` and
/// `PartitionChangeBuilder`).
///
/// # Errors
/// Why the election changes nothing.
pub fn elect(
    replicas: &[i32],
    state: &PartitionState,
    election: Election,
    is_live: impl Fn(i32) -> bool,
) -> Result<PartitionState, Refusal> {
    let moved = |leader: i32, isr: Vec<i32>| PartitionState {
        leader,
        leader_epoch: state.leader_epoch + 1,
        isr,
        ..state.clone()
    };
    match election {
        Election::Preferred => {
            let preferred = replicas.first().copied().unwrap_or(-1);
            if state.leader == preferred {
                Err(Refusal::ElectionNotNeeded)
            } else if is_live(preferred) && state.isr.contains(&preferred) {
                Ok(moved(preferred, state.isr.clone()))
            } else {
                Err(Refusal::PreferredLeaderNotAvailable)
            }
        }
        Election::Unclean => {
            if state.leader >= 0 {
                return Err(Refusal::ElectionNotNeeded);
            }
            let clean = replicas
                .iter()
                .copied()
                .find(|id| state.isr.contains(id) && is_live(*id));
            if let Some(leader) = clean {
                return Ok(moved(leader, state.isr.clone()));
            }
            match replicas.iter().copied().find(|id| is_live(*id)) {
                Some(leader) => Ok(moved(leader, vec![leader])),
                None => Err(Refusal::EligibleLeadersNotAvailable),
            }
        }
    }
}

/// What applying a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResult {
    /// The log index of the applied command.
    pub index: u64,
    /// InitCluster: the cluster id in force afterwards. RegisterBroker:
    /// nothing.
    pub cluster_id: Option<String>,
    /// RegisterBroker: the broker's epoch.
    pub broker_epoch: Option<i64>,
    /// Why the command changed nothing, if it did not apply.
    pub refused: Option<Refusal>,
    /// AllocateProducerIds: the first id of the reserved block.
    #[serde(default)]
    pub producer_id_block: Option<i64>,
}

impl MetadataImage {
    /// Applies `command`, the entry at Raft log `index`.
    pub fn apply(&mut self, index: u64, command: &MetadataCommand) -> MetadataResult {
        self.applied_index = index;
        // The partitions this command may change, to bump the partition
        // epoch of those it did change: one topic's, or (broker fencing,
        // unfencing, registration) every topic's.
        let scope = match command {
            MetadataCommand::AlterIsr { topic, .. }
            | MetadataCommand::ElectLeader { topic, .. }
            | MetadataCommand::AlterReassignment { topic, .. } => Some(
                self.partitions
                    .get(topic)
                    .map(|states| BTreeMap::from([(topic.clone(), states.clone())]))
                    .unwrap_or_default(),
            ),
            MetadataCommand::FenceBroker { .. }
            | MetadataCommand::UnfenceBroker { .. }
            | MetadataCommand::RegisterBroker { .. } => Some(self.partitions.clone()),
            _ => None,
        };
        let result = self.apply_command(index, command);
        if let Some(before) = scope {
            for (topic, old) in before {
                let Some(states) = self.partitions.get_mut(&topic) else {
                    continue;
                };
                for (state, old) in states.iter_mut().zip(old) {
                    if *state != old {
                        state.partition_epoch = old.partition_epoch.saturating_add(1);
                    }
                }
            }
        }
        result
    }

    fn apply_command(&mut self, index: u64, command: &MetadataCommand) -> MetadataResult {
        let result = match command {
            MetadataCommand::InitCluster { cluster_id } => {
                let id = self.cluster_id.get_or_insert_with(|| cluster_id.clone());
                MetadataResult {
                    cluster_id: Some(id.clone()),
                    ..MetadataResult::default()
                }
            }
            MetadataCommand::RegisterBroker {
                node_id,
                incarnation,
                host,
                port,
                rack,
                listeners,
            } => {
                let epoch = match self.brokers.get(node_id) {
                    Some(known) if known.incarnation == *incarnation => known.epoch,
                    _ => i64::try_from(index).unwrap_or(i64::MAX),
                };
                self.brokers.insert(
                    *node_id,
                    BrokerRegistration {
                        node_id: *node_id,
                        epoch,
                        incarnation: incarnation.clone(),
                        host: host.clone(),
                        port: *port,
                        rack: rack.clone(),
                        listeners: listeners.clone(),
                        fenced: false,
                    },
                );
                self.elect_offline(*node_id);
                MetadataResult {
                    broker_epoch: Some(epoch),
                    ..MetadataResult::default()
                }
            }
            MetadataCommand::CreateTopic(meta) => {
                if self.topics.contains_key(&meta.name) {
                    Self::refused(Refusal::TopicExists)
                } else {
                    self.topics.insert(meta.name.clone(), meta.clone());
                    let states = meta.partitions.iter().map(|r| PartitionState::new(r));
                    self.partitions.insert(meta.name.clone(), states.collect());
                    MetadataResult::default()
                }
            }
            MetadataCommand::AddPartitions {
                name,
                from,
                assignments,
            } => match self.topics.get_mut(name) {
                None => Self::refused(Refusal::UnknownTopic),
                Some(meta) if meta.partitions.len() != *from => Self::refused(Refusal::Conflict),
                Some(meta) => {
                    meta.partitions.extend(assignments.iter().cloned());
                    let states = assignments.iter().map(|r| PartitionState::new(r));
                    self.partitions
                        .entry(name.clone())
                        .or_default()
                        .extend(states);
                    MetadataResult::default()
                }
            },
            MetadataCommand::SetTopicConfigs { name, configs } => match self.topics.get_mut(name) {
                None => Self::refused(Refusal::UnknownTopic),
                Some(meta) => {
                    meta.configs = configs.clone();
                    MetadataResult::default()
                }
            },
            MetadataCommand::DeleteTopic { name } => {
                self.partitions.remove(name);
                match self.topics.remove(name) {
                    None => Self::refused(Refusal::UnknownTopic),
                    Some(_) => MetadataResult::default(),
                }
            }
            MetadataCommand::FenceBroker { node_id } => match self.brokers.get_mut(node_id) {
                None => Self::refused(Refusal::UnknownTopic),
                Some(broker) => {
                    broker.fenced = true;
                    self.fence(*node_id);
                    MetadataResult::default()
                }
            },
            MetadataCommand::UnfenceBroker { node_id } => match self.brokers.get_mut(node_id) {
                None => Self::refused(Refusal::UnknownTopic),
                Some(broker) => {
                    broker.fenced = false;
                    self.elect_offline(*node_id);
                    MetadataResult::default()
                }
            },
            MetadataCommand::AllocateProducerIds { size, .. } => {
                let start = self.next_producer_id_block;
                self.next_producer_id_block = start.saturating_add((*size).max(1));
                MetadataResult {
                    producer_id_block: Some(start),
                    ..MetadataResult::default()
                }
            }
            MetadataCommand::SetBrokerConfigs {
                node,
                previous,
                configs,
            } => {
                let current = match node {
                    None => &mut self.cluster_configs,
                    Some(id) => self.node_configs.entry(*id).or_default(),
                };
                if current == previous {
                    current.clone_from(configs);
                    MetadataResult::default()
                } else {
                    Self::refused(Refusal::Conflict)
                }
            }
            MetadataCommand::CreateAcls(bindings) => {
                self.acls.extend(bindings.iter().cloned());
                MetadataResult::default()
            }
            MetadataCommand::DeleteAcls(bindings) => {
                for binding in bindings {
                    self.acls.remove(binding);
                }
                MetadataResult::default()
            }
            MetadataCommand::AlterScramCredentials(changes) => {
                crate::cluster::credentials::apply_changes(&mut self.scram_credentials, changes);
                MetadataResult::default()
            }
            MetadataCommand::AlterIsr {
                topic,
                partition,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                let fenced: Vec<i32> = self
                    .brokers
                    .values()
                    .filter(|b| b.fenced)
                    .map(|b| b.node_id)
                    .collect();
                let state = self
                    .partitions
                    .get_mut(topic)
                    .and_then(|ps| ps.get_mut(usize::try_from(*partition).ok()?));
                match state {
                    None => Self::refused(Refusal::UnknownTopic),
                    Some(state)
                        if state.leader_epoch != *leader_epoch
                            || partition_epoch.is_some_and(|e| e != state.partition_epoch)
                            || !isr.contains(&state.leader)
                            || isr.iter().any(|id| fenced.contains(id)) =>
                    {
                        Self::refused(Refusal::Conflict)
                    }
                    Some(state) => {
                        state.isr = isr.clone();
                        self.complete_reassignment(topic, *partition);
                        MetadataResult::default()
                    }
                }
            }
            MetadataCommand::AlterReassignment {
                topic,
                partition,
                target,
            } => match self.reassign(topic, *partition, target.as_deref()) {
                Ok(()) => MetadataResult::default(),
                Err(why) => Self::refused(why),
            },
            MetadataCommand::ElectLeader {
                topic,
                partition,
                election,
            } => match self.election(topic, *partition, *election) {
                Err(why) => Self::refused(why),
                Ok(elected) => {
                    let state = self
                        .partitions
                        .get_mut(topic)
                        .and_then(|ps| ps.get_mut(usize::try_from(*partition).ok()?));
                    if let Some(state) = state {
                        *state = elected;
                    }
                    MetadataResult::default()
                }
            },
        };
        MetadataResult { index, ..result }
    }

    fn refused(why: Refusal) -> MetadataResult {
        MetadataResult {
            refused: Some(why),
            ..MetadataResult::default()
        }
    }

    /// Whether `node_id` is registered and not fenced.
    pub fn is_live(&self, node_id: i32) -> bool {
        self.brokers.get(&node_id).is_some_and(|b| !b.fenced)
    }

    /// Moves leadership off a fenced broker and takes it out of every ISR:
    /// a partition it led gets the next live replica of its ISR (in
    /// replica order) in a new epoch, or no leader when none is left (its
    /// ISR then keeps the fenced broker, the last replica known in sync).
    fn fence(&mut self, node_id: i32) {
        let live: Vec<i32> = self
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.node_id)
            .collect();
        for (topic, states) in &mut self.partitions {
            let Some(meta) = self.topics.get(topic) else {
                continue;
            };
            for (state, replicas) in states.iter_mut().zip(&meta.partitions) {
                if !state.isr.contains(&node_id) && state.leader != node_id {
                    continue;
                }
                let remaining: Vec<i32> = state
                    .isr
                    .iter()
                    .copied()
                    .filter(|id| *id != node_id)
                    .collect();
                if state.leader == node_id {
                    let next = replicas
                        .iter()
                        .copied()
                        .find(|id| remaining.contains(id) && live.contains(id));
                    state.leader_epoch += 1;
                    match next {
                        Some(leader) => {
                            state.leader = leader;
                            state.isr = remaining;
                        }
                        None => state.leader = -1,
                    }
                } else if !remaining.is_empty() {
                    state.isr = remaining;
                }
            }
        }
    }

    /// Gives leaderless partitions whose ISR holds `node_id` (live again)
    /// that node as leader, in a new epoch.
    fn elect_offline(&mut self, node_id: i32) {
        for states in self.partitions.values_mut() {
            for state in states.iter_mut() {
                if state.leader == -1 && state.isr.contains(&node_id) {
                    state.leader = node_id;
                    state.leader_epoch += 1;
                }
            }
        }
    }

    /// Starts, changes or (`target` None) cancels a reassignment.
    fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Result<(), Refusal> {
        let live: Vec<i32> = self
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.node_id)
            .collect();
        let index = usize::try_from(partition).map_err(|_| Refusal::UnknownTopic)?;
        let replicas = self
            .topics
            .get_mut(topic)
            .and_then(|meta| meta.partitions.get_mut(index))
            .ok_or(Refusal::UnknownTopic)?;
        let state = self
            .partitions
            .get_mut(topic)
            .and_then(|states| states.get_mut(index))
            .ok_or(Refusal::UnknownTopic)?;
        let original: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|id| !state.adding.contains(id))
            .collect();
        let assigned = match target {
            None if state.adding.is_empty() && state.removing.is_empty() => {
                return Err(Refusal::NoReassignmentInProgress)
            }
            None => {
                state.adding.clear();
                state.removing.clear();
                original
            }
            Some(target) => {
                state.adding = target
                    .iter()
                    .copied()
                    .filter(|id| !original.contains(id))
                    .collect();
                state.removing = original
                    .iter()
                    .copied()
                    .filter(|id| !target.contains(id))
                    .collect();
                target.iter().chain(&state.removing).copied().collect()
            }
        };
        state.isr.retain(|id| assigned.contains(id));
        if !assigned.contains(&state.leader) {
            let next = assigned
                .iter()
                .copied()
                .find(|id| state.isr.contains(id) && live.contains(id));
            state.leader = next.unwrap_or(-1);
            state.leader_epoch += 1;
        }
        *replicas = assigned;
        self.complete_reassignment(topic, partition);
        Ok(())
    }

    /// Finishes `topic`-`partition`'s reassignment once every target
    /// replica is in the ISR (with none added: once one that stays is):
    /// the removed replicas leave the assignment and the ISR, and if the
    /// leader was one of them the first in-sync target replica leads, in a
    /// new epoch.
    fn complete_reassignment(&mut self, topic: &str, partition: i32) {
        let Ok(index) = usize::try_from(partition) else {
            return;
        };
        let live: Vec<i32> = self
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.node_id)
            .collect();
        let (Some(replicas), Some(state)) = (
            self.topics
                .get_mut(topic)
                .and_then(|meta| meta.partitions.get_mut(index)),
            self.partitions
                .get_mut(topic)
                .and_then(|states| states.get_mut(index)),
        ) else {
            return;
        };
        if state.adding.is_empty() && state.removing.is_empty() {
            return;
        }
        let target: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|id| !state.removing.contains(id))
            .collect();
        let ready = if state.adding.is_empty() {
            target.iter().any(|id| state.isr.contains(id))
        } else {
            target.iter().all(|id| state.isr.contains(id))
        };
        if !ready {
            return;
        }
        state.isr.retain(|id| target.contains(id));
        if !target.contains(&state.leader) {
            let next = target
                .iter()
                .copied()
                .find(|id| state.isr.contains(id) && live.contains(id));
            state.leader = next.unwrap_or(-1);
            state.leader_epoch += 1;
        }
        state.adding.clear();
        state.removing.clear();
        *replicas = target;
    }

    /// The leadership `election` would give `topic`-`partition` now.
    ///
    /// # Errors
    /// Why it would change nothing (UnknownTopic for an unknown partition).
    pub fn election(
        &self,
        topic: &str,
        partition: i32,
        election: Election,
    ) -> Result<PartitionState, Refusal> {
        let replicas = self
            .topics
            .get(topic)
            .and_then(|meta| meta.partitions.get(usize::try_from(partition).ok()?))
            .ok_or(Refusal::UnknownTopic)?;
        let state = self
            .partition(topic, partition)
            .ok_or(Refusal::UnknownTopic)?;
        elect(replicas, state, election, |id| self.is_live(id))
    }

    /// The leadership of `topic`-`partition`.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.partitions
            .get(topic)?
            .get(usize::try_from(partition).ok()?)
    }

    /// Records that the entry at `index` (a blank or membership entry)
    /// was applied.
    pub fn skip(&mut self, index: u64) {
        self.applied_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(node_id: i32, incarnation: &str) -> MetadataCommand {
        MetadataCommand::RegisterBroker {
            node_id,
            incarnation: incarnation.into(),
            host: "127.0.0.1".into(),
            port: 9092,
            rack: None,
            listeners: Vec::new(),
        }
    }

    #[test]
    fn broker_configs_change_only_from_what_they_were() {
        let mut image = MetadataImage::default();
        let set = |previous: &[(&str, &str)], configs: &[(&str, &str)]| {
            let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect()
            };
            MetadataCommand::SetBrokerConfigs {
                node: None,
                previous: map(previous),
                configs: map(configs),
            }
        };
        assert_eq!(image.apply(1, &set(&[], &[("a", "1")])).refused, None);
        // Computed from the configs before that change: refused.
        assert_eq!(
            image.apply(2, &set(&[], &[("b", "2")])).refused,
            Some(Refusal::Conflict)
        );
        assert_eq!(
            image
                .apply(3, &set(&[("a", "1")], &[("a", "1"), ("b", "2")]))
                .refused,
            None
        );
        assert_eq!(image.cluster_configs.len(), 2);
        assert!(image.node_configs.is_empty());
    }

    #[test]
    fn first_cluster_id_wins_and_epochs_grow_per_incarnation() {
        let mut image = MetadataImage::default();
        let first = MetadataCommand::InitCluster {
            cluster_id: "a".into(),
        };
        let second = MetadataCommand::InitCluster {
            cluster_id: "b".into(),
        };
        assert_eq!(image.apply(1, &first).cluster_id.as_deref(), Some("a"));
        assert_eq!(image.apply(2, &second).cluster_id.as_deref(), Some("a"));
        assert_eq!(image.apply(3, &register(1, "x")).broker_epoch, Some(3));
        // The same process registering again keeps its epoch; a restart
        // (a new incarnation) gets a larger one.
        assert_eq!(image.apply(4, &register(1, "x")).broker_epoch, Some(3));
        assert_eq!(image.apply(5, &register(1, "y")).broker_epoch, Some(5));
        assert_eq!(image.brokers.len(), 1);
        let block = |image: &mut MetadataImage, index| {
            let command = MetadataCommand::AllocateProducerIds {
                node_id: 1,
                size: 1000,
            };
            image.apply(index, &command).producer_id_block
        };
        assert_eq!(block(&mut image, 6), Some(0));
        assert_eq!(block(&mut image, 7), Some(1000));
    }

    #[test]
    fn elections_follow_kafkas_rules() {
        let state = |leader, isr: &[i32]| PartitionState {
            leader,
            leader_epoch: 4,
            isr: isr.to_vec(),
            ..PartitionState::default()
        };
        let replicas = [1, 2, 3];
        let all_live = |_| true;
        // Preferred: not needed when it leads; moves to it when it is live
        // and in sync (new epoch, same ISR); refused otherwise.
        assert_eq!(
            elect(&replicas, &state(1, &[1, 2]), Election::Preferred, all_live),
            Err(Refusal::ElectionNotNeeded)
        );
        assert_eq!(
            elect(&replicas, &state(2, &[1, 2]), Election::Preferred, all_live),
            Ok(PartitionState {
                leader: 1,
                leader_epoch: 5,
                isr: vec![1, 2],
                ..PartitionState::default()
            })
        );
        assert_eq!(
            elect(&replicas, &state(2, &[2, 3]), Election::Preferred, all_live),
            Err(Refusal::PreferredLeaderNotAvailable)
        );
        assert_eq!(
            elect(&replicas, &state(2, &[1, 2]), Election::Preferred, |id| id
                != 1),
            Err(Refusal::PreferredLeaderNotAvailable)
        );
        // Unclean: only without a leader; a live ISR member first, else the
        // first live replica, alone in the ISR; none live: refused.
        assert_eq!(
            elect(&replicas, &state(2, &[2]), Election::Unclean, all_live),
            Err(Refusal::ElectionNotNeeded)
        );
        assert_eq!(
            elect(&replicas, &state(-1, &[3]), Election::Unclean, all_live),
            Ok(state(3, &[3]).with_epoch(5))
        );
        assert_eq!(
            elect(&replicas, &state(-1, &[1]), Election::Unclean, |id| id != 1),
            Ok(state(2, &[2]).with_epoch(5))
        );
        assert_eq!(
            elect(&replicas, &state(-1, &[1]), Election::Unclean, |_| false),
            Err(Refusal::EligibleLeadersNotAvailable)
        );
    }

    impl PartitionState {
        fn with_epoch(mut self, leader_epoch: i32) -> Self {
            self.leader_epoch = leader_epoch;
            self
        }
    }

    /// An applied ElectLeader moves the leader in a new epoch; a refused
    /// one changes nothing and says why.
    #[test]
    fn elect_leader_applies_on_the_image() {
        let mut image = MetadataImage::default();
        for (index, id) in (1..=3).enumerate() {
            image.apply(index as u64 + 1, &register(id, "x"));
        }
        let meta = TopicMeta {
            name: "t".into(),
            id: uuid::Uuid::nil(),
            partitions: vec![vec![1, 2, 3]],
            configs: BTreeMap::new(),
        };
        image.apply(4, &MetadataCommand::CreateTopic(meta));
        image.apply(5, &MetadataCommand::FenceBroker { node_id: 1 });
        assert_eq!(image.partition("t", 0).map(|s| s.leader), Some(2));
        image.apply(6, &MetadataCommand::UnfenceBroker { node_id: 1 });
        let command = |election| MetadataCommand::ElectLeader {
            topic: "t".into(),
            partition: 0,
            election,
        };
        // Fenced, node 1 left the ISR: not electable until it is back.
        assert_eq!(
            image.apply(7, &command(Election::Preferred)).refused,
            Some(Refusal::PreferredLeaderNotAvailable)
        );
        // The fencing changed the partition (epoch 1); an ISR change
        // computed from the state before it is refused.
        let alter = |partition_epoch| MetadataCommand::AlterIsr {
            topic: "t".into(),
            partition: 0,
            leader_epoch: 1,
            partition_epoch: Some(partition_epoch),
            isr: vec![1, 2, 3],
        };
        assert_eq!(image.apply(8, &alter(0)).refused, Some(Refusal::Conflict));
        assert_eq!(image.apply(8, &alter(1)).refused, None);
        assert_eq!(image.apply(9, &command(Election::Preferred)).refused, None);
        assert_eq!(
            image.partition("t", 0),
            Some(&PartitionState {
                leader: 1,
                leader_epoch: 2,
                isr: vec![1, 2, 3],
                partition_epoch: 3,
                ..PartitionState::default()
            })
        );
        assert_eq!(
            image.apply(10, &command(Election::Preferred)).refused,
            Some(Refusal::ElectionNotNeeded)
        );
    }
}
