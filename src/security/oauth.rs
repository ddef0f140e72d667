//! SASL/OAUTHBEARER (RFC 7628) as Kafka serves it (KIP-255, KIP-768): the
//! client's one message carries a bearer token, a JWT, which the listener
//! validates in one of Kafka's two ways:
//!
//! - unsecured (Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler`, the
//!   default when `listener.name.<l>.oauthbearer.sasl.server.callback.handler.class`
//!   is unset): tokens with `"alg":"none"` and no signature, for
//!   development. Options from the listener's OAUTHBEARER JAAS config:
//!   `unsecuredValidatorPrincipalClaimName` (default `sub`),
//!   `unsecuredValidatorScopeClaimName` (`scope`),
//!   `unsecuredValidatorRequiredScope` (space-separated),
//!   `unsecuredValidatorAllowableClockSkewMs` (0).
//! - signed (`org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler`
//!   with Kafka's BrokerJwtValidator): RS256/384/512, PS256/384/512, ES256
//!   and ES384 signatures checked with the keys of
//!   `sasl.oauthbearer.jwks.endpoint.url` ([`super::jwks`]), then `exp`
//!   and `iat` (required), `nbf`, `sasl.oauthbearer.expected.issuer`,
//!   `sasl.oauthbearer.expected.audience` (a token with an `aud` claim is
//!   refused when none is expected, as jose4j does),
//!   `sasl.oauthbearer.clock.skew.seconds`, the subject in
//!   `sasl.oauthbearer.sub.claim.name` and the scope in
//!   `sasl.oauthbearer.scope.claim.name`. Kafka 4.1.0's default
//!   `sasl.oauthbearer.jwt.validator.class` (DefaultJwtValidator) checks no
//!   signature on a broker; strom always does.
//!
//! The principal is `User:<subject>`; the token's expiry bounds the session
//! ([`super::sasl`] computes the lifetime as Kafka does).
//!
//! On the wire (Kafka's OAuthBearerSaslServer): a refused token is answered
//! with an error challenge, `{"status":"invalid_token"}`; the client answers
//! `%x01` and then gets SASL_AUTHENTICATION_FAILED with that JSON as the
//! message (or sends another token in the same exchange). A message that is
//! not a client initial response fails at once with Kafka's generic
//! message. SASL extensions are accepted and ignored: both of Kafka's
//! validators accept every extension.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use regex::Regex;
use serde_json::Value;

use super::jwks::{Algorithm, Jwks, JwksSettings};
use super::sasl::parse_jaas;
use crate::config::BrokerConfig;

/// The mechanism's name.
pub const MECHANISM: &str = "OAUTHBEARER";

/// The callback handler of Kafka's signed-token validation.
const VALIDATOR_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
/// Where that handler lived before Kafka 4.0.
const OLD_VALIDATOR_HANDLER: &str =
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler";
/// The default callback handler: unsecured tokens.
const UNSECURED_HANDLER: &str = "org.apache.kafka.common.security.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";
/// The `sasl.oauthbearer.jwt.validator.class` values that validate signed
/// tokens here (both check signatures in strom).
const SIGNATURE_VALIDATORS: [&str; 2] = [
    "org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator",
    "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator",
];

/// Java's basic Base64 decoder (what Kafka's unsecured validator decodes
/// the header and claims with: the standard alphabet, not the URL one,
/// padding optional).
const JAVA_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Base64url as JOSE writes it (padding tolerated).
pub(crate) const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

// ---- the client's message ---------------------------------------------------

/// RFC 7628's client initial response, as Kafka's
/// OAuthBearerClientInitialResponse matches it (the whole message).
static CLIENT_INITIAL_RESPONSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^n,(?:a=(?P<authzid>(?:[\x01-\x7F&&[^=,]]|=2C|=3D)+))?,\x01(?P<kvpairs>(?:[A-Za-z]+=[\x21-\x7E \t\r\n]+\x01)*)\x01$",
    )
    .expect("a valid pattern")
});

/// The `auth` value: `<scheme> <token>`.
static AUTH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<scheme>[A-Za-z0-9_]+) +(?P<token>[-_~+/.a-zA-Z0-9]+=*)$")
        .expect("a valid pattern")
});

/// What the client sent: its token, the authorization id it asked for
/// (empty: none) and its SASL extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInitialResponse {
    /// The bearer token.
    pub token: String,
    /// `a=` of the GS2 header, as sent (empty when absent).
    pub authzid: String,
    /// `key=value` pairs other than `auth`.
    pub extensions: BTreeMap<String, String>,
}

/// Parses a client initial response.
///
/// # Errors
/// Kafka's reason (logged; the client gets the generic message).
pub fn parse_initial_response(message: &[u8]) -> Result<ClientInitialResponse, String> {
    let text = String::from_utf8_lossy(message);
    let captures = CLIENT_INITIAL_RESPONSE
        .captures(&text)
        .ok_or("Invalid OAUTHBEARER client first message")?;
    let authzid = captures
        .name("authzid")
        .map_or("", |m| m.as_str())
        .to_owned();
    let mut pairs = BTreeMap::new();
    for pair in captures
        .name("kvpairs")
        .map_or("", |m| m.as_str())
        .split('\x01')
        .filter(|p| !p.is_empty())
    {
        if let Some((key, value)) = pair.split_once('=') {
            pairs.insert(key.to_owned(), value.to_owned());
        }
    }
    let auth = pairs
        .remove("auth")
        .ok_or("Invalid OAUTHBEARER client first message: 'auth' not specified")?;
    let auth = AUTH
        .captures(&auth)
        .ok_or("Invalid OAUTHBEARER client first message: invalid 'auth' format")?;
    let scheme = auth.name("scheme").map_or("", |m| m.as_str());
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "Invalid scheme in OAUTHBEARER client first message: {scheme}"
        ));
    }
    Ok(ClientInitialResponse {
        token: auth.name("token").map_or("", |m| m.as_str()).to_owned(),
        authzid,
        extensions: pairs,
    })
}

// ---- validation ---------------------------------------------------------------

