//! The codec: a request frame's bytes to a typed [`Request`], a typed
//! response to a frame's bytes. Built on the kafka-protocol crate; does no
//! I/O and knows nothing of the broker.
//!
//! A frame here is what follows the 4-byte size prefix (the server's framing
//! layer strips and adds that prefix).

mod versions;

pub use versions::{supported, ApiRange, SUPPORTED_APIS};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

/// A decoded request: its header and typed body.
#[derive(Debug)]
pub struct Request {
    /// Api key, version, correlation id, client id.
    pub header: RequestHeader,
    /// The typed body. For an ApiVersions request of a version newer than
    /// strom knows, the body is left at its default (it cannot be parsed).
    pub body: RequestKind,
}

impl Request {
    /// The api key of this request.
    pub fn api_key(&self) -> i16 {
        self.header.request_api_key
    }

    /// The request's version.
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// Why a frame could not become a [`Request`]. Each of these closes the
/// connection, as Kafka does: no response can be built for them.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the fixed part of a request header.
    #[error("frame of {0} bytes is too short for a request header")]
    Truncated(usize),
    /// An api key Kafka does not define.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// A known API strom does not serve, or a version outside its range.
    #[error("unsupported {key:?} version {version}")]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The header or body does not parse.
    #[error("malformed {key:?} v{version} request: {cause}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// The parser's complaint.
        cause: String,
    },
}

/// A response that cannot be encoded: a bug in a handler (a field set that
/// the version does not carry), never a client's fault.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode {key:?} v{version} response: {cause}")]
pub struct EncodeError {
    key: ApiKey,
    version: i16,
    cause: String,
}

/// The ApiVersions version whose layout every client can read; used to
/// answer an ApiVersions request of a version strom does not know.
const API_VERSIONS_FALLBACK: i16 = 0;

/// Decodes one request frame.
///
/// # Errors
/// [`DecodeError`]: the caller closes the connection.
pub fn decode_request(mut frame: Bytes) -> Result<Request, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::Truncated(frame.len()));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let key = ApiKey::try_from(raw_key).map_err(|()| DecodeError::UnknownApiKey(raw_key))?;
    let range = supported(key).ok_or(DecodeError::UnsupportedVersion { key, version })?;
    let malformed = |cause: anyhow::Error| DecodeError::Malformed {
        key,
        version,
        cause: cause.to_string(),
    };
    // A newer ApiVersions than we know: Kafka answers it (in the v0 layout)
    // so the client can retry with a version from the table.
    let future_api_versions = key == ApiKey::ApiVersions && version > range.max;
    if !future_api_versions && !(range.min..=range.max).contains(&version) {
        return Err(DecodeError::UnsupportedVersion { key, version });
    }
    let header_version = key.request_header_version(version.min(range.max));
    let header = RequestHeader::decode(&mut frame, header_version).map_err(malformed)?;
    let body = if future_api_versions {
        frame.advance(frame.remaining());
        RequestKind::ApiVersions(Default::default())
    } else {
        RequestKind::decode(key, &mut frame, version).map_err(malformed)?
    };
    Ok(Request { header, body })
}

/// Encodes a response to `request` (correlation id, header, body).
///
/// # Errors
/// [`EncodeError`] when the response does not fit its version.
pub fn encode_response(
    header: &RequestHeader,
    response: &ResponseKind,
) -> Result<Bytes, EncodeError> {
    let mut version = header.request_api_version;
    let key = ApiKey::try_from(header.request_api_key).unwrap_or(ApiKey::ApiVersions);
    if key == ApiKey::ApiVersions && supported(key).is_some_and(|r| version > r.max) {
        version = API_VERSIONS_FALLBACK;
    }
    let fail = |cause: anyhow::Error| EncodeError {
        key,
        version,
        cause: cause.to_string(),
    };
    let mut buf = BytesMut::with_capacity(64);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, key.response_header_version(version))
        .map_err(fail)?;
    response.encode(&mut buf, version).map_err(fail)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};

    fn frame(key: ApiKey, version: i16, body: &impl Encodable) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn decodes_a_metadata_request() {
        let request =
            decode_request(frame(ApiKey::Metadata, 12, &MetadataRequest::default())).unwrap();
        assert_eq!(request.header.correlation_id, 7);
        assert!(matches!(request.body, RequestKind::Metadata(_)));
    }

    #[test]
    fn refuses_what_is_not_served() {
        let mut bad_key = frame(ApiKey::Metadata, 1, &MetadataRequest::default()).to_vec();
        bad_key[0..2].copy_from_slice(&999i16.to_be_bytes());
        assert!(matches!(
            decode_request(bad_key.into()),
            Err(DecodeError::UnknownApiKey(999))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 3])),
            Err(DecodeError::Truncated(2))
        ));
        let mut garbage = frame(ApiKey::Metadata, 12, &MetadataRequest::default()).to_vec();
        garbage.truncate(garbage.len() - 3);
        assert!(matches!(
            decode_request(garbage.into()),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn future_api_versions_is_answered_in_v0_layout() {
        let request = decode_request(frame(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default(),
        ))
        .unwrap();
        let mut header = request.header;
        header.request_api_version = 9;
        let bytes =
            encode_response(&header, &ResponseKind::ApiVersions(Default::default())).unwrap();
        // correlation id, error code, empty api array, no throttle (v0)
        assert_eq!(&bytes[..], &[0, 0, 0, 7, 0, 0, 0, 0, 0, 0]);
    }
}
