//! The records the group coordinator keeps in `__consumer_offsets`, in
//! Kafka's own schemas (group-coordinator's `OffsetCommitKey`/`Value` and
//! `GroupMetadataKey`/`Value` message definitions), so Kafka's
//! `OffsetsMessageFormatter` and `GroupMetadataMessageFormatter`, and lag
//! monitors that read the topic, decode what strom writes.
//!
//! Layout (Kafka's `CoordinatorRecordSerde`): the key is an int16 record
//! type (the key's version: 0 or 1 for an offset commit, 2 for group
//! metadata) followed by the key's fields; the value is an int16 version
//! followed by its fields, or null (a tombstone). strom writes
//! OffsetCommitValue v3 and GroupMetadataValue v3 (Kafka 4's choice when no
//! expire timestamp is set) and reads v0-v3 of both.

use bytes::{BufMut, Bytes, BytesMut};

use super::CommittedOffset;
use crate::coordinator::codec::{put_bytes, put_nullable_string, put_string, Reader};

/// Key type (and key version) of an offset commit record.
const OFFSET_COMMIT_KEY: i16 = 1;
/// The legacy key version of an offset commit, still read.
const LEGACY_OFFSET_COMMIT_KEY: i16 = 0;
/// Key type (and key version) of a group metadata record.
const GROUP_METADATA_KEY: i16 = 2;
/// The value versions strom writes.
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// One member in a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// The member id.
    pub member_id: String,
    /// Its `group.instance.id`.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// Its host.
    pub client_host: String,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Its metadata for the chosen protocol.
    pub subscription: Bytes,
    /// Its assignment.
    pub assignment: Bytes,
}

/// A group's stored metadata: written when a rebalance completes (or the
/// group becomes empty), replayed to restore a stable group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    /// e.g. "consumer".
    pub protocol_type: String,
    /// The generation.
    pub generation: i32,
    /// The chosen protocol (assignor).
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// When the state last changed (ms since the epoch).
    pub current_state_timestamp: i64,
    /// The members with their assignments.
    pub members: Vec<MemberMetadata>,
}

/// One decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecord {
    /// A committed offset, or its tombstone.
    Offset {
        /// The group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset; `None` deletes it.
        value: Option<CommittedOffset>,
    },
    /// A group's metadata, or its tombstone (the group is gone).
    Group {
        /// The group.
        group: String,
        /// The metadata; `None` deletes the group.
        value: Option<GroupMetadata>,
    },
}

impl GroupRecord {
    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            Self::Offset { group, .. } | Self::Group { group, .. } => group,
        }
    }

    /// The record's key and value bytes (value `None` for a tombstone).
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        match self {
            Self::Offset {
                group,
                topic,
                partition,
                value,
            } => {
                let mut key = BytesMut::with_capacity(8 + group.len() + topic.len());
                key.put_i16(OFFSET_COMMIT_KEY);
                put_string(&mut key, group);
                put_string(&mut key, topic);
                key.put_i32(*partition);
                let value = value.as_ref().map(|o| {
                    let mut v = BytesMut::with_capacity(24 + o.metadata.len());
                    v.put_i16(OFFSET_COMMIT_VALUE_VERSION);
                    v.put_i64(o.offset);
                    v.put_i32(o.leader_epoch);
                    put_string(&mut v, &o.metadata);
                    v.put_i64(o.commit_timestamp);
                    v.freeze()
                });
                (key.freeze(), value)
            }
            Self::Group { group, value } => {
                let mut key = BytesMut::with_capacity(4 + group.len());
                key.put_i16(GROUP_METADATA_KEY);
                put_string(&mut key, group);
                let value = value.as_ref().map(|g| {
                    let mut v = BytesMut::new();
                    v.put_i16(GROUP_METADATA_VALUE_VERSION);
                    put_string(&mut v, &g.protocol_type);
                    v.put_i32(g.generation);
                    put_nullable_string(&mut v, g.protocol.as_deref());
                    put_nullable_string(&mut v, g.leader.as_deref());
                    v.put_i64(g.current_state_timestamp);
                    v.put_i32(i32::try_from(g.members.len()).unwrap_or(i32::MAX));
                    for m in &g.members {
                        put_string(&mut v, &m.member_id);
                        put_nullable_string(&mut v, m.instance_id.as_deref());
                        put_string(&mut v, &m.client_id);
                        put_string(&mut v, &m.client_host);
                        v.put_i32(m.rebalance_timeout_ms);
                        v.put_i32(m.session_timeout_ms);
                        put_bytes(&mut v, &m.subscription);
                        put_bytes(&mut v, &m.assignment);
                    }
                    v.freeze()
                });
                (key.freeze(), value)
            }
        }
    }

    /// Decodes a record; `Ok(None)` for a record type the group
    /// coordinator does not use (consumer-protocol groups, share groups).
    ///
    /// # Errors
    /// The bytes are not a well-formed record of a version strom reads.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Self>, String> {
        let mut k = Reader(key);
        let key_type = k.i16()?;
        match key_type {
            LEGACY_OFFSET_COMMIT_KEY | OFFSET_COMMIT_KEY => {
                let group = k.string()?;
                let topic = k.string()?;
                let partition = k.i32()?;
                let value = value.map(decode_offset).transpose()?;
                Ok(Some(Self::Offset {
                    group,
                    topic,
                    partition,
                    value,
                }))
            }
            GROUP_METADATA_KEY => {
                let group = k.string()?;
                let value = value.map(decode_group).transpose()?;
                Ok(Some(Self::Group { group, value }))
            }
            _ => Ok(None),
        }
    }
}

