//! A real PostgreSQL on this machine, for tests and for the `dev` command.
//!
//! Mocks of the database would hide exactly the bugs we care about (SQL, constraints, locking), so the integration
//! tests and `modelcopy dev` run against a real PostgreSQL server started from the distribution's binaries. It is
//! a private cluster: its own data directory, a loopback port and trust authentication, never the machine's main
//! cluster. [`LocalPostgres`] starts or reuses such a cluster; [`test_cluster`] gives every test process exactly
//! one, which never outlives that process, and a fresh database per test through
//! [`LocalPostgres::create_database`] and [`unique_db_name`].

pub mod embedded;
mod postgres;
mod test_cluster;

pub use postgres::{Lifetime, LocalPostgres};
pub use test_cluster::{test_cluster, unique_db_name};

use std::path::PathBuf;
use std::time::Duration;

/// Why a local cluster could not be found, started, stopped or used.
#[derive(thiserror::Error, Debug)]
pub enum DevEnvError {
    #[error("no PostgreSQL server binaries found (looked at {searched}); install Debian's `postgresql` package")]
    NoBinaries { searched: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}): {output}")]
    Command { command: String, status: String, output: String },

    #[error(
        "{dir} is not writable by the `{user}` user; every parent directory must be traversable by that user \
         (/tmp is, /root is not)"
    )]
    NotAccessible { dir: PathBuf, user: String },

    #[error("{path} is not a PostgreSQL pid file we understand: {reason}")]
    PidFile { path: PathBuf, reason: String },

    #[error("the cluster on port {port} did not accept connections within {waited:?}")]
    NotReady { port: u16, waited: Duration },

    #[error("invalid database name {0:?}: use 1 to 63 ASCII letters, digits, `_` or `-`")]
    InvalidDatabaseName(String),

    #[error("database operation timed out after {0:?}")]
    DatabaseTimeout(Duration),

    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
