//! Request handlers: one file per Kafka API (or family), each a plain
//! function from a typed request to a typed response over [`Broker`].
//!
//! Handlers never touch sockets or bytes; Kafka-visible failures become
//! error codes inside the response, never a Rust error.

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod alter_configs;
mod alter_partition_reassignments;
mod alter_user_scram_credentials;
mod api_versions;
mod authorize;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_client_quotas;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_quorum;
mod describe_transactions;
mod describe_user_scram_credentials;
mod elect_leaders;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sasl_authenticate;
mod sasl_handshake;
mod sync_group;
mod txn_offset_commit;
mod write_txn_markers;

// Coordinator requests answer once the records they wrote are on every
// in-sync replica.
use crate::coordinator::answer_once_replicated as replicated;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::cluster::{validate_topic_name, TopicMeta};
use crate::error::ApiError;
use crate::group::GroupCoordinator;
use crate::log::{AppendError, FileRegion, PartitionLog, ReadError, SequenceError};
use crate::protocol::Request;
use crate::security::acl::{Operation, ResourceType, CLUSTER_NAME};
use crate::security::sasl::Authenticator;
use crate::security::{Principal, Session};

/// Acl operation bits a topic grants (READ, WRITE, CREATE, DELETE, ALTER,
/// DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS): with no authorizer, all.
const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);

/// Acl operation bits the cluster grants (CREATE, ALTER, DESCRIBE,
/// CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE,
/// CREATE_TOKENS, DESCRIBE_TOKENS): with no authorizer, all.
const CLUSTER_OPERATIONS: i32 = (1 << 5)
    | (1 << 7)
    | (1 << 8)
    | (1 << 9)
    | (1 << 10)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 14);

/// What `*_authorized_operations` holds when the client did not ask for it.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// The request's api key has no handler: the codec's table and this
/// dispatch disagree. A bug; the server closes the connection.
#[derive(Debug, thiserror::Error)]
#[error("no handler for api key {0}")]
pub struct NoHandler(pub i16);

/// A handler's answer: the response, and the file regions its records
/// fields stand for (Fetch puts a `protocol::splice_marker` in each).
#[derive(Debug)]
pub struct Reply {
    /// The response body.
    pub body: ResponseKind,
    /// Marker `i` in `body` stands for `regions[i]`.
    pub regions: Vec<FileRegion>,
}

/// Whether `request` belongs to the SASL exchange ([`sasl_exchange`]
/// answers it, not [`dispatch`]).
pub fn is_sasl(request: &Request) -> bool {
    matches!(
        request.body,
        RequestKind::SaslHandshake(_) | RequestKind::SaslAuthenticate(_)
    )
}

/// The answer to a SaslHandshake or SaslAuthenticate request.
#[derive(Debug)]
pub struct SaslExchange {
    /// The response (`None`: the connection closes without one).
    pub reply: Option<Reply>,
    /// Set when this request completed authentication.
    pub authenticated: Option<Principal>,
    /// The connection closes after the response (a failed authentication).
    pub close: bool,
}

/// Runs a SaslHandshake or SaslAuthenticate request against the
/// connection's SASL state (`None` on a listener without SASL).
pub fn sasl_exchange(
    broker: &Broker,
    auth: Option<&mut Authenticator>,
    request: Request,
) -> SaslExchange {
    let version = request.api_version();
    let (body, authenticated, close) = match request.body {
        RequestKind::SaslHandshake(req) => {
            let (response, close) = sasl_handshake::handle(auth, version, &req);
            (ResponseKind::SaslHandshake(response), None, close)
        }
        RequestKind::SaslAuthenticate(req) => {
            let Some((response, principal, close)) = sasl_authenticate::handle(broker, auth, &req)
            else {
                return SaslExchange {
                    reply: None,
                    authenticated: None,
                    close: true,
                };
            };
            (ResponseKind::SaslAuthenticate(response), principal, close)
        }
        _ => (
            ResponseKind::SaslHandshake(
                kafka_protocol::messages::SaslHandshakeResponse::default()
                    .with_error_code(ResponseError::IllegalSaslState.code()),
            ),
            None,
            true,
        ),
    };
    SaslExchange {
        reply: Some(Reply {
            body,
            regions: Vec::new(),
        }),
        authenticated,
        close,
    }
}

