//! PostgreSQL: copy jobs, their history, the audit log, and the locks and notifications replicas coordinate by.
//!
//! All SQL of the service lives here, with bound parameters only, and runtime-checked queries (no database is
//! needed to compile). The pool stays inside this module: the rest of the service asks for what it needs by name,
//! and gets domain types back (rows are parsed on the way out; see [`jobs`]).
//!
//! By client: [`jobs`] (the API's life cycle of a copy, the dispatcher's queue, watchers' reads), [`events`] (the
//! history), [`audit`] (the hash-chained audit log and its reports), [`writer`] (the group commit every audited
//! write goes through), [`leadership`] and [`locks`] (which replica dispatches for which account),
//! [`notifications`] (LISTEN/NOTIFY channels).

pub mod audit;
pub mod error;
pub mod events;
pub mod jobs;
pub mod leadership;
pub mod locks;
pub mod notifications;
pub mod page_token;
mod sql_types;
pub mod writer;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use audit::{AuditPageToken, AuditRow};
pub use error::StoreError;
pub use events::CopyEvent;
pub use jobs::{CancelOutcome, Change, CopyJob, CreateOutcome, JobAt, Lease, Report};
pub use leadership::Leadership;
pub use notifications::{Channel, Listener};
pub use page_token::PageToken;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Where audited writes go to be committed in groups (see [`writer`]).
    writer: writer::Writer,
}

impl Store {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Store::from_pool(pool))
    }

    /// A store on `pool`, with a writer of its own (on its own thread, with its own connection).
    pub fn from_pool(pool: PgPool) -> Store {
        Store { writer: writer::Writer::start(&pool), pool }
    }

    /// The pool, for this module's statements only.
    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations not applied yet; safe to run from several replicas at once (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

/// Parses every row read into its domain type, failing on the first that does not parse.
fn parse_all<T, R>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
