//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the stored
//! credential (salt, stored key, server key, iterations, as Kafka keeps
//! it) and the server side of the exchange.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use serde::{Deserialize, Serialize};

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// Every mechanism.
    pub const ALL: [Self; 2] = [Self::Sha256, Self::Sha512];

    /// Kafka's number in AlterUserScramCredentials and
    /// DescribeUserScramCredentials (1, 2).
    pub fn from_type(code: i8) -> Option<Self> {
        match code {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }

    /// See [`ScramMechanism::from_type`].
    pub fn type_code(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Parses a SASL mechanism name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's bounds on iterations (ScramMechanism.minIterations, and the
    /// 16384 cap of AlterUserScramCredentials).
    pub const MIN_ITERATIONS: i32 = 4096;
    /// See [`ScramMechanism::MIN_ITERATIONS`].
    pub const MAX_ITERATIONS: i32 = 16384;

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }

    /// Hi(password, salt, iterations) of RFC 5802.
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: i32) -> Vec<u8> {
        let mut out = vec![0; self.digest().output_len()];
        let rounds = std::num::NonZeroU32::new(u32::try_from(iterations).unwrap_or(1).max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2(), rounds, salt, password.as_bytes(), &mut out);
        out
    }
}

/// A user's stored SCRAM credential: what the broker needs to check a
/// proof, never the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

impl ScramCredential {
    /// The credential for a salted password (what AlterUserScramCredentials
    /// carries: clients salt the password themselves).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> Self {
        let client_key = mechanism.mac(salted_password, b"Client Key");
        Self {
            salt: salt.to_vec(),
            stored_key: digest::digest(mechanism.digest(), &client_key)
                .as_ref()
                .to_vec(),
            server_key: mechanism.mac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// The credential for a password, with a random salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: i32) -> Self {
        let salt = random_bytes(32);
        let salted = mechanism.salted_password(password, &salt, iterations);
        Self::from_salted_password(mechanism, &salt, &salted, iterations)
    }
}

/// A user to create at start, in the syntax of Kafka's `kafka-storage.sh
/// format --add-scram`: `SCRAM-SHA-256=[name=alice,password=alice-secret]`,
/// optionally with `iterations=8192`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialUser {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The user name.
    pub name: String,
    /// The password (salted at start, never stored).
    pub password: String,
    /// PBKDF2 iterations (4096 unless given).
    pub iterations: i32,
}

impl InitialUser {
    /// Parses one `--add-scram` value.
    ///
    /// # Errors
    /// A malformed value, an unknown mechanism, a missing name or
    /// password, or iterations outside 4096..=16384.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "'{spec}' is not MECHANISM=[name=NAME,password=PASSWORD] \
                 (e.g. SCRAM-SHA-256=[name=alice,password=alice-secret])"
            )
        };
        let (mechanism, rest) = spec.split_once('=').ok_or_else(bad)?;
        let mechanism = ScramMechanism::from_name(mechanism.trim())
            .ok_or_else(|| format!("unknown SCRAM mechanism '{}'", mechanism.trim()))?;
        let body = rest
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(bad)?;
        let (mut name, mut password, mut iterations) = (None, None, 4096);
        for pair in body.split(',') {
            let (key, value) = pair.split_once('=').ok_or_else(bad)?;
            let value = value.trim().trim_matches('"');
            match key.trim() {
                "name" => name = Some(value.to_owned()),
                "password" => password = Some(value.to_owned()),
                "iterations" => iterations = value.parse().map_err(|_| bad())?,
                _ => return Err(bad()),
            }
        }
        if !(ScramMechanism::MIN_ITERATIONS..=ScramMechanism::MAX_ITERATIONS).contains(&iterations)
        {
            return Err(format!(
                "iterations must be between 4096 and 16384, not {iterations}"
            ));
        }
        match (name, password) {
            (Some(name), Some(password)) if !name.is_empty() => Ok(Self {
                mechanism,
                name,
                password,
                iterations,
            }),
            _ => Err(bad()),
        }
    }
}

/// Random bytes from the system's generator.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    // The system generator does not fail on Linux; zeros would only weaken
    // a nonce, never grant access.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes
}

/// Why a SCRAM exchange failed: the client gets Kafka's message for
/// invalid credentials whatever the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramFailure(pub String);

/// The server side of one SCRAM exchange: client-first, then client-final.
#[derive(Debug)]
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

