//! The broker's SCRAM credentials: a single node keeps them in its own
//! store; a cluster member reads the quorum's image and proposes changes
//! to it, so every broker authenticates every user.

use std::collections::BTreeMap;

use super::Broker;
use crate::cluster::credentials::{CredentialChange, UserCredentials};
use crate::cluster::quorum::MetadataCommand;
use crate::error::ApiError;
use crate::security::scram::{ScramCredential, ScramMechanism};

impl Broker {
    /// Every user's SCRAM credentials.
    pub fn scram_credentials(&self) -> BTreeMap<String, UserCredentials> {
        match self.quorum() {
            Some(quorum) => quorum.image().scram_credentials.clone(),
            None => self.credentials.all(),
        }
    }

    /// One user's credential for one mechanism (SASL/SCRAM's lookup).
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<ScramCredential> {
        match self.quorum() {
            Some(quorum) => quorum
                .image()
                .scram_credentials
                .get(user)
                .and_then(|c| c.get(&mechanism))
                .cloned(),
            None => self.credentials.get(user, mechanism),
        }
    }

    /// Creates the `--add-scram` users that have no credential of their
    /// mechanism yet (an existing one, perhaps changed since, is kept).
    /// Blocks in a cluster.
    ///
    /// # Errors
    /// As [`Broker::alter_scram_credentials`].
    pub fn add_initial_users(
        &self,
        users: &[crate::security::scram::InitialUser],
    ) -> Result<usize, ApiError> {
        let changes: Vec<CredentialChange> = users
            .iter()
            .filter(|u| self.scram_credential(&u.name, u.mechanism).is_none())
            .map(|u| CredentialChange::Upsert {
                user: u.name.clone(),
                mechanism: u.mechanism,
                credential: ScramCredential::from_password(u.mechanism, &u.password, u.iterations),
            })
            .collect();
        let added = changes.len();
        if added > 0 {
            self.alter_scram_credentials(changes)?;
        }
        Ok(added)
    }

    /// Applies checked credential changes: durable (flushed, or committed
    /// by the quorum) before this returns. Blocks in a cluster.
    ///
    /// # Errors
    /// KAFKA_STORAGE_ERROR, or the quorum's errors.
    pub fn alter_scram_credentials(&self, changes: Vec<CredentialChange>) -> Result<(), ApiError> {
        if self.in_quorum() {
            self.propose_command(MetadataCommand::AlterScramCredentials(changes))
                .map(|_| ())
        } else {
            self.credentials.apply(&changes)
        }
    }
}
