//! Requests this broker sends to other brokers, in Kafka's protocol over
//! their client listeners (Kafka's inter-broker channel): transaction
//! markers to partition leaders, transaction verification at
//! coordinators. The replica fetchers use [`exchange`] over connections
//! of their own.
//!
//! Connections go to the other brokers' inter-broker listener as its
//! security protocol says ([`connect`]: TLS, then the SASL login, through
//! `security::client::PeerSecurity`).
//!
//! Connections are pooled per address: a call takes an idle one (or
//! opens one), and gives it back after a whole exchange, so concurrent
//! calls to one peer never wait on each other; a failed or timed-out
//! exchange drops its connection.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::security::client::{PeerSecurity, PeerStream};

/// The largest response a peer call accepts.
const MAX_RESPONSE_BYTES: usize = 16 << 20;
/// Idle connections kept per peer.
const IDLE_PER_PEER: usize = 4;

/// One request-response exchange on `stream`: the request of `version`
/// framed with its header, the response of at most `max_bytes` decoded.
///
/// # Errors
/// The connection fails, or the answer is not the response to this
/// request.
pub async fn exchange<R: Request, S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    client_id: &'static str,
    correlation: i32,
    version: i16,
    request: &R,
    max_bytes: usize,
) -> io::Result<R::Response> {
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str(client_id)))
        .encode(&mut frame, R::header_version(version))
        .map_err(io::Error::other)?;
    request
        .encode(&mut frame, version)
        .map_err(io::Error::other)?;
    let size = i32::try_from(frame.len()).map_err(io::Error::other)?;
    stream.write_all(&size.to_be_bytes()).await?;
    stream.write_all(&frame).await?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(io::Error::other)?;
    if size > max_bytes {
        return Err(io::Error::other(format!("a response of {size} bytes")));
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).await?;
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(io::Error::other)?;
    if header.correlation_id != correlation {
        return Err(io::Error::other("a response to another request"));
    }
    R::Response::decode(&mut body, version).map_err(io::Error::other)
}

/// Connects to another broker's inter-broker listener at `address`: TCP,
/// TLS where the listener uses it, then the SASL login (SaslHandshake v1,
/// SaslAuthenticate v2: PLAIN, or SCRAM with the server's signature
/// checked).
///
/// # Errors
/// The connection, the TLS handshake or the login fails.
pub async fn connect(security: &PeerSecurity, address: &str) -> io::Result<PeerStream> {
    let mut stream = security.connect(address).await?;
    let Some(sasl) = security.sasl() else {
        return Ok(stream);
    };
    let handshake = exchange(
        &mut stream,
        CLIENT_ID,
        0,
        1,
        &SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(sasl.mechanism())),
        MAX_RESPONSE_BYTES,
    )
    .await?;
    if handshake.error_code != 0 {
        return Err(refused(
            address,
            "SaslHandshake",
            handshake.error_code,
            None,
        ));
    }
    let (mut login, mut token) = sasl.login();
    for correlation in 1.. {
        let answer = authenticate(&mut stream, address, correlation, token).await?;
        match login.next(&answer)? {
            Some(next) => token = next,
            None => break,
        }
    }
    Ok(stream)
}

/// One SaslAuthenticate round trip: the server's bytes.
async fn authenticate(
    stream: &mut PeerStream,
    address: &str,
    correlation: i32,
    token: Vec<u8>,
) -> io::Result<Bytes> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let answer: SaslAuthenticateResponse = exchange(
        stream,
        CLIENT_ID,
        correlation,
        2,
        &request,
        MAX_RESPONSE_BYTES,
    )
    .await?;
    if answer.error_code != 0 {
        return Err(refused(
            address,
            "SaslAuthenticate",
            answer.error_code,
            answer.error_message.as_ref(),
        ));
    }
    Ok(answer.auth_bytes)
}

fn refused(address: &str, what: &str, code: i16, message: Option<&StrBytes>) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{what} at {address}: error {code} {}",
            message.map(|m| m.as_str()).unwrap_or("")
        ),
    )
}

/// The client id of inter-broker requests.
const CLIENT_ID: &str = "strom-broker";

/// Pooled connections to the other brokers.
#[derive(Debug, Default)]
pub struct Peers {
    security: PeerSecurity,
    idle: Mutex<HashMap<String, Vec<PeerStream>>>,
    correlation: AtomicI32,
}

impl Peers {
    /// No connections yet; they will be secured as `security` says.
    pub fn new(security: PeerSecurity) -> Self {
        Self {
            security,
            ..Self::default()
        }
    }

    /// Sends `request` (of `version`) to the broker at `address` and waits
    /// at most `timeout` for its response.
    ///
    /// # Errors
    /// The peer cannot be reached, the exchange fails or times out.
    pub async fn call<R: Request>(
        &self,
        address: &str,
        version: i16,
        request: &R,
        timeout: Duration,
    ) -> io::Result<R::Response> {
        let idle = self.lock().get_mut(address).and_then(Vec::pop);
        let mut stream = match idle {
            Some(stream) => stream,
            None => tokio::time::timeout(timeout, connect(&self.security, address))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??,
        };
        let correlation = self.correlation.fetch_add(1, Ordering::Relaxed);
        let answer = tokio::time::timeout(
            timeout,
            exchange(
                &mut stream,
                CLIENT_ID,
                correlation,
                version,
                request,
                MAX_RESPONSE_BYTES,
            ),
        )
        .await
        .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        let mut idle = self.lock();
        let pool = idle.entry(address.to_owned()).or_default();
        if pool.len() < IDLE_PER_PEER {
            pool.push(stream);
        }
        Ok(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<PeerStream>>> {
        // Holds only idle connections; a poisoned map is still usable.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}
