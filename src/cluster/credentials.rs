//! SCRAM credentials by user and mechanism (AlterUserScramCredentials):
//! on a single node in the sled tree `scram_credentials`, flushed before
//! the change is acknowledged; in a cluster in the quorum's image
//! ([`crate::cluster::quorum::MetadataCommand::AlterScramCredentials`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Error};
use crate::security::scram::{ScramCredential, ScramMechanism};

/// A user's credentials, one per mechanism.
pub type UserCredentials = BTreeMap<ScramMechanism, ScramCredential>;

/// One change of AlterUserScramCredentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialChange {
    /// Sets a user's credential for a mechanism.
    Upsert {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The credential.
        credential: ScramCredential,
    },
    /// Removes a user's credential for a mechanism.
    Delete {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

/// Applies changes to a map of credentials (the image's, or the store's).
pub fn apply_changes(all: &mut BTreeMap<String, UserCredentials>, changes: &[CredentialChange]) {
    for change in changes {
        match change {
            CredentialChange::Upsert {
                user,
                mechanism,
                credential,
            } => {
                all.entry(user.clone())
                    .or_default()
                    .insert(*mechanism, credential.clone());
            }
            CredentialChange::Delete { user, mechanism } => {
                if let Some(credentials) = all.get_mut(user) {
                    credentials.remove(mechanism);
                    if credentials.is_empty() {
                        all.remove(user);
                    }
                }
            }
        }
    }
}

/// The single node's credentials on disk.
#[derive(Debug)]
pub struct CredentialStore {
    tree: sled::Tree,
}

fn key(user: &str, mechanism: ScramMechanism) -> Vec<u8> {
    let mut key = user.as_bytes().to_vec();
    key.push(0);
    key.push(mechanism.type_code().to_be_bytes()[0]);
    key
}

impl CredentialStore {
    /// Opens the tree.
    ///
    /// # Errors
    /// sled fails.
    pub fn open(db: &sled::Db) -> Result<Self, Error> {
        Ok(Self {
            tree: db.open_tree("scram_credentials")?,
        })
    }

    /// One user's credential for one mechanism.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let value = self.tree.get(key(user, mechanism)).ok()??;
        serde_json::from_slice(crate::store::unversioned(&value)?).ok()
    }

    /// Every stored credential (entries that do not decode are skipped
    /// with a warning: a client cannot log in with them).
    pub fn all(&self) -> BTreeMap<String, UserCredentials> {
        let mut all: BTreeMap<String, UserCredentials> = BTreeMap::new();
        for (key, value) in self.tree.iter().flatten() {
            let decoded = crate::store::unversioned(&value)
                .and_then(|v| serde_json::from_slice::<ScramCredential>(v).ok());
            let split = key.iter().position(|b| *b == 0).and_then(|at| {
                let user = std::str::from_utf8(&key[..at]).ok()?;
                let code = i8::from_be_bytes([*key.get(at + 1)?]);
                Some((user.to_owned(), ScramMechanism::from_type(code)?))
            });
            match (split, decoded) {
                (Some((user, mechanism)), Some(credential)) => {
                    all.entry(user).or_default().insert(mechanism, credential);
                }
                _ => tracing::warn!(key = ?key, "skipping an undecodable SCRAM credential"),
            }
        }
        all
    }

    /// Applies changes atomically and flushes them.
    ///
    /// # Errors
    /// KAFKA_STORAGE_ERROR when sled cannot store them.
    pub fn apply(&self, changes: &[CredentialChange]) -> Result<(), ApiError> {
        let mut batch = sled::Batch::default();
        for change in changes {
            match change {
                CredentialChange::Upsert {
                    user,
                    mechanism,
                    credential,
                } => {
                    let value = serde_json::to_vec(credential).map_err(storage_error)?;
                    batch.insert(key(user, *mechanism), crate::store::versioned(&value));
                }
                CredentialChange::Delete { user, mechanism } => {
                    batch.remove(key(user, *mechanism));
                }
            }
        }
        self.tree.apply_batch(batch).map_err(storage_error)?;
        self.tree.flush().map_err(storage_error)?;
        Ok(())
    }
}

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        kafka_protocol::error::ResponseError::KafkaStorageError,
        format!("cannot store SCRAM credentials: {e}"),
    )
}
