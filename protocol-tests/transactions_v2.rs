//! Transaction protocol version 2 (KIP-890 part 2) byte by byte: the
//! finalized `transaction.version` feature in ApiVersions, Produce v12 and
//! TxnOffsetCommit v5 adding partitions without AddPartitionsToTxn /
//! AddOffsetsToTxn, EndTxn v5 bumping the epoch per transaction (retries,
//! an abort of nothing, the markers' epoch seen by the next write).
//!
//! With `STROM_EXTERNAL_BOOTSTRAP=host:port` the same test runs against
//! that broker instead (an Apache Kafka 4.1, to check the test itself).

use std::time::{Duration, Instant};

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;

use crate::support::{api_versions_request, text, Client, Target};
use crate::transactions::{batch, produce_to as produce, tid};

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const TRANSACTION_ABORTABLE: i16 = 120;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Retries `attempt` while it answers a coordinator-loading error.
async fn until_ready<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (i16, T)>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, value) = attempt().await;
        if ![COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE].contains(&code) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: still {code}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// EndTxn v5: (error, producer id, epoch), retried (as clients do) while
/// CONCURRENT_TRANSACTIONS.
async fn end(client: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool) -> (i16, i64, i16) {
    let request = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r: EndTxnResponse = client.request(ApiKey::EndTxn, 5, &request).await;
        if r.error_code != CONCURRENT_TRANSACTIONS || Instant::now() > deadline {
            return (r.error_code, r.producer_id.0, r.producer_epoch);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// DescribeTransactions: (state, epoch, partitions of `topic`).
async fn describe(client: &mut Client, id: &str, topic: &str) -> (String, i16, Vec<i32>) {
    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![tid(id)]);
    let r: DescribeTransactionsResponse = client
        .request(ApiKey::DescribeTransactions, 0, &request)
        .await;
    let s = &r.transaction_states[0];
    assert_eq!(s.error_code, 0, "{s:?}");
    let mut partitions: Vec<i32> = s
        .topics
        .iter()
        .filter(|t| t.topic.0.as_str() == topic)
        .flat_map(|t| t.partitions.clone())
        .collect();
    partitions.sort_unstable();
    (
        s.transaction_state.to_string(),
        s.producer_epoch,
        partitions,
    )
}

#[tokio::test]
async fn transaction_version_2() {
    let target = Target::start().await;
    let mut client = Client::connect(target.addr).await;
    let topic = format!("txn-v2-{}", target.run);
    let id = format!("tv2-{}", target.run);
    let group = format!("tv2-g-{}", target.run);

    // The feature, finalized at 2 with an epoch >= 0, supported 0..2: a
    // range from 0 is listed from ApiVersions v4 only (KIP-1022).
    let versions: ApiVersionsResponse = client
        .request(ApiKey::ApiVersions, 3, &api_versions_request())
        .await;
    assert!(
        !versions
            .supported_features
            .iter()
            .any(|f| f.name.as_str() == "transaction.version"),
        "v3 lists no feature supported from 0"
    );
    let finalized = versions
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .expect("transaction.version finalized");
    assert_eq!(
        (finalized.min_version_level, finalized.max_version_level),
        (2, 2)
    );
    assert!(versions.finalized_features_epoch >= 0);
    let versions: ApiVersionsResponse = client
        .request(ApiKey::ApiVersions, 4, &api_versions_request())
        .await;
    let supported = versions
        .supported_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .unwrap_or_else(|| panic!("transaction.version supported: {versions:?}"));
    assert_eq!((supported.min_version, supported.max_version), (0, 2));

    let create = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(&topic)))
            .with_num_partitions(2)
            .with_replication_factor(1)]);
    let created: CreateTopicsResponse = client.request(ApiKey::CreateTopics, 5, &create).await;
    assert_eq!(created.topics[0].error_code, 0);
    for (key_type, key) in [(1, &id), (0, &group)] {
        let find = FindCoordinatorRequest::default()
            .with_key_type(key_type)
            .with_coordinator_keys(vec![text(key)]);
        until_ready("FindCoordinator", || async {
            let found: FindCoordinatorResponse = Client::connect(target.addr)
                .await
                .request(ApiKey::FindCoordinator, 4, &find)
                .await;
            (found.coordinators[0].error_code, ())
        })
        .await;
    }
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid(&id)))
        .with_transaction_timeout_ms(30_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let init: InitProducerIdResponse = until_ready("InitProducerId", || async {
        let r: InitProducerIdResponse = Client::connect(target.addr)
            .await
            .request(ApiKey::InitProducerId, 5, &init)
            .await;
        (r.error_code, r)
    })
    .await;
    assert_eq!(init.error_code, 0);
    let (pid, e) = (init.producer_id.0, init.producer_epoch);

    // Produce v12 adds its partition; v11 and older (protocol version 1)
    // only verify, so a partition not added is refused.
    assert_eq!(
        produce(&mut client, &topic, 0, batch(pid, e, 0, 2), &id, 12).await,
        0
    );
    assert_eq!(
        produce(&mut client, &topic, 1, batch(pid, e, 0, 1), &id, 11).await,
        TRANSACTION_ABORTABLE
    );
    assert_eq!(
        produce(&mut client, &topic, 1, batch(pid, e, 0, 1), &id, 10).await,
        INVALID_TXN_STATE
    );
    assert_eq!(
        describe(&mut client, &id, &topic).await,
        ("Ongoing".to_owned(), e, vec![0])
    );

    // EndTxn v5 bumps the epoch and hands the new one over; a retry with
    // the old epoch gets the same answer; the other end is refused.
    assert_eq!(end(&mut client, &id, pid, e, true).await, (0, pid, e + 1));
    assert_eq!(end(&mut client, &id, pid, e, true).await, (0, pid, e + 1));
    assert_eq!(
        end(&mut client, &id, pid, e, false).await.0,
        INVALID_TXN_STATE
    );
    // The marker carried the new epoch: the old one cannot write, the new
    // one starts again at sequence 0.
    assert_eq!(
        produce(&mut client, &topic, 0, batch(pid, e, 2, 1), &id, 12).await,
        INVALID_PRODUCER_EPOCH
    );
    assert_eq!(
        produce(&mut client, &topic, 0, batch(pid, e + 1, 0, 1), &id, 12).await,
        0
    );
    assert_eq!(
        end(&mut client, &id, pid, e + 1, false).await,
        (0, pid, e + 2)
    );
    // An abort with nothing in the transaction still bumps.
    assert_eq!(
        end(&mut client, &id, pid, e + 2, false).await,
        (0, pid, e + 3)
    );
    // A commit with nothing in it is not a transaction.
    assert_eq!(
        end(&mut client, &id, pid, e + 3, true).await.0,
        INVALID_TXN_STATE
    );

    // TxnOffsetCommit v5 adds the group's partition itself.
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid(&id))
        .with_group_id(GroupId(text(&group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(e + 3)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(text(&topic)))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(3)
                .with_committed_leader_epoch(-1)])]);
    let stored: TxnOffsetCommitResponse = client.request(ApiKey::TxnOffsetCommit, 5, &commit).await;
    assert_eq!(stored.topics[0].partitions[0].error_code, 0);
    assert_eq!(describe(&mut client, &id, &topic).await.0, "Ongoing");
    assert_eq!(
        end(&mut client, &id, pid, e + 3, true).await,
        (0, pid, e + 4)
    );
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(text(&group)))
        .with_require_stable(true)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(text(&topic)))
            .with_partition_indexes(vec![0])]));
    // Kafka writes markers after EndTxn answers: UNSTABLE_OFFSET_COMMIT
    // until then (strom before it answers).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fetched: OffsetFetchResponse = client.request(ApiKey::OffsetFetch, 7, &fetch).await;
        let p = &fetched.topics[0].partitions[0];
        if p.error_code == UNSTABLE_OFFSET_COMMIT && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!((p.error_code, p.committed_offset), (0, 3));
        break;
    }

    // read_committed: the committed two records, the aborted one listed,
    // everything stable (2 + marker + 1 + marker).
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(text(&topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let response: FetchResponse = client.request(ApiKey::Fetch, 11, &request).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.high_watermark, p.last_stable_offset), (5, 5));
    let aborted: Vec<(i64, i64)> = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|t| (t.producer_id.0, t.first_offset))
        .collect();
    assert_eq!(aborted, [(pid, 3)]);
}
