//! TLS listeners with rustls, configured by Kafka's `ssl.*` keys: PEM and
//! PKCS12 keystores and truststores, `ssl.client.auth`,
//! `ssl.enabled.protocols`, `ssl.cipher.suites`. The files are checked at
//! most once a second as connections arrive and reloaded when they change
//! (a reload that fails keeps the previous certificates and says why).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, server::WebPkiClientVerifier, ServerConfig};
use tracing::{info, warn};

use crate::config::{BrokerConfig, ConfigError};

/// How often the key and trust files are checked for changes, at most.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// A listener's TLS server side.
pub struct TlsAcceptor {
    listener: String,
    config: BrokerConfig,
    current: RwLock<Arc<ServerConfig>>,
    /// The files the current config was read from, with their times.
    files: Mutex<Files>,
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Files {
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
    checked: Instant,
}

/// A TLS connection: the stream, and the client certificate's subject.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

impl TlsAcceptor {
    /// Reads the listener's keystore and truststore.
    ///
    /// # Errors
    /// A file that cannot be read or parsed, a JKS store, or an unknown
    /// protocol or cipher suite.
    pub fn new(config: &BrokerConfig, listener: &str) -> Result<Self, ConfigError> {
        let (server, paths) =
            build(config, listener).map_err(|message| ConfigError::InvalidValue {
                message: format!("listener {listener}: {message}"),
                origin: "ssl.keystore.location".into(),
            })?;
        Ok(Self {
            listener: listener.to_owned(),
            config: config.clone(),
            current: RwLock::new(Arc::new(server)),
            files: Mutex::new(Files {
                stamps: stamps(paths),
                checked: Instant::now(),
            }),
        })
    }

    /// Runs the TLS handshake on an accepted socket; returns the stream
    /// and the client certificate's DER, if the client sent one.
    ///
    /// # Errors
    /// The handshake fails (a client without a certificate where
    /// `ssl.client.auth=required`, a protocol mismatch, a plaintext client).
    pub async fn accept(&self, socket: TcpStream) -> io::Result<(TlsStream, Option<Vec<u8>>)> {
        self.reload_if_changed();
        let server = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let stream = tokio_rustls::TlsAcceptor::from(server)
            .accept(socket)
            .await?;
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.as_ref().to_vec());
        Ok((stream, certificate))
    }

    /// Rebuilds the server config if a key or trust file changed since
    /// the last check (checked at most once per [`RELOAD_CHECK`]).
    fn reload_if_changed(&self) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if files.checked.elapsed() < RELOAD_CHECK {
            return;
        }
        files.checked = Instant::now();
        let changed = files
            .stamps
            .iter()
            .any(|(path, stamp)| modified(path) != *stamp);
        if !changed {
            return;
        }
        match build(&self.config, &self.listener) {
            Ok((server, paths)) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(server);
                files.stamps = stamps(paths);
                info!(listener = %self.listener, "reloaded TLS certificates");
            }
            Err(message) => {
                // Keep serving with the old certificates; try again when
                // the files change again.
                files.stamps = stamps(files.stamps.iter().map(|(p, _)| p.clone()).collect());
                warn!(listener = %self.listener, %message, "TLS certificates changed but cannot be loaded");
            }
        }
    }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn stamps(paths: Vec<PathBuf>) -> Vec<(PathBuf, Option<SystemTime>)> {
    paths
        .into_iter()
        .map(|p| {
            let stamp = modified(&p);
            (p, stamp)
        })
        .collect()
}

