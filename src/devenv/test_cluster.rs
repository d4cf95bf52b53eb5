//! The PostgreSQL cluster of a test process, and database names that never collide.
//!
//! Starting a cluster takes seconds, creating a database milliseconds: so each test process starts one cluster,
//! on first use, and every test makes its own database in it. `#[tokio::test]` gives each test its own runtime,
//! which is why the shared value is a [`LocalPostgres`] (paths and a port) and never a pool.

use super::postgres::LocalPostgres;
use tokio::sync::OnceCell;
use uuid::Uuid;

static CLUSTER: OnceCell<LocalPostgres> = OnceCell::const_new();

/// PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
const MAX_NAME_LEN: usize = 63;
/// Length of a simple (hyphenless) UUID.
const UUID_LEN: usize = 32;

/// This process's cluster, started on first call in a fresh directory under the temp dir. It is stopped and its
/// directory deleted when the process exits, even if killed. Panics if it cannot start: tests cannot run anyway.
pub async fn test_cluster() -> &'static LocalPostgres {
    CLUSTER
        .get_or_init(|| async {
            let dir = std::env::temp_dir().join(format!("modelcopy-test-pg-{}", Uuid::new_v4().simple()));
            LocalPostgres::start_throwaway(&dir)
                .await
                .unwrap_or_else(|e| panic!("starting the test PostgreSQL cluster in {}: {e}", dir.display()))
        })
        .await
}

/// `prefix` (lowercased, anything but ASCII letters, digits and `_` made `_`, cut to fit) followed by a new
/// simple UUID: a valid, unquoted-safe database name of at most 63 bytes.
pub fn unique_db_name(prefix: &str) -> String {
    let prefix: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' })
        .take(MAX_NAME_LEN - UUID_LEN)
        .collect();
    format!("{prefix}{}", Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_db_names_differ() {
        assert_ne!(unique_db_name("t_"), unique_db_name("t_"));
    }

    #[test]
    fn unique_db_name_keeps_a_short_prefix_and_adds_a_lowercase_uuid() {
        let name = unique_db_name("Store_Test_");
        let (prefix, uuid) = name.split_at("store_test_".len());
        assert_eq!(prefix, "store_test_");
        assert_eq!(uuid.len(), UUID_LEN);
        assert!(uuid.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{uuid}");
    }

    #[test]
    fn unique_db_name_fits_postgres_identifier_limit() {
        let name = unique_db_name(&"long-prefix".repeat(20));
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert!(name.starts_with("long_prefixlong_prefix"));
    }

    #[test]
    fn unique_db_name_replaces_characters_that_would_need_quoting() {
        let name = unique_db_name("a b\"c;é-");
        assert!(name.starts_with("a_b_c___"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{name}");
    }
}
