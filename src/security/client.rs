//! How this broker connects to the others, as a client of their
//! inter-broker listener (`inter.broker.listener.name`): plain TCP or TLS
//! (trusting the listener's truststore, presenting its keystore when the
//! listener requires client certificates), and the SASL identity
//! (`sasl.mechanism.inter.broker.protocol` with `username` / `password`
//! from the mechanism's JAAS config). The SASL exchange itself runs over
//! Kafka requests, in `cluster::peers`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, ClientConfig};

use super::sasl::parse_jaas;
use super::scram::{ScramClient, ScramMechanism};
use crate::config::{BrokerConfig, ConfigError, SecurityProtocol};

/// The SASL identity a broker logs in to the others with.
#[derive(Debug, Clone)]
pub enum PeerSasl {
    /// PLAIN.
    Plain {
        /// `username` of the JAAS config.
        user: String,
        /// `password` of the JAAS config.
        password: String,
    },
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram {
        /// The mechanism.
        mechanism: ScramMechanism,
        /// `username` of the JAAS config.
        user: String,
        /// `password` of the JAAS config.
        password: String,
    },
}

impl PeerSasl {
    /// The mechanism's name, as SaslHandshake sends it.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Plain { .. } => "PLAIN",
            Self::Scram { mechanism, .. } => mechanism.name(),
        }
    }

    /// Starts the client side of the exchange after the handshake: the
    /// login's state and the first token to send.
    pub fn login(&self) -> (Login, Vec<u8>) {
        match self {
            Self::Plain { user, password } => (
                Login { scram: None },
                format!("\0{user}\0{password}").into_bytes(),
            ),
            Self::Scram {
                mechanism,
                user,
                password,
            } => {
                let client = ScramClient::new(*mechanism, user, password);
                let first = client.first_message();
                (
                    Login {
                        scram: Some((client, false)),
                    },
                    first,
                )
            }
        }
    }
}

/// A client login under way: PLAIN's one message, or SCRAM's two with
/// the server's signature checked.
#[derive(Debug)]
pub struct Login {
    /// The SCRAM client, and whether its final message went out.
    scram: Option<(ScramClient, bool)>,
}

impl Login {
    /// The server answered the last token with `answer`: the next token
    /// to send, or `None` when the login is complete.
    ///
    /// # Errors
    /// The server's SCRAM messages do not verify.
    pub fn next(&mut self, answer: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let invalid =
            |e: super::scram::ScramFailure| io::Error::new(io::ErrorKind::InvalidData, e.0);
        match &mut self.scram {
            None => Ok(None),
            Some((client, false)) => {
                let last = client.final_message(answer).map_err(invalid)?;
                if let Some((_, sent)) = &mut self.scram {
                    *sent = true;
                }
                Ok(Some(last))
            }
            Some((client, true)) => {
                client.verify_final(answer).map_err(invalid)?;
                Ok(None)
            }
        }
    }
}

/// The client side of the inter-broker or the controller listener.
#[derive(Clone, Default)]
pub struct PeerSecurity {
    tls: Option<Arc<ClientConfig>>,
    sasl: Option<PeerSasl>,
}

impl std::fmt::Debug for PeerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|_| "configured"))
            .finish()
    }
}

/// A connection to another broker.
pub enum PeerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl std::fmt::Debug for PeerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "PeerStream::Plain",
            Self::Tls(_) => "PeerStream::Tls",
        })
    }
}

