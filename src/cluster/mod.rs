//! Who is in the cluster and what topics it holds: the cluster id, this
//! node, the broker list clients see, the topic registry and the dynamic
//! broker configs.
//!
//! With no `controller.quorum.voters` the cluster is this one node. With
//! them, the broker list and the topics come from the metadata quorum
//! ([`quorum`], on openraft); the rest of the broker only reads them
//! through this module and [`crate::broker::Broker`].

pub mod acls;
pub mod credentials;
mod dynamic_configs;
pub mod peers;
pub mod placement;
mod producer_ids;
pub mod quorum;
mod topics;

pub use dynamic_configs::DynamicConfigStore;
pub use producer_ids::ProducerIdManager;
pub use topics::{validate_topic_name, TopicMeta, TopicRegistry};

/// Whether `name` is one of Kafka's internal topics (coordinator state):
/// Metadata marks them `is_internal`, clients may not produce to them.
pub fn is_internal_topic(name: &str) -> bool {
    matches!(name, "__consumer_offsets" | "__transaction_state")
}

use std::io;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;

use quorum::MetadataQuorum;

/// One broker as clients see it: its id and advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// The node id.
    pub node_id: i32,
    /// The advertised host clients connect to.
    pub host: String,
    /// The advertised port.
    pub port: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
    /// Its address on each client listener (empty in registrations
    /// written before listeners were: then `host:port` is every one).
    pub listeners: Vec<ListenerEndpoint>,
}

/// A broker's advertised address on one listener.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListenerEndpoint {
    /// The listener's name.
    pub name: String,
    /// The advertised host.
    pub host: String,
    /// The advertised port.
    pub port: i32,
}

/// The cluster as this node knows it.
#[derive(Debug, Clone)]
pub struct ClusterInfo {
    /// The cluster id, generated once and kept in the data dir.
    pub cluster_id: String,
    /// This node's id.
    pub node_id: i32,
    /// Every live (registered, unfenced) broker, this node included, by
    /// node id.
    pub brokers: Vec<BrokerEndpoint>,
    /// Registered brokers the controller fenced (their heartbeats stopped).
    pub fenced: Vec<BrokerEndpoint>,
    /// The controller clients are told of: the active controller when it
    /// is a live broker, else a live broker (-1 while none is known).
    pub controller_id: i32,
}

impl ClusterInfo {
    /// The active controller: on a single node, this node.
    pub fn controller_id(&self) -> i32 {
        self.controller_id
    }

    /// Whether `node_id` is a live broker.
    pub fn has_broker(&self, node_id: i32) -> bool {
        self.brokers.iter().any(|b| b.node_id == node_id)
    }

    /// The broker `node_id`, if registered.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerEndpoint> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    /// The cluster as clients of `listener` see it: each broker's address
    /// on that listener; brokers without it are left out (as Kafka does).
    pub fn seen_from(mut self, listener: &str) -> Self {
        let on_listener = |b: &mut BrokerEndpoint| {
            if b.listeners.is_empty() {
                return true;
            }
            match b
                .listeners
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case(listener))
            {
                Some(endpoint) => {
                    b.host.clone_from(&endpoint.host);
                    b.port = endpoint.port;
                    true
                }
                None => false,
            }
        };
        self.brokers.retain_mut(on_listener);
        self.fenced.retain_mut(on_listener);
        self
    }
}

/// How this node knows the cluster: alone, or as a member of a metadata
/// quorum.
#[derive(Debug)]
pub enum Membership {
    /// One node, no quorum (no `controller.quorum.voters`): the zero-config
    /// broker.
    Single(ClusterInfo),
    /// A member of the metadata quorum.
    Quorum {
        /// The quorum.
        quorum: Arc<MetadataQuorum>,
        /// The cluster id the quorum agreed on.
        cluster_id: String,
        /// This node's id.
        node_id: i32,
    },
}

impl Membership {
    /// The cluster as of now: the registered brokers and the controller.
    pub fn info(&self) -> ClusterInfo {
        match self {
            Self::Single(info) => info.clone(),
            Self::Quorum {
                quorum,
                cluster_id,
                node_id,
            } => {
                let image = quorum.image();
                let endpoints = |fenced: bool| {
                    image
                        .brokers
                        .values()
                        .filter(|b| b.fenced == fenced)
                        .map(|b| BrokerEndpoint {
                            node_id: b.node_id,
                            host: b.host.clone(),
                            port: b.port,
                            rack: b.rack.clone(),
                            listeners: b.listeners.clone(),
                        })
                        .collect()
                };
                ClusterInfo {
                    cluster_id: cluster_id.clone(),
                    node_id: *node_id,
                    brokers: endpoints(false),
                    fenced: endpoints(true),
                    // Clients send controller requests to a broker (Kafka's
                    // brokers forward them), so the controller they are told
                    // of is a live broker: the active controller when it is
                    // one (combined nodes), else the lowest live broker (with
                    // controllers in processes of their own, as Kafka names
                    // a live broker there).
                    controller_id: quorum
                        .leader()
                        .filter(|id| image.is_live(*id))
                        .or_else(|| {
                            image
                                .brokers
                                .values()
                                .find(|b| !b.fenced)
                                .map(|b| b.node_id)
                        })
                        .unwrap_or(-1),
                }
            }
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        match self {
            Self::Single(info) => info.node_id,
            Self::Quorum { node_id, .. } => *node_id,
        }
    }

    /// The quorum, when this node is a member of one.
    pub fn quorum(&self) -> Option<&Arc<MetadataQuorum>> {
        match self {
            Self::Single(_) => None,
            Self::Quorum { quorum, .. } => Some(quorum),
        }
    }
}

/// Makes sure `DATA_DIR/meta.properties` names `cluster_id` (writing it on
/// first start): a data dir of another cluster is refused.
///
/// # Errors
/// The file cannot be read or written, or names another cluster.
pub fn check_cluster_id(data_dir: &Path, node_id: i32, cluster_id: &str) -> io::Result<()> {
    let path = data_dir.join("meta.properties");
    if path.exists() {
        let stored = load_or_create_cluster_id(data_dir, node_id)?;
        if stored != cluster_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} belongs to cluster {stored}, but the metadata quorum's cluster is {cluster_id}",
                    path.display()
                ),
            ));
        }
        return Ok(());
    }
    let text = format!("version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n");
    std::fs::write(&path, text)
}

/// A new random cluster id, printed as Kafka prints them (the URL-safe
/// base64 of a random UUID).
pub fn new_cluster_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

/// Reads `cluster.id` from `DATA_DIR/meta.properties` (Kafka's file name),
/// creating the file with a new random id on first start.
///
/// # Errors
/// The file cannot be read or written.
pub fn load_or_create_cluster_id(data_dir: &Path, node_id: i32) -> io::Result<String> {
    let path = data_dir.join("meta.properties");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text
                .lines()
                .filter_map(crate::config::split_assignment)
                .find(|(k, _)| *k == "cluster.id")
                .map(|(_, v)| v.to_owned());
            id.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} has no cluster.id", path.display()),
                )
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = new_cluster_id();
            let text = format!("version=1\ncluster.id={id}\nnode.id={node_id}\n");
            std::fs::write(&path, text)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_cluster_id(dir.path(), 1).unwrap();
        assert_eq!(first.len(), 22);
        assert_eq!(load_or_create_cluster_id(dir.path(), 1).unwrap(), first);
    }
}
