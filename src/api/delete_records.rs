//! DeleteRecords v0-v2: move each partition's log start offset forward
//! (`-1` means the high watermark); whole segments below it are deleted.
//! An offset past the high watermark is OFFSET_OUT_OF_RANGE.
//!
//! A log whose `cleanup.policy` lacks `delete` (compact only) refuses with
//! POLICY_VIOLATION before the offset is looked at, as Kafka's
//! `Partition.deleteRecordsOnLeader` does: only the cleaner removes records
//! of a compacted log, so a key's latest value is never lost to a client
//! moving the log start. Kafka's message (kept for the broker log; the
//! response has no message field) is "Records of partition <topic>-<n> can
//! not be deleted due to the configured policy".

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{partition_lookup, read_error};
use crate::broker::Broker;
use crate::error::ApiError;
use crate::log::PartitionLog;
use crate::security::acl::Operation;
use crate::security::Session;

/// Deletes the records of `log` below `offset`, unless its policy forbids.
///
/// # Errors
/// POLICY_VIOLATION for a log without `delete` in its `cleanup.policy`;
/// what [`PartitionLog::delete_records_before`] refuses.
fn delete_records(
    log: &PartitionLog,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, ApiError> {
    if !log.config().delete {
        let message = format!(
            "Records of partition {topic}-{partition} can not be deleted due to the configured policy"
        );
        tracing::debug!(%message, "DeleteRecords refused");
        return Err(ApiError::new(ResponseError::PolicyViolation, message));
    }
    log.delete_records_before(offset).map_err(read_error)
}

/// Answers a DeleteRecords request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let log_of = partition_lookup(broker, session, Operation::Delete, &topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let outcome = log_of(p.partition_index).and_then(|log| {
                        delete_records(&log, &topic.name, p.partition_index, p.offset)
                    });
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
