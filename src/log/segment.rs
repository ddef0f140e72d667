//! [`LogSegment`]: one segment file, `<base_offset:020>.log`, holding record
//! batches back to back exactly as stored.
//!
//! Not thread-safe for writers: the owning `PartitionLog` appends under its
//! lock. Readers use positioned reads (`pread`) on a shared handle and may
//! run concurrently with an append, since they only read ranges the index
//! has published.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One segment file.
#[derive(Debug)]
pub struct LogSegment {
    /// Offset of the first batch this segment may hold (its file name).
    pub base_offset: i64,
    file: Arc<File>,
    path: PathBuf,
    /// Bytes written so far (the next append position).
    pub size: u64,
    /// Largest batch max timestamp in the segment, -1 if empty.
    pub max_timestamp: i64,
    /// When the segment was created (ms since the epoch), for `segment.ms`.
    pub created_ms: i64,
}

/// The file name of the segment starting at `base_offset`.
pub fn file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// The base offset encoded in a segment file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

impl LogSegment {
    /// Creates an empty segment file in `dir` (or opens it if it exists).
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> io::Result<Self> {
        let path = dir.join(file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            base_offset,
            file: Arc::new(file),
            path,
            size,
            max_timestamp: -1,
            created_ms: now_ms,
        })
    }

    /// Opens an existing segment file.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path, base_offset: i64) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let metadata = file.metadata()?;
        let created_ms = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .unwrap_or(0);
        Ok(Self {
            base_offset,
            file: Arc::new(file),
            path: path.to_owned(),
            size: metadata.len(),
            max_timestamp: -1,
            created_ms,
        })
    }

    /// Appends one batch at the end; on failure the file is cut back to its
    /// previous size so no partial batch stays behind.
    ///
    /// # Errors
    /// The write fails (disk full, I/O error).
    pub fn append(&mut self, batch: &[u8]) -> io::Result<u64> {
        let position = self.size;
        if let Err(e) = self.file.write_all_at(batch, position) {
            let _ = self.file.set_len(position);
            return Err(e);
        }
        self.size += batch.len() as u64;
        Ok(position)
    }

    /// A handle for positioned reads that outlives the lock on the log.
    pub fn reader(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Cuts the file to `size` bytes (recovery of a torn tail).
    ///
    /// # Errors
    /// The truncate fails.
    pub fn truncate(&mut self, size: u64) -> io::Result<()> {
        self.file.set_len(size)?;
        self.size = size;
        Ok(())
    }

    /// Forces written data to disk.
    ///
    /// # Errors
    /// fsync fails.
    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Deletes the file.
    ///
    /// # Errors
    /// The file exists but cannot be removed.
    pub fn delete(self) -> io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Reads `length` bytes at `position` of a segment file.
///
/// # Errors
/// The read fails or the file is shorter than asked.
pub fn read_at(file: &File, position: u64, length: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; length];
    file.read_exact_at(&mut buf, position)?;
    Ok(buf)
}

/// A non-empty byte range of a segment file holding whole batches: what a
/// fetch sends. The bytes stay on disk (or in the page cache) until sent,
/// so the server can hand them to the socket with `sendfile`. The range is
/// always published (indexed) data, which is never truncated, and the
/// shared handle keeps a deleted segment readable until the region is dropped.
#[derive(Debug, Clone)]
pub struct FileRegion {
    /// The segment file.
    pub file: Arc<File>,
    /// Where the range starts.
    pub position: u64,
    /// How many bytes it holds (more than 0).
    pub len: usize,
}

impl FileRegion {
    /// The bytes of the range, read into memory.
    ///
    /// # Errors
    /// The read fails or the file is shorter than the range.
    pub fn read(&self) -> io::Result<bytes::Bytes> {
        read_at(&self.file, self.position, self.len).map(bytes::Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(42), "00000000000000000042.log");
        assert_eq!(parse_file_name("00000000000000000042.log"), Some(42));
        assert_eq!(parse_file_name("42.log"), None);
        assert_eq!(parse_file_name("00000000000000000042.index"), None);
    }

    #[test]
    fn append_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = LogSegment::create(dir.path(), 0, 0).unwrap();
        assert_eq!(segment.append(b"hello").unwrap(), 0);
        assert_eq!(segment.append(b"world").unwrap(), 5);
        assert_eq!(read_at(&segment.reader(), 5, 5).unwrap(), b"world");
        segment.truncate(5).unwrap();
        let reopened = LogSegment::open(&dir.path().join(file_name(0)), 0).unwrap();
        assert_eq!(reopened.size, 5);
    }
}
