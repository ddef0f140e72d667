//! Transactions byte by byte (protocol version 1): FindCoordinator for a
//! transactional id, InitProducerId, AddPartitionsToTxn, transactional
//! Produce, EndTxn, TxnOffsetCommit, read_committed Fetch and ListOffsets,
//! OffsetFetch `require_stable`, DescribeTransactions, ListTransactions,
//! DescribeProducers, WriteTxnMarkers, and Kafka's error codes where a
//! client gets the protocol wrong.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::support::{text, Client, TestBroker};

const TOPIC: &str = "txn-bytes";
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
const PRODUCER_FENCED: i16 = 90;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

pub fn tid(s: &str) -> TransactionalId {
    TransactionalId(text(s))
}

/// A transactional batch of `count` records by (`producer`, `epoch`)
/// starting at `sequence`.
pub fn batch(producer: i64, epoch: i16, sequence: i32, count: i32) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: sequence + i,
            timestamp: now,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}

/// A transactional Produce of `records` to `topic`-`partition` at
/// `version`: the partition's error code.
pub async fn produce_to(
    client: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
    transactional_id: &str,
    version: i16,
) -> i16 {
    let request = ProduceRequest::default()
        .with_transactional_id(Some(tid(transactional_id)))
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let response: ProduceResponse = client.request(ApiKey::Produce, version, &request).await;
    response.responses[0].partition_responses[0].error_code
}

async fn produce(client: &mut Client, records: Bytes, transactional_id: &str) -> i16 {
    produce_to(client, TOPIC, 0, records, transactional_id, 9).await
}

async fn init(client: &mut Client, id: &str, timeout_ms: i32) -> InitProducerIdResponse {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    client.request(ApiKey::InitProducerId, 4, &request).await
}

async fn add_partition(client: &mut Client, id: &str, producer: i64, epoch: i16) -> i16 {
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid(id))
        .with_v3_and_below_producer_id(ProducerId(producer))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(text(TOPIC)))
            .with_partitions(vec![0])]);
    let response: AddPartitionsToTxnResponse = client
        .request(ApiKey::AddPartitionsToTxn, 3, &request)
        .await;
    response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

async fn end(client: &mut Client, id: &str, producer: i64, epoch: i16, commit: bool) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(producer))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let response: EndTxnResponse = client.request(ApiKey::EndTxn, 3, &request).await;
    response.error_code
}

/// A read_committed fetch from offset 0: (high watermark, last stable
/// offset, aborted (producer, first offset), record bytes).
async fn fetch_committed(client: &mut Client) -> (i64, i64, Vec<(i64, i64)>, usize) {
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(text(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = client.request(ApiKey::Fetch, 11, &request).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let aborted = p
        .aborted_transactions
        .as_ref()
        .expect("read_committed: a list")
        .iter()
        .map(|t| (t.producer_id.0, t.first_offset))
        .collect();
    let bytes = p.records.as_ref().map_or(0, Bytes::len);
    (p.high_watermark, p.last_stable_offset, aborted, bytes)
}

async fn latest_committed(client: &mut Client) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(1)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(text(TOPIC)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client.request(ApiKey::ListOffsets, 5, &request).await;
    response.topics[0].partitions[0].offset
}

async fn setup() -> (TestBroker, Client) {
    let broker = TestBroker::start_with(&[("transaction.max.timeout.ms", "60000")]).await;
    let mut client = broker.connect().await;
    let create = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(TOPIC)))
            .with_num_partitions(1)
            .with_replication_factor(1)]);
    let created: CreateTopicsResponse = client.request(ApiKey::CreateTopics, 5, &create).await;
    assert_eq!(created.topics[0].error_code, 0);
    let find = FindCoordinatorRequest::default()
        .with_key_type(1)
        .with_coordinator_keys(vec![text("tx")]);
    let found: FindCoordinatorResponse = client.request(ApiKey::FindCoordinator, 4, &find).await;
    assert_eq!(found.coordinators[0].error_code, 0, "{found:?}");
    (broker, client)
}

