//! The whole-request authorization checks, run before a handler when an
//! authorizer is configured: requests whose one group, transactional id or
//! cluster right is missing are answered here with Kafka's error. Checks
//! per topic, group or config resource inside a request (Produce, Fetch,
//! Metadata, CreateTopics, DescribeGroups, ...) sit in their handlers, all
//! through `Broker::authorize`.
//!
//! The match is exhaustive over the request kinds strom decodes, so a
//! newly served API needs a decision here.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;

use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::Session;

/// The refusal of a request the session may not make at all, or `None`
/// when the handler runs (and checks its resources itself).
pub fn refusal(
    broker: &Broker,
    session: &Session,
    version: i16,
    body: &RequestKind,
) -> Option<ResponseKind> {
    if !broker.authorizer_enabled() {
        return None;
    }
    let allowed =
        |operation, resource, name: &str| broker.authorize(session, operation, resource, name);
    let cluster = |operation| allowed(operation, ResourceType::Cluster, CLUSTER_NAME);
    let group = |operation, name: &str| allowed(operation, ResourceType::Group, name);
    let txn = |name: &str| allowed(Operation::Write, ResourceType::TransactionalId, name);
    use ResponseError::{
        ClusterAuthorizationFailed as CLUSTER, GroupAuthorizationFailed as GROUP,
        TransactionalIdAuthorizationFailed as TXN,
    };
    let code = |e: ResponseError| e.code();
    match body {
        // Checked per topic (and transactional id) by the handler, or
        // answered without any resource.
        RequestKind::Produce(req) => req
            .transactional_id
            .as_ref()
            .filter(|id| !txn(id))
            .map(|_| {
                ResponseKind::Produce(ProduceResponse::default().with_responses(
                    req.topic_data
                        .iter()
                        .map(|t| {
                            produce_response::TopicProduceResponse::default()
                                .with_name(t.name.clone())
                                .with_topic_id(t.topic_id)
                                .with_partition_responses(
                                    t.partition_data
                                        .iter()
                                        .map(|p| {
                                            produce_response::PartitionProduceResponse::default()
                                                .with_index(p.index)
                                                .with_error_code(code(TXN))
                                                .with_base_offset(-1)
                                                .with_log_append_time_ms(-1)
                                                .with_log_start_offset(-1)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ))
            }),
        RequestKind::ListOffsets(_)
        | RequestKind::Metadata(_)
        | RequestKind::OffsetFetch(_)
        | RequestKind::FindCoordinator(_)
        | RequestKind::DescribeGroups(_)
        | RequestKind::ListGroups(_)
        | RequestKind::DeleteGroups(_)
        | RequestKind::ApiVersions(_)
        | RequestKind::SaslHandshake(_)
        | RequestKind::SaslAuthenticate(_)
        | RequestKind::CreateTopics(_)
        | RequestKind::DeleteTopics(_)
        | RequestKind::CreatePartitions(_)
        | RequestKind::DeleteRecords(_)
        | RequestKind::DescribeConfigs(_)
        | RequestKind::AlterConfigs(_)
        | RequestKind::IncrementalAlterConfigs(_)
        | RequestKind::DescribeProducers(_)
        | RequestKind::DescribeTransactions(_)
        | RequestKind::ListTransactions(_)
        | RequestKind::CreateAcls(_)
        | RequestKind::DescribeAcls(_)
        | RequestKind::DeleteAcls(_) => None,
        RequestKind::Fetch(req) => {
            let replica = if version >= 15 {
                req.replica_state.replica_id.0
            } else {
                req.replica_id.0
            };
            (replica >= 0 && !cluster(Operation::ClusterAction)).then(|| {
                ResponseKind::Fetch(FetchResponse::default().with_error_code(code(CLUSTER)))
            })
        }
        RequestKind::OffsetForLeaderEpoch(req) => (req.replica_id.0 >= 0
            && !cluster(Operation::ClusterAction))
        .then(|| {
            ResponseKind::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse::default().with_topics(
                req.topics
                    .iter()
                    .map(|t| {
                        offset_for_leader_epoch_response::OffsetForLeaderTopicResult::default()
                            .with_topic(t.topic.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        offset_for_leader_epoch_response::EpochEndOffset::default()
                                            .with_partition(p.partition)
                                            .with_error_code(code(CLUSTER))
                                            .with_leader_epoch(-1)
                                            .with_end_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ))
        }),
        RequestKind::JoinGroup(req) => (!group(Operation::Read, &req.group_id)).then(|| {
            ResponseKind::JoinGroup(
                JoinGroupResponse::default()
                    .with_error_code(code(GROUP))
                    .with_generation_id(-1),
            )
        }),
        RequestKind::SyncGroup(req) => (!group(Operation::Read, &req.group_id))
            .then(|| ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(code(GROUP)))),
        RequestKind::Heartbeat(req) => (!group(Operation::Read, &req.group_id))
            .then(|| ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code(GROUP)))),
        RequestKind::LeaveGroup(req) => (!group(Operation::Read, &req.group_id)).then(|| {
            ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(code(GROUP)))
        }),
        RequestKind::OffsetDelete(req) => (!group(Operation::Delete, &req.group_id)).then(|| {
            ResponseKind::OffsetDelete(OffsetDeleteResponse::default().with_error_code(code(GROUP)))
        }),
        RequestKind::OffsetCommit(req) => (!group(Operation::Read, &req.group_id)).then(|| {
            ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(
                req.topics
                    .iter()
                    .map(|t| {
                        OffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code(GROUP))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ))
        }),
        RequestKind::InitProducerId(req) => {
            let (allowed, error) = match &req.transactional_id {
                Some(id) => (txn(id), TXN),
                // Idempotence: IDEMPOTENT_WRITE on the cluster, or WRITE
                // on some topic (KIP-679).
                None => (
                    cluster(Operation::IdempotentWrite)
                        || broker.authorize_any(session, Operation::Write, ResourceType::Topic),
                    CLUSTER,
                ),
            };
            (!allowed).then(|| {
                ResponseKind::InitProducerId(
                    InitProducerIdResponse::default()
                        .with_error_code(code(error))
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )
            })
        }
        RequestKind::AddOffsetsToTxn(req) => {
            let error = if !txn(&req.transactional_id) {
                Some(TXN)
            } else if !group(Operation::Read, &req.group_id) {
                Some(GROUP)
            } else {
                None
            };
            error.map(|e| {
                ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code(e)))
            })
        }
        RequestKind::EndTxn(req) => (!txn(&req.transactional_id))
            .then(|| ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(code(TXN)))),
        RequestKind::TxnOffsetCommit(req) => {
            let error = if !txn(&req.transactional_id) {
                Some(TXN)
            } else if !group(Operation::Read, &req.group_id) {
                Some(GROUP)
            } else {
                None
            };
            error.map(|e| {
                ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(
                    req.topics
                        .iter()
                        .map(|t| {
                            TxnOffsetCommitResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            TxnOffsetCommitResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(code(e))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ))
            })
        }
        RequestKind::AddPartitionsToTxn(req) => {
            if version >= 4 {
                // Batched (v4+) comes from brokers verifying transactions.
                return (!cluster(Operation::ClusterAction)).then(|| {
                    ResponseKind::AddPartitionsToTxn(
                        AddPartitionsToTxnResponse::default().with_error_code(code(CLUSTER)),
                    )
                });
            }
            let id = &req.v3_and_below_transactional_id;
            (!txn(id)).then(|| {
                ResponseKind::AddPartitionsToTxn(
                    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(
                        req.v3_and_below_topics
                            .iter()
                            .map(|t| {
                                AddPartitionsToTxnTopicResult::default()
                                    .with_name(t.name.clone())
                                    .with_results_by_partition(
                                        t.partitions
                                            .iter()
                                            .map(|p| {
                                                AddPartitionsToTxnPartitionResult::default()
                                                    .with_partition_index(*p)
                                                    .with_partition_error_code(code(TXN))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
                )
            })
        }
        RequestKind::WriteTxnMarkers(req) => (!cluster(Operation::ClusterAction)).then(|| {
            ResponseKind::WriteTxnMarkers(WriteTxnMarkersResponse::default().with_markers(
                req.markers
                    .iter()
                    .map(|m| {
                        WritableTxnMarkerResult::default()
                            .with_producer_id(m.producer_id)
                            .with_topics(
                                m.topics
                                    .iter()
                                    .map(|t| {
                                        WritableTxnMarkerTopicResult::default()
                                            .with_name(t.name.clone())
                                            .with_partitions(
                                                t.partition_indexes
                                                    .iter()
                                                    .map(|p| {
                                                        WritableTxnMarkerPartitionResult::default()
                                                            .with_partition_index(*p)
                                                            .with_error_code(code(CLUSTER))
                                                    })
                                                    .collect(),
                                            )
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ))
        }),
        RequestKind::DescribeLogDirs(_) => (!cluster(Operation::Describe)).then(|| {
            ResponseKind::DescribeLogDirs(DescribeLogDirsResponse::default().with_error_code(code(CLUSTER)))
        }),
        RequestKind::ElectLeaders(_) => (!cluster(Operation::Alter)).then(|| {
            ResponseKind::ElectLeaders(ElectLeadersResponse::default().with_error_code(code(CLUSTER)))
        }),
        RequestKind::AlterPartitionReassignments(_) => (!cluster(Operation::Alter)).then(|| {
            ResponseKind::AlterPartitionReassignments(
                AlterPartitionReassignmentsResponse::default().with_error_code(code(CLUSTER)),
            )
        }),
        RequestKind::ListPartitionReassignments(_) => (!cluster(Operation::Describe)).then(|| {
            ResponseKind::ListPartitionReassignments(
                ListPartitionReassignmentsResponse::default().with_error_code(code(CLUSTER)),
            )
        }),
        RequestKind::DescribeQuorum(_) => (!cluster(Operation::Describe)).then(|| {
            ResponseKind::DescribeQuorum(DescribeQuorumResponse::default().with_error_code(code(CLUSTER)))
        }),
        RequestKind::DescribeCluster(_) => (!cluster(Operation::Describe)).then(|| {
            ResponseKind::DescribeCluster(DescribeClusterResponse::default().with_error_code(code(CLUSTER)))
        }),
        RequestKind::DescribeUserScramCredentials(_) => (!cluster(Operation::Describe)).then(|| {
            ResponseKind::DescribeUserScramCredentials(
                DescribeUserScramCredentialsResponse::default().with_error_code(code(CLUSTER)),
            )
        }),
        RequestKind::AlterUserScramCredentials(req) => (!cluster(Operation::Alter)).then(|| {
            let mut users: Vec<&str> = req
                .deletions
                .iter()
                .map(|d| d.name.as_str())
                .chain(req.upsertions.iter().map(|u| u.name.as_str()))
                .collect();
            users.sort_unstable();
            users.dedup();
            ResponseKind::AlterUserScramCredentials(
                AlterUserScramCredentialsResponse::default().with_results(
                    users
                        .into_iter()
                        .map(|u| {
                            alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                                .with_user(super::str_bytes(u))
                                .with_error_code(code(CLUSTER))
                        })
                        .collect(),
                ),
            )
        }),
        RequestKind::DescribeClientQuotas(_) => (!cluster(Operation::DescribeConfigs)).then(|| {
            ResponseKind::DescribeClientQuotas(
                DescribeClientQuotasResponse::default().with_error_code(code(CLUSTER)),
            )
        }),
        // Not served (the codec refuses them before any handler).
        _ => Some(ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()),
        )),
    }
}