/// A valid token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The principal's name (the subject claim).
    pub principal: String,
    /// When it expires, ms since the epoch.
    pub expires_ms: i64,
    /// When it was issued, ms since the epoch, if it says.
    pub issued_ms: Option<i64>,
    /// Its scope.
    pub scope: BTreeSet<String>,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Refused: the error challenge names `status` (`invalid_token`, or
    /// `insufficient_scope` with the required `scope`); `reason` is logged.
    Token {
        /// RFC 6750's error code.
        status: &'static str,
        /// The required scope, for `insufficient_scope`.
        scope: Option<String>,
        /// Why, for the log.
        reason: String,
    },
    /// Kafka's validator fails with an unexpected exception here (a header
    /// without `alg`): the connection closes without an answer.
    Abort(String),
}

impl Rejection {
    fn invalid(reason: impl Into<String>) -> Self {
        Self::Token {
            status: "invalid_token",
            scope: None,
            reason: reason.into(),
        }
    }

    /// The error challenge, formatted as Kafka's OAuthBearerSaslServer
    /// formats it.
    pub fn challenge(&self) -> Option<String> {
        match self {
            Self::Token { status, scope, .. } => Some(match scope {
                Some(scope) => format!("{{\"status\":\"{status}\", \"scope\":\"{scope}\"}}"),
                None => format!("{{\"status\":\"{status}\"}}"),
            }),
            Self::Abort(_) => None,
        }
    }

    /// Why, for the log.
    pub fn reason(&self) -> &str {
        match self {
            Self::Token { reason, .. } | Self::Abort(reason) => reason,
        }
    }
}

/// A listener's token validation.
#[derive(Debug)]
pub enum Validator {
    /// Kafka's unsecured validator.
    Unsecured(UnsecuredOptions),
    /// Signed tokens checked against a JWKS.
    Signed(SignedValidator),
}

