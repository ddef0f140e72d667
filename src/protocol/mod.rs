//! The codec: a request frame's bytes to a typed [`Request`], a typed
//! response to a frame's bytes. Built on the kafka-protocol crate; does no
//! I/O and knows nothing of the broker.
//!
//! A frame here is what follows the 4-byte size prefix (the server's framing
//! layer strips and adds that prefix).

mod splice;
mod versions;

pub use splice::{splice_marker, Chunk, ResponseFrame};
pub use versions::{supported, ApiRange, SUPPORTED_APIS};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::log::FileRegion;
use splice::SpliceBuf;

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

/// Why a frame could not become a [`Request`]. Each of these but
/// [`DecodeError::Refused`] closes the connection, as Kafka does: no
/// response can be built for them.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A request the codec answers itself with an error response (Produce
    /// v0-v2: advertised for old librdkafka, refused as Kafka 4 does). The
    /// connection stays open; `None` means no response is due (acks=0).
    #[error("refused {key:?} v{version} with UNSUPPORTED_VERSION")]
    Refused {
        /// The API.
        key: ApiKey,
        /// The version.
        version: i16,
        /// The encoded error response frame, if one is due.
        response: Option<Bytes>,
    },
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
    if key == ApiKey::Produce && version < versions::DECODED_PRODUCE_FLOOR {
        // A v0-v2 body is a v3 body without the leading transactional id.
        let mut body = BytesMut::with_capacity(frame.len() + 2);
        body.put_i16(-1);
        body.put(frame);
        let request = ProduceRequest::decode(&mut body.freeze(), 3).map_err(malformed)?;
        let response = (request.acks != 0).then(|| legacy_produce_refusal(&header, &request));
        return Err(DecodeError::Refused {
            key,
            version,
            response,
        });
    }
    let body = if future_api_versions {
        frame.advance(frame.remaining());
        RequestKind::ApiVersions(Default::default())
    } else {
        RequestKind::decode(key, &mut frame, version).map_err(malformed)?
    };
    Ok(Request { header, body })
}

/// A Produce v0-v2 response (correlation id, then the body) refusing every
/// partition with UNSUPPORTED_VERSION. Hand-encoded: the codec crate has no
/// v0-v2 Produce schema.
fn legacy_produce_refusal(header: &RequestHeader, request: &ProduceRequest) -> Bytes {
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    buf.put_i32(header.correlation_id);
    buf.put_i32(i32::try_from(request.topic_data.len()).unwrap_or(0));
    for topic in &request.topic_data {
        let name = topic.name.0.as_bytes();
        buf.put_i16(i16::try_from(name.len()).unwrap_or(0));
        buf.put_slice(name);
        buf.put_i32(i32::try_from(topic.partition_data.len()).unwrap_or(0));
        for partition in &topic.partition_data {
            buf.put_i32(partition.index);
            buf.put_i16(ResponseError::UnsupportedVersion.code());
            buf.put_i64(-1); // base offset
            if version >= 2 {
                buf.put_i64(-1); // log append time
            }
        }
    }
    if version >= 1 {
        buf.put_i32(0); // throttle time
    }
    buf.freeze()
}