/// What Kafka answers a request other than SaslAuthenticate in the middle
/// of a SASL exchange, before it closes the connection: the request's
/// error response with ILLEGAL_SASL_STATE. strom builds it for Metadata
/// (what a client that ignores the server's SASL answer sends next: an
/// empty response, no brokers) and ApiVersions; `None` for the others,
/// which are closed without an answer.
pub fn illegal_sasl_state(request: &Request) -> Option<Reply> {
    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
    use kafka_protocol::messages::{ApiVersionsResponse, MetadataResponse};
    let code = ResponseError::IllegalSaslState.code();
    let body = match &request.body {
        RequestKind::Metadata(req) => {
            let topics = req
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(Some(t.name.clone().unwrap_or_default()))
                        .with_topic_id(t.topic_id)
                        .with_error_code(code)
                })
                .collect();
            ResponseKind::Metadata(MetadataResponse::default().with_topics(topics))
        }
        RequestKind::ApiVersions(_) => {
            ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(code))
        }
        _ => return None,
    };
    Some(Reply {
        body,
        regions: Vec::new(),
    })
}

/// Runs the handler for `request` from the client of `session`. `Ok(None)`
/// means the request takes no response (Produce with acks=0).
///
/// # Errors
/// [`NoHandler`] if the api key is advertised but not dispatched here.
pub async fn dispatch(
    broker: &Broker,
    session: &Session,
    request: Request,
) -> Result<Option<Reply>, NoHandler> {
    let peer = session.peer;
    let version = request.api_version();
    let key = request.api_key();
    let client_id = request
        .header
        .client_id
        .as_deref()
        .unwrap_or_default()
        .to_owned();
    if let Some(refused) = authorize::refusal(broker, session, version, &request.body) {
        return Ok(Some(Reply {
            body: refused,
            regions: Vec::new(),
        }));
    }
    let response = match request.body {
        RequestKind::Produce(req) => match produce::handle(broker, session, version, req).await {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        RequestKind::Fetch(req) => {
            let (response, regions) = fetch::handle(broker, session, version, req).await;
            return Ok(Some(Reply {
                body: ResponseKind::Fetch(response),
                regions,
            }));
        }
        RequestKind::ListOffsets(req) => {
            ResponseKind::ListOffsets(list_offsets::handle(broker, session, version, req))
        }
        RequestKind::OffsetForLeaderEpoch(req) => ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(broker, session, req),
        ),
        RequestKind::DeleteRecords(req) => {
            ResponseKind::DeleteRecords(delete_records::handle(broker, session, req))
        }
        // Fencing an open transaction writes its markers.
        RequestKind::InitProducerId(req) => ResponseKind::InitProducerId(
            replicated(async { blocking(|| init_producer_id::handle(broker, &req)) }).await,
        ),
        RequestKind::FindCoordinator(req) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(broker, session, version, req))
        }
        RequestKind::JoinGroup(req) => {
            // Kafka reports hosts as InetAddress.toString(): "/127.0.0.1".
            let host = format!("/{}", peer.ip());
            ResponseKind::JoinGroup(
                replicated(join_group::handle(broker, version, &client_id, &host, req)).await,
            )
        }
        RequestKind::SyncGroup(req) => {
            ResponseKind::SyncGroup(replicated(sync_group::handle(broker, req)).await)
        }
        RequestKind::Heartbeat(req) => ResponseKind::Heartbeat(heartbeat::handle(broker, &req)),
        RequestKind::LeaveGroup(req) => ResponseKind::LeaveGroup(
            replicated(async { leave_group::handle(broker, version, req) }).await,
        ),
        RequestKind::OffsetCommit(req) => ResponseKind::OffsetCommit(
            replicated(async { offset_commit::handle(broker, session, version, req) }).await,
        ),
        RequestKind::OffsetFetch(req) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(broker, session, version, req))
        }
        RequestKind::DescribeGroups(req) => {
            ResponseKind::DescribeGroups(describe_groups::handle(broker, session, version, req))
        }
        RequestKind::ListGroups(req) => {
            ResponseKind::ListGroups(list_groups::handle(broker, session, &req))
        }
        RequestKind::DeleteGroups(req) => ResponseKind::DeleteGroups(
            replicated(async { delete_groups::handle(broker, session, req) }).await,
        ),
        RequestKind::OffsetDelete(req) => ResponseKind::OffsetDelete(
            replicated(async { offset_delete::handle(broker, session, req) }).await,
        ),
        RequestKind::ApiVersions(req) => {
            ResponseKind::ApiVersions(api_versions::handle(version, &req))
        }
        RequestKind::Metadata(req) => {
            ResponseKind::Metadata(metadata::handle(broker, session, version, req))
        }
        // Topic creation and deletion do disk work that grows with the
        // partition count.
        RequestKind::CreateTopics(req) => ResponseKind::CreateTopics(blocking(|| {
            create_topics::handle(broker, session, version, req)
        })),
        RequestKind::DeleteTopics(req) => ResponseKind::DeleteTopics(blocking(|| {
            delete_topics::handle(broker, session, version, req)
        })),
        RequestKind::CreatePartitions(req) => ResponseKind::CreatePartitions(blocking(|| {
            create_partitions::handle(broker, session, req)
        })),
        RequestKind::DescribeConfigs(req) => {
            ResponseKind::DescribeConfigs(describe_configs::handle(broker, session, version, &req))
        }
        RequestKind::AlterConfigs(req) => {
            ResponseKind::AlterConfigs(alter_configs::handle(broker, session, req))
        }
        RequestKind::IncrementalAlterConfigs(req) => ResponseKind::IncrementalAlterConfigs(
            alter_configs::handle_incremental(broker, session, req),
        ),
        RequestKind::DescribeCluster(req) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(broker, session, version, &req))
        }
        RequestKind::AddPartitionsToTxn(req) => ResponseKind::AddPartitionsToTxn(
            replicated(async { add_partitions_to_txn::handle(broker, session, version, req) })
                .await,
        ),
        RequestKind::AddOffsetsToTxn(req) => ResponseKind::AddOffsetsToTxn(
            replicated(async { add_offsets_to_txn::handle(broker, &req) }).await,
        ),
        // Markers are file appends, one per partition of the transaction.
        RequestKind::EndTxn(req) => ResponseKind::EndTxn(
            replicated(async { blocking(|| end_txn::handle(broker, version, &req)) }).await,
        ),
        RequestKind::TxnOffsetCommit(req) => ResponseKind::TxnOffsetCommit(
            replicated(async { txn_offset_commit::handle(broker, session, version, req) }).await,
        ),
        RequestKind::WriteTxnMarkers(req) => {
            ResponseKind::WriteTxnMarkers(blocking(|| write_txn_markers::handle(broker, req)))
        }
        RequestKind::DescribeTransactions(req) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(broker, session, req))
        }
        RequestKind::ListTransactions(req) => {
            ResponseKind::ListTransactions(list_transactions::handle(broker, session, &req))
        }
        RequestKind::DescribeProducers(req) => {
            ResponseKind::DescribeProducers(describe_producers::handle(broker, session, req))
        }
        // Each election waits for its metadata proposal.
        RequestKind::ElectLeaders(req) => {
            ResponseKind::ElectLeaders(blocking(|| elect_leaders::handle(broker, version, &req)))
        }
        // Each partition waits for its metadata proposal.
        RequestKind::AlterPartitionReassignments(req) => {
            ResponseKind::AlterPartitionReassignments(blocking(|| {
                alter_partition_reassignments::handle(broker, &req)
            }))
        }
        RequestKind::ListPartitionReassignments(req) => ResponseKind::ListPartitionReassignments(
            list_partition_reassignments::handle(broker, &req),
        ),
        RequestKind::DescribeQuorum(req) => {
            ResponseKind::DescribeQuorum(describe_quorum::handle(broker, version, &req).await)
        }
        // Sizes every hosted partition and asks the file system.
        RequestKind::DescribeLogDirs(req) => ResponseKind::DescribeLogDirs(blocking(|| {
            describe_log_dirs::handle(broker, version, &req)
        })),
        RequestKind::DescribeAcls(req) => {
            ResponseKind::DescribeAcls(describe_acls::handle(broker, session, &req))
        }
        // In a cluster, these wait for the metadata proposal.
        RequestKind::CreateAcls(req) => {
            ResponseKind::CreateAcls(blocking(|| create_acls::handle(broker, session, &req)))
        }
        RequestKind::DeleteAcls(req) => {
            ResponseKind::DeleteAcls(blocking(|| delete_acls::handle(broker, session, &req)))
        }
        RequestKind::DescribeClientQuotas(req) => {
            ResponseKind::DescribeClientQuotas(describe_client_quotas::handle(&req))
        }
        RequestKind::DescribeUserScramCredentials(req) => {
            ResponseKind::DescribeUserScramCredentials(describe_user_scram_credentials::handle(
                broker, &req,
            ))
        }
        // In a cluster, waits for the metadata proposal.
        RequestKind::AlterUserScramCredentials(req) => {
            ResponseKind::AlterUserScramCredentials(blocking(|| {
                alter_user_scram_credentials::handle(broker, &req)
            }))
        }
        _ => return Err(NoHandler(key)),
    };
    Ok(Some(Reply {
        body: response,
        regions: Vec::new(),
    }))
}