impl Validator {
    /// The listener's validator, from its OAUTHBEARER keys. With signed
    /// tokens, starts fetching the JWKS (in the background when it comes
    /// over HTTP).
    ///
    /// # Errors
    /// A missing JAAS config, an option or key with a bad value, a callback
    /// handler or JWT validator class strom does not have, a missing or
    /// unreadable JWKS url.
    pub fn new(config: &BrokerConfig, listener: &str) -> Result<Self, String> {
        let lower = listener.to_ascii_lowercase();
        let jaas = config
            .get(&format!("listener.name.{lower}.oauthbearer.sasl.jaas.config"))
            .or_else(|| config.listener_value(listener, "sasl.jaas.config"))
            .ok_or_else(|| {
                format!(
                    "OAUTHBEARER needs a JAAS config: set listener.name.{lower}.oauthbearer.sasl.jaas.config \
                     to org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
                )
            })?;
        let options = parse_jaas(jaas)?;
        // The mechanism's own key first (`listener.name.<l>.oauthbearer.<key>`),
        // then the listener's, then the broker's: Kafka's lookup order.
        let get = |key: &str| {
            config
                .get(&format!("listener.name.{lower}.oauthbearer.{key}"))
                .or_else(|| config.listener_value(listener, key))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let handler = config
            .get(&format!(
                "listener.name.{lower}.oauthbearer.sasl.server.callback.handler.class"
            ))
            .map(str::trim)
            .filter(|v| !v.is_empty());
        match handler {
            None | Some(UNSECURED_HANDLER) => {
                if get("sasl.oauthbearer.jwks.endpoint.url").is_some() {
                    tracing::warn!(
                        listener,
                        "sasl.oauthbearer.jwks.endpoint.url is set, but listener.name.{lower}.oauthbearer.\
                         sasl.server.callback.handler.class is not {VALIDATOR_HANDLER}: as on Kafka, \
                         this listener accepts unsecured (unsigned) tokens"
                    );
                }
                Ok(Self::Unsecured(UnsecuredOptions::from_jaas(&options)?))
            }
            Some(VALIDATOR_HANDLER) => {
                let validator = get("sasl.oauthbearer.jwt.validator.class")
                    .unwrap_or(SIGNATURE_VALIDATORS[0]);
                if !SIGNATURE_VALIDATORS.contains(&validator) {
                    return Err(format!(
                        "sasl.oauthbearer.jwt.validator.class={validator} is not supported: strom \
                         validates signed tokens as {} does (leave it unset)",
                        SIGNATURE_VALIDATORS[1]
                    ));
                }
                let settings = JwtSettings {
                    expected_issuer: get("sasl.oauthbearer.expected.issuer").map(str::to_owned),
                    expected_audience: get("sasl.oauthbearer.expected.audience")
                        .map(|list| {
                            list.split(',')
                                .map(str::trim)
                                .filter(|a| !a.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                    sub_claim: get("sasl.oauthbearer.sub.claim.name")
                        .unwrap_or("sub")
                        .to_owned(),
                    scope_claim: get("sasl.oauthbearer.scope.claim.name")
                        .unwrap_or("scope")
                        .to_owned(),
                    clock_skew_s: number(
                        get("sasl.oauthbearer.clock.skew.seconds"),
                        30,
                        "sasl.oauthbearer.clock.skew.seconds",
                    )?,
                };
                let url = get("sasl.oauthbearer.jwks.endpoint.url").ok_or_else(|| {
                    format!(
                        "{VALIDATOR_HANDLER} needs sasl.oauthbearer.jwks.endpoint.url (the identity \
                         provider's JWKS: https://, http:// or file://)"
                    )
                })?;
                let jwks = JwksSettings {
                    url: url.to_owned(),
                    refresh_ms: number(
                        get("sasl.oauthbearer.jwks.endpoint.refresh.ms"),
                        3_600_000,
                        "sasl.oauthbearer.jwks.endpoint.refresh.ms",
                    )?,
                    retry_backoff_ms: number(
                        get("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms"),
                        100,
                        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
                    )?,
                    retry_backoff_max_ms: number(
                        get("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms"),
                        10_000,
                        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
                    )?,
                    jaas_options: options,
                };
                Ok(Self::Signed(SignedValidator {
                    settings,
                    keys: Jwks::start(jwks)?,
                }))
            }
            Some(OLD_VALIDATOR_HANDLER) => Err(format!(
                "{OLD_VALIDATOR_HANDLER} is gone since Kafka 4.0: set \
                 listener.name.{lower}.oauthbearer.sasl.server.callback.handler.class={VALIDATOR_HANDLER}"
            )),
            Some(other) => Err(format!(
                "listener.name.{lower}.oauthbearer.sasl.server.callback.handler.class={other}: strom \
                 runs no custom callback handler; use {VALIDATOR_HANDLER} (tokens signed with keys \
                 from sasl.oauthbearer.jwks.endpoint.url) or leave it unset (unsecured tokens)"
            )),
        }
    }

    /// Validates `token` at `now_ms`.
    ///
    /// # Errors
    /// [`Rejection`].
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<Token, Rejection> {
        match self {
            Self::Unsecured(options) => options.validate(token, now_ms),
            Self::Signed(validator) => validator.validate(token, now_ms),
        }
    }
}

fn number(value: Option<&str>, default: i64, key: &str) -> Result<i64, String> {
    match value {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{key}={v} is not a number")),
    }
}

// ---- the SASL exchange ----------------------------------------------------------

/// One step of the server side.
#[derive(Debug)]
pub enum OAuthStep {
    /// The token is refused: send this error challenge; the client should
    /// answer `%x01` (or try another token).
    Challenge(Vec<u8>),
    /// Authenticated.
    Done(Token),
    /// SASL_AUTHENTICATION_FAILED with this message.
    Failed(String),
    /// Not an OAUTHBEARER message: SASL_AUTHENTICATION_FAILED with Kafka's
    /// generic message; the reason is for the log.
    Malformed(String),
    /// Close without an answer (the reason is for the log).
    Abort(String),
}

/// The server side of one OAUTHBEARER exchange (Kafka's
/// OAuthBearerSaslServer).
#[derive(Debug, Default)]
pub struct OAuthServer {
    /// The error challenge sent for the last token, if it was refused.
    error: Option<String>,
}

impl OAuthServer {
    /// The client's next message.
    pub fn step(&mut self, message: &[u8], validator: &Validator, now_ms: i64) -> OAuthStep {
        if message == [0x01] {
            if let Some(error) = self.error.take() {
                return OAuthStep::Failed(error);
            }
        }
        self.error = None;
        let response = match parse_initial_response(message) {
            Ok(response) => response,
            Err(reason) => return OAuthStep::Malformed(reason),
        };
        match validator.validate(&response.token, now_ms) {
            Ok(token) => {
                if !response.authzid.is_empty() && response.authzid != token.principal {
                    return OAuthStep::Failed(format!(
                        "Authentication failed: Client requested an authorization id ({}) that is \
                         different from the token's principal name ({})",
                        response.authzid, token.principal
                    ));
                }
                OAuthStep::Done(token)
            }
            Err(rejection) => {
                tracing::info!(reason = rejection.reason(), "OAUTHBEARER token refused");
                match rejection.challenge() {
                    Some(json) => {
                        self.error = Some(json.clone());
                        OAuthStep::Challenge(json.into_bytes())
                    }
                    None => OAuthStep::Abort(rejection.reason().to_owned()),
                }
            }
        }
    }
}

// ---- unsecured tokens (OAuthBearerUnsecuredValidatorCallbackHandler) ------------

/// The unsecured validator's JAAS options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredOptions {
    principal_claim: String,
    scope_claim: String,
    required_scope: Vec<String>,
    clock_skew_ms: i64,
}

impl Default for UnsecuredOptions {
    fn default() -> Self {
        Self {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            clock_skew_ms: 0,
        }
    }
}

/// A claim as Kafka's unsecured JWS holds it (Jackson nodes converted:
/// numbers stay numbers, arrays become lists of their elements' text,
/// everything else its text).
#[derive(Debug, Clone, PartialEq)]
enum Claim {
    Number(f64),
    Text(String),
    List(Vec<String>),
}

impl Claim {
    fn from_json(value: &Value) -> Self {
        match value {
            Value::Number(n) => Self::Number(n.as_f64().unwrap_or(f64::NAN)),
            Value::Array(items) => Self::List(items.iter().map(java_text).collect()),
            other => Self::Text(java_text(other)),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Number(n) if n.fract() == 0.0 && n.abs() < 2_147_483_648.0 => "Integer",
            Self::Number(n) if n.fract() == 0.0 => "Long",
            Self::Number(_) => "Double",
            Self::Text(_) => "String",
            Self::List(_) => "ArrayList",
        }
    }
}

/// Jackson's `JsonNode.asText()`.
fn java_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// Java's `%f`.
fn java_f(value: f64) -> String {
    format!("{value:.6}")
}

/// `Math.round(seconds * 1000)`.
fn seconds_to_ms(seconds: f64) -> i64 {
    // Saturates on overflow, as the cast does.
    (seconds * 1000.0 + 0.5).floor() as i64
}

impl UnsecuredOptions {
    /// Reads the `unsecuredValidator*` options.
    ///
    /// # Errors
    /// A clock skew that is not a non-negative integer, or a required scope
    /// item Kafka would refuse.
    pub fn from_jaas(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let option = |key: &str| options.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mut parsed = Self::default();
        if let Some(claim) = option("unsecuredValidatorPrincipalClaimName") {
            claim.clone_into(&mut parsed.principal_claim);
        }
        if let Some(claim) = option("unsecuredValidatorScopeClaimName") {
            claim.clone_into(&mut parsed.scope_claim);
        }
        if let Some(scope) = option("unsecuredValidatorRequiredScope") {
            for item in scope.split(' ').filter(|i| !i.is_empty()) {
                let valid = item
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
                if !valid {
                    return Err(format!(
                        "unsecuredValidatorRequiredScope: Invalid scope value: {item}"
                    ));
                }
                parsed.required_scope.push(item.to_owned());
            }
        }
        if let Some(skew) = option("unsecuredValidatorAllowableClockSkewMs") {
            let skew: i32 = skew.parse().map_err(|_| {
                format!("unsecuredValidatorAllowableClockSkewMs: For input string: \"{skew}\"")
            })?;
            if skew < 0 {
                return Err(format!(
                    "Allowable clock skew millis must not be negative: {skew}"
                ));
            }
            parsed.clock_skew_ms = i64::from(skew);
        }
        Ok(parsed)
    }

    /// Kafka's unsecured checks, in Kafka's order.
    ///
    /// # Errors
    /// [`Rejection`].
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<Token, Rejection> {
        let (header, claims, unsigned) = unsecured_parts(token)?;
        // A header without `alg` makes Kafka throw a NullPointerException,
        // which closes the connection.
        let alg = header
            .get("alg")
            .ok_or_else(|| Rejection::Abort("JWS header must have an Algorithm value".into()))?;
        if *alg != Claim::Text("none".into()) {
            return Err(Rejection::invalid(
                "Unsecured JWS must have 'none' for an algorithm",
            ));
        }
        if !unsigned {
            return Err(Rejection::invalid(
                "Unsecured JWS must not contain a digital signature",
            ));
        }
        let claim_of = |name: &str, wanted: &str| -> Result<Option<&Claim>, Rejection> {
            let claim = claims.get(name);
            match (claim, wanted) {
                (None, _)
                | (Some(Claim::Number(_)), "Number")
                | (Some(Claim::Text(_)), "String")
                | (Some(Claim::List(_)), "List") => Ok(claim),
                (Some(other), _) => Err(Rejection::invalid(format!(
                    "The '{name}' claim was not of type {wanted}: {}",
                    other.type_name()
                ))),
            }
        };
        let scope: BTreeSet<String> = match claims.get(&self.scope_claim) {
            Some(Claim::Text(text)) => {
                if text.trim().is_empty() {
                    BTreeSet::new()
                } else {
                    BTreeSet::from([text.trim().to_owned()])
                }
            }
            _ => match claim_of(&self.scope_claim, "List")? {
                Some(Claim::List(items)) => items
                    .iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                _ => BTreeSet::new(),
            },
        };
        let Some(Claim::Number(exp)) = claim_of("exp", "Number")? else {
            return Err(Rejection::invalid("No expiration time in JWT"));
        };
        let exp = *exp;
        let principal = match claim_of(&self.principal_claim, "String")? {
            Some(Claim::Text(name)) if !name.trim().is_empty() => name.clone(),
            _ => {
                return Err(Rejection::invalid(format!(
                    "No principal name in JWT claim: {}",
                    self.principal_claim
                )))
            }
        };
        let iat = match claim_of("iat", "Number")? {
            Some(Claim::Number(iat)) => Some(*iat),
            _ => None,
        };
        let skew = self.clock_skew_ms;
        if let Some(iat) = iat {
            if 1000.0 * iat > (now_ms + skew) as f64 {
                return Err(Rejection::invalid(format!(
                    "The Issued At value ({} seconds) was after the indicated time ({now_ms} ms) \
                     plus allowable clock skew ({skew} ms)",
                    java_f(iat)
                )));
            }
        }
        if (now_ms - skew) as f64 >= 1000.0 * exp {
            return Err(Rejection::invalid(format!(
                "The indicated time ({now_ms} ms) minus allowable clock skew ({skew} ms) was on or \
                 after the Expiration Time value ({} seconds)",
                java_f(exp)
            )));
        }
        if let Some(iat) = iat {
            if exp <= iat {
                return Err(Rejection::invalid(format!(
                    "The Expiration Time time ({} seconds) was not after the Issued At time ({} \
                     seconds)",
                    java_f(exp),
                    java_f(iat)
                )));
            }
        }
        if let Some(missing) = self.required_scope.iter().find(|s| !scope.contains(*s)) {
            let required = format!("[{}]", self.required_scope.join(", "));
            return Err(Rejection::Token {
                status: "insufficient_scope",
                scope: Some(required.clone()),
                reason: format!(
                    "The provided scope ([{}]) was missing a required scope ({missing}).  All \
                     required scope elements: {required}",
                    scope.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        Ok(Token {
            principal,
            expires_ms: seconds_to_ms(exp),
            issued_ms: iat.map(seconds_to_ms),
            scope,
        })
    }
}

type Claims = BTreeMap<String, Claim>;

/// The header and claims of an unsecured JWS (Kafka's
/// OAuthBearerUnsecuredJws), and whether its signature part is empty.
fn unsecured_parts(token: &str) -> Result<(Claims, Claims, bool), Rejection> {
    if token.contains("..") {
        return Err(Rejection::invalid(
            "Malformed compact serialization contains '..'",
        ));
    }
    // Java's split drops trailing empty strings; Kafka adds back the one
    // after a final dot.
    let mut parts: Vec<&str> = token.split('.').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if token.ends_with('.') {
        parts.push("");
    }
    let [header, claims, signature] = parts[..] else {
        return Err(Rejection::invalid(
            "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values",
        ));
    };
    Ok((
        java_json_map(header)?,
        java_json_map(claims)?,
        signature.is_empty(),
    ))
}

/// Kafka's `OAuthBearerUnsecuredJws.toMap`: Java's basic Base64, then
/// Jackson (a JSON value that is not an object gives no claims; trailing
/// text after the value is ignored).
fn java_json_map(part: &str) -> Result<Claims, Rejection> {
    let bytes = JAVA_BASE64
        .decode(part)
        .map_err(|_| Rejection::invalid("malformed Base64 URL encoded value"))?;
    let value = serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<Value>()
        .next()
        .transpose()
        .map_err(|_| Rejection::invalid("malformed JSON"))?;
    Ok(match value {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), Claim::from_json(v)))
            .collect(),
        _ => Claims::new(),
    })
}

// ---- signed tokens (BrokerJwtValidator over jose4j) -------------------------------

/// The claim checks of signed tokens.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `sasl.oauthbearer.expected.issuer`.
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.expected.audience` (empty: none expected, and a
    /// token with an `aud` claim is refused).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.sub.claim.name`.
    pub sub_claim: String,
    /// `sasl.oauthbearer.scope.claim.name`.
    pub scope_claim: String,
    /// `sasl.oauthbearer.clock.skew.seconds`.
    pub clock_skew_s: i64,
}

/// Signed-token validation: [`JwtSettings`] and the JWKS.
#[derive(Debug)]
pub struct SignedValidator {
    settings: JwtSettings,
    keys: Arc<Jwks>,
}

impl SignedValidator {
    /// A validator over `keys`.
    pub fn new(settings: JwtSettings, keys: Arc<Jwks>) -> Self {
        Self { settings, keys }
    }

    /// Kafka's BrokerJwtValidator.
    ///
    /// # Errors
    /// [`Rejection`] (always `invalid_token`), with jose4j's or Kafka's reason.
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<Token, Rejection> {
        self.check(token, now_ms).map_err(|reason| {
            Rejection::invalid(format!("Could not validate the access token: {reason}"))
        })
    }

    fn check(&self, token: &str, now_ms: i64) -> Result<Token, String> {
        const MALFORMED: &str =
            "Malformed JWT provided; expected three sections (header, payload, and signature)";
        let token = token.trim();
        let parts: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, signature_b64] = parts[..] else {
            return Err(MALFORMED.into());
        };
        if [header_b64, payload_b64, signature_b64]
            .iter()
            .any(|p| p.trim().is_empty())
        {
            return Err(MALFORMED.into());
        }
        let header = json_object(header_b64).map_err(|e| format!("Invalid JOSE header: {e}"))?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or("Invalid JOSE header: no 'alg' header")?;
        if alg == "none" {
            return Err("JWT rejected: 'none' is a blocked algorithm".into());
        }
        if let Some(critical) = header.get("crit") {
            return Err(format!(
                "Unrecognized header(s) marked as critical: {critical}"
            ));
        }
        let algorithm = Algorithm::from_name(alg)
            .ok_or_else(|| format!("JWT rejected: the algorithm {alg} is not supported"))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let header_text = serde_json::to_string(&header).unwrap_or_default();
        let key = self.keys.resolve(algorithm, kid, &header_text)?;
        let signature = BASE64URL
            .decode(signature_b64)
            .map_err(|_| "JWT rejected: the signature is not base64url".to_owned())?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(algorithm, signing_input.as_bytes(), &signature) {
            return Err(format!(
                "JWT rejected due to invalid signature. Additional details: [[9] Invalid JWS \
                 Signature: JsonWebSignature{header_text}]"
            ));
        }
        let claims = json_object(payload_b64)
            .map_err(|e| format!("Unable to parse JWT Claim Set JSON: {e}"))?;
        self.check_claims(&claims, now_ms)
    }

    /// jose4j's checks (as BrokerJwtValidator configures them), then Kafka's.
    fn check_claims(
        &self,
        claims: &serde_json::Map<String, Value>,
        now_ms: i64,
    ) -> Result<Token, String> {
        let rejected = |detail: String| {
            format!("JWT (claims->{}) rejected due to invalid claims or other invalid content. Additional details: [{detail}]", Value::Object(claims.clone()))
        };
        let numeric = |name: &str| -> Result<Option<i64>, String> {
            match claims.get(name) {
                None => Ok(None),
                Some(Value::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))),
                Some(other) => Err(rejected(format!(
                    "The value of the '{name}' claim is not the expected type ({other} - \
                     Cannot cast to Number)"
                ))),
            }
        };
        let now_s = now_ms.div_euclid(1000);
        let skew = self.settings.clock_skew_s;
        let exp = numeric("exp")?
            .ok_or_else(|| rejected("No Expiration Time (exp) claim present.".into()))?;
        let iat =
            numeric("iat")?.ok_or_else(|| rejected("No Issued At (iat) claim present.".into()))?;
        let nbf = numeric("nbf")?;
        if now_s.saturating_sub(skew) >= exp {
            return Err(rejected(format!(
                "The JWT is no longer valid - the evaluation time NumericDate{{{now_s}}} is on or \
                 after the Expiration Time (exp=NumericDate{{{exp}}}) claim value (even when \
                 providing {skew} seconds of leeway to account for clock skew)."
            )));
        }
        if exp < iat {
            return Err(rejected(format!(
                "The Expiration Time (exp={exp}) claim value cannot be before the Issued At \
                 (iat={iat}) claim value."
            )));
        }
        if let Some(nbf) = nbf {
            if exp < nbf {
                return Err(rejected(format!(
                    "The Expiration Time (exp={exp}) claim value cannot be before the Not Before \
                     (nbf={nbf}) claim value."
                )));
            }
            if now_s.saturating_add(skew) < nbf {
                return Err(rejected(format!(
                    "The JWT is not yet valid as the evaluation time NumericDate{{{now_s}}} is \
                     before the Not Before (nbf=NumericDate{{{nbf}}}) claim time (even when \
                     providing {skew} seconds of leeway to account for clock skew)."
                )));
            }
        }
        if let Some(expected) = &self.settings.expected_issuer {
            match claims.get("iss") {
                None => return Err(rejected("No Issuer (iss) claim present.".into())),
                Some(Value::String(iss)) if iss == expected => {}
                Some(Value::String(iss)) => {
                    return Err(rejected(format!(
                    "Issuer (iss) claim value ({iss}) doesn't match expected value of {expected}"
                )))
                }
                Some(other) => {
                    return Err(rejected(format!(
                        "The value of the 'iss' claim is not the expected type ({other} - Cannot \
                         cast to String)"
                    )))
                }
            }
        }
        self.check_audience(claims).map_err(rejected)?;
        // Kafka's own checks on the claims jose4j accepted.
        let scope: Vec<String> = match claims.get(&self.settings.scope_claim) {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(format!(
                        "{} value must be non-null",
                        self.settings.scope_claim
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        let mut scopes = BTreeSet::new();
        for item in scope {
            let item = valid_string(&self.settings.scope_claim, Some(&item))?;
            if !scopes.insert(item.clone()) {
                return Err(format!(
                    "{} value must not contain duplicates - {item} already present",
                    self.settings.scope_claim
                ));
            }
        }
        let expires_ms = exp.saturating_mul(1000);
        if expires_ms < 0 {
            return Err(format!(
                "exp value must be non-negative; value given was \"{expires_ms}\""
            ));
        }
        let sub_claim = &self.settings.sub_claim;
        let subject = match claims.get(sub_claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                return Err(format!(
                    "Could not extract the '{sub_claim}' claim from the access token"
                ))
            }
        };
        let principal = valid_string(sub_claim, subject)?;
        let issued_ms = iat.saturating_mul(1000);
        if issued_ms < 0 {
            return Err(format!(
                "iat value must be null or non-negative; value given was \"{issued_ms}\""
            ));
        }
        Ok(Token {
            principal,
            expires_ms,
            issued_ms: Some(issued_ms),
            scope: scopes,
        })
    }

    /// jose4j's AudValidator: with an expected audience the claim must name
    /// one of them; without, a token must not have an `aud` claim at all.
    fn check_audience(&self, claims: &serde_json::Map<String, Value>) -> Result<(), String> {
        let expected = &self.settings.expected_audience;
        let audiences: Vec<&str> = match claims.get("aud") {
            None => {
                return if expected.is_empty() {
                    Ok(())
                } else {
                    Err("No Audience (aud) claim present.".into())
                }
            }
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str().ok_or_else(|| {
                        "The value of the 'aud' claim is not the expected type".to_owned()
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("The value of the 'aud' claim is not the expected type".into()),
        };
        if audiences.iter().any(|a| expected.iter().any(|e| e == a)) {
            return Ok(());
        }
        let shown = format!("[{}]", audiences.join(", "));
        Err(if expected.is_empty() {
            format!(
                "Audience (aud) claim {shown} present in the JWT but no expected audience value(s) \
                 were provided to the JWT Consumer. Expected  as an aud value."
            )
        } else if let [one] = &expected[..] {
            format!(
                "Audience (aud) claim {shown} doesn't contain an acceptable identifier. Expected \
                 {one} as an aud value."
            )
        } else {
            format!(
                "Audience (aud) claim {shown} doesn't contain an acceptable identifier. Expected \
                 one of [{}] as an aud value.",
                expected.join(", ")
            )
        })
    }
}

/// Kafka's ClaimValidationUtils.validateString: present, not empty, not
/// only whitespace; trimmed.
fn valid_string(name: &str, value: Option<&str>) -> Result<String, String> {
    let value = value.ok_or_else(|| format!("{name} value must be non-null"))?;
    if value.is_empty() {
        return Err(format!("{name} value must be non-empty"));
    }
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{name} value must not contain only whitespace"));
    }
    Ok(trimmed.to_owned())
}

/// A base64url JSON object (a JOSE header or a claims set).
fn json_object(part: &str) -> Result<serde_json::Map<String, Value>, String> {
    let bytes = BASE64URL
        .decode(part)
        .map_err(|e| format!("not base64url ({e})"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("not JSON ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::jwks::Jwk;

    fn b64(value: &Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(value).expect("json"))
    }

    fn unsecured(claims: Value) -> String {
        format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none"})),
            b64(&claims)
        )
    }

    const NOW_MS: i64 = 1_700_000_000_000;
    const NOW: i64 = NOW_MS / 1000;

    fn message(token: &str) -> Vec<u8> {
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    #[test]
    fn initial_response() {
        let parsed =
            parse_initial_response(b"n,a=alice,\x01auth=Bearer abc.def.\x01traceId=x y\x01\x01")
                .unwrap();
        assert_eq!(parsed.token, "abc.def.");
        assert_eq!(parsed.authzid, "alice");
        assert_eq!(parsed.extensions["traceId"], "x y");
        assert_eq!(
            parse_initial_response(b"n,,\x01auth=bearer t0k3n==\x01\x01")
                .unwrap()
                .token,
            "t0k3n=="
        );
        for bad in [
            &b"\x01"[..],
            b"hello",
            b"n,,\x01auth=Bearer a\x01",
            b"n,,\x01\x01",
            b"n,,\x01auth=Basic abc\x01\x01",
            b"n,,\x01auth=Bearer a=b.c\x01\x01",
            b"n,,\x01auth=Bearer abc\x01bad key=v\x01\x01",
        ] {
            assert!(parse_initial_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsecured_tokens() {
        let options = UnsecuredOptions::default();
        let token = options
            .validate(
                &unsecured(serde_json::json!({"sub": "alice", "iat": NOW, "exp": NOW + 60, "scope": ["a", " b "]})),
                NOW_MS,
            )
            .unwrap();
        assert_eq!(token.principal, "alice");
        assert_eq!(token.expires_ms, NOW_MS + 60_000);
        assert_eq!(token.scope, BTreeSet::from(["a".into(), "b".into()]));
        let refused = |claims: Value| options.validate(&unsecured(claims), NOW_MS).unwrap_err();
        // expired: now is its expiration time
        let expired = refused(serde_json::json!({"sub": "alice", "exp": NOW}));
        assert_eq!(
            expired.challenge().unwrap(),
            r#"{"status":"invalid_token"}"#
        );
        assert!(
            expired
                .reason()
                .contains("was on or after the Expiration Time"),
            "{expired:?}"
        );
        assert!(refused(serde_json::json!({"exp": NOW + 60}))
            .reason()
            .contains("No principal name"));
        assert!(refused(serde_json::json!({"sub": " ", "exp": NOW + 60}))
            .reason()
            .contains("No principal name"));
        assert!(refused(serde_json::json!({"sub": 7, "exp": NOW + 60}))
            .reason()
            .contains("not of type String"));
        assert!(refused(serde_json::json!({"sub": "alice"}))
            .reason()
            .contains("No expiration time"));
        assert!(refused(serde_json::json!({"sub": "alice", "exp": "soon"}))
            .reason()
            .contains("not of type Number"));
        assert!(
            refused(serde_json::json!({"sub": "alice", "iat": NOW + 1, "exp": NOW + 60}))
                .reason()
                .contains("Issued At")
        );
        let skewed = UnsecuredOptions {
            clock_skew_ms: 5000,
            ..UnsecuredOptions::default()
        };
        let inconsistent =
            unsecured(serde_json::json!({"sub": "alice", "iat": NOW + 2, "exp": NOW + 1}));
        assert!(skewed
            .validate(&inconsistent, NOW_MS)
            .unwrap_err()
            .reason()
            .contains("was not after the Issued At"));
        // Kafka takes `"sub": null` as the text "null".
        assert_eq!(
            options
                .validate(
                    &unsecured(serde_json::json!({"sub": null, "exp": NOW + 1})),
                    NOW_MS
                )
                .unwrap()
                .principal,
            "null"
        );
        // a signature, a signed algorithm, no alg, two parts, bad base64
        let header = b64(&serde_json::json!({"alg": "none"}));
        let claims = b64(&serde_json::json!({"sub": "alice", "exp": NOW + 60}));
        for bad in [
            format!("{header}.{claims}.c2ln"),
            format!("{}.{claims}.", b64(&serde_json::json!({"alg": "RS256"}))),
            format!("{header}.{claims}"),
            format!("{header}..{claims}"),
            format!("{header}.{claims}.x.y"),
            format!("{header}.!!.",),
        ] {
            assert!(
                matches!(options.validate(&bad, NOW_MS), Err(Rejection::Token { .. })),
                "{bad}"
            );
        }
        let no_alg = format!("{}.{claims}.", b64(&serde_json::json!({"typ": "JWT"})));
        assert!(matches!(
            options.validate(&no_alg, NOW_MS),
            Err(Rejection::Abort(_))
        ));
        // Java's basic decoder: '-' and '_' are not Base64.
        assert!(options
            .validate(&format!("{header}.{claims}-.",), NOW_MS)
            .is_err());
    }

    #[test]
    fn unsecured_options() {
        let options = UnsecuredOptions::from_jaas(&parse_jaas(
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin" unsecuredValidatorPrincipalClaimName="user" unsecuredValidatorRequiredScope="read write" unsecuredValidatorAllowableClockSkewMs="5000";"#,
        ).unwrap())
        .unwrap();
        let token = unsecured(
            serde_json::json!({"user": "bob", "exp": NOW + 4, "scope": ["read"], "iat": NOW + 3}),
        );
        let refused = options.validate(&token, NOW_MS).unwrap_err();
        assert_eq!(
            refused.challenge().unwrap(),
            r#"{"status":"insufficient_scope", "scope":"[read, write]"}"#
        );
        let token = unsecured(
            serde_json::json!({"user": "bob", "exp": NOW - 4, "scope": "read write", "iat": NOW - 10}),
        );
        // the scope string is one item, "read write", as in Kafka
        assert!(options.validate(&token, NOW_MS).is_err());
        let token = unsecured(
            serde_json::json!({"user": "bob", "exp": NOW - 4, "scope": ["write", "read"], "iat": NOW - 10}),
        );
        // within the 5 s skew
        assert_eq!(options.validate(&token, NOW_MS).unwrap().principal, "bob");
        let bad = |jaas: &str| {
            UnsecuredOptions::from_jaas(&parse_jaas(&format!("M required {jaas};")).unwrap())
                .is_err()
        };
        assert!(bad(r#"unsecuredValidatorAllowableClockSkewMs="-1""#));
        assert!(bad(r#"unsecuredValidatorAllowableClockSkewMs="x""#));
        assert!(bad(r#"unsecuredValidatorRequiredScope="a\b""#));
    }

    #[test]
    fn exchange_sends_the_error_then_fails_on_01() {
        let validator = Validator::Unsecured(UnsecuredOptions::default());
        let mut server = OAuthServer::default();
        let expired = unsecured(serde_json::json!({"sub": "alice", "exp": NOW - 1}));
        let OAuthStep::Challenge(challenge) = server.step(&message(&expired), &validator, NOW_MS)
        else {
            panic!("expected a challenge")
        };
        assert_eq!(challenge, br#"{"status":"invalid_token"}"#);
        let OAuthStep::Failed(failure) = server.step(b"\x01", &validator, NOW_MS) else {
            panic!("expected a failure")
        };
        assert_eq!(failure, r#"{"status":"invalid_token"}"#);
        // \x01 without a refused token, or garbage: the generic failure
        assert!(matches!(
            OAuthServer::default().step(b"\x01", &validator, NOW_MS),
            OAuthStep::Malformed(_)
        ));
        // another token after the error challenge
        let mut server = OAuthServer::default();
        server.step(&message(&expired), &validator, NOW_MS);
        let good = unsecured(serde_json::json!({"sub": "alice", "exp": NOW + 1}));
        assert!(matches!(
            server.step(&message(&good), &validator, NOW_MS),
            OAuthStep::Done(_)
        ));
        // an authorization id that is not the token's principal
        let with_authzid = format!("n,a=bob,\x01auth=Bearer {good}\x01\x01");
        let OAuthStep::Failed(failure) =
            OAuthServer::default().step(with_authzid.as_bytes(), &validator, NOW_MS)
        else {
            panic!("expected a failure")
        };
        assert_eq!(failure, "Authentication failed: Client requested an authorization id (bob) that is different from the token's principal name (alice)");
    }

    // ---- signed tokens -------------------------------------------------------

    use ring::rand::SystemRandom;
    use ring::signature::{self as sig, KeyPair};

    /// A 2048-bit RSA key made for this test run by openssl (ring signs
    /// with RSA keys but does not make them), once per test binary.
    fn rsa_key() -> sig::RsaKeyPair {
        static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let der = DER.get_or_init(|| {
            let out = std::process::Command::new("openssl")
                .args([
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-outform",
                    "DER",
                ])
                .output()
                .expect("openssl makes the test's RSA key");
            assert!(
                out.status.success(),
                "openssl genpkey: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        });
        sig::RsaKeyPair::from_der(der).expect("an RSA key (PKCS#1 DER)")
    }

    fn rsa_jwk(key: &sig::RsaKeyPair, kid: &str) -> Value {
        let public = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
        let b = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        serde_json::json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b(&public.n), "e": b(&public.e)})
    }

    fn signed(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let signature = sign(input.as_bytes());
        format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }

    fn rsa_signed(key: &sig::RsaKeyPair, kid: &str, claims: &Value) -> String {
        signed(
            &serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
            claims,
            |input| {
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input,
                    &mut out,
                )
                .expect("signed");
                out
            },
        )
    }

    fn validator(keys: Vec<Value>, issuer: Option<&str>, audience: &[&str]) -> SignedValidator {
        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap();
        let keys: Vec<Jwk> = super::super::jwks::parse_jwks(&jwks).unwrap();
        SignedValidator::new(
            JwtSettings {
                expected_issuer: issuer.map(str::to_owned),
                expected_audience: audience.iter().map(|a| (*a).to_owned()).collect(),
                sub_claim: "sub".into(),
                scope_claim: "scope".into(),
                clock_skew_s: 30,
            },
            Jwks::fixed(keys),
        )
    }

    fn claims() -> Value {
        serde_json::json!({"iss": "https://idp", "aud": ["kafka", "other"], "sub": "alice", "iat": NOW, "exp": NOW + 600, "scope": "kafka"})
    }

    #[test]
    fn rs256_signatures() {
        let key = rsa_key();
        let v = validator(vec![rsa_jwk(&key, "k1")], Some("https://idp"), &["kafka"]);
        let token = v
            .validate(&rsa_signed(&key, "k1", &claims()), NOW_MS)
            .unwrap();
        assert_eq!(token.principal, "alice");
        assert_eq!(token.expires_ms, (NOW + 600) * 1000);
        assert_eq!(token.scope, BTreeSet::from(["kafka".into()]));
        // a flipped bit in the signature, the claims changed after signing
        let good = rsa_signed(&key, "k1", &claims());
        let mut tampered = good.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let refused = v.validate(&tampered, NOW_MS).unwrap_err();
        assert!(
            refused.reason().contains("invalid signature"),
            "{refused:?}"
        );
        let (head, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let mut forged = claims();
        forged["sub"] = "admin".into();
        assert!(v
            .validate(&format!("{head}.{}.{signature}", b64(&forged)), NOW_MS)
            .is_err());
        // unknown kid, alg none, HS256
        assert!(v
            .validate(&rsa_signed(&key, "k2", &claims()), NOW_MS)
            .unwrap_err()
            .reason()
            .contains("Unable to find a suitable verification key"));
        let none = format!(
            "{}.{}.c2ln",
            b64(&serde_json::json!({"alg": "none"})),
            b64(&claims())
        );
        assert!(v.validate(&none, NOW_MS).is_err());
        let hs = signed(
            &serde_json::json!({"alg": "HS256", "kid": "k1"}),
            &claims(),
            |_| vec![1; 32],
        );
        assert!(v.validate(&hs, NOW_MS).is_err());
    }

    #[test]
    fn claims_are_checked() {
        let key = rsa_key();
        let v = validator(vec![rsa_jwk(&key, "k1")], Some("https://idp"), &["kafka"]);
        let check = |change: &dyn Fn(&mut Value)| {
            let mut c = claims();
            change(&mut c);
            v.validate(&rsa_signed(&key, "k1", &c), NOW_MS)
        };
        let reason = |change: &dyn Fn(&mut Value)| check(change).unwrap_err().reason().to_owned();
        assert!(reason(&|c| c["exp"] = (NOW - 31).into()).contains("no longer valid"));
        assert!(
            check(&|c| {
                c["iat"] = (NOW - 60).into();
                c["exp"] = (NOW - 29).into();
            })
            .is_ok(),
            "within the 30 s skew"
        );
        assert!(reason(&|c| c["exp"] = (NOW - 1).into()).contains("cannot be before the Issued At"));
        assert!(reason(&|c| c["nbf"] = (NOW + 31).into()).contains("not yet valid"));
        assert!(
            reason(&|c| c["iss"] = "https://evil".into()).contains("doesn't match expected value")
        );
        assert!(reason(&|c| c["aud"] = "elsewhere".into())
            .contains("doesn't contain an acceptable identifier"));
        assert!(reason(&|c| {
            c.as_object_mut().unwrap().remove("aud");
        })
        .contains("No Audience"));
        assert!(reason(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        })
        .contains("No Expiration Time"));
        assert!(reason(&|c| {
            c.as_object_mut().unwrap().remove("iat");
        })
        .contains("No Issued At"));
        assert!(reason(&|c| {
            c.as_object_mut().unwrap().remove("sub");
        })
        .contains("sub value must be non-null"));
        assert!(reason(&|c| c["sub"] = "  ".into()).contains("whitespace"));
        assert!(reason(&|c| c["sub"] = 5.into()).contains("Could not extract the 'sub' claim"));
        assert!(reason(&|c| c["scope"] = serde_json::json!(["a", "a"])).contains("duplicates"));
        // every refusal is the same challenge
        assert_eq!(
            check(&|c| c["iss"] = "x".into())
                .unwrap_err()
                .challenge()
                .unwrap(),
            r#"{"status":"invalid_token"}"#
        );
        // without an expected audience, a token that has one is refused (jose4j)
        let open = validator(vec![rsa_jwk(&key, "k1")], None, &[]);
        assert!(open
            .validate(&rsa_signed(&key, "k1", &claims()), NOW_MS)
            .is_err());
        let mut c = claims();
        c.as_object_mut().unwrap().remove("aud");
        c["iss"] = "anyone".into();
        assert!(open.validate(&rsa_signed(&key, "k1", &c), NOW_MS).is_ok());
    }

    #[test]
    fn es256_signatures() {
        let rng = SystemRandom::new();
        let pkcs8 =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let key = sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let point = key.public_key().as_ref();
        let b = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "ec", "x": b(&point[1..33]), "y": b(&point[33..65])});
        // an RSA key first: the EC token must pick the EC key (no kid here)
        let v = validator(
            vec![rsa_jwk(&rsa_key(), "rsa"), jwk],
            Some("https://idp"),
            &["kafka"],
        );
        let sign = |input: &[u8]| key.sign(&rng, input).unwrap().as_ref().to_vec();
        let token = signed(&serde_json::json!({"alg": "ES256"}), &claims(), sign);
        assert_eq!(v.validate(&token, NOW_MS).unwrap().principal, "alice");
        let other =
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let other = sig::EcdsaKeyPair::from_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            other.as_ref(),
            &rng,
        )
        .unwrap();
        let forged = signed(&serde_json::json!({"alg": "ES256"}), &claims(), |i| {
            other.sign(&rng, i).unwrap().as_ref().to_vec()
        });
        assert!(v
            .validate(&forged, NOW_MS)
            .unwrap_err()
            .reason()
            .contains("invalid signature"));
    }
}