#[derive(Debug)]
enum State {
    Initial,
    SentFirst {
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Done,
}

impl ScramServer {
    /// A new exchange.
    pub fn new(mechanism: ScramMechanism) -> Self {
        Self {
            mechanism,
            state: State::Initial,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Takes the client's next message; returns the server's answer, and
    /// the authenticated user once the exchange is complete.
    ///
    /// # Errors
    /// A malformed message, an unknown user, a wrong proof, or a message
    /// after the end.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Result<(Vec<u8>, Option<String>), ScramFailure> {
        let text = std::str::from_utf8(message)
            .map_err(|_| ScramFailure("SCRAM message is not UTF-8".into()))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial => self.client_first(text, lookup).map(|m| (m, None)),
            State::SentFirst {
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let expected_channel = BASE64.encode(gs2_header.as_bytes());
                let (without_proof, proof) = text
                    .rsplit_once(",p=")
                    .ok_or_else(|| ScramFailure("client-final message without proof".into()))?;
                let attribute = |name: &str| {
                    without_proof
                        .split(',')
                        .find_map(|a| a.strip_prefix(name))
                        .map(str::to_owned)
                };
                if attribute("c=").as_deref() != Some(expected_channel.as_str()) {
                    return Err(ScramFailure("channel binding does not match".into()));
                }
                if attribute("r=").as_deref() != Some(nonce.as_str()) {
                    return Err(ScramFailure("nonce does not match".into()));
                }
                let proof = BASE64
                    .decode(proof.trim())
                    .map_err(|_| ScramFailure("proof is not base64".into()))?;
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let signature = self
                    .mechanism
                    .mac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != signature.len() {
                    return Err(ScramFailure("invalid proof".into()));
                }
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
                let stored = digest::digest(self.mechanism.digest(), &client_key);
                if !constant_time_eq(stored.as_ref(), &credential.stored_key) {
                    return Err(ScramFailure("invalid credentials".into()));
                }
                let server_signature = self
                    .mechanism
                    .mac(&credential.server_key, auth_message.as_bytes());
                let answer = format!("v={}", BASE64.encode(server_signature));
                Ok((answer.into_bytes(), Some(user)))
            }
            State::Done => Err(ScramFailure("SCRAM exchange already complete".into())),
        }
    }

    fn client_first(
        &mut self,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramFailure> {
        // gs2-header: "n,," or "n,a=authzid," (no channel binding over SASL).
        let malformed = || ScramFailure("malformed client-first message".into());
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().ok_or_else(malformed)?;
        let authzid = parts.next().ok_or_else(malformed)?;
        let bare = parts.next().ok_or_else(malformed)?;
        if flag != "n" && flag != "y" {
            return Err(ScramFailure("channel binding is not supported".into()));
        }
        let gs2_header = format!("{flag},{authzid},");
        let attribute = |name: &str| bare.split(',').find_map(|a| a.strip_prefix(name));
        let user = unescape_name(attribute("n=").ok_or_else(malformed)?);
        let client_nonce = attribute("r=").ok_or_else(malformed)?;
        if let Some(authzid) = authzid.strip_prefix("a=") {
            if unescape_name(authzid) != user {
                return Err(ScramFailure(
                    "authorization id differs from the user name".into(),
                ));
            }
        }
        let credential = lookup(&user).ok_or_else(|| ScramFailure("unknown user".into()))?;
        let nonce = format!("{client_nonce}{}", hex(&random_bytes(16)));
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&credential.salt),
            credential.iterations
        );
        let answer = server_first.clone().into_bytes();
        self.state = State::SentFirst {
            user,
            credential,
            gs2_header,
            client_first_bare: bare.to_owned(),
            server_first,
            nonce,
        };
        Ok(answer)
    }
}

/// Compares secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client side of one SCRAM exchange (a broker logging in to another).
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    user: String,
    password: String,
    nonce: String,
    /// After `final_message`: the AuthMessage and the salted password, to
    /// check the server's signature.
    proof_state: Option<(String, Vec<u8>)>,
}

impl ScramClient {
    /// A new exchange for `user`.
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> Self {
        Self {
            mechanism,
            user: user.replace('=', "=3D").replace(',', "=2C"),
            password: password.to_owned(),
            nonce: hex(&random_bytes(18)),
            proof_state: None,
        }
    }

    fn first_bare(&self) -> String {
        format!("n={},r={}", self.user, self.nonce)
    }