/// How a request names a topic: by name, or by id (Produce v13+, Fetch v13+).
struct TopicRef<'a> {
    by_id: bool,
    name: &'a TopicName,
    id: uuid::Uuid,
}

impl<'a> TopicRef<'a> {
    fn new(by_id: bool, name: &'a TopicName, id: uuid::Uuid) -> Self {
        Self { by_id, name, id }
    }

    /// The name to echo in the response (empty when addressed by id).
    fn name_for_response(&self) -> TopicName {
        self.name.clone()
    }
}

/// Finds the topic a request names, if the session may do `operation` on
/// it; by name, unknown topics are auto-created when `auto_create`,
/// `auto.create.topics.enable` and the session's CREATE right (on the
/// cluster or the topic) allow.
///
/// # Errors
/// TOPIC_AUTHORIZATION_FAILED (before any other: an unauthorized client
/// learns nothing of the topic), UNKNOWN_TOPIC_ID,
/// UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION.
fn resolve_topic(
    broker: &Broker,
    session: &Session,
    operation: Operation,
    topic: &TopicRef<'_>,
    auto_create: bool,
) -> Result<Arc<TopicMeta>, ApiError> {
    if topic.by_id {
        let meta = broker.topics.get_by_id(&topic.id).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicId,
                "This server does not host this topic ID.",
            )
        })?;
        return if broker.authorize(session, operation, ResourceType::Topic, &meta.name) {
            Ok(meta)
        } else {
            Err(topic_denied())
        };
    }
    let name = topic.name.0.as_str();
    if !broker.authorize(session, operation, ResourceType::Topic, name) {
        return Err(topic_denied());
    }
    if let Some(meta) = broker.topics.get(name) {
        return Ok(meta);
    }
    validate_topic_name(name)?;
    if auto_create
        && broker.config().get_bool("auto.create.topics.enable")
        && may_create_topic(broker, session, name)
    {
        return broker.auto_create_topic(name);
    }
    Err(unknown_partition())
}

