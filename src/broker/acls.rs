//! The broker's authorizer: the one place a handler asks whether a
//! session may do an operation on a resource. ACLs live in the broker's
//! own store on a single node and in the quorum's image in a cluster.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::Broker;
use crate::cluster::quorum::MetadataCommand;
use crate::error::ApiError;
use crate::security::acl::{AclBinding, Operation, ResourceType};
use crate::security::Session;

impl Broker {
    /// Whether an authorizer is configured (`authorizer.class.name`).
    pub fn authorizer_enabled(&self) -> bool {
        self.authorizer.is_some()
    }

    /// Whether `session` may do `operation` on the resource; always with
    /// no authorizer configured.
    pub fn authorize(
        &self,
        session: &Session,
        operation: Operation,
        resource: ResourceType,
        name: &str,
    ) -> bool {
        let Some(authorizer) = &self.authorizer else {
            return true;
        };
        let host = session.peer.ip().to_string();
        match self.quorum() {
            Some(quorum) => authorizer.authorize(
                quorum.image().acls.iter(),
                &session.principal,
                &host,
                operation,
                resource,
                name,
            ),
            None => authorizer.authorize(
                self.acls.all().iter(),
                &session.principal,
                &host,
                operation,
                resource,
                name,
            ),
        }
    }

    /// Whether some resource of the type grants `operation` to the
    /// session (always with no authorizer).
    pub fn authorize_any(
        &self,
        session: &Session,
        operation: Operation,
        resource: ResourceType,
    ) -> bool {
        let Some(authorizer) = &self.authorizer else {
            return true;
        };
        let host = session.peer.ip().to_string();
        let acls = self.acls();
        authorizer.authorize_any(acls.iter(), &session.principal, &host, operation, resource)
    }

    /// Every ACL.
    pub fn acls(&self) -> Arc<BTreeSet<AclBinding>> {
        match self.quorum() {
            Some(quorum) => Arc::new(quorum.image().acls.clone()),
            None => self.acls.all(),
        }
    }

    /// Adds ACLs, durably (flushed, or committed by the quorum). Blocks in
    /// a cluster.
    ///
    /// # Errors
    /// KAFKA_STORAGE_ERROR, or the quorum's errors.
    pub fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), ApiError> {
        if self.in_quorum() {
            self.propose_command(MetadataCommand::CreateAcls(bindings))
                .map(|_| ())
        } else {
            self.acls.apply(&bindings, &[])
        }
    }

    /// Removes ACLs, durably. Blocks in a cluster.
    ///
    /// # Errors
    /// As [`Broker::create_acls`].
    pub fn delete_acls(&self, bindings: Vec<AclBinding>) -> Result<(), ApiError> {
        if self.in_quorum() {
            self.propose_command(MetadataCommand::DeleteAcls(bindings))
                .map(|_| ())
        } else {
            self.acls.apply(&[], &bindings)
        }
    }
}
