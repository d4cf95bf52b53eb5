//! PostgreSQL: copy jobs, their history and the audit log. All SQL of the service lives here, with bound
//! parameters only, and runtime-checked queries (no database is needed to compile).

pub mod audit;
pub mod error;
pub mod events;
pub mod jobs;
pub mod page_token;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use audit::{AuditPageToken, AuditRow};
pub use error::StoreError;
pub use events::CopyEventRow;
pub use jobs::{CancelOutcome, Change, CopyJob, CreateOutcome, JobAt};
pub use page_token::PageToken;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Store { pool })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations not applied yet; safe to run from several replicas at once (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}
