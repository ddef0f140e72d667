//! DescribeLogDirs v1-v4 (`kafka-log-dirs.sh --describe`): strom keeps
//! every partition in one data dir, so the answer is that one log dir
//! (its absolute path) with the replicas this node hosts: each
//! partition's size (its segment files' bytes), offset lag 0 and
//! `is_future_key` false (no replica is ever moving between dirs). v4
//! adds the file system's total and usable bytes (`statvfs`; -1 if it
//! cannot be read).
//!
//! As in Kafka's `ReplicaManager.describeLogDirs`: null topics means
//! every hosted partition; a topic or partition asked about that this
//! node does not host is left out (no error); the top-level error (v3+)
//! is NONE.

use std::collections::BTreeSet;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::{str_bytes, topic_name};
use crate::broker::Broker;

/// Answers a DescribeLogDirs request.
pub fn handle(
    broker: &Broker,
    version: i16,
    request: &DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let data_dir = broker.config().data_dir();
    let path = std::path::absolute(&data_dir).unwrap_or_else(|_| data_dir.clone());
    let node_id = broker.node_id();
    let in_cluster = broker.in_quorum();
    let mut topics = Vec::new();
    for meta in broker.topics.all() {
        let wanted: Option<BTreeSet<i32>> = match &request.topics {
            None => None,
            Some(asked) => {
                let partitions: BTreeSet<i32> = asked
                    .iter()
                    .filter(|t| t.topic.0.as_str() == meta.name)
                    .flat_map(|t| t.partitions.iter().copied())
                    .collect();
                if partitions.is_empty() {
                    continue;
                }
                Some(partitions)
            }
        };
        let partitions: Vec<DescribeLogDirsPartition> = (0..meta.partition_count())
            .zip(&meta.partitions)
            .filter(|(p, _)| wanted.as_ref().is_none_or(|w| w.contains(p)))
            // In a cluster every node keeps a log for every partition;
            // only the replicas assigned to this node are hosted here.
            .filter(|(_, replicas)| !in_cluster || replicas.contains(&node_id))
            .filter_map(|(p, _)| {
                let log = broker.logs.get(&meta.name, p)?;
                Some(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p)
                        .with_partition_size(i64::try_from(log.size_bytes()).unwrap_or(i64::MAX))
                        .with_offset_lag(0)
                        .with_is_future_key(false),
                )
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(topic_name(&meta.name))
                    .with_partitions(partitions),
            );
        }
    }
    let (total, usable) = if version >= 4 {
        space(&data_dir)
    } else {
        (-1, -1)
    };
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(path.to_string_lossy()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}

/// The total and usable bytes of the file system holding `dir`.
fn space(dir: &std::path::Path) -> (i64, i64) {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(stats) => {
            let unit = stats.fragment_size();
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(unit)).unwrap_or(i64::MAX);
            (bytes(stats.blocks()), bytes(stats.blocks_available()))
        }
        Err(e) => {
            tracing::warn!(dir = %dir.display(), cause = %e, "cannot read the data dir's file system size");
            (-1, -1)
        }
    }
}
