//! AddPartitionsToTxn v0-v5: adds partitions to a producer's transaction
//! (v0-v3: one transaction, the client form; v4+: a batch of
//! transactions, the broker form a partition leader sends the coordinator:
//! `verify_only` checks membership without adding, otherwise the
//! partition is added as a transaction protocol version 2 write adds it).
//!
//! - Under an authorizer (v0-v3), a topic the session may not WRITE is
//!   TOPIC_AUTHORIZATION_FAILED for its partitions and the others of the
//!   transaction OPERATION_NOT_ATTEMPTED (v4+ is checked whole: CLUSTER_ACTION).
//! - A partition of an unknown topic is UNKNOWN_TOPIC_OR_PARTITION and the
//!   others of that transaction OPERATION_NOT_ATTEMPTED, as Kafka.
//! - Otherwise every partition gets the coordinator's answer:
//!   INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
//!   COORDINATOR_LOAD_IN_PROGRESS, ...

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Answers an AddPartitionsToTxn request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let writable =
            |topic: &str| broker.authorize(session, Operation::Write, ResourceType::Topic, topic);
        let results = add(
            broker,
            &writable,
            &request.v3_and_below_transactional_id.0,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            false,
            false,
            &request.v3_and_below_topics,
        );
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let results = request
        .transactions
        .iter()
        .map(|t| {
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(add(
                    broker,
                    &|_| true,
                    &t.transactional_id.0,
                    t.producer_id.0,
                    t.producer_epoch,
                    true,
                    t.verify_only,
                    &t.topics,
                ))
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

/// One transaction's partitions added (or verified), with an error each.
#[allow(clippy::too_many_arguments)]
fn add(
    broker: &Broker,
    writable: &dyn Fn(&str) -> bool,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    broker_form: bool,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
) -> Vec<AddPartitionsToTxnTopicResult> {
    let known = |name: &str, p: i32| {
        broker
            .topics
            .get(name)
            .is_some_and(|m| (0..m.partition_count()).contains(&p))
    };
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let any_refused = topics.iter().any(|t| !writable(&t.name));
    let any_unknown = wanted.iter().any(|(t, p)| !known(t, *p));
    let outcome = if any_refused || any_unknown {
        None
    } else if broker_form {
        // A partition leader checking a write (`verify_only`), or adding
        // its partition for a transaction protocol version 2 write, as the
        // leader's own check does when this node coordinates.
        Some(
            wanted
                .iter()
                .map(|(t, p)| {
                    broker
                        .txns
                        .append_verified(producer_id, epoch, t, *p, !verify_only, || ())
                        .err()
                })
                .collect::<Vec<_>>(),
        )
    } else {
        let error = super::transaction_coordinator(broker)
            .add_partitions(transactional_id, producer_id, epoch, &wanted)
            .err();
        Some(vec![error; wanted.len()])
    };
    let mut errors = outcome.map(Vec::into_iter);
    topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let error = match &mut errors {
                        Some(errors) => errors.next().flatten(),
                        None if !writable(&t.name) => Some(ResponseError::TopicAuthorizationFailed),
                        None if known(&t.name.0, *p) => Some(ResponseError::OperationNotAttempted),
                        None => Some(ResponseError::UnknownTopicOrPartition),
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect()
}