/// CREATE on the cluster or on the topic (Kafka's rule for creating one).
fn may_create_topic(broker: &Broker, session: &Session, name: &str) -> bool {
    broker.authorize(
        session,
        Operation::Create,
        ResourceType::Cluster,
        CLUSTER_NAME,
    ) || broker.authorize(session, Operation::Create, ResourceType::Topic, name)
}

fn topic_denied() -> ApiError {
    ApiError::code(ResponseError::TopicAuthorizationFailed)
}

fn unknown_partition() -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        "This server does not host this topic-partition.",
    )
}

/// For a topic named in a request (never auto-created), a lookup from
/// partition number to its log; every partition of an unknown topic, or
/// of one the session may not do `operation` on, fails with the topic's
/// error.
fn partition_lookup<'a>(
    broker: &'a Broker,
    session: &Session,
    operation: Operation,
    name: &TopicName,
) -> impl Fn(i32) -> Result<Arc<PartitionLog>, ApiError> + 'a {
    let meta = resolve_topic(
        broker,
        session,
        operation,
        &TopicRef::new(false, name, uuid::Uuid::nil()),
        false,
    );
    move |partition| {
        let meta = meta.as_ref().map_err(Clone::clone)?;
        partition_log(broker, &meta.name, partition)
    }
}

