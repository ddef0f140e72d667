//! A blocking raw Kafka-protocol client for the process-level tests (crash
//! and cluster): one request, one response, every step under
//! [`CLIENT_DEADLINE`]; plus the few requests rdkafka's admin client lacks
//! (ListTransactions, DescribeTransactions), ListOffsets with an
//! isolation level, and where to send them in a cluster (FindCoordinator,
//! the partition leaders from Metadata).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeTransactionsRequest, DescribeTransactionsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListTransactionsRequest, ListTransactionsResponse, MetadataRequest, MetadataResponse,
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

    /// The transactional ids ListTransactions lists (in a cluster, those
    /// this node coordinates).
    pub fn list_transactions(&mut self) -> Result<Vec<String>, String> {
        let listed: ListTransactionsResponse = self.call(
            ApiKey::ListTransactions,
            0,
            &ListTransactionsRequest::default(),
        )?;
        if listed.error_code != 0 {
            return Err(format!("ListTransactions: error {}", listed.error_code));
        }
        Ok(listed
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.as_str().to_owned())
            .collect())
    }

    /// Which of `ids` the coordinator holds open (any state but Empty,
    /// CompleteCommit, CompleteAbort, Dead), from DescribeTransactions:
    /// `id state partitions` each. Ask their coordinator (see
    /// [`open_transactions`]).
    pub fn describe_open(&mut self, ids: &[String]) -> Result<Vec<String>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<TransactionalId> = ids
            .iter()
            .map(|id| TransactionalId(StrBytes::from_string(id.clone())))
            .collect();
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

    /// The address of the coordinator of transactional id `id`
    /// (FindCoordinator v3, key type 1).
    pub fn transaction_coordinator(&mut self, id: &str) -> Result<(i32, SocketAddr), String> {
        let found: FindCoordinatorResponse = self.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(id.to_owned()))
                .with_key_type(1),
        )?;
        if found.error_code != 0 {
            return Err(format!("FindCoordinator {id}: error {}", found.error_code));
        }
        Ok((found.node_id.0, address(found.host.as_str(), found.port)?))
    }

    /// Metadata (v12) of every topic.
    pub fn metadata(&mut self) -> Result<MetadataResponse, String> {
        self.call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
    }

    /// The address of each partition's leader of `topic`, from Metadata
    /// (an error if one has none, or `topic` is not listed).
    pub fn partition_leaders(&mut self, topic: &str) -> Result<BTreeMap<i32, SocketAddr>, String> {
        let m = self.metadata()?;
        let brokers: BTreeMap<i32, (String, i32)> = m
            .brokers
            .iter()
            .map(|b| (b.node_id.0, (b.host.as_str().to_owned(), b.port)))
            .collect();
        let listed = m
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
            .ok_or_else(|| format!("Metadata does not list {topic}"))?;
        let mut leaders = BTreeMap::new();
        for p in &listed.partitions {
            let (host, port) = brokers.get(&p.leader_id.0).ok_or_else(|| {
                format!(
                    "{topic}-{}: leader {} not among the brokers",
                    p.partition_index, p.leader_id.0
                )
            })?;
            leaders.insert(p.partition_index, address(host, *port)?);
        }
        Ok(leaders)
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

/// `host:port` as a socket address.
fn address(host: &str, port: i32) -> Result<SocketAddr, String> {
    let port = u16::try_from(port).map_err(|e| format!("port {port}: {e}"))?;
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))
}

/// Transactions open on any coordinator, asking each of `nodes`
/// ListTransactions, and each listed id's coordinator (FindCoordinator)
/// DescribeTransactions; see [`RawClient::describe_open`].
pub fn open_transactions(nodes: &[SocketAddr]) -> Result<Vec<String>, String> {
    let mut ids = std::collections::BTreeSet::new();
    for node in nodes {
        ids.extend(RawClient::connect(*node)?.list_transactions()?);
    }
    let Some(first) = nodes.first() else {
        return Ok(Vec::new());
    };
    let mut asked = RawClient::connect(*first)?;
    let mut open = Vec::new();
    for id in ids {
        let (_, coordinator) = asked.transaction_coordinator(&id)?;
        open.extend(RawClient::connect(coordinator)?.describe_open(&[id])?);
    }
    Ok(open)
}
