//! The audit log cannot be changed quietly: the database refuses changes, and `audit verify` names the first row
//! that a superuser changed anyway. Also: rows chain in order under concurrent calls, the chain continues the rows
//! written before it existed, and a copy links to the audit row of the request that created it.

use std::process::Command;

use modelcopy::audit::verify::{Break, Verdict};
use modelcopy::audit::{self, AuditRecord, Decision};
use modelcopy::devenv::{test_cluster, unique_db_name};
use modelcopy::proto;
use modelcopy::store::{self, Store};
use sqlx::{Connection, PgConnection, PgPool};

use crate::helpers::TestApp;

async fn verify(pool: &PgPool) -> Verdict {
    audit::verify(&Store::from_pool(pool.clone())).await.expect("the chain can be read")
}

/// `n` calls (GetCopy of copies that do not exist), so the log has rows 1..=n.
async fn some_calls(app: &TestApp, n: usize) {
    let mut client = app.client("alice").await;
    for _ in 0..n {
        let missing = proto::GetCopyRequest { copy_id: uuid::Uuid::new_v4().to_string() };
        client.get_copy(missing).await.unwrap_err();
    }
}

/// A session of the database superuser with ordinary triggers off: what someone who owns the database could do.
async fn tampering_session(app: &TestApp) -> PgConnection {
    let mut session = PgConnection::connect(&app.database_url).await.unwrap();
    sqlx::query("SET session_replication_role = replica").execute(&mut session).await.unwrap();
    session
}

/// Runs `modelcopy audit verify` against the app's database: (exit code, standard output).
fn verify_command(app: &TestApp) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_modelcopy"))
        .args(["audit", "verify"])
        .env_remove("MODELCOPY_CONFIG")
        .env("MODELCOPY_DATABASE_URL", &app.database_url)
        .env("RUST_LOG", "error")
        .output()
        .expect("modelcopy runs");
    (output.status.code().expect("exited"), String::from_utf8(output.stdout).unwrap())
}

fn intact_rows(verdict: &Verdict) -> u64 {
    match verdict {
        Verdict::Intact { rows, .. } => *rows,
        broken => panic!("expected an intact chain: {broken}"),
    }
}

#[tokio::test]
async fn the_service_role_can_neither_update_nor_delete_audit_rows() {
    let app = TestApp::spawn_without_dispatch().await;
    let mut client = app.client("alice").await;
    TestApp::submit(&mut client, app.copy_request("kept")).await;
    some_calls(&app, 2).await;

    // A pool with the service's role on its database (in these tests a superuser: triggers stop it all the same).
    for statement in [
        "UPDATE audit_log SET reason = 'nothing happened' WHERE id = 1",
        "UPDATE audit_log SET reason = reason WHERE FALSE",
        "DELETE FROM audit_log WHERE id = 2",
        "TRUNCATE audit_log CASCADE",
    ] {
        let error = sqlx::query(statement).execute(&app.pool).await.expect_err(statement);
        assert!(error.to_string().contains("audit_log is append-only"), "{statement}: {error}");
    }
    assert_eq!(intact_rows(&verify(&app.pool).await), 3);
    assert_eq!(app.job_count().await, 1, "the cascade was refused with the truncate");
    app.stop().await;
}