/// Runs `f`, which may block for long (disk work or inflating that grows
/// with the request), without stalling the other tasks of this worker: on a
/// multi-threaded runtime the worker first hands its queue to another
/// thread. (A current-thread runtime, as in some tests, just runs `f`.)
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The group coordinator, after creating `__consumer_offsets` if this is
/// the first group request (Kafka creates it on first use; the partitions'
/// directories are disk work, hence `blocking`). If it cannot be created,
/// the coordinator answers COORDINATOR_NOT_AVAILABLE.
fn group_coordinator(broker: &Broker) -> &GroupCoordinator {
    if !broker.groups.is_attached() {
        if let Err(e) = blocking(|| broker.ensure_offsets_topic()) {
            tracing::error!(cause = %e, "cannot create {}", crate::group::OFFSETS_TOPIC);
        }
    }
    &broker.groups
}

/// The transaction coordinator, after creating `__transaction_state` if
/// this is the first transactional request (as [`group_coordinator`]).
fn transaction_coordinator(broker: &Broker) -> &crate::txn::TransactionCoordinator {
    if !broker.txns.is_attached() {
        if let Err(e) = blocking(|| broker.ensure_transaction_topic()) {
            tracing::error!(cause = %e, "cannot create {}", crate::txn::TXN_TOPIC);
        }
    }
    &broker.txns
}

/// The log of one partition of a known topic, which this node leads.
///
/// # Errors
/// UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER when another
/// node leads it.
fn partition_log(
    broker: &Broker,
    topic: &str,
    partition: i32,
) -> Result<Arc<PartitionLog>, ApiError> {
    let log = broker
        .logs
        .get(topic, partition)
        .ok_or_else(unknown_partition)?;
    if broker.in_quorum() && broker.leader_of(topic, partition) != Some(broker.node_id()) {
        return Err(ApiError::new(
            ResponseError::NotLeaderOrFollower,
            "This server is not the leader for that topic-partition.",
        ));
    }
    Ok(log)
}

/// A client's `current_leader_epoch` (-1: none) against the partition's:
/// older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH, as Kafka.
fn check_leader_epoch(broker: &Broker, log: &PartitionLog, epoch: i32) -> Result<(), ApiError> {
    let current = broker
        .partition_state(&log.topic, log.partition)
        .map_or(0, |s| s.leader_epoch);
    if epoch >= 0 && epoch < current {
        return Err(ApiError::code(ResponseError::FencedLeaderEpoch));
    }
    if epoch > current {
        return Err(ApiError::code(ResponseError::UnknownLeaderEpoch));
    }
    Ok(())
}

/// KIP-951: a partition refused with NOT_LEADER_OR_FOLLOWER or
/// FENCED_LEADER_EPOCH is answered with its current leader and leader
/// epoch, so a client moves to the new leader without a Metadata round
/// trip; `None` for any other error or a partition without a leader.
fn leader_hint(
    broker: &Broker,
    topic: &str,
    partition: i32,
    error: &ApiError,
) -> Option<(i32, i32)> {
    if !matches!(
        error.code,
        ResponseError::NotLeaderOrFollower | ResponseError::FencedLeaderEpoch
    ) {
        return None;
    }
    broker
        .partition_state(topic, partition)
        .filter(|s| s.leader >= 0)
        .map(|s| (s.leader, s.leader_epoch))
}

/// The endpoints of the live brokers among `leaders` (KIP-951's
/// `node_endpoints`, beside the hints of [`leader_hint`]).
fn leader_endpoints(
    broker: &Broker,
    listener: &str,
    leaders: &std::collections::BTreeSet<i32>,
) -> Vec<crate::cluster::BrokerEndpoint> {
    let cluster = broker.cluster().seen_from(listener);
    leaders
        .iter()
        .filter_map(|id| cluster.broker(*id).cloned())
        .collect()
}

