//! Who is at the other end of a connection: the listener's security
//! protocol, TLS ([`tls`]), SASL ([`sasl`]) and the principal they yield.
//!
//! The server layer asks a [`ListenerSecurity`] to secure each accepted
//! socket (the TLS handshake) and runs the SASL exchange through a
//! [`sasl::Authenticator`] before any other request is served; handlers see
//! the result as a [`Session`]. Nothing here knows of topics or groups.

pub mod acl;
pub mod client;
pub mod jwks;
pub mod oauth;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

pub use principal::Principal;

use crate::config::{BrokerConfig, ConfigError, ListenerSpec, SecurityProtocol};

/// One client connection as handlers see it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener it connected to (Metadata answers with the brokers'
    /// addresses on this listener).
    pub listener: Arc<str>,
    /// Who it is: `User:ANONYMOUS` on PLAINTEXT and on TLS without a
    /// client certificate, the certificate's mapped name, or the SASL user.
    pub principal: Principal,
}

/// A client listener's security: its TLS acceptor (reloaded when the
/// files change) and SASL settings.
#[derive(Debug)]
pub struct ListenerSecurity {
    /// The listener's name.
    pub name: Arc<str>,
    /// Its protocol.
    pub protocol: SecurityProtocol,
    tls: Option<tls::TlsAcceptor>,
    sasl: Option<Arc<sasl::SaslSettings>>,
    principal_rules: principal::MappingRules,
}

impl ListenerSecurity {
    /// Reads the listener's keys (`listener.name.<name>.` prefixed first).
    ///
    /// # Errors
    /// A keystore or truststore that cannot be read, an unsupported
    /// setting, or SASL without any usable mechanism: one clear line.
    pub fn new(config: &BrokerConfig, spec: &ListenerSpec) -> Result<Self, ConfigError> {
        let tls = spec
            .protocol
            .uses_tls()
            .then(|| tls::TlsAcceptor::new(config, &spec.name))
            .transpose()?;
        let sasl = spec
            .protocol
            .uses_sasl()
            .then(|| sasl::SaslSettings::new(config, &spec.name))
            .transpose()?
            .map(Arc::new);
        let rules = config
            .listener_value(&spec.name, "ssl.principal.mapping.rules")
            .unwrap_or("DEFAULT");
        let principal_rules =
            principal::MappingRules::parse(rules).map_err(|message| ConfigError::InvalidValue {
                message,
                origin: "ssl.principal.mapping.rules".into(),
            })?;
        Ok(Self {
            name: spec.name.as_str().into(),
            protocol: spec.protocol,
            tls,
            sasl,
            principal_rules,
        })
    }

    /// The TLS acceptor, on SSL and SASL_SSL listeners.
    pub fn tls(&self) -> Option<&tls::TlsAcceptor> {
        self.tls.as_ref()
    }

    /// The SASL settings, on SASL listeners.
    pub fn sasl(&self) -> Option<&Arc<sasl::SaslSettings>> {
        self.sasl.as_ref()
    }

    /// The principal of a connection before SASL: from the client
    /// certificate's subject (mapped by `ssl.principal.mapping.rules`) on
    /// TLS, else ANONYMOUS.
    pub fn principal_from_certificate(&self, subject: Option<&str>) -> Principal {
        match subject {
            Some(dn) => Principal::user(self.principal_rules.apply(dn)),
            None => Principal::anonymous(),
        }
    }
}