/// The rustls server config of `listener`, and the files it was read from.
fn build(config: &BrokerConfig, listener: &str) -> Result<(ServerConfig, Vec<PathBuf>), String> {
    let get = |key: &str| {
        config
            .listener_value(listener, key)
            .filter(|v| !v.is_empty())
    };
    let mut files = Vec::new();
    let (chain, key) = keystore(&get, &mut files)?;
    let provider = Arc::new(provider(get("ssl.cipher.suites"))?);
    let versions = protocol_versions(get("ssl.enabled.protocols").unwrap_or("TLSv1.2,TLSv1.3"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols: {e}"))?;
    let client_auth = get("ssl.client.auth").unwrap_or("none");
    let builder = if client_auth.eq_ignore_ascii_case("none") {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let trusted = truststore(&get, &mut files)?;
        if trusted.is_empty() {
            return Err(format!(
                "ssl.client.auth={client_auth} needs trusted certificates: \
                 set ssl.truststore.location (PEM or PKCS12) or ssl.truststore.certificates"
            ));
        }
        for certificate in trusted {
            roots
                .add(certificate)
                .map_err(|e| format!("truststore certificate: {e}"))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if client_auth.eq_ignore_ascii_case("requested") {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        builder.with_client_cert_verifier(
            verifier
                .build()
                .map_err(|e| format!("client certificate verifier: {e}"))?,
        )
    };
    let server = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("keystore: {e}"))?;
    Ok((server, files))
}

pub(super) type Getter<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

/// The certificate chain and private key of the keystore.
pub(super) fn keystore(
    get: &Getter<'_>,
    files: &mut Vec<PathBuf>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let kind = get("ssl.keystore.type")
        .unwrap_or("JKS")
        .to_ascii_uppercase();
    match kind.as_str() {
        "PEM" => {
            let (chain_pem, key_pem) = match (
                get("ssl.keystore.certificate.chain"),
                get("ssl.keystore.key"),
            ) {
                (Some(chain), Some(key)) => (chain.as_bytes().to_vec(), key.as_bytes().to_vec()),
                _ => {
                    let path = location(get, "ssl.keystore.location", files)?;
                    let pem = std::fs::read(&path)
                        .map_err(|e| format!("cannot read keystore {}: {e}", path.display()))?;
                    (pem.clone(), pem)
                }
            };
            let chain = CertificateDer::pem_slice_iter(&chain_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("keystore certificates: {e}"))?;
            if chain.is_empty() {
                return Err("the PEM keystore holds no certificate".into());
            }
            let key = match encrypted_pkcs8(&key_pem) {
                Some(block) => decrypt_pkcs8(block, get("ssl.key.password"))?,
                None => PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    if encrypted(&key_pem) {
                        "the PEM keystore's private key is encrypted the legacy OpenSSL way: \
                         convert it to encrypted PKCS#8 (openssl pkcs8 -topk8), as Kafka reads"
                            .into()
                    } else {
                        format!("keystore private key: {e}")
                    }
                })?,
            };
            Ok((chain, key))
        }
        "PKCS12" => {
            let path = location(get, "ssl.keystore.location", files)?;
            let store = pkcs12(&path, get("ssl.keystore.password"))?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| format!("{} holds no private key", path.display()))?;
            let certificates = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            Ok((certificates, key))
        }
        other => Err(format!(
            "ssl.keystore.type={other} is not supported: use PEM or PKCS12 \
             (keytool -importkeystore -deststoretype PKCS12 converts a JKS store)"
        )),
    }
}

/// The certificates of the `ssl.truststore.*` settings `get` reads (empty
/// when none are configured): for other TLS clients (the OAUTHBEARER JWKS).
///
/// # Errors
/// An unreadable or unsupported truststore.
pub(crate) fn trusted_certificates(
    get: &Getter<'_>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    truststore(get, &mut Vec::new())
}

/// The trusted certificates (empty when none are configured).
pub(super) fn truststore(
    get: &Getter<'_>,
    files: &mut Vec<PathBuf>,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let kind = get("ssl.truststore.type")
        .unwrap_or("JKS")
        .to_ascii_uppercase();
    if let Some(inline) = get("ssl.truststore.certificates") {
        return CertificateDer::pem_slice_iter(inline.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("ssl.truststore.certificates: {e}"));
    }
    if get("ssl.truststore.location").is_none() {
        return Ok(Vec::new());
    }
    let path = location(get, "ssl.truststore.location", files)?;
    match kind.as_str() {
        "PEM" => {
            let pem = std::fs::read(&path)
                .map_err(|e| format!("cannot read truststore {}: {e}", path.display()))?;
            CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("truststore {}: {e}", path.display()))
        }
        "PKCS12" => {
            let store = pkcs12(&path, get("ssl.truststore.password"))?;
            Ok(store
                .entries()
                .filter_map(|(_, entry)| match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        Some(CertificateDer::from(c.as_der().to_vec()))
                    }
                    _ => None,
                })
                .collect())
        }
        other => Err(format!(
            "ssl.truststore.type={other} is not supported: use PEM or PKCS12"
        )),
    }
}