#[tokio::test]
async fn commit_abort_and_read_committed() {
    let (_broker, mut client) = setup().await;
    assert_eq!(
        init(&mut client, "tx", 60_001).await.error_code,
        INVALID_TRANSACTION_TIMEOUT
    );
    let first = init(&mut client, "tx", 30_000).await;
    assert_eq!(first.error_code, 0);
    let (pid, epoch) = (first.producer_id.0, first.producer_epoch);

    // Not added to the transaction yet: refused, nothing stored.
    assert_eq!(
        produce(&mut client, batch(pid, epoch, 0, 2), "tx").await,
        INVALID_TXN_STATE
    );
    assert_eq!(add_partition(&mut client, "tx", pid, epoch).await, 0);
    assert_eq!(produce(&mut client, batch(pid, epoch, 0, 2), "tx").await, 0);
    let (hw, lso, aborted, bytes) = fetch_committed(&mut client).await;
    assert_eq!(
        (hw, lso, aborted.len(), bytes),
        (2, 0, 0, 0),
        "open: nothing stable"
    );
    assert_eq!(latest_committed(&mut client).await, 0);

    // Abort: the marker takes offset 2; the data is reported as aborted.
    assert_eq!(end(&mut client, "tx", pid, epoch, false).await, 0);
    assert_eq!(
        end(&mut client, "tx", pid, epoch, false).await,
        0,
        "a retry"
    );
    assert_eq!(
        end(&mut client, "tx", pid, epoch, true).await,
        INVALID_TXN_STATE
    );
    let (hw, lso, aborted, bytes) = fetch_committed(&mut client).await;
    assert_eq!((hw, lso), (3, 3));
    assert_eq!(aborted, [(pid, 0)]);
    assert!(bytes > 0, "the aborted batch and its marker are returned");
    // A produce after the end, into no transaction: refused.
    assert_eq!(
        produce(&mut client, batch(pid, epoch, 2, 1), "tx").await,
        INVALID_TXN_STATE
    );

    // Commit: nothing aborted in its range.
    assert_eq!(add_partition(&mut client, "tx", pid, epoch).await, 0);
    assert_eq!(produce(&mut client, batch(pid, epoch, 2, 3), "tx").await, 0);
    assert_eq!(end(&mut client, "tx", pid, epoch, true).await, 0);
    let (hw, lso, aborted, _) = fetch_committed(&mut client).await;
    assert_eq!((hw, lso), (7, 7));
    assert_eq!(aborted, [(pid, 0)], "only the first transaction");
    assert_eq!(latest_committed(&mut client).await, 7);

    // Wrong producer ids and epochs.
    assert_eq!(
        add_partition(&mut client, "tx", pid + 1000, epoch).await,
        INVALID_PRODUCER_ID_MAPPING
    );
    let second = init(&mut client, "tx", 30_000).await;
    assert_eq!(second.error_code, 0);
    assert_eq!(
        (second.producer_id.0, second.producer_epoch),
        (pid, epoch + 1)
    );
    assert_eq!(
        add_partition(&mut client, "tx", pid, epoch).await,
        PRODUCER_FENCED
    );
    assert_eq!(
        end(&mut client, "tx", pid, epoch, true).await,
        PRODUCER_FENCED
    );
    assert_eq!(
        produce(&mut client, batch(pid, epoch, 5, 1), "tx").await,
        INVALID_PRODUCER_EPOCH
    );
}

