//! Errors of the store, typed so the API can tell "not there" and "not allowed now" from "the database failed".

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
}
