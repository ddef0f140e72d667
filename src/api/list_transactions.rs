//! ListTransactions v0-v2: transactional ids with their producer id and
//! state, filtered by state (unknown names are echoed in
//! `unknown_state_filters`), producer id, and (v1+) how long they have
//! been running (`duration_filter` ms, -1 for any).

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;
use crate::txn::TxnState;

/// Answers a ListTransactions request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: &ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut states = Vec::new();
    let mut unknown = Vec::new();
    for name in &request.state_filters {
        match TxnState::from_name(name) {
            Some(state) => states.push(state),
            None => unknown.push(name.clone()),
        }
    }
    if !unknown.is_empty() && states.is_empty() {
        // Only unknown states asked for: nothing matches.
        return ListTransactionsResponse::default().with_unknown_state_filters(unknown);
    }
    let producers: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    match broker
        .txns
        .list(&states, &producers, request.duration_filter)
    {
        Err(e) => ListTransactionsResponse::default().with_error_code(e.code()),
        Ok(listed) => ListTransactionsResponse::default()
            .with_unknown_state_filters(unknown)
            .with_transaction_states(
                listed
                    .into_iter()
                    // Those the session may describe, as Kafka.
                    .filter(|(id, _, _)| {
                        broker.authorize(
                            session,
                            Operation::Describe,
                            ResourceType::TransactionalId,
                            id,
                        )
                    })
                    .map(|(id, pid, state)| {
                        TransactionState::default()
                            .with_transactional_id(TransactionalId(str_bytes(id)))
                            .with_producer_id(ProducerId(pid))
                            .with_transaction_state(str_bytes(state.name()))
                    })
                    .collect(),
            ),
    }
}
