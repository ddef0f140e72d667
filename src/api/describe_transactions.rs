//! DescribeTransactions v0: each transactional id's state, timeout, start
//! time, producer id and epoch, and partitions by topic;
//! TRANSACTIONAL_ID_NOT_FOUND for an unknown id.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Answers a DescribeTransactions request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let state = TransactionState::default().with_transactional_id(id.clone());
            let described = if broker.authorize(
                session,
                Operation::Describe,
                ResourceType::TransactionalId,
                &id.0,
            ) {
                broker.txns.describe(&id.0)
            } else {
                Err(kafka_protocol::error::ResponseError::TransactionalIdAuthorizationFailed)
            };
            match described {
                Err(e) => state
                    .with_error_code(e.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1),
                Ok(d) => {
                    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for (topic, p) in d.partitions {
                        by_topic.entry(topic).or_default().push(p);
                    }
                    state
                        .with_transaction_state(str_bytes(d.state.name()))
                        .with_transaction_timeout_ms(d.timeout_ms)
                        .with_transaction_start_time_ms(d.start_ms)
                        .with_producer_id(ProducerId(d.producer_id))
                        .with_producer_epoch(d.producer_epoch)
                        .with_topics(
                            by_topic
                                .into_iter()
                                .map(|(t, ps)| {
                                    TopicData::default()
                                        .with_topic(topic_name(&t))
                                        .with_partitions(ps)
                                })
                                .collect(),
                        )
                }
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
