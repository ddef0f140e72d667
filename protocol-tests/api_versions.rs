//! ApiVersions (key 18): the advertised table at every served version
//! (v0-v4), the v0-layout UNSUPPORTED_VERSION answer to versions strom does
//! not know yet, and INVALID_REQUEST for a bad v3+ client software name.

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::support::{
    api_versions_request, decode_response_at, request_header, strom_table, table, TestBroker,
};
use kafka_protocol::protocol::Encodable;

/// What strom must advertise: Kafka 4.1's floors, and the maxima
/// implemented end to end (api key, min, max).
/// Every served API with Apache Kafka 4.1's advertised range (from
/// shared/kafka-4.1-api-versions.md): strom matches Kafka's floors and maxima.
const EXPECTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

fn expected_table() -> Vec<(i16, i16, i16)> {
    let mut t: Vec<_> = EXPECTED
        .iter()
        .map(|(k, min, max)| (*k as i16, *min, *max))
        .collect();
    t.sort_unstable();
    t
}

#[tokio::test]
async fn every_version_advertises_the_table() {
    assert_eq!(
        strom_table(),
        expected_table(),
        "strom::protocol::SUPPORTED_APIS"
    );
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    for version in 0..=4 {
        let response: ApiVersionsResponse = client
            .request(ApiKey::ApiVersions, version, &api_versions_request())
            .await;
        assert_eq!(response.error_code, 0, "v{version} error code");
        assert_eq!(
            table(&response.api_keys),
            expected_table(),
            "v{version} table"
        );
        let unique: std::collections::BTreeSet<i16> =
            response.api_keys.iter().map(|a| a.api_key).collect();
        assert_eq!(
            unique.len(),
            response.api_keys.len(),
            "v{version}: no key twice"
        );
        if version >= 1 {
            assert!(response.throttle_time_ms >= 0, "v{version} throttle time");
        }
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn every_version_on_its_own_connection() {
    // Clients send ApiVersions first on every new connection.
    let broker = TestBroker::start().await;
    for version in 0..=4 {
        let mut client = broker.connect().await;
        let response: ApiVersionsResponse = client
            .request(ApiKey::ApiVersions, version, &api_versions_request())
            .await;
        assert_eq!(response.error_code, 0, "v{version} error code");
        assert_eq!(table(&response.api_keys), strom_table(), "v{version} table");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_future_version_gets_v0_layout_with_unsupported_version() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    for (correlation_id, version) in [(41, 5), (42, 9), (43, 127)] {
        // A newer client sends its own body layout; strom cannot parse it
        // and must not try. Use the v4 body under a v`version` header
        // (flexible header v2, as every v3+ ApiVersions request has).
        let mut frame = bytes::BytesMut::new();
        request_header(ApiKey::ApiVersions as i16, version, correlation_id)
            .encode(&mut frame, 2)
            .expect("header");
        api_versions_request()
            .encode(&mut frame, 4)
            .expect("v4 body");
        client.send_frame(&frame).await;
        let response = client.read_frame().await;
        let (echoed, body): (i32, ApiVersionsResponse) = decode_response_at(0, 0, response)
            .unwrap_or_else(|e| panic!("v{version} answer in the v0 layout: {e}"));
        assert_eq!(echoed, correlation_id, "v{version} correlation id");
        assert_eq!(body.error_code, 35, "v{version}: UNSUPPORTED_VERSION");
        assert_eq!(table(&body.api_keys), strom_table(), "v{version} table");
    }
    // The connection stays usable: the client retries with a known version.
    client.api_versions_ok().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn invalid_client_software_name_is_invalid_request() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let cases: &[(&str, &str, &str)] = &[
        ("leading dash and a space", "-bad name", "1.0"),
        ("trailing dot", "client.", "1.0"),
        ("empty name", "", "1.0"),
        ("bad version", "client", "1.0 beta"),
    ];
    for version in [3, 4] {
        for (what, name, software_version) in cases {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_string((*name).to_owned()))
                .with_client_software_version(StrBytes::from_string(
                    (*software_version).to_owned(),
                ));
            let response: ApiVersionsResponse =
                client.request(ApiKey::ApiVersions, version, &request).await;
            assert_eq!(
                response.error_code, 42,
                "v{version} {what} ({name:?} {software_version:?}): INVALID_REQUEST"
            );
        }
        // Versions before v3 carry no software name: never INVALID_REQUEST.
    }
    for version in 0..3 {
        let response: ApiVersionsResponse = client
            .request(ApiKey::ApiVersions, version, &ApiVersionsRequest::default())
            .await;
        assert_eq!(response.error_code, 0, "v{version} has no software name");
    }
    client.api_versions_ok().await;
    broker.shutdown().await;
}
