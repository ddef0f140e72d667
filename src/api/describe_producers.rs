//! DescribeProducers v0: per partition, every idempotent or transactional
//! producer the partition knows: id, epoch, last sequence, last timestamp,
//! and the first offset of its open transaction (-1 if none), which
//! `kafka-transactions.sh find-hanging` reads.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::partition_lookup;
use crate::broker::Broker;
use crate::security::acl::Operation;
use crate::security::Session;

/// Answers a DescribeProducers request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let log_of = partition_lookup(broker, session, Operation::Read, &topic.name);
            let partitions = topic
                .partition_indexes
                .iter()
                .map(|p| {
                    let response = PartitionResponse::default().with_partition_index(*p);
                    match log_of(*p) {
                        Err(e) => response
                            .with_error_code(e.code_i16())
                            .with_error_message(e.message.map(super::str_bytes)),
                        Ok(log) => response.with_active_producers(
                            log.producers()
                                .into_iter()
                                .map(|(producer, open)| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(producer.producer_id))
                                        .with_producer_epoch(i32::from(producer.epoch))
                                        .with_last_sequence(producer.last_sequence)
                                        .with_last_timestamp(producer.last_timestamp)
                                        .with_coordinator_epoch(producer.coordinator_epoch)
                                        .with_current_txn_start_offset(open.unwrap_or(-1))
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
