//! SaslAuthenticate (v0-v2): one token of the exchange SaslHandshake
//! started. A failure answers SASL_AUTHENTICATION_FAILED with Kafka's
//! message and closes the connection; without a handshake (or on a
//! listener without SASL) ILLEGAL_SASL_STATE. Where Kafka fails with an
//! unexpected error (an OAUTHBEARER token header without `alg`) the
//! connection closes without an answer.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::security::sasl::{Authenticator, Step};
use crate::security::Principal;

/// The answer, the principal if this token completed authentication, and
/// whether the connection closes after the answer; `None`: close without
/// an answer.
pub fn handle(
    broker: &Broker,
    auth: Option<&mut Authenticator>,
    request: &SaslAuthenticateRequest,
) -> Option<(SaslAuthenticateResponse, Option<Principal>, bool)> {
    let illegal = |message: &str| {
        SaslAuthenticateResponse::default()
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(str_bytes(message.to_owned())))
    };
    let Some(auth) = auth else {
        return Some((
            illegal("SaslAuthenticate request received after successful authentication"),
            None,
            false,
        ));
    };
    let step = auth.authenticate(&request.auth_bytes, &|user, mechanism| {
        broker.scram_credential(user, mechanism)
    });
    Some(match step {
        Step::Continue(answer) => (
            SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(answer)),
            None,
            false,
        ),
        Step::Done {
            response,
            session_lifetime_ms,
        } => (
            SaslAuthenticateResponse::default()
                .with_auth_bytes(Bytes::from(response))
                .with_session_lifetime_ms(session_lifetime_ms),
            auth.principal().cloned(),
            false,
        ),
        Step::Failed(message) => (
            SaslAuthenticateResponse::default()
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(str_bytes(message))),
            None,
            true,
        ),
        Step::OutOfOrder => (
            illegal("Unexpected SaslAuthenticate request: no SaslHandshake preceded it"),
            None,
            true,
        ),
        Step::Abort(reason) => {
            tracing::info!(%reason, "closing connection: SASL authentication failed");
            return None;
        }
    })
}
