//! The ACLs (CreateAcls, DeleteAcls): on a single node in the sled tree
//! `acls`, flushed before the change is acknowledged and cached in
//! memory for the authorizer; in a cluster in the quorum's image
//! ([`crate::cluster::quorum::MetadataCommand::CreateAcls`]).

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use crate::error::{ApiError, Error};
use crate::security::acl::AclBinding;

/// The single node's ACLs.
#[derive(Debug)]
pub struct AclStore {
    tree: sled::Tree,
    cache: RwLock<Arc<BTreeSet<AclBinding>>>,
}

impl AclStore {
    /// Opens the tree and loads every binding (one that does not decode
    /// is skipped with a warning).
    ///
    /// # Errors
    /// sled fails.
    pub fn open(db: &sled::Db) -> Result<Self, Error> {
        let tree = db.open_tree("acls")?;
        let mut all = BTreeSet::new();
        for entry in tree.iter() {
            let (key, _) = entry?;
            match serde_json::from_slice::<AclBinding>(&key) {
                Ok(binding) => {
                    all.insert(binding);
                }
                Err(e) => tracing::warn!(cause = %e, "skipping an undecodable ACL"),
            }
        }
        Ok(Self {
            tree,
            cache: RwLock::new(Arc::new(all)),
        })
    }

    /// Every binding.
    pub fn all(&self) -> Arc<BTreeSet<AclBinding>> {
        self.cache.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds `create` and removes `delete`, atomically and durably.
    ///
    /// # Errors
    /// KAFKA_STORAGE_ERROR when sled cannot store them.
    pub fn apply(&self, create: &[AclBinding], delete: &[AclBinding]) -> Result<(), ApiError> {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        let mut batch = sled::Batch::default();
        let mut next = (**cache).clone();
        for binding in delete {
            batch.remove(serde_json::to_vec(binding).map_err(storage_error)?);
            next.remove(binding);
        }
        for binding in create {
            batch.insert(
                serde_json::to_vec(binding).map_err(storage_error)?,
                crate::store::versioned(&[]),
            );
            next.insert(binding.clone());
        }
        self.tree.apply_batch(batch).map_err(storage_error)?;
        self.tree.flush().map_err(storage_error)?;
        *cache = Arc::new(next);
        Ok(())
    }
}

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        kafka_protocol::error::ResponseError::KafkaStorageError,
        format!("cannot store ACLs: {e}"),
    )
}