    /// The client-first message.
    pub fn first_message(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare()).into_bytes()
    }

    /// The client-final message for the server-first message.
    ///
    /// # Errors
    /// A malformed server message, or a nonce that does not extend ours.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramFailure> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| ScramFailure("server-first message is not UTF-8".into()))?;
        let attribute = |name: &str| text.split(',').find_map(|a| a.strip_prefix(name));
        let malformed = || ScramFailure(format!("malformed server-first message: {text}"));
        let nonce = attribute("r=").ok_or_else(malformed)?;
        if !nonce.starts_with(&self.nonce) {
            return Err(ScramFailure(
                "the server's nonce does not extend ours".into(),
            ));
        }
        let salt = BASE64
            .decode(attribute("s=").ok_or_else(malformed)?)
            .map_err(|_| malformed())?;
        let iterations: i32 = attribute("i=")
            .and_then(|i| i.parse().ok())
            .ok_or_else(malformed)?;
        let salted = self
            .mechanism
            .salted_password(&self.password, &salt, iterations);
        let client_key = self.mechanism.mac(&salted, b"Client Key");
        let stored_key = digest::digest(self.mechanism.digest(), &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.first_bare());
        let signature = self
            .mechanism
            .mac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.proof_state = Some((auth_message, salted));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (`v=` the server's signature).
    ///
    /// # Errors
    /// An error from the server, or a signature that is not the server's.
    pub fn verify_final(&self, server_final: &[u8]) -> Result<(), ScramFailure> {
        let text = String::from_utf8_lossy(server_final);
        let (auth_message, salted) = self
            .proof_state
            .as_ref()
            .ok_or_else(|| ScramFailure("no client-final message was sent".into()))?;
        let server_key = self.mechanism.mac(salted, b"Server Key");
        let expected = BASE64.encode(self.mechanism.mac(&server_key, auth_message.as_bytes()));
        match text.strip_prefix("v=") {
            Some(v) if constant_time_eq(v.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => Err(ScramFailure(format!(
                "the server's signature does not verify: {text}"
            ))),
        }
    }
}

/// `=2C` and `=3D` in a SCRAM user name are `,` and `=`.
fn unescape_name(name: &str) -> String {
    name.replace("=2C", ",").replace("=3D", "=")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client side of RFC 5802, for the tests.
    fn client_final(
        mechanism: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let attribute = |name: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        let salt = BASE64.decode(attribute("s=")).unwrap();
        let iterations: i32 = attribute("i=").parse().unwrap();
        let salted = mechanism.salted_password(password, &salt, iterations);
        let client_key = mechanism.mac(&salted, b"Client Key");
        let stored = digest::digest(mechanism.digest(), &client_key);
        let without_proof = format!("c=biws,r={}", attribute("r="));
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = mechanism.mac(stored.as_ref(), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = mechanism.mac(&salted, b"Server Key");
        (
            format!("{without_proof},p={}", BASE64.encode(proof)),
            mechanism.mac(&server_key, auth.as_bytes()),
        )
    }

    fn exchange(mechanism: ScramMechanism, stored_password: &str, password: &str) -> bool {
        let credential = ScramCredential::from_password(mechanism, stored_password, 4096);
        let lookup = move |user: &str| (user == "alice").then(|| credential.clone());
        let mut server = ScramServer::new(mechanism);
        let bare = "n=alice,r=fyko+d2lbbFgONRv9qkxdawL";
        let (first, _) = server
            .step(format!("n,,{bare}").as_bytes(), &lookup)
            .unwrap();
        let first = String::from_utf8(first).unwrap();
        let (last, signature) = client_final(mechanism, password, bare, &first);
        match server.step(last.as_bytes(), &lookup) {
            Ok((answer, user)) => {
                assert_eq!(user.as_deref(), Some("alice"));
                assert_eq!(
                    answer,
                    format!("v={}", BASE64.encode(signature)).into_bytes()
                );
                true
            }
            Err(_) => false,
        }
    }

    #[test]
    fn initial_users_in_kafka_storage_syntax() {
        let user =
            InitialUser::parse("SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=8192]")
                .unwrap();
        assert_eq!(user.mechanism, ScramMechanism::Sha512);
        assert_eq!(
            (user.name.as_str(), user.password.as_str(), user.iterations),
            ("alice", "alice-secret", 8192)
        );
        assert!(InitialUser::parse("SCRAM-SHA-1=[name=a,password=b]").is_err());
        assert!(InitialUser::parse("SCRAM-SHA-256=[name=a]").is_err());
        assert!(InitialUser::parse("SCRAM-SHA-256=[name=a,password=b,iterations=10]").is_err());
    }

    #[test]
    fn client_and_server_agree() {
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::from_password(mechanism, "pw", 4096);
            let lookup = move |user: &str| (user == "broker,1").then(|| credential.clone());
            let mut server = ScramServer::new(mechanism);
            let mut client = ScramClient::new(mechanism, "broker,1", "pw");
            let (first, _) = server.step(&client.first_message(), &lookup).unwrap();
            let last = client.final_message(&first).unwrap();
            let (answer, user) = server.step(&last, &lookup).unwrap();
            assert_eq!(user.as_deref(), Some("broker,1"));
            client.verify_final(&answer).unwrap();
            assert!(client.verify_final(b"v=AAAA").is_err());
        }
    }

    #[test]
    fn right_password_passes_wrong_fails() {
        for mechanism in ScramMechanism::ALL {
            assert!(exchange(mechanism, "alice-secret", "alice-secret"));
            assert!(!exchange(mechanism, "alice-secret", "wrong"));
        }
    }

    #[test]
    fn unknown_user_and_garbage_fail() {
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(server.step(b"n,,n=bob,r=abc", &|_| None).is_err());
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(server.step(b"\xff\xfe", &|_| None).is_err());
        let mut server = ScramServer::new(ScramMechanism::Sha256);
        assert!(server.step(b"", &|_| None).is_err());
    }

    /// RFC 7677's SCRAM-SHA-256 example: the stored credential derived from
    /// the salted password gives the server signature the RFC prints.
    #[test]
    fn rfc_7677_example() {
        let mechanism = ScramMechanism::Sha256;
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = mechanism.salted_password("pencil", &salt, 4096);
        let credential = ScramCredential::from_salted_password(mechanism, &salt, &salted, 4096);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let signature = mechanism.mac(&credential.server_key, auth.as_bytes());
        assert_eq!(
            BASE64.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }
}
