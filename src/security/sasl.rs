//! SASL on a listener: its settings (enabled mechanisms, PLAIN users from
//! the JAAS config) and the per-connection [`Authenticator`], the state
//! machine SaslHandshake and SaslAuthenticate drive (Kafka's
//! SaslServerAuthenticator): handshake, then one or more tokens, then
//! authenticated; re-authenticated later when `connections.max.reauth.ms`
//! is set (KIP-368).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::scram::{ScramCredential, ScramMechanism, ScramServer};
use super::Principal;
use crate::config::{BrokerConfig, ConfigError};

/// The mechanisms strom serves.
const SUPPORTED: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// A listener's SASL settings.
#[derive(Debug)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, in the order written.
    pub mechanisms: Vec<String>,
    /// PLAIN's users (`user_<name>="<password>"` in the JAAS config).
    plain_users: BTreeMap<String, String>,
    /// `sasl.server.max.receive.size`: the largest frame before and during
    /// authentication.
    pub max_receive_size: usize,
    /// `connections.max.reauth.ms` (0: sessions never expire).
    pub reauth_ms: i64,
}

impl SaslSettings {
    /// Reads the listener's keys.
    ///
    /// # Errors
    /// A mechanism strom does not serve, or PLAIN without any user.
    pub fn new(config: &BrokerConfig, listener: &str) -> Result<Self, ConfigError> {
        let invalid = |message: String, origin: &str| ConfigError::InvalidValue {
            message: format!("listener {listener}: {message}"),
            origin: origin.into(),
        };
        let mechanisms: Vec<String> = config
            .listener_value(listener, "sasl.enabled.mechanisms")
            .unwrap_or("GSSAPI")
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !m.is_empty())
            .collect();
        if let Some(unsupported) = mechanisms.iter().find(|m| !SUPPORTED.contains(&m.as_str())) {
            return Err(invalid(
                format!(
                    "SASL mechanism {unsupported} is not supported (set sasl.enabled.mechanisms \
                     to some of {})",
                    SUPPORTED.join(", ")
                ),
                "sasl.enabled.mechanisms",
            ));
        }
        if mechanisms.is_empty() {
            return Err(invalid(
                "no SASL mechanism is enabled".into(),
                "sasl.enabled.mechanisms",
            ));
        }
        let mut plain_users = BTreeMap::new();
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let lower = listener.to_ascii_lowercase();
            let jaas = config
                .get(&format!("listener.name.{lower}.plain.sasl.jaas.config"))
                .or_else(|| config.listener_value(listener, "sasl.jaas.config"))
                .ok_or_else(|| {
                    invalid(
                        format!(
                            "PLAIN needs its users: set listener.name.{lower}.plain.sasl.jaas.config \
                             to org.apache.kafka.common.security.plain.PlainLoginModule required \
                             user_NAME=\"PASSWORD\";"
                        ),
                        "sasl.jaas.config",
                    )
                })?;
            let options = parse_jaas(jaas).map_err(|m| invalid(m, "sasl.jaas.config"))?;
            for (key, value) in options {
                if let Some(user) = key.strip_prefix("user_") {
                    plain_users.insert(user.to_owned(), value);
                }
            }
        }
        Ok(Self {
            mechanisms,
            plain_users,
            max_receive_size: usize::try_from(config.get_i64("sasl.server.max.receive.size"))
                .unwrap_or(524_288),
            reauth_ms: config
                .listener_value(listener, "connections.max.reauth.ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }
}

/// The options of a JAAS login module entry (`Module flag k="v" ...;`).
///
/// # Errors
/// A malformed entry.
pub fn parse_jaas(text: &str) -> Result<BTreeMap<String, String>, String> {
    let text = text.trim();
    let body = text
        .strip_suffix(';')
        .ok_or("the JAAS config must end with ';'")?;
    let mut rest = body.trim_start();
    // The login module class and its control flag.
    for _ in 0..2 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            return Err("the JAAS config needs a login module and a control flag".into());
        }
        rest = rest[end..].trim_start();
    }
    let mut options = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("expected key=value in the JAAS config at '{rest}'"))?;
        let after = after.trim_start();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or("unterminated quoted value in the JAAS config")?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        options.insert(key.trim().to_owned(), value.to_owned());
        rest = after.trim_start();
    }
    Ok(options)
}

/// What SaslHandshake answers when it cannot start an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The mechanism is not enabled on this listener.
    UnsupportedMechanism,
    /// A handshake now is out of order (after authentication without
    /// re-authentication, or a different mechanism when re-authenticating).
    IllegalState,
}

