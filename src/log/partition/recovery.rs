//! Opening a partition: recovery as Kafka's `LogLoader` does it, and the
//! completion of a cleaner swap a crash interrupted.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use tokio::sync::Notify;
use tracing::warn;

use super::cleaning::{self, CHECKPOINT_TREE};
use super::{apply_to_state, LogConfig, LogState, PartitionLog};
use crate::log::batch::{self, BatchHeader, HEADER_SIZE};
use crate::log::index::{BatchEntry, SegmentIndex};
use crate::log::producer_state::ProducerStateManager;
use crate::log::segment::{self, LogSegment};
use crate::log::transactions::TxnIndex;

impl PartitionLog {
    /// Opens a partition's directory, recovering as Kafka's `LogLoader`
    /// does: every segment's bytes past its last indexed batch are scanned,
    /// each batch's CRC checked and indexed; a torn or corrupt tail is cut
    /// (with a warning); index entries pointing past a file's end are dropped.
    ///
    /// # Errors
    /// The directory or a segment cannot be read or written, or sled fails.
    pub fn open(
        dir: &Path,
        topic: &str,
        partition: i32,
        db: &sled::Db,
        config: LogConfig,
        now_ms: i64,
    ) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let index = SegmentIndex::open(db, topic, partition).map_err(io::Error::other)?;
        let starts = db
            .open_tree("log_start_offsets")
            .map_err(io::Error::other)?;
        let start_key = format!("{topic}/{partition}");
        let stored_start = starts
            .get(&start_key)
            .map_err(io::Error::other)?
            .and_then(|v| {
                crate::store::unversioned(&v)
                    .and_then(|b| b.try_into().ok())
                    .map(i64::from_be_bytes)
            });

        let checkpoints = db.open_tree(CHECKPOINT_TREE).map_err(io::Error::other)?;
        let watermarks = db
            .open_tree(super::replica::HIGH_WATERMARK_TREE)
            .map_err(io::Error::other)?;
        let cleaner_checkpoint = cleaning::read_checkpoint(&checkpoints, &start_key)?;
        cleaning::finish_interrupted_swaps(dir, &index, topic, partition)?;

        let mut segments = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if let Some(base) = name.to_str().and_then(segment::parse_file_name) {
                segments.insert(base, LogSegment::open(&entry.path(), base)?);
            }
        }
        if segments.is_empty() {
            let base = stored_start.unwrap_or(0);
            segments.insert(base, LogSegment::create(dir, base, now_ms)?);
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        // Entries of segments deleted before a crash could finish the index cleanup.
        index.remove_range(..first_base).map_err(io::Error::other)?;

        let bases: Vec<i64> = segments.keys().copied().collect();
        let mut log_end_offset = first_base;
        for (i, base) in bases.iter().enumerate() {
            let next = bases.get(i + 1).copied().unwrap_or(i64::MAX);
            let Some(segment) = segments.get_mut(base) else {
                continue;
            };
            recover_segment(segment, &index, next, topic, partition)?;
            for entry in index.range(*base..next) {
                segment.max_timestamp = segment.max_timestamp.max(entry.max_timestamp);
                log_end_offset = entry.last_offset + 1;
            }
            log_end_offset = log_end_offset.max(*base);
        }
        let (producers, mut txns) = replay_state(&segments, &index, topic, partition)?;
        let log_start_offset = stored_start
            .unwrap_or(first_base)
            .max(first_base)
            .min(log_end_offset);
        txns.truncate_before(log_start_offset);
        let epochs = super::replica::scan_epochs(&segments, &index, log_end_offset);
        Ok(Self {
            topic: topic.to_owned(),
            partition,
            dir: dir.to_owned(),
            index,
            starts,
            checkpoints,
            watermarks,
            state: Mutex::new(LogState {
                config,
                segments,
                log_start_offset,
                log_end_offset,
                high_watermark: log_end_offset,
                replicated: false,
                leader_epoch: 0,
                epochs,
                producers,
                txns,
                unflushed_records: 0,
                last_flush_ms: now_ms,
                deleted: false,
                cleaner_checkpoint,
            }),
            appended: Notify::new(),
            verifications: Mutex::new(super::verification::Verifications::default()),
        })
    }
}

