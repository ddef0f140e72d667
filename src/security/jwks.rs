//! The keys that sign OAUTHBEARER tokens: the JWKS (RFC 7517) at
//! `sasl.oauthbearer.jwks.endpoint.url`, as Kafka's
//! RefreshingHttpsJwksVerificationKeyResolver and
//! JwksFileVerificationKeyResolver keep it.
//!
//! - `http://` and `https://`: fetched in the background (a task of the
//!   runtime; connection tasks only read the keys in memory), every
//!   `sasl.oauthbearer.jwks.endpoint.refresh.ms`, and soon after a token
//!   names a key id the set lacks (at most once a minute per key id, as
//!   Kafka). A fetch is retried with backoff from
//!   `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms` for at most
//!   `sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms`, each attempt
//!   bounded by a timeout; a failed refresh keeps the keys it had. Until
//!   the first fetch succeeds every signed token is refused (Kafka would
//!   not start). HTTPS trusts the system's roots, or the `ssl.truststore.*`
//!   options of the listener's OAUTHBEARER JAAS config (as Kafka's
//!   JaasOptionsUtils).
//! - `file://`: read at start (a missing or bad file stops the start, as on
//!   Kafka), read again when its modification time changes.
//!
//! A token's key: the one with its `kid` (if it names one), of the
//! algorithm's key type and curve, whose `use` (if any) is `sig` and whose
//! `alg` (if any) is the token's.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use ring::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::rustls;
use tracing::{debug, info, warn};

use super::oauth::BASE64URL;

/// How long a key id that the set lacked waits before it may trigger
/// another refresh (Kafka's MISSING_KEY_ID_CACHE_IN_FLIGHT_MS).
const MISSING_KEY_RETRY: Duration = Duration::from_secs(60);
/// Key ids remembered as missing (Kafka's MISSING_KEY_ID_CACHE_MAX_ENTRIES).
const MISSING_KEY_IDS: usize = 16;
/// Longer key ids never trigger a refresh (Kafka's MISSING_KEY_ID_MAX_KEY_LENGTH).
const MAX_KEY_ID_LENGTH: usize = 1000;
/// One HTTP attempt: connect, TLS, request and response.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS document read.
const MAX_DOCUMENT: usize = 4 << 20;
/// How often a JWKS file's modification time is checked.
const FILE_CHECK: Duration = Duration::from_secs(1);
/// The least time between two fetches that tokens asked for (a stream of
/// tokens naming ever new key ids must not turn into a stream of fetches).
const MIN_EXPEDITED_SPACING: Duration = Duration::from_secs(1);

/// The JWS algorithms strom verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ... SHA-384.
    Rs384,
    /// ... SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ... SHA-384.
    Ps384,
    /// ... SHA-512.
    Ps512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
}

impl Algorithm {
    /// The algorithm a JOSE header names.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            _ => return None,
        })
    }

    /// Its JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
        }
    }

    fn rsa(self) -> Option<&'static sig::RsaParameters> {
        Some(match self {
            Self::Rs256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Self::Rs384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Self::Rs512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Self::Ps256 => &sig::RSA_PSS_2048_8192_SHA256,
            Self::Ps384 => &sig::RSA_PSS_2048_8192_SHA384,
            Self::Ps512 => &sig::RSA_PSS_2048_8192_SHA512,
            Self::Es256 | Self::Es384 => return None,
        })
    }

    /// The curve of an ECDSA algorithm.
    fn curve(self) -> Option<&'static str> {
        match self {
            Self::Es256 => Some("P-256"),
            Self::Es384 => Some("P-384"),
            _ => None,
        }
    }
}

/// A public key of a JWKS.
#[derive(Debug, Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point, `04 || x || y`.
    Ec {
        curve: &'static str,
        point: Vec<u8>,
    },
}

/// One key of a JWKS.
#[derive(Debug, Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    usage: Option<String>,
    key: PublicKey,
}

