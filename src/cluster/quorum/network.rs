//! The quorum's RPCs between controllers, on the controller listener:
//! length-prefixed JSON frames over TCP, one request and its reply at a
//! time per connection. Raft's own RPCs (AppendEntries, Vote,
//! InstallSnapshot) and `Propose` (a follower handing a metadata command
//! to the leader). Clients never speak this; Kafka's KRaft RPCs are not
//! emulated.
//!
//! A peer that sends a frame over [`MAX_FRAME`] bytes or one that does not
//! decode is disconnected; nothing it sends can panic the node.
//!
//! The controller listener is secured as `listener.security.protocol.map`
//! says ([`ControllerSecurity`]): TLS with the listener's keystore and
//! truststore, then on SASL listeners a login (`SaslHandshake`, then
//! `SaslAuthenticate` rounds with the same mechanisms and checks as the
//! client listeners) before any other request, in frames no larger than
//! `sasl.server.max.receive.size`. Under an authorizer, every request
//! needs CLUSTER_ACTION on the cluster, as Kafka's controller asks of its
//! peers (controllers and brokers are usually `super.users`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::{BrokerConfig, ConfigError, ListenerSpec, SecurityProtocol};
use crate::security::acl::{Authorizer, Operation, ResourceType, CLUSTER_NAME};
use crate::security::client::{PeerSecurity, PeerStream};
use crate::security::sasl::{Authenticator, Step};
use crate::security::{ListenerSecurity, Principal};

use super::controller::{Heartbeats, QuorumStatus};
use super::image::{MetadataCommand, MetadataImage, MetadataResult};
use super::{NodeId, Raft, TypeConfig};

/// The largest frame either side accepts (a snapshot chunk is far smaller).
const MAX_FRAME: usize = 64 << 20;

/// A request between controllers.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// Raft AppendEntries.
    Append(AppendEntriesRequest<TypeConfig>),
    /// Raft RequestVote.
    Vote(VoteRequest<NodeId>),
    /// Raft InstallSnapshot (one chunk).
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// A metadata command for the leader to append.
    Propose(MetadataCommand),
    /// A broker's heartbeat to the active controller.
    Heartbeat {
        /// The broker.
        node_id: i32,
    },
    /// The quorum's status, from the active controller.
    Describe,
    /// Answered once this node applied the metadata log up to `index`
    /// (or after a second): a proposer's changes reach every node before
    /// its client hears of them.
    Applied {
        /// The log index to wait for.
        index: u64,
    },
    /// A broker that is not a controller (`process.roles=broker`) asks for
    /// the image once it is past `since` (answered within a second, with
    /// no image if it did not move): Kafka's brokers fetch the metadata
    /// log from the controllers the same way, as observers.
    FetchImage {
        /// The applied index of the image the broker holds.
        since: u64,
    },
    /// Starts a SASL login with `mechanism` (SASL listeners only).
    SaslHandshake {
        /// The mechanism.
        mechanism: String,
    },
    /// One round of the SASL login.
    SaslAuthenticate {
        /// The client's token.
        token: Vec<u8>,
    },
}

/// Why a proposal was not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; the leader it knows of, if any.
    #[error("not the metadata quorum leader (leader: {leader:?})")]
    NotLeader {
        /// The leader's node id and controller address.
        leader: Option<(NodeId, String)>,
    },
    /// The quorum could not apply it (shutting down, storage failure).
    #[error("the metadata quorum failed: {0}")]
    Failed(String),
}

/// A reply to a [`Request`], of the same kind.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// To `Append`.
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To `Vote`.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To `Snapshot`.
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// To `Propose`.
    Propose(Result<MetadataResult, ProposeError>),
    /// To `Heartbeat`.
    Heartbeat(Result<(), ProposeError>),
    /// To `Describe`.
    Describe(Result<QuorumStatus, ProposeError>),
    /// To `Applied`: whether the index was applied in time.
    Applied(bool),
    /// To `FetchImage`: a newer image if there is one, and the active
    /// controller's id and address as this controller knows them.
    Image {
        /// The image, if newer than the one asked from.
        image: Option<MetadataImage>,
        /// The active controller.
        leader: Option<(NodeId, String)>,
    },
    /// To `SaslHandshake` and `SaslAuthenticate`: the server's token, or
    /// why the login was refused (the connection then closes).
    Sasl(Result<Vec<u8>, String>),
    /// The request was refused (an unauthenticated or unauthorized peer);
    /// the connection then closes.
    Refused(String),
}

