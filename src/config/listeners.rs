//! `listeners`, `advertised.listeners` and `listener.security.protocol.map`:
//! the client listeners a broker binds, each with its name, its security
//! protocol and the address clients are told of.

use super::{bind_form, BrokerConfig, ConfigError};

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL.
    Plaintext,
    /// TLS; the principal comes from the client certificate, if any.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Parses Kafka's name of a protocol.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    /// Kafka's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether clients must authenticate with SASL before anything else.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// One client listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Its name as written in `listeners` (`PLAINTEXT`, `SASL_SSL`, `EXTERNAL`, ...).
    pub name: String,
    /// Its security protocol.
    pub protocol: SecurityProtocol,
    /// The address to bind (`host:port`; port 0 picks a free one).
    pub bind: String,
    /// The advertised `host:port` from `advertised.listeners`, if set for
    /// this listener (else the bound address is advertised).
    pub advertised: Option<String>,
}

impl BrokerConfig {
    /// The client listeners: every entry of `listeners` but the controller
    /// listeners, in the order written. A bare `host:port` entry (strom's
    /// `--listen`) is a PLAINTEXT listener.
    ///
    /// # Errors
    /// An entry whose listener has no security protocol (not in
    /// `listener.security.protocol.map`), a listener named twice, or no
    /// client listener at all on a broker.
    pub fn client_listeners(&self) -> Result<Vec<ListenerSpec>, ConfigError> {
        let invalid = |message: String| ConfigError::InvalidValue {
            message,
            origin: "listeners".into(),
        };
        let controllers = self.controller_listener_names();
        let advertised = self.get("advertised.listeners").unwrap_or("");
        let mut specs: Vec<ListenerSpec> = Vec::new();
        for entry in entries(
            self.get("listeners")
                .unwrap_or("PLAINTEXT://127.0.0.1:9092"),
        ) {
            let (name, address) = entry
                .split_once("://")
                .map_or(("PLAINTEXT", entry), |(n, a)| (n.trim(), a.trim()));
            if controllers.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                continue;
            }
            let protocol = self.listener_protocol(name).ok_or_else(|| {
                invalid(format!(
                    "no security protocol is defined for listener {name}: \
                     add it to listener.security.protocol.map"
                ))
            })?;
            if specs.iter().any(|s| s.name.eq_ignore_ascii_case(name)) {
                return Err(invalid(format!("listener {name} is listed twice")));
            }
            let advertised = entries(advertised).find_map(|a| match a.split_once("://") {
                Some((n, address)) if n.trim().eq_ignore_ascii_case(name) => {
                    Some(address.trim().to_owned())
                }
                // A bare `host:port` (strom's --advertised-listener) is
                // the first listener's.
                None if specs.is_empty() => Some(a.to_owned()),
                _ => None,
            });
            specs.push(ListenerSpec {
                name: name.to_owned(),
                protocol,
                bind: bind_form(address),
                advertised,
            });
        }
        if specs.is_empty() {
            return Err(invalid(
                "no client listener: every entry of listeners is a controller listener".into(),
            ));
        }
        Ok(specs)
    }

    /// The listener other brokers connect to (`inter.broker.listener.name`,
    /// else the one whose name is `security.inter.broker.protocol`), if
    /// this broker has it.
    pub fn inter_broker_listener(&self) -> Option<String> {
        self.get("inter.broker.listener.name")
            .or(self.get("security.inter.broker.protocol"))
            .map(str::to_owned)
    }

    /// The client listener other brokers connect to: the one named by
    /// [`BrokerConfig::inter_broker_listener`] when this broker has it,
    /// else the first.
    ///
    /// # Errors
    /// As [`BrokerConfig::client_listeners`].
    pub fn inter_broker_spec(&self) -> Result<ListenerSpec, ConfigError> {
        let mut listeners = self.client_listeners()?;
        let at = self
            .inter_broker_listener()
            .and_then(|name| {
                listeners
                    .iter()
                    .position(|l| l.name.eq_ignore_ascii_case(&name))
            })
            .unwrap_or(0);
        Ok(listeners.swap_remove(at))
    }

    /// `controller.listener.names` (`CONTROLLER` when unset).
    pub fn controller_listener_names(&self) -> Vec<String> {
        entries(
            self.get("controller.listener.names")
                .unwrap_or("CONTROLLER"),
        )
        .map(str::to_owned)
        .collect()
    }

    /// The security protocol of listener `name` from
    /// `listener.security.protocol.map`.
    pub fn listener_protocol(&self, name: &str) -> Option<SecurityProtocol> {
        let map = self.get("listener.security.protocol.map").unwrap_or("");
        entries(map).find_map(|pair| {
            let (listener, protocol) = pair.split_once(':')?;
            listener
                .trim()
                .eq_ignore_ascii_case(name)
                .then(|| SecurityProtocol::parse(protocol))
                .flatten()
        })
    }

    /// A key as listener `listener` sees it: `listener.name.<listener>.<key>`
    /// (listener name in lower case, as Kafka writes it), else `<key>`.
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<&str> {
        let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        self.get(&prefixed).or_else(|| self.get(key))
    }
}

/// The non-empty, trimmed entries of a comma-separated list.
fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BrokerConfig {
        let mut config = BrokerConfig::new();
        for (key, value) in pairs {
            config.set(key, value, "test").expect("valid");
        }
        config
    }

    #[test]
    fn default_is_one_plaintext_listener() {
        let listeners = BrokerConfig::new().client_listeners().expect("valid");
        assert_eq!(
            listeners,
            vec![ListenerSpec {
                name: "PLAINTEXT".into(),
                protocol: SecurityProtocol::Plaintext,
                bind: "127.0.0.1:9092".into(),
                advertised: None,
            }]
        );
    }

    #[test]
    fn named_listeners_take_protocols_from_the_map() {
        let config = config(&[
            (
                "listeners",
                "PLAINTEXT://:9092,EXTERNAL://127.0.0.1:9094,CONTROLLER://:9093",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_SSL,CONTROLLER:PLAINTEXT",
            ),
            ("advertised.listeners", "EXTERNAL://kafka.example:19094"),
        ]);
        let listeners = config.client_listeners().expect("valid");
        assert_eq!(listeners.len(), 2, "{listeners:?}");
        assert_eq!(listeners[0].bind, "0.0.0.0:9092");
        assert_eq!(listeners[0].advertised, None);
        assert_eq!(listeners[1].protocol, SecurityProtocol::SaslSsl);
        assert_eq!(
            listeners[1].advertised.as_deref(),
            Some("kafka.example:19094")
        );
    }

    #[test]
    fn a_listener_without_protocol_is_refused() {
        let config = config(&[("listeners", "INTERNAL://:9092")]);
        let error = config.client_listeners().expect_err("no protocol");
        assert!(error.to_string().contains("INTERNAL"), "{error}");
    }

    #[test]
    fn listener_prefixed_keys_win() {
        let config = config(&[
            ("ssl.client.auth", "none"),
            ("listener.name.mtls.ssl.client.auth", "required"),
        ]);
        assert_eq!(
            config.listener_value("MTLS", "ssl.client.auth"),
            Some("required")
        );
        assert_eq!(
            config.listener_value("SSL", "ssl.client.auth"),
            Some("none")
        );
    }
}