impl Jwk {
    fn parse(value: &Value) -> Result<Self, String> {
        let field = |name: &str| value.get(name).and_then(Value::as_str);
        let bytes = |name: &str| -> Result<Vec<u8>, String> {
            let text = field(name).ok_or_else(|| format!("no '{name}'"))?;
            BASE64URL
                .decode(text)
                .map_err(|_| format!("'{name}' is not base64url"))
        };
        let key = match field("kty") {
            Some("RSA") => {
                let strip = |mut b: Vec<u8>| {
                    let zeros = b.iter().take_while(|&&x| x == 0).count();
                    b.drain(..zeros);
                    b
                };
                PublicKey::Rsa {
                    n: strip(bytes("n")?),
                    e: strip(bytes("e")?),
                }
            }
            Some("EC") => {
                let (curve, size) = match field("crv") {
                    Some("P-256") => ("P-256", 32),
                    Some("P-384") => ("P-384", 48),
                    other => return Err(format!("curve {other:?} is not supported")),
                };
                let (x, y) = (bytes("x")?, bytes("y")?);
                if x.len() > size || y.len() > size {
                    return Err("a coordinate is too long for its curve".into());
                }
                let mut point = vec![4];
                for coordinate in [x, y] {
                    point.resize(point.len() + size - coordinate.len(), 0);
                    point.extend_from_slice(&coordinate);
                }
                PublicKey::Ec { curve, point }
            }
            other => return Err(format!("key type {other:?} is not supported")),
        };
        Ok(Self {
            kid: field("kid").map(str::to_owned),
            alg: field("alg").map(str::to_owned),
            usage: field("use").map(str::to_owned),
            key,
        })
    }

    /// Whether this key may verify a token of `alg` naming `kid`.
    fn fits(&self, alg: Algorithm, kid: Option<&str>) -> bool {
        if kid.is_some_and(|kid| self.kid.as_deref() != Some(kid)) {
            return false;
        }
        if self.usage.as_deref().is_some_and(|u| u != "sig")
            || self.alg.as_deref().is_some_and(|a| a != alg.name())
        {
            return false;
        }
        match &self.key {
            PublicKey::Rsa { .. } => alg.rsa().is_some(),
            PublicKey::Ec { curve, .. } => alg.curve() == Some(*curve),
        }
    }