fn location(get: &Getter<'_>, key: &str, files: &mut Vec<PathBuf>) -> Result<PathBuf, String> {
    let path = PathBuf::from(get(key).ok_or_else(|| format!("{key} is not set"))?);
    files.push(path.clone());
    Ok(path)
}

fn pkcs12(path: &PathBuf, password: Option<&str>) -> Result<p12_keystore::KeyStore, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    p12_keystore::KeyStore::from_pkcs12(
        &data,
        password.unwrap_or(""),
        p12_keystore::Pkcs12ImportPolicy::Relaxed,
    )
    .map_err(|e| format!("{} (wrong password?): {e}", path.display()))
}

const ENCRYPTED_BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &str = "-----END ENCRYPTED PRIVATE KEY-----";

/// The `ENCRYPTED PRIVATE KEY` block of a PEM file, if it has one.
fn encrypted_pkcs8(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let start = text.find(ENCRYPTED_BEGIN)?;
    let end = start + text[start..].find(ENCRYPTED_END)? + ENCRYPTED_END.len();
    Some(&text[start..end])
}

/// `pbeWithSHAAnd3-KeyTripleDES-CBC` (PKCS#12): what `openssl pkcs8 -topk8
/// -v1 PBE-SHA1-3DES` writes, the scheme Kafka's PEM keystores read on Java 17.
const PBE_SHA1_3DES: &str = "1.2.840.113549.1.12.1.3";

/// Decrypts an encrypted PKCS#8 key with `ssl.key.password`: PBES2
/// (PBKDF2 or scrypt with AES-CBC, `openssl pkcs8 -topk8 -v2 aes-256-cbc`)
/// or PKCS#12's PBE with SHA-1 and 3DES (`-v1 PBE-SHA1-3DES`).
fn decrypt_pkcs8(block: &str, password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let password =
        password.ok_or("the PEM keystore's private key is encrypted: set ssl.key.password")?;
    let invalid = |e: pkcs8::der::Error| format!("keystore private key: {e}");
    let wrong = || "cannot decrypt the keystore's private key: wrong ssl.key.password?".to_owned();
    let (_, document) = pkcs8::Document::from_pem(block).map_err(invalid)?;
    let der = document.as_bytes();
    if let Some((salt, iterations, data)) = pbe_sha1_3des(der).map_err(invalid)? {
        let key = pkcs12_key(
            password,
            &salt,
            pkcs12::kdf::Pkcs12KeyType::EncryptionKey,
            iterations,
            24,
        )?;
        let iv = pkcs12_key(
            password,
            &salt,
            pkcs12::kdf::Pkcs12KeyType::Iv,
            iterations,
            8,
        )?;
        use cbc::cipher::{block_padding::Pkcs7, BlockModeDecrypt, KeyIvInit};
        let plain = cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
            .map_err(|_| wrong())?
            .decrypt_padded_vec::<Pkcs7>(&data)
            .map_err(|_| wrong())?;
        // A wrong password that happens to unpad still yields no key.
        pkcs8::PrivateKeyInfoRef::try_from(plain.as_slice()).map_err(|_| wrong())?;
        return Ok(PrivateKeyDer::Pkcs8(plain.into()));
    }
    let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der)
        .map_err(|e| format!("keystore private key: {e}"))?;
    let key = info.decrypt(password).map_err(|_| wrong())?;
    Ok(PrivateKeyDer::Pkcs8(key.as_bytes().to_vec().into()))
}

/// PKCS#12's key derivation (RFC 7292 appendix B) with SHA-1.
fn pkcs12_key(
    password: &str,
    salt: &[u8],
    kind: pkcs12::kdf::Pkcs12KeyType,
    iterations: i32,
    len: usize,
) -> Result<Vec<u8>, String> {
    pkcs12::kdf::derive_key_utf8::<sha1::Sha1>(password, salt, kind, iterations, len)
        .map_err(|e| format!("keystore private key: {e}"))
}