/// Kafka's error for a refused append.
fn append_error(e: AppendError) -> ApiError {
    let code = match &e {
        AppendError::Corrupt(_) => ResponseError::CorruptMessage,
        AppendError::Invalid(_)
        | AppendError::Records {
            invalid_timestamp: false,
            ..
        } => ResponseError::InvalidRecord,
        AppendError::Records { .. } => ResponseError::InvalidTimestamp,
        AppendError::TooLarge { .. } => ResponseError::MessageTooLarge,
        AppendError::Sequence(SequenceError::StaleEpoch { .. }) => {
            ResponseError::InvalidProducerEpoch
        }
        AppendError::Sequence(SequenceError::OutOfOrder { .. }) => {
            ResponseError::OutOfOrderSequenceNumber
        }
        AppendError::Storage(_) => ResponseError::KafkaStorageError,
        AppendError::Deleted => ResponseError::UnknownTopicOrPartition,
    };
    if matches!(e, AppendError::Storage(_)) {
        tracing::error!(cause = %e, "append failed");
    }
    ApiError::new(code, e.to_string())
}

/// Kafka's error for a refused read.
fn read_error(e: ReadError) -> ApiError {
    match e {
        ReadError::OffsetOutOfRange => ApiError::code(ResponseError::OffsetOutOfRange),
        ReadError::Deleted => unknown_partition(),
        ReadError::Storage(m) => {
            tracing::error!(cause = %m, "read failed");
            ApiError::new(ResponseError::KafkaStorageError, m)
        }
    }
}

/// A nullable string field that older versions carry as non-nullable:
/// null becomes "" there.
fn nullable_for(nullable: bool, value: Option<String>) -> Option<StrBytes> {
    match value {
        None if !nullable => Some(StrBytes::default()),
        other => other.map(str_bytes),
    }
}

/// A wire string from a Rust one.
/// The `*_authorized_operations` bits of a resource: every operation the
/// resource type has that the session may do; `all` (the type's
/// operations) with no authorizer.
fn authorized_operations(
    broker: &Broker,
    session: &Session,
    resource: ResourceType,
    name: &str,
    all: i32,
) -> i32 {
    if !broker.authorizer_enabled() {
        return all;
    }
    Operation::supported_by(resource)
        .iter()
        .filter(|op| broker.authorize(session, **op, resource, name))
        .fold(0, |bits, op| bits | (1 << (*op as i32)))
}

/// Whether the session may do `operation` on a config resource of
/// DescribeConfigs / AlterConfigs (topic 2, broker 4, broker logger 8:
/// the cluster's right; group 16).
///
/// # Errors
/// TOPIC_, CLUSTER_ or GROUP_AUTHORIZATION_FAILED.
fn config_resource_allowed(
    broker: &Broker,
    session: &Session,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Result<(), ApiError> {
    let (resource, name, denied) = match resource_type {
        2 => (
            ResourceType::Topic,
            name,
            ResponseError::TopicAuthorizationFailed,
        ),
        16 => (
            ResourceType::Group,
            name,
            ResponseError::GroupAuthorizationFailed,
        ),
        _ => (
            ResourceType::Cluster,
            CLUSTER_NAME,
            ResponseError::ClusterAuthorizationFailed,
        ),
    };
    if broker.authorize(session, operation, resource, name) {
        Ok(())
    } else {
        Err(ApiError::code(denied))
    }
}

/// Kafka's answer to the ACL APIs without an authorizer.
fn security_disabled() -> ApiError {
    ApiError::new(
        ResponseError::SecurityDisabled,
        "No Authorizer is configured.",
    )
}

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// A wire topic name from a Rust one.
fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// The names that occur more than once in `names`.
fn duplicates<'a>(names: impl IntoIterator<Item = &'a str>) -> std::collections::HashSet<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().filter(|n| !seen.insert(*n)).collect()
}