    /// Whether `signature` is this key's signature of `message` under `alg`.
    pub fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        match (&self.key, alg.rsa(), alg) {
            (PublicKey::Rsa { n, e }, Some(params), _) => RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok(),
            (PublicKey::Ec { curve, point }, None, Algorithm::Es256) if *curve == "P-256" => {
                UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            (PublicKey::Ec { curve, point }, None, Algorithm::Es384) if *curve == "P-384" => {
                UnparsedPublicKey::new(&sig::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

/// The keys of a JWKS document: those strom can use (others are skipped,
/// as jose4j skips keys it cannot read).
///
/// # Errors
/// Not JSON, or no `keys` array.
pub fn parse_jwks(document: &[u8]) -> Result<Vec<Jwk>, String> {
    let value: Value =
        serde_json::from_slice(document).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no \"keys\" array")?;
    Ok(keys
        .iter()
        .filter_map(|key| match Jwk::parse(key) {
            Ok(jwk) => Some(jwk),
            Err(e) => {
                debug!(cause = %e, "skipping a JWK");
                None
            }
        })
        .collect())
}

/// Where the keys come from and how often.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// `sasl.oauthbearer.jwks.endpoint.url`.
    pub url: String,
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`.
    pub refresh_ms: i64,
    /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms`.
    pub retry_backoff_ms: i64,
    /// `sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms`.
    pub retry_backoff_max_ms: i64,
    /// The listener's OAUTHBEARER JAAS options (`ssl.truststore.*` for HTTPS).
    pub jaas_options: BTreeMap<String, String>,
}

#[derive(Debug)]
enum Source {
    Http(HttpTarget),
    File(PathBuf),
    /// Keys given once (tests).
    Fixed,
}

struct HttpTarget {
    tls: Option<tokio_rustls::TlsConnector>,
    host: String,
    port: u16,
    /// Path and query.
    path: String,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("tls", &self.tls.is_some())
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &self.path)
            .finish()
    }
}

/// A JWKS kept current.
#[derive(Debug)]
pub struct Jwks {
    url: String,
    source: Source,
    keys: RwLock<Option<Arc<Vec<Jwk>>>>,
    /// Key ids lately missing from the set, with when they may trigger a
    /// refresh again.
    missing: Mutex<VecDeque<(String, Instant)>>,
    refresh: Arc<Notify>,
    refresh_every: Duration,
    retry_backoff: Duration,
    retry_backoff_max: Duration,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Jwks {
    fn drop(&mut self) {
        if let Ok(mut task) = self.task.lock() {
            if let Some(task) = task.take() {
                task.abort();
            }
        }
    }
}

fn millis(value: i64, key: &str, minimum: i64) -> Result<Duration, String> {
    if value < minimum {
        return Err(format!("{key} must be at least {minimum}, not {value}"));
    }
    Ok(Duration::from_millis(u64::try_from(value).unwrap_or(0)))
}

impl Jwks {
    /// Checks the settings, reads a `file://` JWKS, and (inside a tokio
    /// runtime) starts the task that fetches and refreshes the keys.
    ///
    /// # Errors
    /// A URL strom cannot fetch, a missing or bad JWKS file, bad timings,
    /// an unreadable truststore.
    pub fn start(settings: JwksSettings) -> Result<Arc<Self>, String> {
        let source = source(&settings)?;
        let keys = match &source {
            Source::File(path) => Some(Arc::new(read_file(path)?)),
            Source::Http(_) | Source::Fixed => None,
        };
        let jwks = Arc::new(Self {
            url: settings.url.clone(),
            source,
            keys: RwLock::new(keys),
            missing: Mutex::new(VecDeque::new()),
            refresh: Arc::new(Notify::new()),
            refresh_every: millis(
                settings.refresh_ms,
                "sasl.oauthbearer.jwks.endpoint.refresh.ms",
                1,
            )?,
            retry_backoff: millis(
                settings.retry_backoff_ms,
                "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
                0,
            )?,
            retry_backoff_max: millis(
                settings.retry_backoff_max_ms,
                "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
                0,
            )?,
            task: Mutex::new(None),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let task = runtime.spawn(keep_current(Arc::downgrade(&jwks), jwks.refresh.clone()));
            if let Ok(mut slot) = jwks.task.lock() {
                *slot = Some(task.abort_handle());
            }
        }
        Ok(jwks)
    }

    /// A key set that never changes (tests).
    pub fn fixed(keys: Vec<Jwk>) -> Arc<Self> {
        Arc::new(Self {
            url: "fixed".into(),
            source: Source::Fixed,
            keys: RwLock::new(Some(Arc::new(keys))),
            missing: Mutex::new(VecDeque::new()),
            refresh: Arc::new(Notify::new()),
            refresh_every: Duration::from_secs(3600),
            retry_backoff: Duration::ZERO,
            retry_backoff_max: Duration::ZERO,
            task: Mutex::new(None),
        })
    }

    fn current(&self) -> Option<Arc<Vec<Jwk>>> {
        self.keys.read().ok().and_then(|keys| keys.clone())
    }

    fn install(&self, keys: Vec<Jwk>) {
        let ids: Vec<String> = keys.iter().filter_map(|k| k.kid.clone()).collect();
        if let Ok(mut missing) = self.missing.lock() {
            missing.retain(|(kid, _)| !ids.contains(kid));
        }
        if let Ok(mut slot) = self.keys.write() {
            *slot = Some(Arc::new(keys));
        }
    }

    /// The key for a token of `alg` naming `kid` (`header` is the token's
    /// JOSE header, for the message). A key id the set lacks asks for a
    /// refresh (at most once a minute per id); this token is refused all
    /// the same, as on Kafka.
    ///
    /// # Errors
    /// No fitting key, or no keys yet.
    pub fn resolve(&self, alg: Algorithm, kid: Option<&str>, header: &str) -> Result<Jwk, String> {
        let Some(keys) = self.current() else {
            self.expedite(kid.unwrap_or(""));
            return Err(format!(
                "Unable to find a suitable verification key for JWS w/ header {header}: no JWKS \
                 could be obtained from {} yet",
                self.url
            ));
        };
        if let Some(key) = keys.iter().find(|k| k.fits(alg, kid)) {
            return Ok(key.clone());
        }
        if self.expedite(kid.unwrap_or("")) {
            debug!(url = %self.url, header, "refreshing the JWKS: no key for this token");
        }
        let ids: Vec<&str> = keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("(no kid)"))
            .collect();
        Err(format!(
            "Unable to find a suitable verification key for JWS w/ header {header} from JWKs \
             with key ids [{}] obtained from {}",
            ids.join(", "),
            self.url
        ))
    }

