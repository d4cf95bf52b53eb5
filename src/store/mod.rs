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
pub mod pace;
pub mod page_token;
pub mod rollouts;
mod sql_types;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use audit::{AuditPageToken, AuditRow};
pub use error::StoreError;
pub use events::CopyEvent;
pub use jobs::{CancelOutcome, Change, CopyJob, CreateOutcome, JobAt, Lease, LiveCursor, Report};
pub use leadership::Leadership;
pub use notifications::{Channel, Listener};
pub use page_token::PageToken;

/// The migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct Store {
    /// The pool of this handle's [`Role`].
    pool: PgPool,
    /// Every role's pool, for [`Store::for_role`].
    pools: Arc<Pools>,
    /// Where audited writes go to be committed in groups (see [`writer`]).
    writer: writer::Writer,
}

/// Who reads through a [`Store`] handle: each role has a pool of its own, so that no role can take every connection
/// and stall the others. A flood of API reads (ListCopies, audit reports) must not keep the dispatcher from
/// leasing, recording and polling copies, nor watchers from loading the changes they are told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Calls' reads (gets, lists, audit reports). Audited writes go through the writer, on its own connection.
    Api,
    /// Watch streams' snapshots and catch-up reads.
    Watch,
    /// The dispatcher: leases, reports, leadership.
    Dispatch,
}

#[derive(Debug)]
struct Pools {
    api: PgPool,
    watch: PgPool,
    dispatch: PgPool,
}

impl Pools {
    fn of(&self, role: Role) -> &PgPool {
        match role {
            Role::Api => &self.api,
            Role::Watch => &self.watch,
            Role::Dispatch => &self.dispatch,
        }
    }
}

/// How `max_connections` is shared: a quarter each for watch and dispatch (at least 2), the rest for the API (at
/// least 2). The API's share is the largest because calls are what comes in bursts.
fn shares(max_connections: u32) -> (u32, u32, u32) {
    let quarter = (max_connections / 4).max(2);
    let api = max_connections.saturating_sub(2 * quarter).max(2);
    (api, quarter, quarter)
}

impl Store {
    /// A store with a pool per [`Role`], sharing `max_connections` between them (see [`shares`]). Connections open
    /// as they are needed; the first is opened here, so that a wrong URL fails now. `timeout` bounds the wait for a
    /// connection, and the writer's wait for each group commit.
    ///
    /// `statement_timeout`, unless zero, is PostgreSQL's own bound on every statement of every connection the store
    /// opens (its listeners' and the leadership session's too), but for migrations'.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        timeout: Duration,
        statement_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let (api, watch, dispatch) = shares(max_connections);
        let mut connect: PgConnectOptions = url.parse()?;
        if !statement_timeout.is_zero() {
            connect = connect.options([("statement_timeout", format!("{}ms", statement_timeout.as_millis()))]);
        }
        let options = |max| PgPoolOptions::new().max_connections(max).acquire_timeout(timeout);
        let api = options(api).connect_with(connect.clone()).await?;
        let watch = options(watch).connect_lazy_with(connect.clone());
        let dispatch = options(dispatch).connect_lazy_with(connect);
        Ok(Store::with_pools(Pools { api, watch, dispatch }))
    }

    /// A store whose roles all share `pool`, with a writer of its own (on its own thread, with its own connection).
    pub fn from_pool(pool: PgPool) -> Store {
        Store::with_pools(Pools { api: pool.clone(), watch: pool.clone(), dispatch: pool })
    }

    fn with_pools(pools: Pools) -> Store {
        let writer = writer::Writer::start(&pools.api);
        Store { pool: pools.api.clone(), pools: Arc::new(pools), writer }
    }

    /// The same store, reading through `role`'s pool (writes share one writer whatever the role).
    pub fn for_role(&self, role: Role) -> Store {
        Store { pool: self.pools.of(role).clone(), pools: self.pools.clone(), writer: self.writer.clone() }
    }

    /// How long the store waits on PostgreSQL before giving up (`database_timeout_ms`): for a connection, and for
    /// a group commit. Other waits that must not hang on a partition are bounded by it too.
    pub fn timeout(&self) -> Duration {
        self.pool.options().get_acquire_timeout()
    }

    /// One round trip to PostgreSQL through this store's pool: whether the database answers at all.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool, for this module's statements only.
    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the migrations not applied yet; safe to run from several replicas at once (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // On a connection of its own without the statement timeout: a migration of a big table may take longer
        // than any call's statement should.
        let unbounded = self.pool.connect_options().as_ref().clone().options([("statement_timeout", "0")]);
        let mut connection = sqlx::ConnectOptions::connect(&unbounded).await?;
        MIGRATOR.run(&mut connection).await?;
        sqlx::Connection::close(connection).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devenv::{test_cluster, unique_db_name};

    #[test]
    fn each_role_gets_a_share_of_at_least_two() {
        assert_eq!(shares(16), (8, 4, 4));
        assert_eq!(shares(8), (4, 2, 2));
        assert_eq!(shares(1), (2, 2, 2));
    }

    /// Every API connection is taken (a flood of slow reads would do it): the dispatcher and watchers still get
    /// theirs at once.
    #[tokio::test]
    async fn api_reads_cannot_take_the_dispatchers_connections() {
        let url = test_cluster().await.create_database(&unique_db_name("pools")).await.expect("a database");
        let store = Store::connect(&url, 8, Duration::from_secs(10), Duration::ZERO).await.unwrap();
        let api = store.for_role(Role::Api);
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(api.pool().acquire().await.unwrap());
        }
        let wait = Duration::from_millis(500);
        let api_read = tokio::time::timeout(wait, api.pool().acquire()).await;
        assert!(api_read.is_err(), "the API's pool is exhausted: its next read waits");
        for role in [Role::Dispatch, Role::Watch] {
            let handle = store.for_role(role);
            let read = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(handle.pool());
            let answered = tokio::time::timeout(wait, read).await;
            assert!(matches!(answered, Ok(Ok(1))), "{role:?} reads while the API's pool is exhausted: {answered:?}");
        }
        drop(held);
    }

    /// PostgreSQL cancels a statement of any role's, or of a listener's session, that outlives the statement
    /// timeout. (That migrations run without it is not shown here: none of them is slow on an empty database.)
    #[tokio::test]
    async fn statements_outliving_the_statement_timeout_are_cancelled_by_postgres() {
        let url = test_cluster().await.create_database(&unique_db_name("statement_timeout")).await.expect("a db");
        let store = Store::connect(&url, 8, Duration::from_secs(10), Duration::from_millis(300)).await.unwrap();
        for role in [Role::Api, Role::Watch, Role::Dispatch] {
            let slow = sqlx::query("SELECT pg_sleep(2)").execute(store.for_role(role).pool()).await.unwrap_err();
            let code = slow.as_database_error().and_then(|err| err.code()).map(|code| code.into_owned());
            assert_eq!(code.as_deref(), Some("57014"), "{role:?}: query_canceled, by PostgreSQL: {slow}");
        }
        let quick: i32 = sqlx::query_scalar("SELECT 1").fetch_one(store.pool()).await.unwrap();
        assert_eq!(quick, 1);
        let own = PgPoolOptions::new().max_connections(1).connect_with(store.pool().connect_options().as_ref().clone());
        let shown: String = sqlx::query_scalar("SHOW statement_timeout").fetch_one(&own.await.unwrap()).await.unwrap();
        assert_eq!(shown, "300ms", "a listener's session, opened with the store's options, has it too");
        store.migrate().await.expect("migrations run");
    }
}
