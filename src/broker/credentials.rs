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