/// Encodes a response to `request` (correlation id, header, body). Record
/// fields holding [`splice_marker`]s become the matching `regions`.
///
/// # Errors
/// [`EncodeError`] when the response does not fit its version.
pub fn encode_response(
    header: &RequestHeader,
    response: &ResponseKind,
    regions: &[FileRegion],
) -> Result<ResponseFrame, EncodeError> {
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
    let header_version = key.response_header_version(version);
    let response_header = ResponseHeader::default().with_correlation_id(header.correlation_id);
    if let ResponseKind::Fetch(fetch) = response {
        // The only response with records: encoded through the splicing buffer.
        let mut buf = SpliceBuf::new(regions, header_version >= 1);
        response_header
            .encode(&mut buf, header_version)
            .map_err(fail)?;
        fetch.encode(&mut buf, version).map_err(fail)?;
        return buf
            .finish()
            .ok_or_else(|| fail(anyhow::anyhow!("a records marker outside a records field")));
    }
    let mut buf = BytesMut::with_capacity(64);
    response_header
        .encode(&mut buf, header_version)
        .map_err(fail)?;
    response.encode(&mut buf, version).map_err(fail)?;
    Ok(buf.freeze().into())
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
    fn legacy_produce_is_refused_in_its_own_layout() {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::TopicName;
        let request = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(
                    kafka_protocol::protocol::StrBytes::from_static_str("t"),
                ))
                .with_partition_data(vec![PartitionProduceData::default().with_index(2)]),
        ]);
        // Encode as v3, then drop the transactional id to get the v2 layout.
        let v3 = frame(ApiKey::Produce, 3, &request);
        let header_len = v3.len() - request.compute_size(3).unwrap();
        let mut v2 = v3[..header_len].to_vec();
        v2[2..4].copy_from_slice(&2i16.to_be_bytes());
        v2.extend_from_slice(&v3[header_len + 2..]);
        let Err(DecodeError::Refused {
            response: Some(bytes),
            ..
        }) = decode_request(v2.into())
        else {
            panic!("v2 produce must be refused with a response");
        };
        let expected: &[u8] = &[
            0, 0, 0, 7, // correlation id
            0, 0, 0, 1, 0, 1, b't', // one topic "t"
            0, 0, 0, 1, 0, 0, 0, 2, 0, 35, // partition 2, UNSUPPORTED_VERSION
            255, 255, 255, 255, 255, 255, 255, 255, // base offset -1
            255, 255, 255, 255, 255, 255, 255, 255, // log append time -1
            0, 0, 0, 0, // throttle
        ];
        assert_eq!(&bytes[..], expected);
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
        let frame =
            encode_response(&header, &ResponseKind::ApiVersions(Default::default()), &[]).unwrap();
        // correlation id, error code, empty api array, no throttle (v0)
        assert_eq!(flatten(&frame), [0, 0, 0, 7, 0, 0, 0, 0, 0, 0]);
    }

    /// The frame's bytes, file regions read in.
    fn flatten(frame: &ResponseFrame) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in &frame.chunks {
            match chunk {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(r) => out.extend_from_slice(&r.read().unwrap()),
            }
        }
        out
    }

    /// A spliced Fetch response is byte for byte the response with the
    /// records inline, in both the classic and the flexible layout, for
    /// empty, small (1-byte varint) and large (multi-byte varint) regions.
    #[test]
    fn spliced_fetch_equals_inline_fetch() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        use kafka_protocol::messages::FetchResponse;
        use std::io::Write;

        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let file = std::sync::Arc::new(file);
        let regions = [(10, 3), (100, 200), (1_000, 65_000)].map(|(position, len)| FileRegion {
            file: file.clone(),
            position,
            len,
        });
        let build = |records: &dyn Fn(usize) -> Bytes| {
            let partitions = (0..regions.len())
                .map(|i| {
                    PartitionData::default()
                        .with_partition_index(i32::try_from(i).unwrap())
                        .with_high_watermark(42)
                        .with_records(Some(records(i)))
                })
                .chain([PartitionData::default()
                    .with_partition_index(9)
                    .with_records(Some(Bytes::new()))])
                .collect();
            ResponseKind::Fetch(FetchResponse::default().with_responses(
                vec![FetchableTopicResponse::default()
                    .with_topic(kafka_protocol::messages::TopicName(
                        kafka_protocol::protocol::StrBytes::from_static_str("t"),
                    ))
                    .with_partitions(partitions)],
            ))
        };
        let spliced = build(&|i| splice_marker(i).unwrap());
        let inline = build(&|i| regions[i].read().unwrap());
        for version in [4, 11, 12, 16, 18] {
            let mut header = RequestHeader::default()
                .with_request_api_key(ApiKey::Fetch as i16)
                .with_request_api_version(version);
            header.correlation_id = 5;
            let frame = encode_response(&header, &spliced, &regions).unwrap();
            assert_eq!(frame.chunks.len(), 2 * regions.len() + 1, "v{version}");
            let expected = encode_response(&header, &inline, &[]).unwrap();
            assert_eq!(expected.chunks.len(), 1);
            assert_eq!(flatten(&frame), flatten(&expected), "v{version}");
            assert_eq!(frame.len(), flatten(&expected).len());
        }
    }
}