/// One step of SaslAuthenticate.
#[derive(Debug)]
pub enum Step {
    /// The exchange goes on: send these bytes back.
    Continue(Vec<u8>),
    /// Authenticated: send these bytes back; the session lasts
    /// `session_lifetime_ms` (0: no limit).
    Done {
        /// The last server message.
        response: Vec<u8>,
        /// `connections.max.reauth.ms`, or 0.
        session_lifetime_ms: i64,
    },
    /// Refused: SASL_AUTHENTICATION_FAILED with this message, then close.
    Failed(String),
    /// SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, then close.
    OutOfOrder,
}

#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake.
    Handshake,
    /// Handshake done: waiting for the first token.
    Started(Mechanism),
    /// In a SCRAM exchange.
    Scram(Box<ScramServer>),
    /// Authenticated.
    Authenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

/// The SASL state of one connection.
#[derive(Debug)]
pub struct Authenticator {
    settings: std::sync::Arc<SaslSettings>,
    state: State,
    /// The mechanism and principal of the last successful authentication.
    authenticated: Option<(Mechanism, Principal)>,
    /// A v0 handshake: the tokens that follow are raw frames.
    raw_tokens: bool,
    /// When the session ends unless re-authenticated.
    expires: Option<Instant>,
}

impl Authenticator {
    /// A connection that has not authenticated yet.
    pub fn new(settings: std::sync::Arc<SaslSettings>) -> Self {
        Self {
            settings,
            state: State::Handshake,
            authenticated: None,
            raw_tokens: false,
            expires: None,
        }
    }

    /// The listener's enabled mechanisms (SaslHandshake's answer).
    pub fn enabled_mechanisms(&self) -> &[String] {
        &self.settings.mechanisms
    }

    /// The largest frame the connection may send while unauthenticated.
    pub fn max_receive_size(&self) -> usize {
        self.settings.max_receive_size
    }

    /// The authenticated principal, once authenticated (and while
    /// re-authenticating).
    pub fn principal(&self) -> Option<&Principal> {
        self.authenticated.as_ref().map(|(_, p)| p)
    }

