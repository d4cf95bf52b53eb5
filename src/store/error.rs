//! Errors of the store, typed so the API can tell "not there" and "not allowed now" from "the database failed".

use std::sync::Arc;

use crate::domain::IllegalTransition;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// The group commit this call's write was part of failed: every call of the batch gets the same error, and
    /// none of their writes was committed.
    #[error("{0}")]
    Batch(Arc<StoreError>),
    /// PostgreSQL did not answer within the store's timeout. A write that timed out may or may not have committed
    /// (its COMMIT may have been on its way): a retry with the same idempotency token says which.
    #[error("the database did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The writer is gone (the service is stopping): nothing was written.
    #[error("the store's writer has stopped")]
    WriterStopped,
}

impl StoreError {
    /// The error itself, through a batch that shares it.
    pub fn root(&self) -> &StoreError {
        match self {
            StoreError::Batch(shared) => shared.root(),
            other => other,
        }
    }
}