/// Checks a replica list: non-empty, no broker twice, every broker live.
///
/// # Errors
/// INVALID_REPLICA_ASSIGNMENT with a Kafka-style message.
fn check_replicas(
    broker: &Broker,
    partition: i32,
    replicas: &[i32],
) -> Result<(), crate::ApiError> {
    use kafka_protocol::error::ResponseError::InvalidReplicaAssignment;
    if replicas.is_empty() {
        return Err(crate::ApiError::new(
            InvalidReplicaAssignment,
            format!("The manual partition assignment includes a partition ({partition}) with no replicas."),
        ));
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(crate::ApiError::new(
            InvalidReplicaAssignment,
            format!("The manual partition assignment includes the partition {partition} with duplicate replicas."),
        ));
    }
    if let Some(missing) = replicas
        .iter()
        .find(|id| !broker.cluster().has_broker(**id))
    {
        return Err(crate::ApiError::new(
            InvalidReplicaAssignment,
            format!("The manual partition assignment includes broker {missing}, but no such broker is registered."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_advertised_api_has_a_handler() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::BrokerConfig::new();
        config
            .set("log.dir", dir.path().to_str().unwrap(), "test")
            .unwrap();
        let broker = Broker::open(
            config,
            vec![crate::cluster::ListenerEndpoint {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            }],
        )
        .unwrap();
        let session = Session {
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            listener: "PLAINTEXT".into(),
            principal: Principal::anonymous(),
        };
        for api in crate::protocol::SUPPORTED_APIS {
            let request = default_request(api.key);
            let header = kafka_protocol::messages::RequestHeader::default()
                .with_request_api_key(api.key as i16)
                .with_request_api_version(api.min);
            let request = Request {
                header,
                body: request,
            };
            if is_sasl(&request) {
                // Answered by `sasl_exchange`, on the connection's state.
                continue;
            }
            let result = dispatch(&broker, &session, request).await;
            assert!(result.is_ok(), "{:?} has no handler", api.key);
        }
    }

    fn default_request(key: kafka_protocol::messages::ApiKey) -> RequestKind {
        use kafka_protocol::messages::*;
        match key {
            ApiKey::Produce => RequestKind::Produce(Default::default()),
            ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
            ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
            ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
            ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
            ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
            ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
            ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
            ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
            ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
            ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
            ApiKey::OffsetDelete => RequestKind::OffsetDelete(Default::default()),
            ApiKey::Fetch => RequestKind::Fetch(Default::default()),
            ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
            ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
            ApiKey::DeleteRecords => RequestKind::DeleteRecords(Default::default()),
            ApiKey::InitProducerId => RequestKind::InitProducerId(Default::default()),
            ApiKey::Metadata => RequestKind::Metadata(Default::default()),
            ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
            ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
            ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
            ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
            ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
            ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
            ApiKey::IncrementalAlterConfigs => {
                RequestKind::IncrementalAlterConfigs(Default::default())
            }
            ApiKey::DescribeCluster => RequestKind::DescribeCluster(Default::default()),
            ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(Default::default()),
            ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(Default::default()),
            ApiKey::EndTxn => RequestKind::EndTxn(Default::default()),
            ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(Default::default()),
            ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(Default::default()),
            ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(Default::default()),
            ApiKey::ListTransactions => RequestKind::ListTransactions(Default::default()),
            ApiKey::DescribeProducers => RequestKind::DescribeProducers(Default::default()),
            ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(Default::default()),
            ApiKey::ElectLeaders => RequestKind::ElectLeaders(Default::default()),
            ApiKey::AlterPartitionReassignments => {
                RequestKind::AlterPartitionReassignments(Default::default())
            }
            ApiKey::ListPartitionReassignments => {
                RequestKind::ListPartitionReassignments(Default::default())
            }
            ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(Default::default()),
            ApiKey::SaslHandshake => RequestKind::SaslHandshake(Default::default()),
            ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(Default::default()),
            ApiKey::DescribeAcls => RequestKind::DescribeAcls(Default::default()),
            ApiKey::CreateAcls => RequestKind::CreateAcls(Default::default()),
            ApiKey::DeleteAcls => RequestKind::DeleteAcls(Default::default()),
            ApiKey::DescribeClientQuotas => RequestKind::DescribeClientQuotas(Default::default()),
            ApiKey::DescribeUserScramCredentials => {
                RequestKind::DescribeUserScramCredentials(Default::default())
            }
            ApiKey::AlterUserScramCredentials => {
                RequestKind::AlterUserScramCredentials(Default::default())
            }
            other => panic!("add {other:?} to default_request"),
        }
    }
}
