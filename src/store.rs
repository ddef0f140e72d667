//! The sled metadata store (`DATA_DIR/meta`): opening it, the format
//! version of the whole store, and the version byte that starts every value
//! strom keeps in it.
//!
//! Trees: `topics` (topic registry), `broker_configs` (dynamic configs),
//! `producer_ids` (the next producer id block), `index/<topic>/<partition>`
//! (batch indexes), `log_start_offsets`, `cleaner_checkpoints`, and
//! `offsets` only in data dirs of strom before `__consumer_offsets` (read
//! once, then dropped).
//!
//! **Invariant:** every value starts with a version byte of its own type;
//! the store's format version ([`FORMAT_VERSION`]) says which value
//! versions it may hold. A store written by a newer format stops the broker
//! at start with one line; an older one is migrated first.

use std::path::{Path, PathBuf};

/// The store format this binary writes and reads.
///
/// - 1 (implicit: no marker): values without version bytes.
/// - 2: every value starts with a version byte (1 for each type).
pub const FORMAT_VERSION: u32 = 2;

/// The version byte of every value type at [`FORMAT_VERSION`] 2.
pub const VALUE_VERSION: u8 = 1;

/// Where the format version is kept, in the default tree.
pub const FORMAT_KEY: &[u8] = b"strom.store.format";

/// How long opening the store waits for a previous handle in this process
/// to let go of its file lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("metadata store error: {0}")]
    Sled(#[from] sled::Error),
    /// The store was written by a newer strom.
    #[error(
        "data dir {path} was written by a newer strom (store format {found}; this binary \
         reads formats up to {FORMAT_VERSION}): use that version or a new data dir"
    )]
    Newer {
        /// The store's directory.
        path: PathBuf,
        /// The format found.
        found: u32,
    },
}

/// `value` preceded by the current value version byte.
pub fn versioned(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 1);
    out.push(VALUE_VERSION);
    out.extend_from_slice(value);
    out
}

/// The body of a stored value of the current version; `None` for a value
/// of another version (or an empty one).
pub fn unversioned(value: &[u8]) -> Option<&[u8]> {
    match value.split_first() {
        Some((&VALUE_VERSION, body)) => Some(body),
        _ => None,
    }
}

/// Opens the store at `path`, checks its format and migrates an older one.
/// sled's background threads hold the directory's file lock a moment after
/// its last handle is dropped, so a restart in the same process (tests)
/// waits for the lock, up to [`LOCK_WAIT`]; another broker holding it fails
/// after that.
///
/// # Errors
/// sled cannot open the store, or it is of a newer format.
pub fn open(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    let db = loop {
        // sled's default cache is 1 GiB; the index is small and hot, so a
        // modest cache keeps the broker's memory low.
        match sled::Config::new()
            .path(path)
            .cache_capacity(64 << 20)
            .open()
        {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    let found = match db.get(FORMAT_KEY)? {
        None => 1,
        Some(v) => unversioned(&v)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .unwrap_or(u32::MAX),
    };
    if found > FORMAT_VERSION {
        return Err(StoreError::Newer {
            path: path.to_owned(),
            found,
        });
    }
    if found < FORMAT_VERSION {
        migrate_from_1(&db)?;
        db.insert(FORMAT_KEY, versioned(&FORMAT_VERSION.to_be_bytes()))?;
        db.flush()?;
        if found == 1 && db.tree_names().len() > 1 {
            tracing::info!(
                from = found,
                to = FORMAT_VERSION,
                "migrated the metadata store"
            );
        }
    }
    Ok(db)
}

/// Format 1 → 2: a version byte before every value. Idempotent (a crash
/// midway re-runs it): each value type tells a migrated value apart.
fn migrate_from_1(db: &sled::Db) -> sled::Result<()> {
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        // Whether a value of this tree is still of format 1.
        let legacy: fn(&[u8]) -> bool = match &name[..] {
            b"topics" => |v| v.first() == Some(&b'{'),
            b"broker_configs" => |v| v.first() != Some(&VALUE_VERSION),
            b"log_start_offsets" => |v| v.len() == 8,
            n if n.starts_with(b"index/") => |v| v.len() == crate::log::LEGACY_INDEX_VALUE_SIZE,
            _ => continue,
        };
        for entry in tree.iter() {
            let (key, value) = entry?;
            if legacy(&value) {
                tree.insert(key, versioned(&value))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_formats_are_refused_and_older_ones_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("topics").unwrap().insert("t", b"{}").unwrap();
            db.open_tree("broker_configs")
                .unwrap()
                .insert("default/x", b"1")
                .unwrap();
            db.open_tree("log_start_offsets")
                .unwrap()
                .insert("t/0", &7i64.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let db = open(dir.path()).unwrap();
        let get = |tree: &str, key: &str| db.open_tree(tree).unwrap().get(key).unwrap().unwrap();
        assert_eq!(&get("topics", "t")[..], b"\x01{}");
        assert_eq!(&get("broker_configs", "default/x")[..], b"\x011");
        assert_eq!(
            unversioned(&get("log_start_offsets", "t/0")),
            Some(&7i64.to_be_bytes()[..])
        );
        // Running the migration again changes nothing.
        migrate_from_1(&db).unwrap();
        assert_eq!(&get("topics", "t")[..], b"\x01{}");
        db.insert(FORMAT_KEY, versioned(&3u32.to_be_bytes()))
            .unwrap();
        db.flush().unwrap();
        drop(db);
        let refused = open(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("newer strom (store format 3"), "{refused}");
    }
}