    /// Asks for a refresh now unless `kid` asked less than a minute ago.
    fn expedite(&self, kid: &str) -> bool {
        if kid.len() > MAX_KEY_ID_LENGTH || matches!(self.source, Source::Fixed) {
            return false;
        }
        let now = Instant::now();
        let Ok(mut missing) = self.missing.lock() else {
            return false;
        };
        if let Some(at) = missing.iter().position(|(k, _)| k == kid) {
            if missing[at].1 > now {
                return false;
            }
            missing.remove(at);
        }
        missing.push_back((kid.to_owned(), now + MISSING_KEY_RETRY));
        while missing.len() > MISSING_KEY_IDS {
            missing.pop_front();
        }
        self.refresh.notify_one();
        true
    }

    /// Fetches the document, retrying with exponential backoff for at most
    /// `retry_backoff_max` (Kafka's Retry).
    async fn fetch_with_retry(&self, target: &HttpTarget) -> Result<Vec<Jwk>, String> {
        let started = Instant::now();
        let mut wait = self.retry_backoff;
        loop {
            let attempt = match tokio::time::timeout(ATTEMPT_TIMEOUT, get(target)).await {
                Ok(Ok(body)) => parse_jwks(&body),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
            };
            let error = match attempt {
                Ok(keys) => return Ok(keys),
                Err(e) => e,
            };
            let left = self.retry_backoff_max.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(error);
            }
            debug!(url = %self.url, cause = %error, "JWKS fetch failed; retrying");
            tokio::time::sleep(wait.min(left)).await;
            wait = (wait * 2).max(Duration::from_millis(1));
        }
    }
}

/// The background task: fetches (or re-reads) the keys, then waits for the
/// next refresh or an expedited one. Ends when the key set is dropped.
async fn keep_current(jwks: Weak<Jwks>, refresh: Arc<Notify>) {
    let mut file_stamp = None;
    let mut first = true;
    loop {
        let Some(set) = jwks.upgrade() else { return };
        let wait = match &set.source {
            Source::Fixed => return,
            Source::Http(target) => match set.fetch_with_retry(target).await {
                Ok(keys) => {
                    if first || set.current().is_none() {
                        info!(url = %set.url, keys = keys.len(), "JWKS retrieved");
                    } else {
                        debug!(url = %set.url, keys = keys.len(), "JWKS refreshed");
                    }
                    first = false;
                    set.install(keys);
                    set.refresh_every
                }
                Err(e) if set.current().is_none() => {
                    warn!(url = %set.url, cause = %e,
                        "cannot retrieve the JWKS: OAUTHBEARER tokens are refused until it can be");
                    set.retry_backoff_max.max(Duration::from_secs(1))
                }
                Err(e) => {
                    warn!(url = %set.url, cause = %e, "JWKS refresh failed; keeping the keys retrieved before");
                    set.refresh_every
                }
            },
            Source::File(path) => {
                let stamp = modified(path);
                if stamp != file_stamp {
                    if file_stamp.is_some() || !first {
                        match tokio::fs::read(path)
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|d| parse_jwks(&d))
                        {
                            Ok(keys) => {
                                info!(url = %set.url, keys = keys.len(), "JWKS file changed: keys reloaded");
                                set.install(keys);
                            }
                            Err(e) => {
                                warn!(url = %set.url, cause = %e, "JWKS file changed but cannot be read; keeping the keys read before")
                            }
                        }
                    }
                    file_stamp = stamp;
                }
                first = false;
                FILE_CHECK
            }
        };
        drop(set);
        let fetched = Instant::now();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = refresh.notified() => {
                tokio::time::sleep(MIN_EXPEDITED_SPACING.saturating_sub(fetched.elapsed())).await;
            }
        }
    }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_file(path: &PathBuf) -> Result<Vec<Jwk>, String> {
    let document = std::fs::read(path).map_err(|e| {
        format!(
            "sasl.oauthbearer.jwks.endpoint.url: cannot read the JWKS file {}: {e}",
            path.display()
        )
    })?;
    parse_jwks(&document).map_err(|e| format!("{}: {e}", path.display()))
}

