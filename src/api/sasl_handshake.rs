//! SaslHandshake (v0-v1): picks the connection's SASL mechanism. On a
//! listener without SASL, or once authenticated (unless re-authenticating),
//! ILLEGAL_SASL_STATE; an unknown mechanism gets UNSUPPORTED_SASL_MECHANISM
//! with the enabled ones, and the connection closes, as Kafka's
//! SaslServerAuthenticator does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use super::str_bytes;
use crate::security::sasl::{Authenticator, HandshakeError};

/// The answer, and whether the connection closes after it.
pub fn handle(
    auth: Option<&mut Authenticator>,
    version: i16,
    request: &SaslHandshakeRequest,
) -> (SaslHandshakeResponse, bool) {
    let Some(auth) = auth else {
        return (
            SaslHandshakeResponse::default()
                .with_error_code(ResponseError::IllegalSaslState.code()),
            false,
        );
    };
    let enabled = auth
        .enabled_mechanisms()
        .iter()
        .map(|m| str_bytes(m.clone()))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(enabled);
    match auth.handshake(request.mechanism.as_str(), version) {
        Ok(()) => (response, false),
        Err(HandshakeError::UnsupportedMechanism) => (
            response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
            true,
        ),
        Err(HandshakeError::IllegalState) => (
            response.with_error_code(ResponseError::IllegalSaslState.code()),
            !auth.is_authenticated(),
        ),
    }
}
