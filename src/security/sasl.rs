//! SASL on a listener: its settings (enabled mechanisms, PLAIN users from
//! the JAAS config, OAUTHBEARER's token validation) and the per-connection
//! [`Authenticator`], the state machine SaslHandshake and SaslAuthenticate
//! drive (Kafka's SaslServerAuthenticator): handshake, then one or more
//! tokens, then authenticated. A session expires after
//! `connections.max.reauth.ms` and, with OAUTHBEARER, when the token does
//! (whichever is first, as Kafka); the client may re-authenticate before
//! (KIP-368).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::oauth::{OAuthServer, OAuthStep, Validator};
use super::scram::{ScramCredential, ScramMechanism, ScramServer};
use super::Principal;
use crate::config::{BrokerConfig, ConfigError};

/// The mechanisms strom serves.
const SUPPORTED: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// A listener's SASL settings.
#[derive(Debug)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, in the order written.
    pub mechanisms: Vec<String>,
    /// PLAIN's users (`user_<name>="<password>"` in the JAAS config).
    plain_users: BTreeMap<String, String>,
    /// OAUTHBEARER's token validation, when enabled.
    oauth: Option<Validator>,
    /// `sasl.server.max.receive.size`: the largest frame before and during
    /// authentication.
    pub max_receive_size: usize,
    /// `connections.max.reauth.ms` per mechanism (as
    /// `listener.name.<l>.<mechanism>.connections.max.reauth.ms` may set
    /// it; 0: no limit).
    reauth_ms: BTreeMap<String, i64>,
}

