//! Dynamic broker configs (AlterConfigs on a broker resource), kept in the
//! sled tree `broker_configs` so they survive a restart, as Kafka keeps them
//! in its metadata log. Keys are `<scope>/<config name>`.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;

use crate::config::DynamicScope;
use crate::error::{ApiError, Error};

/// The stored dynamic broker configs of both scopes.
#[derive(Debug)]
pub struct DynamicConfigStore {
    tree: sled::Tree,
}

fn prefix(scope: DynamicScope) -> &'static str {
    match scope {
        DynamicScope::ClusterDefault => "default/",
        DynamicScope::Broker => "broker/",
    }
}

impl DynamicConfigStore {
    /// Opens the tree.
    ///
    /// # Errors
    /// sled fails.
    pub fn open(db: &sled::Db) -> Result<Self, Error> {
        Ok(Self {
            tree: db.open_tree("broker_configs")?,
        })
    }

    /// The stored values of one scope.
    ///
    /// # Errors
    /// sled fails, or a stored key or value is not UTF-8.
    pub fn load(&self, scope: DynamicScope) -> Result<BTreeMap<String, String>, Error> {
        let mut values = BTreeMap::new();
        for entry in self.tree.scan_prefix(prefix(scope)) {
            let (key, value) = entry?;
            let text = |bytes: &[u8]| {
                String::from_utf8(bytes.to_vec()).map_err(|_| Error::CorruptDynamicConfig {
                    key: String::from_utf8_lossy(&key).into_owned(),
                })
            };
            let name = text(&key[prefix(scope).len()..])?;
            let value =
                crate::store::unversioned(&value).ok_or_else(|| Error::UnknownValueVersion {
                    key: String::from_utf8_lossy(&key).into_owned(),
                })?;
            values.insert(name, text(value)?);
        }
        Ok(values)
    }

    /// Replaces one scope's values and flushes them to disk.
    ///
    /// # Errors
    /// UNKNOWN_SERVER_ERROR if sled cannot store them.
    pub fn replace(
        &self,
        scope: DynamicScope,
        values: &BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        let mut batch = sled::Batch::default();
        for entry in self.tree.scan_prefix(prefix(scope)).keys() {
            batch.remove(entry.map_err(storage_error)?);
        }
        for (name, value) in values {
            batch.insert(
                format!("{}{name}", prefix(scope)).as_bytes(),
                crate::store::versioned(value.as_bytes()),
            );
        }
        self.tree.apply_batch(batch).map_err(storage_error)?;
        self.tree.flush().map_err(storage_error)?;
        Ok(())
    }
}

fn storage_error(e: sled::Error) -> ApiError {
    ApiError::new(
        ResponseError::UnknownServerError,
        format!("cannot store broker configs: {e}"),
    )
}