    /// Whether requests other than the SASL exchange may be served: the
    /// client authenticated and its session has not expired.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated)
            && self.expires.is_none_or(|at| Instant::now() < at)
    }

    /// Whether the next frame is a raw SASL token (after a v0 handshake).
    pub fn expects_raw_token(&self) -> bool {
        self.raw_tokens && matches!(self.state, State::Started(_) | State::Scram(_))
    }

    /// SaslHandshake: starts (or, when re-authentication is on, restarts)
    /// an exchange with `mechanism`.
    ///
    /// # Errors
    /// [`HandshakeError`].
    pub fn handshake(&mut self, mechanism: &str, version: i16) -> Result<(), HandshakeError> {
        let reauthenticating = matches!(self.state, State::Authenticated);
        if !matches!(self.state, State::Handshake) && !reauthenticating {
            return Err(HandshakeError::IllegalState);
        }
        if reauthenticating && (self.settings.reauth_ms <= 0 || version == 0) {
            return Err(HandshakeError::IllegalState);
        }
        if !self.settings.mechanisms.iter().any(|m| m == mechanism) {
            return Err(HandshakeError::UnsupportedMechanism);
        }
        let chosen = match ScramMechanism::from_name(mechanism) {
            Some(scram) => Mechanism::Scram(scram),
            None => Mechanism::Plain,
        };
        if let Some((previous, _)) = &self.authenticated {
            if *previous != chosen {
                return Err(HandshakeError::IllegalState);
            }
        }
        self.raw_tokens = version == 0;
        self.state = State::Started(chosen);
        Ok(())
    }

    /// SaslAuthenticate (or a raw token after a v0 handshake).
    pub fn authenticate(
        &mut self,
        token: &[u8],
        scram_credential: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    ) -> Step {
        let step = match std::mem::replace(&mut self.state, State::Handshake) {
            State::Started(Mechanism::Plain) => match self.plain(token) {
                Ok(user) => self.done(Mechanism::Plain, user, Vec::new()),
                Err(message) => Step::Failed(message),
            },
            State::Started(Mechanism::Scram(mechanism)) => self.scram(
                Box::new(ScramServer::new(mechanism)),
                mechanism,
                token,
                scram_credential,
            ),
            State::Scram(server) => {
                let mechanism = server.mechanism();
                self.scram(server, mechanism, token, scram_credential)
            }
            State::Handshake | State::Authenticated => Step::OutOfOrder,
        };
        if matches!(step, Step::Failed(_) | Step::OutOfOrder) {
            // The connection closes after this answer.
            self.state = State::Handshake;
        }
        step
    }

    fn scram(
        &mut self,
        mut server: Box<ScramServer>,
        mechanism: ScramMechanism,
        token: &[u8],
        scram_credential: &dyn Fn(&str, ScramMechanism) -> Option<ScramCredential>,
    ) -> Step {
        let lookup = |user: &str| scram_credential(user, mechanism);
        match server.step(token, &lookup) {
            Ok((answer, Some(user))) => self.done(Mechanism::Scram(mechanism), user, answer),
            Ok((answer, None)) => {
                self.state = State::Scram(server);
                Step::Continue(answer)
            }
            Err(failure) => {
                tracing::debug!(mechanism = mechanism.name(), cause = %failure.0, "SCRAM authentication failed");
                Step::Failed(format!(
                    "Authentication failed during authentication due to invalid credentials \
                     with SASL mechanism {}",
                    mechanism.name()
                ))
            }
        }
    }

    /// PLAIN's single message: `authzid \0 user \0 password`.
    fn plain(&self, token: &[u8]) -> Result<String, String> {
        let invalid = || "Authentication failed: Invalid username or password".to_owned();
        let text = std::str::from_utf8(token).map_err(|_| invalid())?;
        let mut parts = text.split('\0');
        let (Some(authzid), Some(user), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("Invalid SASL/PLAIN response: expected 3 tokens".into());
        };
        if user.is_empty() {
            return Err("Authentication failed: username not specified".into());
        }
        if !authzid.is_empty() && authzid != user {
            return Err(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .into(),
            );
        }
        let expected = self.settings.plain_users.get(user).ok_or_else(invalid)?;
        if !super::scram::constant_time_eq(expected.as_bytes(), password.as_bytes()) {
            return Err(invalid());
        }
        Ok(user.to_owned())
    }

    fn done(&mut self, mechanism: Mechanism, user: String, response: Vec<u8>) -> Step {
        let principal = Principal::user(user);
        if let Some((_, previous)) = &self.authenticated {
            if *previous != principal {
                return Step::Failed("Cannot change principals during re-authentication".into());
            }
        }
        self.state = State::Authenticated;
        self.raw_tokens = false;
        self.authenticated = Some((mechanism, principal));
        let lifetime = self.settings.reauth_ms.max(0);
        self.expires = (lifetime > 0)
            .then(|| Instant::now() + Duration::from_millis(u64::try_from(lifetime).unwrap_or(0)));
        Step::Done {
            response,
            session_lifetime_ms: lifetime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_options() {
        let options = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice secret";"#,
        )
        .unwrap();
        assert_eq!(options["user_alice"], "alice secret");
        assert_eq!(options["username"], "admin");
        assert!(parse_jaas("Module required user_a=\"x\"").is_err());
    }

    fn settings() -> std::sync::Arc<SaslSettings> {
        std::sync::Arc::new(SaslSettings {
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
            plain_users: BTreeMap::from([("alice".into(), "alice-secret".into())]),
            max_receive_size: 1024,
            reauth_ms: 0,
        })
    }

    #[test]
    fn plain_checks_the_password() {
        let none = |_: &str, _| None;
        let mut auth = Authenticator::new(settings());
        auth.handshake("PLAIN", 1).unwrap();
        assert!(matches!(
            auth.authenticate(b"\0alice\0alice-secret", &none),
            Step::Done { .. }
        ));
        assert!(auth.is_authenticated());
        assert_eq!(auth.principal().unwrap().to_string(), "User:alice");
        let mut auth = Authenticator::new(settings());
        auth.handshake("PLAIN", 1).unwrap();
        assert!(matches!(
            auth.authenticate(b"\0alice\0wrong", &none),
            Step::Failed(_)
        ));
        assert!(!auth.is_authenticated());
    }

    #[test]
    fn out_of_order_and_unknown_mechanisms() {
        let none = |_: &str, _| None;
        let mut auth = Authenticator::new(settings());
        assert!(matches!(auth.authenticate(b"x", &none), Step::OutOfOrder));
        assert_eq!(
            auth.handshake("GSSAPI", 1),
            Err(HandshakeError::UnsupportedMechanism)
        );
        auth.handshake("PLAIN", 1).unwrap();
        assert_eq!(
            auth.handshake("PLAIN", 1),
            Err(HandshakeError::IllegalState)
        );
    }
}
