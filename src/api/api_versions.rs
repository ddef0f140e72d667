//! ApiVersions v0-v4: the table of served APIs and versions.
//!
//! A version newer than v4 is answered with UNSUPPORTED_VERSION and the
//! table, in the v0 layout (the codec picks the layout), so the client can
//! retry with a version it finds there. v3+ requests must name the client
//! software with Kafka's allowed characters, else INVALID_REQUEST.
//!
//! v3+ lists the features (KIP-584): `transaction.version` is finalized at
//! 2, as on a fresh Kafka 4.1 cluster, so Java 4.x producers speak
//! transaction protocol version 2 (KIP-890). It is supported from 0 to 2;
//! as in Kafka, a supported range starting at 0 is listed from v4 only
//! (KIP-1022: older clients cannot parse it).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

/// The features served: (name, lowest supported, highest supported and
/// finalized level).
const FEATURES: [(&str, i16, i16); 1] = [("transaction.version", 0, 2)];

/// The epoch of the finalized features: they never change, and a client
/// only reads finalized features with an epoch of 0 or more.
const FINALIZED_FEATURES_EPOCH: i64 = 0;

use crate::protocol::{supported, SUPPORTED_APIS};

/// Answers an ApiVersions request of `version`.
pub fn handle(version: i16, request: &ApiVersionsRequest) -> ApiVersionsResponse {
    let max = supported(kafka_protocol::messages::ApiKey::ApiVersions).map_or(0, |r| r.max);
    let error = if version > max {
        Some(ResponseError::UnsupportedVersion)
    } else if version >= 3
        && !(valid_software_field(&request.client_software_name)
            && valid_software_field(&request.client_software_version))
    {
        Some(ResponseError::InvalidRequest)
    } else {
        None
    };
    let api_keys = if error == Some(ResponseError::InvalidRequest) {
        Vec::new()
    } else {
        SUPPORTED_APIS
            .iter()
            .map(|api| {
                ApiVersion::default()
                    .with_api_key(api.key as i16)
                    .with_min_version(api.min)
                    .with_max_version(api.max)
            })
            .collect()
    };
    let supported_features = FEATURES
        .iter()
        .filter(|(_, min, _)| *min > 0 || version >= 4)
        .map(|(name, min, max)| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    let finalized_features = FEATURES
        .iter()
        .map(|(name, _, level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_static_str(name))
                .with_min_version_level(*level)
                .with_max_version_level(*level)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_api_keys(api_keys)
        .with_supported_features(supported_features)
        .with_finalized_features_epoch(FINALIZED_FEATURES_EPOCH)
        .with_finalized_features(finalized_features)
}

/// Kafka's rule for client software name and version:
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.0.2"));
        assert!(valid_software_field("a"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("x y"));
    }
}
