//! DeleteRecords v0-v2: move each partition's log start offset forward
//! (`-1` means the high watermark); whole segments below it are deleted.
//! An offset past the high watermark is OFFSET_OUT_OF_RANGE.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{partition_lookup, read_error};
use crate::broker::Broker;

/// Answers a DeleteRecords request.
pub fn handle(broker: &Broker, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let log_of = partition_lookup(broker, &topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let outcome = log_of(p.partition_index)
                        .and_then(|log| log.delete_records_before(p.offset).map_err(read_error));
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    match outcome {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(e) => result.with_error_code(e.code_i16()).with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