impl SaslSettings {
    /// Reads the listener's keys.
    ///
    /// # Errors
    /// A mechanism strom does not serve, PLAIN without any user, or
    /// OAUTHBEARER settings strom cannot use.
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
        let oauth = mechanisms
            .iter()
            .any(|m| m == super::oauth::MECHANISM)
            .then(|| Validator::new(config, listener))
            .transpose()
            .map_err(|m| invalid(m, "listener.name.<listener>.oauthbearer.sasl.jaas.config"))?;
        let lower = listener.to_ascii_lowercase();
        let reauth_ms = mechanisms
            .iter()
            .map(|m| {
                let ms = config
                    .get(&format!(
                        "listener.name.{lower}.{}.connections.max.reauth.ms",
                        m.to_ascii_lowercase()
                    ))
                    .or_else(|| config.listener_value(listener, "connections.max.reauth.ms"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                (m.clone(), ms)
            })
            .collect();
        Ok(Self {
            mechanisms,
            plain_users,
            oauth,
            max_receive_size: usize::try_from(config.get_i64("sasl.server.max.receive.size"))
                .unwrap_or(524_288),
            reauth_ms,
        })
    }

    /// `connections.max.reauth.ms` for `mechanism` (0: none).
    fn reauth_ms(&self, mechanism: &str) -> i64 {
        self.reauth_ms.get(mechanism).copied().unwrap_or(0)
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
        /// `connections.max.reauth.ms`, the credential's remaining
        /// lifetime, the smaller of the two, or 0 (Kafka's
        /// SaslServerAuthenticator).
        session_lifetime_ms: i64,
    },
    /// Refused: SASL_AUTHENTICATION_FAILED with this message, then close.
    Failed(String),
    /// SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, then close.
    OutOfOrder,
    /// Close without an answer (Kafka fails with an unexpected error here);
    /// the reason is for the log.
    Abort(String),
}

#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake.
    Handshake,
    /// Handshake done: waiting for the first token.
    Started(Mechanism),
    /// In a SCRAM exchange.
    Scram(Box<ScramServer>),
    /// In an OAUTHBEARER exchange (after a refused token).
    OAuth(OAuthServer),
    /// Authenticated.
    Authenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl Mechanism {
    fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Scram(scram) => scram.name(),
            Self::OAuthBearer => super::oauth::MECHANISM,
        }
    }
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
        self.raw_tokens && self.in_exchange()
    }

    /// Whether an exchange is under way (after SaslHandshake, before it
    /// completes): only SaslAuthenticate may come now.
    pub fn in_exchange(&self) -> bool {
        matches!(
            self.state,
            State::Started(_) | State::Scram(_) | State::OAuth(_)
        )
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
        // Kafka re-authenticates a session that has an expiry.
        if reauthenticating && (self.expires.is_none() || version == 0) {
            return Err(HandshakeError::IllegalState);
        }
        if !self.settings.mechanisms.iter().any(|m| m == mechanism) {
            return Err(HandshakeError::UnsupportedMechanism);
        }
        let chosen = match (mechanism, ScramMechanism::from_name(mechanism)) {
            (_, Some(scram)) => Mechanism::Scram(scram),
            (super::oauth::MECHANISM, None) => Mechanism::OAuthBearer,
            _ => Mechanism::Plain,
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
                Ok(user) => self.done(Mechanism::Plain, user, Vec::new(), None),
                Err(message) => Step::Failed(message),
            },
            State::Started(Mechanism::OAuthBearer) => self.oauth(OAuthServer::default(), token),
            State::OAuth(server) => self.oauth(server, token),
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
        if matches!(step, Step::Failed(_) | Step::OutOfOrder | Step::Abort(_)) {
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
            Ok((answer, Some(user))) => self.done(Mechanism::Scram(mechanism), user, answer, None),
            Ok((answer, None)) => {
                self.state = State::Scram(server);
                Step::Continue(answer)
            }
            Err(failure) => {
                tracing::debug!(mechanism = mechanism.name(), cause = %failure.0, "SCRAM authentication failed");
                Step::Failed(self.invalid_credentials(Mechanism::Scram(mechanism)))
            }
        }
    }

    fn oauth(&mut self, mut server: OAuthServer, token: &[u8]) -> Step {
        let Some(validator) = self.settings.oauth.as_ref() else {
            return Step::Failed(self.invalid_credentials(Mechanism::OAuthBearer));
        };
        match server.step(token, validator, crate::log::now_ms()) {
            OAuthStep::Challenge(challenge) => {
                self.state = State::OAuth(server);
                Step::Continue(challenge)
            }
            OAuthStep::Done(token) => self.done(
                Mechanism::OAuthBearer,
                token.principal,
                Vec::new(),
                Some(token.expires_ms),
            ),
            OAuthStep::Failed(message) => Step::Failed(message),
            OAuthStep::Malformed(reason) => {
                tracing::debug!(cause = %reason, "OAUTHBEARER authentication failed");
                Step::Failed(self.invalid_credentials(Mechanism::OAuthBearer))
            }
            OAuthStep::Abort(reason) => Step::Abort(reason),
        }
    }

    /// Kafka's answer to a SASL exception: it names no cause, so that
    /// nothing leaks to the client.
    fn invalid_credentials(&self, mechanism: Mechanism) -> String {
        let what = if self.authenticated.is_some() {
            "re-authentication"
        } else {
            "authentication"
        };
        format!(
            "Authentication failed during {what} due to invalid credentials with SASL mechanism {}",
            mechanism.name()
        )
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

    /// Authenticated as `user`; `credential_expires_ms` (ms since the
    /// epoch) is when the credential itself expires, if it does.
    fn done(
        &mut self,
        mechanism: Mechanism,
        user: String,
        response: Vec<u8>,
        credential_expires_ms: Option<i64>,
    ) -> Step {
        let principal = Principal::user(user);
        if let Some((_, previous)) = &self.authenticated {
            if *previous != principal {
                return Step::Failed(format!(
                    "Cannot change principals during re-authentication from {}.{}: {}.{}",
                    previous.kind, previous.name, principal.kind, principal.name
                ));
            }
        }
        self.state = State::Authenticated;
        self.raw_tokens = false;
        self.authenticated = Some((mechanism, principal));
        let lifetime = session_lifetime_ms(
            self.settings.reauth_ms(mechanism.name()),
            credential_expires_ms,
            crate::log::now_ms(),
        );
        // A token may expire in a million years: far enough is "never",
        // without overflowing the clock.
        self.expires = lifetime.map(|ms| {
            let now = Instant::now();
            now.checked_add(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
                .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
                .unwrap_or(now)
        });
        Step::Done {
            response,
            session_lifetime_ms: lifetime.unwrap_or(0),
        }
    }
}

/// How long a session lasts, as Kafka's SaslServerAuthenticator computes it
/// (`None`: no limit): `connections.max.reauth.ms` when positive, the
/// credential's remaining lifetime when it has one, the smaller of the two
/// when both; never negative.
pub fn session_lifetime_ms(
    reauth_ms: i64,
    credential_expires_ms: Option<i64>,
    now_ms: i64,
) -> Option<i64> {
    let reauth = (reauth_ms > 0).then_some(reauth_ms);
    let remaining = credential_expires_ms.map(|at| at.saturating_sub(now_ms));
    match (reauth, remaining) {
        (None, None) => None,
        (Some(reauth), None) => Some(reauth),
        (None, Some(remaining)) => Some(remaining.max(0)),
        (Some(reauth), Some(remaining)) => Some(reauth.min(remaining).max(0)),
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
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into(), "OAUTHBEARER".into()],
            plain_users: BTreeMap::from([("alice".into(), "alice-secret".into())]),
            oauth: Some(Validator::Unsecured(Default::default())),
            max_receive_size: 1024,
            reauth_ms: BTreeMap::new(),
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

    fn unsecured_token(claims: &serde_json::Value) -> Vec<u8> {
        use base64::Engine;
        let b = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        };
        let token = format!("{}.{}.", b(&serde_json::json!({"alg": "none"})), b(claims));
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    #[test]
    fn oauthbearer_sessions_end_with_the_token() {
        let none = |_: &str, _| None;
        let now_s = crate::log::now_ms() / 1000;
        let mut auth = Authenticator::new(settings());
        auth.handshake("OAUTHBEARER", 1).unwrap();
        assert!(auth.in_exchange());
        let Step::Done {
            session_lifetime_ms,
            ..
        } = auth.authenticate(
            &unsecured_token(&serde_json::json!({"sub": "alice", "exp": now_s + 100})),
            &none,
        )
        else {
            panic!("expected success")
        };
        assert!(
            (98_000..=100_000).contains(&session_lifetime_ms),
            "{session_lifetime_ms}"
        );
        assert_eq!(auth.principal().unwrap().to_string(), "User:alice");
        // the session has an expiry, so the client may re-authenticate
        auth.handshake("OAUTHBEARER", 1).unwrap();
        assert!(matches!(
            auth.authenticate(
                &unsecured_token(&serde_json::json!({"sub": "bob", "exp": now_s + 100})),
                &none
            ),
            Step::Failed(m) if m == "Cannot change principals during re-authentication from User.alice: User.bob"
        ));
        // an expired token: the error challenge, then the failure on %x01
        let mut auth = Authenticator::new(settings());
        auth.handshake("OAUTHBEARER", 1).unwrap();
        let expired = unsecured_token(&serde_json::json!({"sub": "alice", "exp": now_s - 1}));
        assert!(
            matches!(auth.authenticate(&expired, &none), Step::Continue(c) if c == br#"{"status":"invalid_token"}"#)
        );
        assert!(auth.in_exchange());
        assert!(
            matches!(auth.authenticate(b"\x01", &none), Step::Failed(m) if m == r#"{"status":"invalid_token"}"#)
        );
        let mut auth = Authenticator::new(settings());
        auth.handshake("OAUTHBEARER", 1).unwrap();
        assert!(matches!(auth.authenticate(b"junk", &none), Step::Failed(m)
            if m == "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"));
    }

    #[test]
    fn session_lifetimes_as_kafka() {
        assert_eq!(session_lifetime_ms(0, None, 1000), None);
        assert_eq!(session_lifetime_ms(5000, None, 1000), Some(5000));
        assert_eq!(session_lifetime_ms(0, Some(61_000), 1000), Some(60_000));
        assert_eq!(session_lifetime_ms(5000, Some(61_000), 1000), Some(5000));
        assert_eq!(
            session_lifetime_ms(90_000, Some(61_000), 1000),
            Some(60_000)
        );
        assert_eq!(session_lifetime_ms(0, Some(500), 1000), Some(0));
    }
}