fn decode_offset(bytes: &[u8]) -> Result<CommittedOffset, String> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(format!(
            "OffsetCommitValue version {version} is not supported"
        ));
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string()?;
    let commit_timestamp = r.i64()?;
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

fn decode_group(bytes: &[u8]) -> Result<GroupMetadata, String> {
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(format!(
            "GroupMetadataValue version {version} is not supported"
        ));
    }
    let protocol_type = r.string()?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = r.string()?;
        let instance_id = if version >= 3 {
            r.nullable_string()?
        } else {
            None
        };
        let client_id = r.string()?;
        let client_host = r.string()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        members.push(MemberMetadata {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadata {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: &GroupRecord) {
        let (key, value) = record.encode();
        let decoded = GroupRecord::decode(&key, value.as_deref()).unwrap();
        assert_eq!(decoded.as_ref(), Some(record));
    }

    #[test]
    fn offsets_and_groups_round_trip() {
        round_trip(&GroupRecord::Offset {
            group: "g".into(),
            topic: "orders".into(),
            partition: 7,
            value: Some(CommittedOffset {
                offset: 42,
                leader_epoch: 3,
                metadata: "meta".into(),
                commit_timestamp: 1_700_000_000_000,
            }),
        });
        round_trip(&GroupRecord::Offset {
            group: "g".into(),
            topic: "orders".into(),
            partition: 7,
            value: None,
        });
        round_trip(&GroupRecord::Group {
            group: "g".into(),
            value: Some(GroupMetadata {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp: 9,
                members: vec![MemberMetadata {
                    member_id: "m1".into(),
                    instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 30_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        });
        round_trip(&GroupRecord::Group {
            group: "g".into(),
            value: None,
        });
    }

    #[test]
    fn kafka_bytes() {
        // An OffsetCommitKey v1 and OffsetCommitValue v3 as Kafka 4.1 writes them.
        let (key, value) = GroupRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 1,
            value: Some(CommittedOffset {
                offset: 5,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp: 2,
            }),
        }
        .encode();
        assert_eq!(&key[..], b"\x00\x01\x00\x01g\x00\x01t\x00\x00\x00\x01");
        assert_eq!(
            value.as_deref(),
            Some(&b"\x00\x03\x00\x00\x00\x00\x00\x00\x00\x05\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"[..])
        );
        // Unknown record types (consumer-protocol groups) are not errors.
        assert_eq!(GroupRecord::decode(b"\x00\x03\x00\x01g", None), Ok(None));
        assert!(GroupRecord::decode(b"\x00", None).is_err());
        assert!(GroupRecord::decode(b"\x00\x01\x00\x05g", None).is_err());
    }
}