/// The salt, iteration count and ciphertext of an `EncryptedPrivateKeyInfo`
/// under PBE-SHA1-3DES; `None` under another scheme.
#[allow(clippy::type_complexity)]
fn pbe_sha1_3des(der: &[u8]) -> Result<Option<(Vec<u8>, i32, Vec<u8>)>, pkcs8::der::Error> {
    use pkcs8::der::asn1::OctetStringRef;
    use pkcs8::der::{Decode, Reader, SliceReader};
    let mut reader = SliceReader::new(der)?;
    reader.sequence(|r| {
        let scheme = r.sequence(|r| {
            let oid: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::decode(r)?;
            if oid.to_string() != PBE_SHA1_3DES {
                // Skip the parameters of another scheme.
                while !r.is_finished() {
                    r.tlv_bytes()?;
                }
                return Ok::<_, pkcs8::der::Error>(None);
            }
            r.sequence(|r| {
                let salt = <&OctetStringRef>::decode(r)?.as_bytes().to_vec();
                let iterations = i32::decode(r)?;
                Ok::<_, pkcs8::der::Error>(Some((salt, iterations)))
            })
        })?;
        let data = <&OctetStringRef>::decode(r)?.as_bytes().to_vec();
        Ok::<_, pkcs8::der::Error>(scheme.map(|(salt, iterations)| (salt, iterations, data)))
    })
}

fn encrypted(pem: &[u8]) -> bool {
    pem.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED")
}

/// `ssl.enabled.protocols` as rustls versions (TLSv1 and TLSv1.1, which
/// Kafka also no longer enables, are refused).
fn protocol_versions(list: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    let mut versions = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            other => return Err(format!("ssl.enabled.protocols: {other} is not supported")),
        }
    }
    if versions.is_empty() {
        return Err("ssl.enabled.protocols lists no protocol".into());
    }
    Ok(versions)
}

/// The ring provider, its cipher suites narrowed to `ssl.cipher.suites`
/// (IANA names, as Kafka takes them) when set.
pub(super) fn provider(suites: Option<&str>) -> Result<rustls::crypto::CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = suites {
        let wanted: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for name in &wanted {
            if !provider.cipher_suites.iter().any(|s| iana_name(s) == *name) {
                return Err(format!("ssl.cipher.suites: {name} is not supported"));
            }
        }
        provider
            .cipher_suites
            .retain(|s| wanted.contains(&iana_name(s).as_str()));
    }
    Ok(provider)
}

/// rustls names TLS 1.3 suites `TLS13_...`; IANA (and Kafka) `TLS_...`.
fn iana_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = format!("{:?}", suite.suite());
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Both schemes `openssl pkcs8 -topk8` writes decrypt to the plain
    /// PKCS#8 key; a wrong or missing password is refused.
    #[test]
    fn encrypted_pkcs8_keys_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "plain.key",
            ],
        );
        openssl(
            d,
            &[
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "plain.key",
                "-outform",
                "DER",
                "-out",
                "plain.der",
            ],
        );
        let plain = std::fs::read(d.join("plain.der")).unwrap();
        for (name, scheme) in [
            ("v1.key", ["-v1", "PBE-SHA1-3DES"]),
            ("v2.key", ["-v2", "aes-256-cbc"]),
        ] {
            let mut args = vec![
                "pkcs8",
                "-topk8",
                "-in",
                "plain.key",
                "-passout",
                "pass:secret",
                "-out",
                name,
            ];
            args.extend(scheme);
            openssl(d, &args);
            let pem = std::fs::read(d.join(name)).unwrap();
            let block = encrypted_pkcs8(&pem).expect("an encrypted block");
            let key = decrypt_pkcs8(block, Some("secret")).unwrap();
            assert_eq!(key.secret_der(), plain.as_slice(), "{name}");
            assert!(decrypt_pkcs8(block, Some("wrong")).is_err(), "{name}");
            assert!(decrypt_pkcs8(block, None).is_err(), "{name}");
        }
    }
}
