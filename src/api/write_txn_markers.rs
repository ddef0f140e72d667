//! WriteTxnMarkers v1: writes commit or abort markers into partitions, as
//! a transaction coordinator does; clients send it to abort a hanging
//! transaction (`kafka-transactions.sh abort`). Per partition:
//! UNKNOWN_TOPIC_OR_PARTITION if unknown, INVALID_PRODUCER_EPOCH for an
//! epoch older than the producer's.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::broker::Broker;

/// Answers a WriteTxnMarkers request.
pub fn handle(broker: &Broker, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let markers = request
        .markers
        .into_iter()
        .map(|marker| {
            let topics = marker
                .topics
                .into_iter()
                .map(|topic| {
                    let partitions = topic
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let error: Option<ResponseError> = broker
                                .write_marker(
                                    &topic.name.0,
                                    *p,
                                    marker.producer_id.0,
                                    marker.producer_epoch,
                                    marker.transaction_result,
                                )
                                .err();
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(error.map_or(0, |e| e.code()))
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name)
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics)
        })
        .collect();
    WriteTxnMarkersResponse::default().with_markers(markers)
}