impl PeerSecurity {
    /// Plain TCP without SASL (a PLAINTEXT inter-broker listener).
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// The client settings of listener `listener` with `protocol`: the
    /// inter-broker listener (SASL mechanism from
    /// `sasl.mechanism.inter.broker.protocol`) or the controller listener
    /// (`sasl.mechanism.controller.protocol`), as `mechanism_key` says.
    ///
    /// # Errors
    /// Unreadable trust or key material, or SASL without a usable
    /// mechanism or credentials.
    pub fn from_config(
        config: &BrokerConfig,
        listener: &str,
        protocol: SecurityProtocol,
        mechanism_key: &str,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: String, origin: &str| ConfigError::InvalidValue {
            message: format!("listener {listener}: {message}"),
            origin: origin.into(),
        };
        let tls = if protocol.uses_tls() {
            Some(Arc::new(
                client_config(config, listener)
                    .map_err(|m| invalid(m, "ssl.truststore.location"))?,
            ))
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            let mechanism = config
                .get(mechanism_key)
                .unwrap_or("GSSAPI")
                .trim()
                .to_ascii_uppercase();
            let lower = listener.to_ascii_lowercase();
            let mech_key = mechanism.to_ascii_lowercase();
            let jaas = config
                .get(&format!(
                    "listener.name.{lower}.{mech_key}.sasl.jaas.config"
                ))
                .or_else(|| config.listener_value(listener, "sasl.jaas.config"))
                .ok_or_else(|| {
                    invalid(
                        format!(
                            "brokers log in with {mechanism}: set \
                             listener.name.{lower}.{mech_key}.sasl.jaas.config with username \
                             and password"
                        ),
                        "sasl.jaas.config",
                    )
                })?;
            let options = parse_jaas(jaas).map_err(|m| invalid(m, "sasl.jaas.config"))?;
            let (Some(user), Some(password)) = (options.get("username"), options.get("password"))
            else {
                return Err(invalid(
                    format!("the {mechanism} JAAS config needs username and password"),
                    "sasl.jaas.config",
                ));
            };
            let (user, password) = (user.clone(), password.clone());
            Some(match ScramMechanism::from_name(&mechanism) {
                Some(mechanism) => PeerSasl::Scram {
                    mechanism,
                    user,
                    password,
                },
                None if mechanism == "PLAIN" => PeerSasl::Plain { user, password },
                None => {
                    return Err(invalid(
                        format!(
                            "{mechanism_key}={mechanism} is not supported \
                             (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
                        ),
                        mechanism_key,
                    ))
                }
            })
        } else {
            None
        };
        Ok(Self { tls, sasl })
    }

    /// The SASL identity, when the listener takes SASL.
    pub fn sasl(&self) -> Option<&PeerSasl> {
        self.sasl.as_ref()
    }

    /// Whether connections use TLS.
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens a TCP connection to `address` (`host:port`) and, on a TLS
    /// listener, runs the TLS handshake (the certificate must name the
    /// host, as Kafka's default `ssl.endpoint.identification.algorithm`).
    ///
    /// # Errors
    /// The connection or the handshake fails.
    pub async fn connect(&self, address: &str) -> io::Result<PeerStream> {
        let socket = TcpStream::connect(address).await?;
        socket.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(PeerStream::Plain(socket));
        };
        let host = address
            .rsplit_once(':')
            .map_or(address, |(host, _)| host)
            .trim_matches(['[', ']']);
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, socket)
            .await?;
        Ok(PeerStream::Tls(Box::new(stream)))
    }
}

/// A TLS client config trusting the listener's truststore, with the
/// listener's keystore as client certificate when it requires one.
fn client_config(config: &BrokerConfig, listener: &str) -> Result<ClientConfig, String> {
    let get = |key: &str| {
        config
            .listener_value(listener, key)
            .filter(|v| !v.is_empty())
    };
    let mut files = Vec::new();
    let trusted = super::tls::truststore(&get, &mut files)?;
    if trusted.is_empty() {
        return Err("brokers verify each other's certificates: set ssl.truststore.location".into());
    }
    let mut roots = rustls::RootCertStore::empty();
    for certificate in trusted {
        roots
            .add(certificate)
            .map_err(|e| format!("truststore certificate: {e}"))?;
    }
    let provider = Arc::new(super::tls::provider(get("ssl.cipher.suites"))?);
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let client_auth = get("ssl.client.auth").unwrap_or("none");
    if client_auth.eq_ignore_ascii_case("none") {
        Ok(builder.with_no_client_auth())
    } else {
        let (chain, key) = super::tls::keystore(&get, &mut files)?;
        builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("keystore as client certificate: {e}"))
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