/// How the controller listener is secured, both ends: how this node
/// connects to the other controllers, and what it asks of a connecting
/// peer.
#[derive(Debug, Default)]
pub struct ControllerSecurity {
    client: Arc<PeerSecurity>,
    /// `None` on a PLAINTEXT controller listener.
    server: Option<ListenerSecurity>,
    authorizer: Option<Authorizer>,
}

impl ControllerSecurity {
    /// Reads the controller listener's settings (the first name of
    /// `controller.listener.names`; its protocol from
    /// `listener.security.protocol.map`, PLAINTEXT if unmapped): its TLS
    /// keys, its SASL mechanisms and JAAS config (`user_NAME` entries to
    /// accept, `username` and `password` to log in with
    /// `sasl.mechanism.controller.protocol`), and the authorizer. A node
    /// that serves no controller listener (`serves` false: a broker only)
    /// needs only the client side, so no keystore of its own.
    ///
    /// # Errors
    /// Unreadable key material, or SASL without usable credentials.
    pub fn from_config(config: &BrokerConfig, serves: bool) -> Result<Self, ConfigError> {
        let name = config
            .controller_listener_names()
            .into_iter()
            .next()
            .unwrap_or_else(|| "CONTROLLER".into());
        let protocol = config
            .listener_protocol(&name)
            .unwrap_or(SecurityProtocol::Plaintext);
        let client = PeerSecurity::from_config(
            config,
            &name,
            protocol,
            "sasl.mechanism.controller.protocol",
        )?;
        let server = (serves && protocol != SecurityProtocol::Plaintext)
            .then(|| {
                ListenerSecurity::new(
                    config,
                    &ListenerSpec {
                        name: name.clone(),
                        protocol,
                        bind: String::new(),
                        advertised: None,
                    },
                )
            })
            .transpose()?;
        let authorizer =
            Authorizer::from_config(config).map_err(|message| ConfigError::InvalidValue {
                message,
                origin: "authorizer.class.name".into(),
            })?;
        Ok(Self {
            client: Arc::new(client),
            server,
            authorizer,
        })
    }

    /// How connections to other controllers are made.
    pub fn client(&self) -> Arc<PeerSecurity> {
        self.client.clone()
    }
}

async fn write_frame<T: Serialize, S: AsyncWrite + Unpin>(
    stream: &mut S,
    value: &T,
) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other("frame too large"));
    }
    let size = u32::try_from(body.len()).map_err(io::Error::other)?;
    stream.write_all(&size.to_be_bytes()).await?;
    stream.write_all(&body).await?;
    stream.flush().await
}

async fn read_frame<T: for<'de> Deserialize<'de>, S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
) -> io::Result<T> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = usize::try_from(u32::from_be_bytes(size)).map_err(io::Error::other)?;
    if size > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {size} bytes"),
        ));
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A connection to one peer, opened (and logged in) on first use and
/// again after an error.
#[derive(Debug)]
pub struct Peer {
    address: String,
    security: Arc<PeerSecurity>,
    stream: Option<PeerStream>,
}

impl Peer {
    /// A peer at `address` (`host:port` of its controller listener),
    /// connected to as `security` says.
    pub fn new(address: String, security: Arc<PeerSecurity>) -> Self {
        Self {
            address,
            security,
            stream: None,
        }
    }

    /// Connects: TCP, TLS where the listener uses it, the SASL login.
    async fn connect(&self) -> io::Result<PeerStream> {
        let mut stream = self.security.connect(&self.address).await?;
        if let Some(sasl) = self.security.sasl() {
            let mechanism = sasl.mechanism().to_owned();
            exchange(&mut stream, &Request::SaslHandshake { mechanism }).await?;
            let (mut login, mut token) = sasl.login();
            loop {
                let answer = exchange(&mut stream, &Request::SaslAuthenticate { token }).await?;
                match login.next(&answer)? {
                    Some(next) => token = next,
                    None => break,
                }
            }
        }
        Ok(stream)
    }

    /// Sends `request` and waits (up to `timeout`) for its reply.
    ///
    /// # Errors
    /// The peer cannot be reached, times out, or answers garbage; the
    /// connection is dropped and the next call reconnects.
    pub async fn call(&mut self, request: &Request, timeout: Duration) -> io::Result<Reply> {
        let exchange = async {
            if self.stream.is_none() {
                self.stream = Some(self.connect().await?);
            }
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::other("not connected"))?;
            write_frame(stream, request).await?;
            match read_frame(stream, MAX_FRAME).await? {
                Reply::Refused(why) => Err(io::Error::new(io::ErrorKind::PermissionDenied, why)),
                reply => Ok(reply),
            }
        };
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
        };
        if outcome.is_err() {
            self.stream = None;
        }
        outcome
    }
}

