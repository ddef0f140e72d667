//! The quorum's RPCs between controllers, on the controller listener:
//! length-prefixed JSON frames over TCP, one request and its reply at a
//! time per connection. Raft's own RPCs (AppendEntries, Vote,
//! InstallSnapshot) and `Propose` (a follower handing a metadata command
//! to the leader). Clients never speak this; Kafka's KRaft RPCs are not
//! emulated.
//!
//! A peer that sends a frame over [`MAX_FRAME`] bytes or one that does not
//! decode is disconnected; nothing it sends can panic the node.

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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

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
}

async fn write_frame<T: Serialize>(stream: &mut TcpStream, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec(value).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::other("frame too large"));
    }
    let size = u32::try_from(body.len()).map_err(io::Error::other)?;
    stream.write_all(&size.to_be_bytes()).await?;
    stream.write_all(&body).await?;
    stream.flush().await
}

async fn read_frame<T: for<'de> Deserialize<'de>>(stream: &mut TcpStream) -> io::Result<T> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = usize::try_from(u32::from_be_bytes(size)).map_err(io::Error::other)?;
    if size > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {size} bytes"),
        ));
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A connection to one peer, opened on first use and again after an error.
#[derive(Debug)]
pub struct Peer {
    address: String,
    stream: Option<TcpStream>,
}

impl Peer {
    /// A peer at `address` (`host:port` of its controller listener).
    pub fn new(address: String) -> Self {
        Self {
            address,
            stream: None,
        }
    }

    /// Sends `request` and waits (up to `timeout`) for its reply.
    ///
    /// # Errors
    /// The peer cannot be reached, times out, or answers garbage; the
    /// connection is dropped and the next call reconnects.
    pub async fn call(&mut self, request: &Request, timeout: Duration) -> io::Result<Reply> {
        let exchange = async {
            if self.stream.is_none() {
                let stream = TcpStream::connect(&self.address).await?;
                stream.set_nodelay(true)?;
                self.stream = Some(stream);
            }
            let stream = self
                .stream
                .as_mut()
                .ok_or_else(|| io::Error::other("not connected"))?;
            write_frame(stream, request).await?;
            read_frame(stream).await
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

/// Makes openraft's connections to the other controllers.
#[derive(Debug, Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Connection {
        Connection {
            target,
            peer: Peer::new(node.addr.clone()),
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
                tokio::spawn(serve_connection(
                    stream,
                    raft.clone(),
                    heartbeats.clone(),
                    image.clone(),
                    shutdown.clone(),
                    peer,
                ));
            }
            Err(e) => {
                warn!(cause = %e, "controller listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    raft: Raft,
    heartbeats: Arc<Heartbeats>,
    mut image: watch::Receiver<Arc<MetadataImage>>,
    mut shutdown: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) {
    loop {
        let request = tokio::select! {
            request = read_frame::<Request>(&mut stream) => request,
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
        let reply = match request {
            Request::Append(rpc) => Reply::Append(raft.append_entries(rpc).await),
            Request::Vote(rpc) => Reply::Vote(raft.vote(rpc).await),
            Request::Snapshot(rpc) => Reply::Snapshot(raft.install_snapshot(rpc).await),
            Request::Propose(command) => Reply::Propose(super::write_local(&raft, command).await),
            Request::Heartbeat { node_id } => Reply::Heartbeat(heartbeats.record(&raft, node_id)),
            Request::Describe => Reply::Describe(super::controller::status(&raft, &heartbeats)),
            Request::FetchImage { since } => {
                let newer = image.wait_for(|i| i.applied_index > since);
                let image = match tokio::time::timeout(Duration::from_secs(1), newer).await {
                    Ok(Ok(current)) => Some(MetadataImage::clone(&current)),
                    _ => None,
                };
                Reply::Image {
                    image,
                    leader: super::leader_address(&raft),
                }
            }
            Request::Applied { index } => Reply::Applied(
                raft.wait(Some(Duration::from_secs(1)))
                    .applied_index_at_least(Some(index), "applied")
                    .await
                    .is_ok(),
            ),
        };
        if let Err(e) = write_frame(&mut stream, &reply).await {
            debug!(%peer, cause = %e, "controller connection closed");
            return;
        }
    }
}