#[tokio::test]
async fn admin_views_and_markers() {
    let (_broker, mut client) = setup().await;
    let init = init(&mut client, "tx", 30_000).await;
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert_eq!(add_partition(&mut client, "tx", pid, epoch).await, 0);
    assert_eq!(produce(&mut client, batch(pid, epoch, 0, 2), "tx").await, 0);

    let described: DescribeTransactionsResponse = client
        .request(
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![tid("tx"), tid("nope")]),
        )
        .await;
    let tx = &described.transaction_states[0];
    assert_eq!(
        (tx.error_code, tx.transaction_state.as_str()),
        (0, "Ongoing")
    );
    assert_eq!((tx.producer_id.0, tx.producer_epoch), (pid, epoch));
    assert_eq!(tx.topics[0].topic.0.as_str(), TOPIC);
    assert_eq!(
        described.transaction_states[1].error_code,
        TRANSACTIONAL_ID_NOT_FOUND
    );

    let listed: ListTransactionsResponse = client
        .request(
            ApiKey::ListTransactions,
            1,
            &ListTransactionsRequest::default()
                .with_state_filters(vec![text("Ongoing"), text("Sideways")])
                .with_duration_filter(-1),
        )
        .await;
    assert_eq!(listed.error_code, 0);
    assert_eq!(listed.unknown_state_filters, [text("Sideways")]);
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.transaction_states[0].producer_id.0, pid);

    let producers: DescribeProducersResponse = client
        .request(
            ApiKey::DescribeProducers,
            0,
            &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partition_indexes(vec![0])]),
        )
        .await;
    let active = &producers.topics[0].partitions[0].active_producers;
    assert_eq!(active.len(), 1);
    assert_eq!(
        (
            active[0].producer_id.0,
            active[0].last_sequence,
            active[0].current_txn_start_offset
        ),
        (pid, 1, 0)
    );

    // An admin abort (kafka-transactions.sh abort) ends the partition's
    // transaction with a marker: the LSO moves past it.
    let markers: WriteTxnMarkersResponse = client
        .request(
            ApiKey::WriteTxnMarkers,
            1,
            &WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_transaction_result(false)
                .with_coordinator_epoch(0)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(text(TOPIC)))
                    .with_partition_indexes(vec![0])])]),
        )
        .await;
    assert_eq!(markers.markers[0].topics[0].partitions[0].error_code, 0);
    let (hw, lso, aborted, _) = fetch_committed(&mut client).await;
    assert_eq!((hw, lso, aborted), (3, 3, vec![(pid, 0)]));
}

#[tokio::test]
async fn transactional_offsets_wait_for_the_commit() {
    let (_broker, mut client) = setup().await;
    let init = init(&mut client, "tx", 30_000).await;
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    let commit = |offset| {
        TxnOffsetCommitRequest::default()
            .with_transactional_id(tid("tx"))
            .with_group_id(GroupId(text("g")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)])])
    };
    let fetch = |stable: bool| {
        OffsetFetchRequest::default()
            .with_group_id(GroupId(text("g")))
            .with_require_stable(stable)
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(text(TOPIC)))
                .with_partition_indexes(vec![0])]))
    };
    // Without AddOffsetsToTxn the group's partition is not in the transaction.
    let refused: TxnOffsetCommitResponse =
        client.request(ApiKey::TxnOffsetCommit, 3, &commit(5)).await;
    assert_eq!(
        refused.topics[0].partitions[0].error_code,
        INVALID_TXN_STATE
    );
    let added: AddOffsetsToTxnResponse = client
        .request(
            ApiKey::AddOffsetsToTxn,
            3,
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(tid("tx"))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(GroupId(text("g"))),
        )
        .await;
    assert_eq!(added.error_code, 0);
    let stored: TxnOffsetCommitResponse =
        client.request(ApiKey::TxnOffsetCommit, 3, &commit(5)).await;
    assert_eq!(stored.topics[0].partitions[0].error_code, 0);

    let pending: OffsetFetchResponse = client.request(ApiKey::OffsetFetch, 7, &fetch(true)).await;
    let p = &pending.topics[0].partitions[0];
    assert_eq!(
        (p.error_code, p.committed_offset),
        (UNSTABLE_OFFSET_COMMIT, -1)
    );
    let unstable_ok: OffsetFetchResponse =
        client.request(ApiKey::OffsetFetch, 7, &fetch(false)).await;
    assert_eq!(
        unstable_ok.topics[0].partitions[0].committed_offset, -1,
        "not visible yet"
    );

    assert_eq!(end(&mut client, "tx", pid, epoch, true).await, 0);
    let visible: OffsetFetchResponse = client.request(ApiKey::OffsetFetch, 7, &fetch(true)).await;
    let p = &visible.topics[0].partitions[0];
    assert_eq!((p.error_code, p.committed_offset), (0, 5));
}