/// One SASL round on a fresh connection: the server's token.
async fn exchange(stream: &mut PeerStream, request: &Request) -> io::Result<Vec<u8>> {
    write_frame(stream, request).await?;
    match read_frame(stream, MAX_FRAME).await? {
        Reply::Sasl(Ok(token)) => Ok(token),
        Reply::Sasl(Err(why)) | Reply::Refused(why) => {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, why))
        }
        _ => Err(io::Error::other("a reply of another kind")),
    }
}

/// Makes openraft's connections to the other controllers.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// How they are secured.
    pub security: Arc<PeerSecurity>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            target,
            peer: Peer::new(node.addr.clone(), self.security.clone()),
        }
    }
}

/// openraft's connection to one controller.
#[derive(Debug)]
pub struct Connection {
    target: NodeId,
    peer: Peer,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl Connection {
    async fn call(&mut self, request: Request, option: &RPCOption) -> Result<Reply, io::Error> {
        self.peer.call(&request, option.hard_ttl()).await
    }

    fn unreachable<E: std::error::Error>(e: &io::Error) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Unreachable(Unreachable::new(e))
    }

    fn mismatched<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
        RPCError::Network(NetworkError::new(&io::Error::other(
            "a reply of another kind",
        )))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        match self.call(Request::Append(rpc), &option).await {
            Ok(Reply::Append(Ok(response))) => Ok(response),
            Ok(Reply::Append(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(Self::mismatched()),
            Err(e) => Err(Self::unreachable(&e)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(Request::Snapshot(rpc), &option).await {
            Ok(Reply::Snapshot(Ok(response))) => Ok(response),
            Ok(Reply::Snapshot(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(Self::mismatched()),
            Err(e) => Err(Self::unreachable(&e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Request::Vote(rpc), &option).await {
            Ok(Reply::Vote(Ok(response))) => Ok(response),
            Ok(Reply::Vote(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(_) => Err(Self::mismatched()),
            Err(e) => Err(Self::unreachable(&e)),
        }
    }
}

/// Serves the controller listener until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    heartbeats: Arc<Heartbeats>,
    image: watch::Receiver<Arc<MetadataImage>>,
    security: Arc<ControllerSecurity>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let server = Server {
                    raft: raft.clone(),
                    heartbeats: heartbeats.clone(),
                    image: image.clone(),
                    security: security.clone(),
                    peer,
                };
                tokio::spawn(server.secure(stream, shutdown.clone()));
            }
            Err(e) => {
                warn!(cause = %e, "controller listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One accepted connection on the controller listener.
struct Server {
    raft: Raft,
    heartbeats: Arc<Heartbeats>,
    image: watch::Receiver<Arc<MetadataImage>>,
    security: Arc<ControllerSecurity>,
    peer: std::net::SocketAddr,
}

/// How long a peer has for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Server {
    /// Runs the TLS handshake where the listener uses TLS, then serves.
    async fn secure(self, stream: TcpStream, shutdown: watch::Receiver<bool>) {
        let peer = self.peer;
        let Some(server) = &self.security.server else {
            return self
                .serve_connection(stream, Principal::anonymous(), None, shutdown)
                .await;
        };
        let sasl = server.sasl().map(|s| Authenticator::new(s.clone()));
        let Some(tls) = server.tls() else {
            return self
                .serve_connection(stream, Principal::anonymous(), sasl, shutdown)
                .await;
        };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
            Ok(Ok((stream, certificate))) => {
                let subject = certificate
                    .as_deref()
                    .and_then(crate::security::principal::certificate_subject);
                let principal = server.principal_from_certificate(subject.as_deref());
                self.serve_connection(stream, principal, sasl, shutdown)
                    .await;
            }
            Ok(Err(e)) => info!(%peer, cause = %e, "controller listener: TLS handshake failed"),
            Err(_) => debug!(%peer, "controller listener: TLS handshake timed out"),
        }
    }

    async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
        mut self,
        mut stream: S,
        mut principal: Principal,
        mut sasl: Option<Authenticator>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let peer = self.peer;
        loop {
            // Unauthenticated peers may send only small frames.
            let max = match &sasl {
                Some(auth) if !auth.is_authenticated() => auth.max_receive_size(),
                _ => MAX_FRAME,
            };
            let request = tokio::select! {
                request = read_frame::<Request, S>(&mut stream, max) => request,
                _ = shutdown.changed() => return,
            };
            let request = match request {
                Ok(request) => request,
                Err(e) => {
                    if e.kind() != io::ErrorKind::UnexpectedEof {
                        debug!(%peer, cause = %e, "controller connection closed");
                    }
                    return;
                }
            };
            let (reply, close) = match (sasl.as_mut(), request) {
                (Some(auth), Request::SaslHandshake { mechanism }) => {
                    match auth.handshake(&mechanism, 1) {
                        Ok(()) => (Reply::Sasl(Ok(Vec::new())), false),
                        Err(e) => (
                            Reply::Sasl(Err(format!("SASL handshake with {mechanism}: {e:?}"))),
                            true,
                        ),
                    }
                }
                (Some(auth), Request::SaslAuthenticate { token }) => {
                    let image = self.image.borrow().clone();
                    let lookup = |user: &str, mechanism| {
                        image
                            .scram_credentials
                            .get(user)
                            .and_then(|c| c.get(&mechanism))
                            .cloned()
                    };
                    match auth.authenticate(&token, &lookup) {
                        Step::Continue(answer) => (Reply::Sasl(Ok(answer)), false),
                        Step::Done { response, .. } => {
                            if let Some(who) = auth.principal() {
                                principal = who.clone();
                            }
                            info!(%peer, %principal, "controller listener: authenticated");
                            (Reply::Sasl(Ok(response)), false)
                        }
                        Step::Failed(why) => {
                            info!(%peer, cause = %why, "controller listener: authentication failed");
                            (Reply::Sasl(Err(why)), true)
                        }
                        Step::OutOfOrder | Step::Abort(_) => (
                            Reply::Sasl(Err("SASL authentication out of order".into())),
                            true,
                        ),
                    }
                }
                (Some(auth), _) if !auth.is_authenticated() => {
                    info!(%peer, "controller listener: a request before authentication");
                    (
                        Reply::Refused("authenticate first (SaslHandshake)".into()),
                        true,
                    )
                }
                (_, request) => match self.refusal(&principal) {
                    Some(why) => (Reply::Refused(why), true),
                    None => (self.answer(request).await, false),
                },
            };
            if let Err(e) = write_frame(&mut stream, &reply).await {
                debug!(%peer, cause = %e, "controller connection closed");
                return;
            }
            if close {
                return;
            }
        }
    }

    /// Why `principal` may not talk to the quorum, if it may not: under an
    /// authorizer it needs CLUSTER_ACTION on the cluster.
    fn refusal(&self, principal: &Principal) -> Option<String> {
        let authorizer = self.security.authorizer.as_ref()?;
        let image = self.image.borrow().clone();
        let host = self.peer.ip().to_string();
        let allowed = authorizer.authorize(
            image.acls.iter(),
            principal,
            &host,
            Operation::ClusterAction,
            ResourceType::Cluster,
            CLUSTER_NAME,
        );
        if allowed {
            return None;
        }
        warn!(peer = %self.peer, %principal, "controller listener: refused, no CLUSTER_ACTION on the cluster");
        Some(format!("{principal} may not CLUSTER_ACTION on the cluster"))
    }

    async fn answer(&mut self, request: Request) -> Reply {
        let raft = &self.raft;
        match request {
            Request::Append(rpc) => Reply::Append(raft.append_entries(rpc).await),
            Request::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
            Request::Snapshot(rpc) => Reply::Snapshot(raft.install_snapshot(rpc).await),
            Request::Propose(command) => Reply::Propose(super::write_local(raft, command).await),
            Request::Heartbeat { node_id } => {
                Reply::Heartbeat(self.heartbeats.record(raft, node_id))
            }
            Request::Describe => Reply::Describe(super::controller::status(raft, &self.heartbeats)),
            Request::FetchImage { since } => {
                let newer = self.image.wait_for(|i| i.applied_index > since);
                let image = match tokio::time::timeout(Duration::from_secs(1), newer).await {
                    Ok(Ok(current)) => Some(MetadataImage::clone(&current)),
                    _ => None,
                };
                Reply::Image {
                    image,
                    leader: super::leader_address(raft),
                }
            }
            Request::Applied { index } => Reply::Applied(
                raft.wait(Some(Duration::from_secs(1)))
                    .applied_index_at_least(Some(index), "applied")
                    .await
                    .is_ok(),
            ),
            Request::SaslHandshake { .. } | Request::SaslAuthenticate { .. } => {
                Reply::Sasl(Err("this listener does not take SASL".into()))
            }
        }
    }
}