#[tokio::test]
async fn a_row_altered_by_a_superuser_is_named_by_verify() {
    let app = TestApp::spawn_without_dispatch().await;
    some_calls(&app, 5).await;
    let (code, out) = verify_command(&app);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("audit chain intact: 5 rows"), "{out}");

    let mut session = tampering_session(&app).await;
    let changed = sqlx::query("UPDATE audit_log SET reason = 'nothing happened' WHERE id = 3")
        .execute(&mut session)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);

    assert_eq!(verify(&app.pool).await, Verdict::Broken { at: 3, problem: Break::ContentAltered, rows_before: 2 });
    let (code, out) = verify_command(&app);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("audit chain broken at row 3: content altered"), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn a_rewritten_hash_breaks_the_next_link() {
    let app = TestApp::spawn_without_dispatch().await;
    some_calls(&app, 4).await;
    let mut session = tampering_session(&app).await;
    // Changed and re-hashed with the real function: row 2 is consistent in itself, but row 3 linked to the old one.
    let mut row = store::audit::chain_batch(&Store::from_pool(app.pool.clone()), 1, 1).await.unwrap().remove(0);
    row.content.decision = "DENIED".into();
    let hash = audit::chain::hash(&row.content);
    sqlx::query("UPDATE audit_log SET decision = 'DENIED', hash = $1 WHERE id = 2")
        .bind(hash.as_slice())
        .execute(&mut session)
        .await
        .unwrap();
    assert_eq!(
        verify(&app.pool).await,
        Verdict::Broken { at: 3, problem: Break::LinkBroken { previous: Some(2) }, rows_before: 2 }
    );
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_row_is_named_as_a_gap() {
    let app = TestApp::spawn_without_dispatch().await;
    some_calls(&app, 5).await;
    let mut session = tampering_session(&app).await;
    sqlx::query("DELETE FROM audit_log WHERE id = 3").execute(&mut session).await.unwrap();

    let verdict = verify(&app.pool).await;
    assert_eq!(verdict, Verdict::Broken { at: 4, problem: Break::MissingRows { first: 3, last: 3 }, rows_before: 2 });
    let (code, out) = verify_command(&app);
    assert_eq!(code, 1);
    assert!(out.contains("row 3 is gone (id gap)"), "{out}");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_calls_still_chain_in_order() {
    let app = TestApp::spawn_without_dispatch().await;
    let client = app.client("alice").await;
    // Copies (their record is written inside the copy's transaction) and reads (written by the audit layer), at once.
    let calls = (0..50).map(|i| {
        let mut client = client.clone();
        let request = app.copy_request(&format!("concurrent-{i}"));
        async move {
            if i % 2 == 0 {
                client.copy_model_version(request).await.map(|_| ()).expect("copy accepted");
            } else {
                client.list_copies(proto::ListCopiesRequest::default()).await.map(|_| ()).expect("listed");
            }
        }
    });
    futures::future::join_all(calls).await;

    assert_eq!(intact_rows(&verify(&app.pool).await), 50);
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM audit_log ORDER BY occurred_at, id").fetch_all(&app.pool).await.unwrap();
    assert_eq!(ids, (1..=50).collect::<Vec<i64>>(), "time follows the chain");
    let linked: i64 = sqlx::query_scalar("SELECT count(*) FROM copy_jobs WHERE audit_id IS NOT NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(linked, 25);
    app.stop().await;
}

#[tokio::test]
async fn a_copy_links_to_the_audit_row_of_the_request_that_created_it() {
    let app = TestApp::spawn().await;
    let mut client = app.client("alice").await;
    some_calls(&app, 1).await;
    let request = proto::CopyModelVersionRequest { idempotency_token: "link-1".into(), ..app.copy_request("linked") };
    let copy = TestApp::submit(&mut client, request.clone()).await;
    assert_eq!(copy.audit_event_id, 2);
    let ended = app.wait_until_ended(&mut client, &copy.copy_id).await;
    assert_eq!(ended.audit_event_id, 2);

    // One request, end to end: its decision, then every state its copy went through.
    let trail: Vec<(i64, String, String, String)> = sqlx::query_as(
        "SELECT a.id, a.principal, a.decision, e.to_state
           FROM copy_events AS e
           JOIN copy_jobs AS j ON j.id = e.copy_id
           JOIN audit_log AS a ON a.id = j.audit_id
          WHERE j.id = $1::uuid
          ORDER BY e.seq",
    )
    .bind(&copy.copy_id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let states: Vec<&str> = trail.iter().map(|t| t.3.as_str()).collect();
    assert!(trail.iter().all(|t| (t.0, t.1.as_str(), t.2.as_str()) == (2, "alice", "ALLOWED")), "{trail:?}");
    assert_eq!(states.first(), Some(&"QUEUED"));
    assert_eq!(states.last(), Some(&"SUCCEEDED"));

    // A retry is audited on its own row, and the copy still names the request that created it.
    let replay = client.copy_model_version(request).await.unwrap().into_inner();
    assert!(replay.replayed);
    assert_eq!(replay.copy.unwrap().audit_event_id, 2);
    let replay_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE copy_id = $1::uuid AND rpc = 'CopyModelVersion' AND id <> 2",
    )
    .bind(&copy.copy_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(replay_rows, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_deciding_policies_are_recorded_and_chained() {
    let app = TestApp::spawn_without_dispatch().await;
    some_calls(&app, 1).await;
    let record = AuditRecord {
        principal: Some("bob".into()),
        authn: "dev-metadata".into(),
        peer: None,
        rpc: "CopyModelVersion".into(),
        decision: Decision::Denied,
        reason: Some("forbidden by team-b-routes".into()),
        grpc_code: tonic::Code::PermissionDenied,
        request: None,
        request_digest: None,
        copy_id: None,
        policy_ids: vec!["team-b-routes".into(), "default-deny".into()],
        call: None,
    };
    let id = store::audit::append(&Store::from_pool(app.pool.clone()), &record).await.unwrap();
    assert_eq!(id, 2);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT policy_ids FROM audit_log WHERE id = 2").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, ["team-b-routes", "default-deny"]);
    assert_eq!(intact_rows(&verify(&app.pool).await), 2);

    // The policy ids are in the hash: changing them is caught.
    let mut session = tampering_session(&app).await;
    sqlx::query("UPDATE audit_log SET policy_ids = '{team-b-routes}' WHERE id = 2")
        .execute(&mut session)
        .await
        .unwrap();
    assert!(matches!(verify(&app.pool).await, Verdict::Broken { at: 2, problem: Break::ContentAltered, .. }));
    app.stop().await;
}

/// The migration chains the rows written before it with SQL; verification recomputes them in Rust. Both must
/// agree on every kind of value (NULLs, JSON, non-ASCII text, bytes, UUIDs), or old logs would read as tampered.
#[tokio::test]
async fn rows_written_before_the_chain_are_chained_by_the_migration_as_verify_computes() {
    let url = test_cluster().await.create_database(&unique_db_name("chain_backfill")).await.unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    let migration =
        |name: &str| std::fs::read_to_string(format!("{}/migrations/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    for name in ["20261123000001_copy_jobs.sql", "20261123000002_dispatch_per_account.sql"] {
        sqlx::raw_sql(&migration(name)).execute(&pool).await.unwrap();
    }
    let copy_id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO copy_jobs (id, principal, request_digest, source_project_arn, source_project_version_arn,
                                destination_project_arn, version_name, s3_bucket, source_account, destination_account,
                                region, state)
         VALUES ($1, 'alice', '\\x01', 'sp', 'sv', 'dp', 'v', 'b', '111111111111', '222222222222', 'us-east-1', 'QUEUED')",
    )
    .bind(copy_id)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        r#"INSERT INTO audit_log (principal, authn, peer, rpc, decision, reason, grpc_code, request, request_digest, copy_id)
           VALUES (NULL, 'none', '127.0.0.1:1', 'CopyModelVersion', 'DENIED', 'no credentials', 'Unauthenticated',
                   NULL, NULL, NULL),
                  ('alice', 'dev-metadata', NULL, 'CopyModelVersion', 'ALLOWED', 'allow-all; queued', 'Ok',
                   '{"version_name": "v", "tags": {"zz": "1", "a": "é ✓"}, "tag_count": 2, "n": 1.5}', '\x0102ff', $1),
                  ('bob', 'dev-metadata', '', 'GetCopy', 'ALLOWED', '', 'Ok', '{"copy_id": "x\"y"}', '\x', $1)"#,
    )
    .bind(copy_id)
    .execute(&pool)
    .await
    .unwrap();

    sqlx::raw_sql(&migration("20261123000003_audit_chain.sql")).execute(&pool).await.unwrap();

    assert_eq!(intact_rows(&verify(&pool).await), 3);
    let audit_id: Option<i64> = sqlx::query_scalar("SELECT audit_id FROM copy_jobs").fetch_one(&pool).await.unwrap();
    assert_eq!(audit_id, Some(2), "the old copy names the request that created it");
    // The migrations after the chain's, as an upgrade applies them all.
    let mut later: Vec<String> = std::fs::read_dir(format!("{}/migrations", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.as_str() > "20261123000003_audit_chain.sql")
        .collect();
    later.sort();
    for name in &later {
        sqlx::raw_sql(&migration(name)).execute(&pool).await.unwrap();
    }
    // New rows continue the old chain.
    let record = AuditRecord {
        principal: Some("carol".into()),
        authn: "dev-metadata".into(),
        peer: None,
        rpc: "ListCopies".into(),
        decision: Decision::Allowed,
        reason: None,
        grpc_code: tonic::Code::Ok,
        request: Some(serde_json::json!({"filter": null, "page_size": 0})),
        request_digest: None,
        copy_id: None,
        policy_ids: vec![],
        call: None,
    };
    assert_eq!(store::audit::append(&Store::from_pool(pool.clone()), &record).await.unwrap(), 4);
    assert_eq!(intact_rows(&verify(&pool).await), 4);
    pool.close().await;
}