/// The producer and transaction state of the batches `index` lists, in
/// offset order (transaction markers read from the segments).
///
/// # Errors
/// A marker cannot be read.
pub(super) fn replay_state(
    segments: &BTreeMap<i64, LogSegment>,
    index: &SegmentIndex,
    topic: &str,
    partition: i32,
) -> io::Result<(ProducerStateManager, TxnIndex)> {
    let mut producers = ProducerStateManager::default();
    let mut txns = TxnIndex::default();
    for entry in index.range(..) {
        let marker = if batch::is_control(entry.attributes) {
            let bytes = match segments.get(&entry.segment) {
                Some(segment) => {
                    segment::read_at(&segment.reader(), entry.position, entry.size as usize)?
                }
                None => Vec::new(),
            };
            Some(batch::read_marker(&bytes).unwrap_or_else(|| {
                warn!(
                    topic,
                    partition,
                    offset = entry.base_offset,
                    "unreadable transaction marker; taken as a commit"
                );
                batch::Marker {
                    commit: true,
                    coordinator_epoch: -1,
                }
            }))
        } else {
            None
        };
        apply_to_state(&mut producers, &mut txns, &entry, marker);
    }
    Ok((producers, txns))
}

/// Brings one segment and its index entries into agreement: drops entries
/// past the file's end, then scans and indexes the bytes past the last
/// indexed batch, cutting the file at the first torn or corrupt batch.
pub(super) fn recover_segment(
    segment: &mut LogSegment,
    index: &SegmentIndex,
    next_base: i64,
    topic: &str,
    partition: i32,
) -> io::Result<()> {
    let base = segment.base_offset;
    let size = segment.size;
    if let Some(beyond) = index
        .range(base..next_base)
        .find(|e| e.position + u64::from(e.size) > size)
    {
        warn!(
            topic,
            partition,
            offset = beyond.base_offset,
            "index points past the segment end; re-indexing"
        );
        index
            .remove_range(beyond.last_offset..next_base)
            .map_err(io::Error::other)?;
    }
    let last = index.range(base..next_base).last();
    let mut position = last.map_or(0, |e| e.position + u64::from(e.size));
    let mut expected_offset = last.map_or(base, |e| e.last_offset + 1);
    let reader = segment.reader();
    while position < size {
        let remaining = usize::try_from(size - position).unwrap_or(usize::MAX);
        let header_bytes = segment::read_at(&reader, position, remaining.min(HEADER_SIZE))?;
        let whole = BatchHeader::parse(&header_bytes).ok().filter(|h| {
            h.size <= remaining && h.base_offset >= expected_offset && h.last_offset_delta >= 0
        });
        let verified = match whole {
            Some(h) => {
                let bytes = segment::read_at(&reader, position, h.size)?;
                batch::check_crc(&bytes, &h).ok().map(|()| h)
            }
            None => None,
        };
        let Some(h) = verified else {
            warn!(
                topic,
                partition,
                segment = base,
                position,
                cut_bytes = size - position,
                "truncating a torn or corrupt segment tail"
            );
            segment.truncate(position)?;
            break;
        };
        index
            .insert(&BatchEntry {
                base_offset: h.base_offset,
                last_offset: h.last_offset(),
                segment: base,
                position,
                size: u32::try_from(h.size).map_err(io::Error::other)?,
                max_timestamp: h.max_timestamp,
                producer_id: h.producer_id,
                producer_epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                attributes: h.attributes,
            })
            .map_err(io::Error::other)?;
        position += h.size as u64;
        expected_offset = h.last_offset() + 1;
    }
    Ok(())
}