/// Where `settings.url` points.
fn source(settings: &JwksSettings) -> Result<Source, String> {
    let url = settings.url.trim();
    let bad =
        |why: &str| format!("sasl.oauthbearer.jwks.endpoint.url contains a URL ({url}) that {why}");
    let (scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| bad("is missing the protocol"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            // file:/path, file:///path, file://localhost/path; the path raw, as Kafka reads it.
            let path = match rest.strip_prefix("//") {
                Some(authority_and_path) => {
                    let at = authority_and_path
                        .find('/')
                        .unwrap_or(authority_and_path.len());
                    &authority_and_path[at..]
                }
                None => rest,
            };
            if path.is_empty() {
                return Err(bad("names no file"));
            }
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(format!(
                    "sasl.oauthbearer.jwks.endpoint.url contains a file ({}) that doesn't exist or \
                     is not a file",
                    path.display()
                ));
            }
            Ok(Source::File(path))
        }
        scheme @ ("http" | "https") => {
            let rest = rest.strip_prefix("//").ok_or_else(|| bad("is malformed"))?;
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let path = path.split('#').next().unwrap_or("");
            let path = if path.is_empty() {
                "/".to_owned()
            } else if path.starts_with('?') {
                format!("/{path}")
            } else {
                path.to_owned()
            };
            if authority.contains('@') {
                return Err(bad("has user info: not supported"));
            }
            let default_port = if scheme == "https" { 443 } else { 80 };
            let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
                let (host, after) = v6.split_once(']').ok_or_else(|| bad("is malformed"))?;
                let port = match after.strip_prefix(':') {
                    Some(p) => p.parse().map_err(|_| bad("has a bad port"))?,
                    None if after.is_empty() => default_port,
                    None => return Err(bad("is malformed")),
                };
                (host.to_owned(), port)
            } else {
                match authority.rsplit_once(':') {
                    Some((host, port)) => (
                        host.to_owned(),
                        port.parse().map_err(|_| bad("has a bad port"))?,
                    ),
                    None => (authority.to_owned(), default_port),
                }
            };
            if host.is_empty() {
                return Err(bad("names no host"));
            }
            let tls = (scheme == "https")
                .then(|| tls_connector(&settings.jaas_options))
                .transpose()?;
            Ok(Source::Http(HttpTarget {
                tls,
                host,
                port,
                path,
            }))
        }
        other => Err(bad(&format!(
            "contains an invalid protocol ({other}); only \"http\", \"https\", and \"file\" \
             protocol are supported"
        ))),
    }
}

/// The TLS client for an `https://` JWKS: the truststore of the JAAS
/// options (`ssl.truststore.location` / `.type` / `.password`, or
/// `ssl.truststore.certificates`), else the system's roots.
fn tls_connector(options: &BTreeMap<String, String>) -> Result<tokio_rustls::TlsConnector, String> {
    let get = |key: &str| {
        options
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let mut roots = rustls::RootCertStore::empty();
    let configured = super::tls::trusted_certificates(&get)
        .map_err(|e| format!("the OAUTHBEARER JAAS config's truststore: {e}"))?;
    if configured.is_empty() {
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            debug!(cause = %error, "a system root certificate could not be loaded");
        }
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            return Err(
                "no system root certificates to check the JWKS server's with: set \
                 ssl.truststore.location in the listener's OAUTHBEARER JAAS config"
                    .into(),
            );
        }
    } else {
        for certificate in configured {
            roots
                .add(certificate)
                .map_err(|e| format!("the OAUTHBEARER JAAS config's truststore: {e}"))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS for the JWKS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// GET over HTTP/1.1: the body of a 200 answer.
async fn get(target: &HttpTarget) -> Result<Vec<u8>, String> {
    let socket = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", target.host, target.port))?;
    let host_header = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/json\r\nUser-Agent: strom\r\n\
         Connection: close\r\n\r\n",
        target.path
    );
    match &target.tls {
        None => exchange(socket, &request).await,
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| format!("{}: {e}", target.host))?;
            let stream = tls
                .connect(name, socket)
                .await
                .map_err(|e| format!("TLS with {}: {e}", target.host))?;
            exchange(stream, &request).await
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut received = Vec::new();
    let mut chunk = vec![0; 16 << 10];
    loop {
        if let Some(body) = complete_response(&received, false)? {
            return Ok(body);
        }
        let read = match stream.read(&mut chunk).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(format!("reading the answer: {e}")),
        };
        if read == 0 {
            return complete_response(&received, true)?
                .ok_or_else(|| "the connection closed before the whole answer came".into());
        }
        received.extend_from_slice(&chunk[..read]);
        if received.len() > MAX_DOCUMENT {
            return Err(format!("the answer is larger than {MAX_DOCUMENT} bytes"));
        }
    }
}

