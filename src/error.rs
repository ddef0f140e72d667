//! The two kinds of failure: [`ApiError`], which a client caused and gets
//! back as a Kafka error code, and [`Error`], which stops the broker (or
//! one connection) and is logged.

use std::path::PathBuf;

use kafka_protocol::error::ResponseError;

/// A failure a client caused, returned to it as Kafka's error code and an
/// optional message, never logged above debug.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// Kafka's error code.
    pub code: ResponseError,
    /// The text Kafka would put in the response's `error_message`.
    pub message: Option<String>,
}

impl ApiError {
    /// An error with Kafka's code and a message.
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
        }
    }

    /// An error with only a code (for responses that carry no message).
    pub fn code(code: ResponseError) -> Self {
        Self {
            code,
            message: None,
        }
    }

    /// The wire code.
    pub fn code_i16(&self) -> i16 {
        self.code.code()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: {m}", self.code),
            None => write!(f, "{}", self.code),
        }
    }
}

/// A failure of the broker itself: bad configuration, an unusable data
/// directory, a port already taken, a damaged metadata store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The data directory cannot be created or written.
    #[error("data dir {path} is not usable: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A thread or async runtime for the broker cannot be started (the
    /// embedded broker).
    #[error("cannot start the broker's runtime: {0}")]
    Runtime(std::io::Error),
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address as configured.
        address: String,
        /// Why (address in use, permission denied, ...).
        source: std::io::Error,
    },
    /// The sled metadata store failed.
    #[error("metadata store error: {0}")]
    Metadata(#[from] sled::Error),
    /// A stored metadata record does not decode.
    #[error("metadata record '{key}' is corrupt: {source}")]
    CorruptMetadata {
        /// The record's key.
        key: String,
        /// The decode failure.
        source: serde_json::Error,
    },
    /// The metadata store is of a newer format, or sled failed opening it.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A stored value starts with a version byte this binary does not read.
    #[error("metadata record '{key}' has an unknown version")]
    UnknownValueVersion {
        /// The record's key.
        key: String,
    },
    /// The metadata quorum cannot start or does not answer.
    #[error("metadata quorum: {0}")]
    Quorum(String),
    /// A stored dynamic broker config is not UTF-8.
    #[error("dynamic broker config '{key}' is corrupt")]
    CorruptDynamicConfig {
        /// The record's key.
        key: String,
    },
}

/// The crate's result type for broker failures.
pub type Result<T, E = Error> = std::result::Result<T, E>;
