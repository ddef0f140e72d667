//! A blocking raw Kafka-protocol client for the process-level tests (crash
//! and cluster): one request, one response, every step under
//! [`CLIENT_DEADLINE`]; plus the few requests rdkafka's admin client lacks
//! (ListTransactions, DescribeTransactions) and ListOffsets with an
//! isolation level.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeTransactionsRequest, DescribeTransactionsResponse,
    ListOffsetsRequest, ListOffsetsResponse, ListTransactionsRequest, ListTransactionsResponse,
    RequestHeader, ResponseHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// How long connecting, or one request and its response, may take.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(15);

/// A blocking raw Kafka-protocol connection, for the requests rdkafka's
/// admin client lacks (ListTransactions, DescribeTransactions) and for
/// ListOffsets with an isolation level.
pub struct RawClient {
    stream: TcpStream,
    correlation: i32,
}

impl RawClient {
    pub fn connect(address: SocketAddr) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&address, CLIENT_DEADLINE)
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(CLIENT_DEADLINE))
            .and_then(|()| stream.set_write_timeout(Some(CLIENT_DEADLINE)))
            .map_err(|e| format!("socket timeouts: {e}"))?;
        Ok(Self {
            stream,
            correlation: 0,
        })
    }

    /// Sends one request and reads its response.
    pub fn call<Q: Encodable, R: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Q,
    ) -> Result<R, String> {
        self.send(key, version, body)?;
        self.receive(key, version)
    }

    /// Sends one request (its response is read by [`RawClient::receive`]).
    pub fn send<Q: Encodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Q,
    ) -> Result<(), String> {
        self.correlation += 1;
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("strom-tests")))
            .encode(&mut frame, key.request_header_version(version))
            .map_err(|e| format!("{key:?}: encode header: {e}"))?;
        body.encode(&mut frame, version)
            .map_err(|e| format!("{key:?}: encode: {e}"))?;
        let size = i32::try_from(frame.len()).map_err(|e| format!("frame size: {e}"))?;
        let io = |e: std::io::Error| format!("{key:?}: {e}");
        self.stream.write_all(&size.to_be_bytes()).map_err(io)?;
        self.stream.write_all(&frame).map_err(io)
    }

    /// Reads the response to the request [`RawClient::send`] sent last.
    pub fn receive<R: Decodable>(&mut self, key: ApiKey, version: i16) -> Result<R, String> {
        let io = |e: std::io::Error| format!("{key:?}: {e}");
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(io)?;
        let size = usize::try_from(i32::from_be_bytes(size)).map_err(|e| format!("{e}"))?;
        let mut response = vec![0u8; size];
        self.stream.read_exact(&mut response).map_err(io)?;
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, key.response_header_version(version))
            .map_err(|e| format!("{key:?}: response header: {e}"))?;
        if header.correlation_id != self.correlation {
            return Err(format!(
                "{key:?}: correlation id {} != {}",
                header.correlation_id, self.correlation
            ));
        }
        R::decode(&mut response, version).map_err(|e| format!("{key:?}: response: {e}"))
    }

    /// Transactions the coordinator holds open (any state but Empty,
    /// CompleteCommit, CompleteAbort, Dead): `id state partitions` each,
    /// from ListTransactions and DescribeTransactions.
    pub fn open_transactions(&mut self) -> Result<Vec<String>, String> {
        let listed: ListTransactionsResponse = self.call(
            ApiKey::ListTransactions,
            0,
            &ListTransactionsRequest::default(),
        )?;
        if listed.error_code != 0 {
            return Err(format!("ListTransactions: error {}", listed.error_code));
        }
        let ids: Vec<TransactionalId> = listed
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.clone())
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let described: DescribeTransactionsResponse = self.call(
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(ids),
        )?;
        let mut open = Vec::new();
        for state in described.transaction_states {
            if state.error_code != 0 {
                return Err(format!(
                    "DescribeTransactions {}: error {}",
                    state.transactional_id.as_str(),
                    state.error_code
                ));
            }
            let name = state.transaction_state.as_str();
            if !matches!(name, "Empty" | "CompleteCommit" | "CompleteAbort" | "Dead") {
                let partitions: Vec<String> = state
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(move |p| format!("{}-{p}", t.topic.as_str()))
                    })
                    .collect();
                open.push(format!(
                    "{} {name} (producer {} epoch {}) {partitions:?}",
                    state.transactional_id.as_str(),
                    state.producer_id.0,
                    state.producer_epoch
                ));
            }
        }
        Ok(open)
    }

    /// The producer epoch DescribeTransactions gives for `transactional_id`.
    pub fn producer_epoch(&mut self, transactional_id: &str) -> Result<i16, String> {
        let described: DescribeTransactionsResponse = self.call(
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(
                StrBytes::from_string(transactional_id.to_owned()),
            )]),
        )?;
        match described.transaction_states.first() {
            Some(state) if state.error_code == 0 => Ok(state.producer_epoch),
            Some(state) => Err(format!(
                "DescribeTransactions {transactional_id}: error {}",
                state.error_code
            )),
            None => Err(format!(
                "DescribeTransactions {transactional_id}: no answer"
            )),
        }
    }

    /// The latest offset of `topic`'s `partition`: the high watermark
    /// (`isolation` 0, read_uncommitted) or the last stable offset (1).
    pub fn end_offset(
        &mut self,
        topic: &str,
        partition: i32,
        isolation: i8,
    ) -> Result<i64, String> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(-1)])]);
        let response: ListOffsetsResponse = self.call(ApiKey::ListOffsets, 4, &request)?;
        let found = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| format!("ListOffsets: no answer for partition {partition}"))?;
        if found.error_code != 0 {
            return Err(format!(
                "ListOffsets partition {partition}: error {}",
                found.error_code
            ));
        }
        Ok(found.offset)
    }
}