/// The body of a whole 200 response in `data` (`None`: more to read;
/// `closed`: the connection ended, so a body without length ends here).
fn complete_response(data: &[u8], closed: bool) -> Result<Option<Vec<u8>>, String> {
    let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&data[..end]);
    let body = &data[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let code = status.split(' ').nth(1).unwrap_or("");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if code != "200" {
        let location = header("location")
            .map(|l| format!(" (to {l}: redirects are not followed)"))
            .unwrap_or_default();
        return Err(format!("the server answered {status}{location}"));
    }
    if header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked")) {
        return dechunk(body);
    }
    if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| format!("bad Content-Length {length}"))?;
        return Ok((body.len() >= length).then(|| body[..length].to_vec()));
    }
    Ok(closed.then(|| body.to_vec()))
}

/// A chunked body, if all of it is there.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> JwksSettings {
        JwksSettings {
            url: url.into(),
            refresh_ms: 3_600_000,
            retry_backoff_ms: 10,
            retry_backoff_max_ms: 100,
            jaas_options: BTreeMap::new(),
        }
    }

    #[test]
    fn urls() {
        let Ok(Source::Http(t)) = source(&settings("http://127.0.0.1:8080/keys?x=1")) else {
            panic!()
        };
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/keys?x=1")
        );
        let Ok(Source::Http(t)) = source(&settings("HTTP://[::1]")) else {
            panic!()
        };
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 80, "/"));
        assert!(source(&settings("ftp://x/y"))
            .unwrap_err()
            .contains("invalid protocol"));
        assert!(source(&settings("file:///no/such/jwks.json")).is_err());
        assert!(source(&settings("jwks.json")).is_err());
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(complete_response(ok, false).unwrap().unwrap(), b"{}");
        assert_eq!(complete_response(&ok[..ok.len() - 1], false).unwrap(), None);
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{\"\r\n3\r\nk\":\r\n2\r\n1}\r\n0\r\n\r\n";
        assert_eq!(
            complete_response(chunked, false).unwrap().unwrap(),
            b"{\"k\":1}"
        );
        let to_close = b"HTTP/1.0 200 OK\r\n\r\n{}";
        assert_eq!(complete_response(to_close, false).unwrap(), None);
        assert_eq!(complete_response(to_close, true).unwrap().unwrap(), b"{}");
        assert!(complete_response(b"HTTP/1.1 404 Not Found\r\n\r\n", false).is_err());
    }

    #[test]
    fn unknown_kids_ask_for_a_refresh_once_a_minute() {
        let jwks = Jwks::start(settings("http://127.0.0.1:9/jwks")).unwrap();
        assert!(jwks.resolve(Algorithm::Rs256, Some("a"), "{}").is_err());
        assert!(!jwks.expedite("a"), "asked a moment ago");
        assert!(jwks.expedite("b"));
        assert!(!jwks.expedite(&"k".repeat(1001)));
    }

    /// A JWKS server on loopback: the keys arrive in the background, and a
    /// new key id is fetched when a token names it.
    #[tokio::test]
    async fn fetched_and_refreshed_over_http() {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let documents = Arc::new(Mutex::new(vec![
            r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"one","x":"AQ","y":"Ag"}]}"#.to_owned(),
        ]));
        let served = documents.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let body = served.lock().unwrap().last().cloned().unwrap_or_default();
                let mut request = vec![0; 4096];
                let _ = socket.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let jwks = Jwks::start(settings(&format!("http://{addr}/jwks.json"))).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while jwks.current().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(jwks.resolve(Algorithm::Es256, Some("one"), "{}").is_ok());
        documents.lock().unwrap().push(
            r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"two","x":"AQ","y":"Ag"}]}"#.to_owned(),
        );
        assert!(jwks.resolve(Algorithm::Es256, Some("two"), "{}").is_err());
        let deadline = Instant::now() + Duration::from_secs(5);
        while jwks.resolve(Algorithm::Es256, Some("two"), "{}").is_err()
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(jwks.resolve(Algorithm::Es256, Some("two"), "{}").is_ok());
        assert!(
            jwks.resolve(Algorithm::Rs256, Some("two"), "{}").is_err(),
            "an EC key for RS256"
        );
    }
}
