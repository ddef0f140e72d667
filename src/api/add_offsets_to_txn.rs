//! AddOffsetsToTxn v0-v4: adds the group's `__consumer_offsets` partition
//! to the producer's transaction, so its TxnOffsetCommit becomes visible
//! with the transaction's commit marker. Errors as AddPartitionsToTxn.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;

/// Answers an AddOffsetsToTxn request.
pub fn handle(broker: &Broker, request: &AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
    let groups = super::group_coordinator(broker);
    let error = match groups.partition_for(&request.group_id.0) {
        None => Some(kafka_protocol::error::ResponseError::CoordinatorNotAvailable),
        Some(partition) => super::transaction_coordinator(broker)
            .add_partitions(
                &request.transactional_id.0,
                request.producer_id.0,
                request.producer_epoch,
                &[(OFFSETS_TOPIC.to_owned(), partition)],
            )
            .err(),
    };
    AddOffsetsToTxnResponse::default().with_error_code(error.map_or(0, |e| e.code()))
}
