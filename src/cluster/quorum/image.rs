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
}

impl MetadataImage {
    /// Applies `command`, the entry at Raft log `index`.
    pub fn apply(&mut self, index: u64, command: &MetadataCommand) -> MetadataResult {
        self.applied_index = index;
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
                    },
                );
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
            MetadataCommand::DeleteTopic { name } => match self.topics.remove(name) {
                None => Self::refused(Refusal::UnknownTopic),
                Some(_) => MetadataResult::default(),
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
        }
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
    }
}
