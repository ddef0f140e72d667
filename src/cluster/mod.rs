//! Who is in the cluster and what topics it holds: the cluster id, this
//! node, the broker list clients see, the topic registry and the dynamic
//! broker configs.
//!
//! Today the cluster is one node. Later the broker list and the topic
//! registry come from a metadata quorum (an existing Raft library); the
//! rest of the broker only reads them through this module.

mod dynamic_configs;
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

use base64::Engine;

/// One broker as clients see it: its id and advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// The node id.
    pub node_id: i32,
    /// The advertised host clients connect to.
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
    /// Every live broker, this node included.
    pub brokers: Vec<BrokerEndpoint>,
}

impl ClusterInfo {
    /// The active controller: on a single node, this node.
    pub fn controller_id(&self) -> i32 {
        self.node_id
    }

    /// Whether `node_id` is a live broker.
    pub fn has_broker(&self, node_id: i32) -> bool {
        self.brokers.iter().any(|b| b.node_id == node_id)
    }
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
            // Kafka prints cluster ids as the URL-safe base64 of a random UUID.
            let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(uuid::Uuid::new_v4().as_bytes());
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
