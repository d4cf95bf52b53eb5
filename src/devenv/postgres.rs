//! One private PostgreSQL cluster: find the server binaries, create the cluster, start or reuse it, stop it.
//!
//! Why it works this way:
//! - `initdb` and `pg_ctl` refuse to run as root, and our machines and CI run as root. When we are root, every
//!   server-side command runs as the `postgres` user (`runuser`), on a data directory that user owns.
//! - The server listens on 127.0.0.1 only (plus a Unix socket inside its data directory) with trust
//!   authentication: nothing beyond this machine can reach it, and no password has to be handed around.
//! - A cluster started for a test process must not outlive it, even when the process is killed or a `static`
//!   never drops: a detached shell watchdog stops the cluster once our process is gone.
//! - Nothing here holds a runtime-bound resource (no pool, no background task), so one `LocalPostgres` can be
//!   shared by tests that each run on their own tokio runtime.

use super::DevEnvError;
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The operating-system user that owns and runs the cluster when we are root; also its superuser role.
const CLUSTER_USER: &str = "postgres";
/// Where Debian's `postgresql-NN` packages put the server binaries, one directory per major version.
const DEBIAN_VERSIONS_ROOT: &str = "/usr/lib/postgresql";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const DATABASE_TIMEOUT: Duration = Duration::from_secs(30);
/// A port we picked may be taken by another process before the server binds it; try a few fresh ones.
const FREE_PORT_ATTEMPTS: usize = 3;
/// `sun_path` holds 108 bytes including the terminating NUL; a longer socket path would stop the server.
const MAX_SOCKET_PATH: usize = 107;
/// SQLSTATE `duplicate_database`: someone else created the same database between our check and our CREATE.
const DUPLICATE_DATABASE: &str = "42P04";
const SERVER_LOG: &str = "server.log";

/// How long the cluster lives relative to the process that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Stays up after this process exits (the `dev` command: stopped explicitly or by the next machine start).
    Detached,
    /// Stopped when this process exits, however it exits. Only a cluster this call started gets a watchdog: an
    /// already running cluster that is reused is left as it was started.
    WithThisProcess,
}

/// A running local cluster. Holds only paths and numbers, so it can be shared across tokio runtimes.
#[derive(Debug)]
pub struct LocalPostgres {
    data_dir: PathBuf,
    port: u16,
    tools: ServerTools,
}

/// What the caller gets beyond the public [`Lifetime`]: test clusters trade durability for speed and clean up.
#[derive(Debug, Clone, Copy)]
struct Plan {
    lifetime: Lifetime,
    /// No fsync, and the data directory is deleted when the watchdog stops the cluster.
    throwaway: bool,
}

impl LocalPostgres {
    /// Starts a cluster in `dir` (created, and `initdb`ed if it holds no cluster yet), listening only on
    /// 127.0.0.1:`port` (`0` picks a free port). A cluster already running in `dir` is reused, on its own port.
    /// Returns once the server accepts connections, or fails after 30 s.
    pub async fn start(dir: &Path, port: u16, lifetime: Lifetime) -> Result<LocalPostgres, DevEnvError> {
        Self::start_with(dir, port, Plan { lifetime, throwaway: false }).await
    }

    /// A cluster for one test process: stopped and deleted when the process exits, never fsynced.
    pub(super) async fn start_throwaway(dir: &Path) -> Result<LocalPostgres, DevEnvError> {
        Self::start_with(dir, 0, Plan { lifetime: Lifetime::WithThisProcess, throwaway: true }).await
    }

    async fn start_with(dir: &Path, port: u16, plan: Plan) -> Result<LocalPostgres, DevEnvError> {
        let tools = ServerTools::find()?;
        let data_dir = tools.prepare_data_dir(dir)?;

        if let Some(running_port) = tools.running_port(&data_dir)? {
            let cluster = LocalPostgres { data_dir, port: running_port, tools };
            cluster.wait_until_ready().await?;
            return Ok(cluster);
        }

        if plan.lifetime == Lifetime::WithThisProcess {
            // Before initdb and start, so that dying in the middle of either leaves nothing behind either.
            tools.spawn_watchdog(&data_dir, std::process::id(), plan.throwaway)?;
        }
        if !data_dir.join("PG_VERSION").is_file() {
            tools.initdb(&data_dir).await?;
        }
        let (port, attempts) = tools.start_server(&data_dir, port, plan.throwaway).await?;
        if plan.lifetime == Lifetime::WithThisProcess && attempts > 1 {
            // A failed attempt's short-lived pid file may have told the first watchdog the cluster was stopped.
            tools.spawn_watchdog(&data_dir, std::process::id(), plan.throwaway)?;
        }
        let cluster = LocalPostgres { data_dir, port, tools };
        if let Err(not_ready) = cluster.wait_until_ready().await {
            // Best effort: the readiness error is the one worth reporting.
            let _ = cluster.stop();
            return Err(not_ready);
        }
        Ok(cluster)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (absolute); its server log is `server.log` inside it.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub fn admin_url(&self) -> String {
        self.database_url("postgres")
    }

    pub fn database_url(&self, db: &str) -> String {
        format!("postgres://{CLUSTER_USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` unless it exists, and returns its URL. Opens (and closes) its own connection, so
    /// it works from any tokio runtime. Names are 1 to 63 ASCII letters, digits, `_` or `-`, kept as given.
    pub async fn create_database(&self, name: &str) -> Result<String, DevEnvError> {
        check_database_name(name)?;
        tokio::time::timeout(DATABASE_TIMEOUT, self.create_database_now(name))
            .await
            .map_err(|_| DevEnvError::DatabaseTimeout(DATABASE_TIMEOUT))??;
        Ok(self.database_url(name))
    }

    async fn create_database_now(&self, name: &str) -> Result<(), DevEnvError> {
        let mut conn = PgConnection::connect(&self.admin_url()).await?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            // Identifiers cannot be bound parameters; the name was checked to hold no quote.
            let create = format!("CREATE DATABASE \"{name}\"");
            match sqlx::raw_sql(&create).execute(&mut conn).await {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DUPLICATE_DATABASE) => {}
                Err(e) => return Err(e.into()),
            }
        }
        conn.close().await?;
        Ok(())
    }

    /// Stops the cluster (`pg_ctl stop -m fast`). Stopping a cluster that is not running succeeds.
    pub fn stop(&self) -> Result<(), DevEnvError> {
        let mut stop = self.tools.server_command("pg_ctl");
        stop.args(["stop", "-m", "fast", "-w", "-t", "60", "-s", "-D"]).arg(&self.data_dir);
        match run_checked(stop) {
            Ok(_) => Ok(()),
            // pg_ctl fails when there is no server; that is the state we wanted.
            Err(failure) => match self.tools.running_port(&self.data_dir)? {
                None => Ok(()),
                Some(_) => Err(failure),
            },
        }
    }

    /// Polls `pg_isready` over TCP, the way clients will connect, for at most [`READY_TIMEOUT`].
    async fn wait_until_ready(&self) -> Result<(), DevEnvError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let mut probe = self.tools.client_command("pg_isready");
            probe
                .args(["-q", "-h", "127.0.0.1", "-U", CLUSTER_USER, "-d", "postgres", "-t", "2", "-p"])
                .arg(self.port.to_string());
            if run_async(probe).await?.status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(DevEnvError::NotReady { port: self.port, waited: READY_TIMEOUT });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The server binaries and, when we are root, the user they must run as.
#[derive(Debug, Clone)]
struct ServerTools {
    bindir: PathBuf,
    run_as: Option<&'static str>,
}

impl ServerTools {
    fn find() -> Result<ServerTools, DevEnvError> {
        Ok(ServerTools { bindir: find_bindir()?, run_as: if running_as_root()? { Some(CLUSTER_USER) } else { None } })
    }

    /// A server-side tool (`initdb`, `pg_ctl`), run as the cluster's user, from `/` so that an unreadable
    /// working directory of ours does not bother it.
    fn server_command(&self, tool: &str) -> Command {
        let program = self.bindir.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        command.current_dir("/");
        command
    }

    /// The same as [`Self::server_command`], as a line for `sh -c`.
    fn server_shell_command(&self, tool: &str, args: &[&str]) -> String {
        let mut words: Vec<String> = Vec::new();
        if let Some(user) = self.run_as {
            words.extend(["runuser".into(), "-u".into(), user.into(), "--".into()]);
        }
        words.push(shell_quote(&self.bindir.join(tool).to_string_lossy()));
        words.extend(args.iter().map(|arg| shell_quote(arg)));
        words.join(" ")
    }

    /// Starts a detached shell (its own session, so it outlives us and our process group's signals) that polls
    /// `watched_pid` every second. Once that process is gone, it stops the cluster in `data_dir` with
    /// `-m immediate` and, when `remove_dir`, deletes the directory. Spawned before `initdb` and the start, so the
    /// pause after the death lets an orphaned `pg_ctl start` write its pid file before the stop. If the cluster
    /// is stopped while `watched_pid` lives, the watchdog has nothing left to do and exits.
    /// It runs as us, not as the cluster user, so that it may `kill -0` a root process.
    fn spawn_watchdog(&self, data_dir: &Path, watched_pid: u32, remove_dir: bool) -> Result<(), DevEnvError> {
        let data_dir_text = data_dir.to_string_lossy();
        let pid_file = shell_quote(&data_dir.join("postmaster.pid").to_string_lossy());
        let stop = self.server_shell_command("pg_ctl", &["stop", "-m", "immediate", "-w", "-s", "-D", &data_dir_text]);
        let remove = if remove_dir { format!("rm -rf {}", shell_quote(&data_dir_text)) } else { String::from(":") };
        let script = format!(
            "seen=; \
             while kill -0 {watched_pid} 2>/dev/null; do \
               if [ -f {pid_file} ]; then seen=1; elif [ -n \"$seen\" ]; then exit 0; fi; \
               sleep 1; \
             done; \
             sleep 2; \
             if [ -f {pid_file} ]; then {stop}; fi; \
             {remove}"
        );
        let mut watchdog = Command::new("setsid");
        watchdog
            .args(["-f", "sh", "-c", &script])
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // `setsid -f` returns as soon as the watchdog is forked off, so this wait is short and leaves no zombie.
        run_checked(watchdog).map(|_| ())
    }

    /// A client tool (`pg_isready`): any user may run it.
    fn client_command(&self, tool: &str) -> Command {
        Command::new(self.bindir.join(tool))
    }

    /// Creates `dir` and, when we are root and it holds no cluster yet, hands it to the cluster user. Fails early
    /// and clearly when that user could not reach it (a parent like /root is not traversable).
    fn prepare_data_dir(&self, dir: &Path) -> Result<PathBuf, DevEnvError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| DevEnvError::Io { context: format!("creating {}", dir.display()), source })?;
        let dir = dir
            .canonicalize()
            .map_err(|source| DevEnvError::Io { context: format!("resolving {}", dir.display()), source })?;
        if let Some(user) = self.run_as {
            if !dir.join("PG_VERSION").is_file() {
                let mut chown = Command::new("chown");
                chown.arg(format!("{user}:")).arg(&dir);
                run_checked(chown)?;
            }
            let mut writable = Command::new("runuser");
            writable.args(["-u", user, "--", "test", "-w"]).arg(&dir);
            if !run(writable)?.status.success() {
                return Err(DevEnvError::NotAccessible { dir, user: user.to_string() });
            }
        }
        Ok(dir)
    }

    /// The port of the server running on `data_dir`, or `None` when none runs (or there is no cluster there).
    fn running_port(&self, data_dir: &Path) -> Result<Option<u16>, DevEnvError> {
        let mut status = self.server_command("pg_ctl");
        status.args(["status", "-D"]).arg(data_dir);
        // Exit code 0: running; 3: not running; 4: no usable data directory.
        if !run(status)?.status.success() {
            return Ok(None);
        }
        let pid_file = data_dir.join("postmaster.pid");
        let contents = std::fs::read_to_string(&pid_file)
            .map_err(|source| DevEnvError::Io { context: format!("reading {}", pid_file.display()), source })?;
        port_from_pid_file(&contents).map(Some).map_err(|reason| DevEnvError::PidFile { path: pid_file, reason })
    }

    async fn initdb(&self, data_dir: &Path) -> Result<(), DevEnvError> {
        let mut initdb = self.server_command("initdb");
        initdb.args(["-U", CLUSTER_USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "-D"]).arg(data_dir);
        run_checked_async(initdb).await.map(|_| ())
    }

    /// Starts the server on `port`, or on a free port of our choosing when `port` is 0. Returns the port and how
    /// many attempts it took.
    async fn start_server(&self, data_dir: &Path, port: u16, throwaway: bool) -> Result<(u16, usize), DevEnvError> {
        let attempts = if port == 0 { FREE_PORT_ATTEMPTS } else { 1 };
        let mut last_failure = None;
        for attempt in 1..=attempts {
            let chosen = if port == 0 { free_port()? } else { port };
            match self.pg_ctl_start(data_dir, chosen, throwaway).await {
                Ok(()) => return Ok((chosen, attempt)),
                Err(failure) => last_failure = Some(failure),
            }
        }
        Err(last_failure.expect("at least one start attempt is made"))
    }

    async fn pg_ctl_start(&self, data_dir: &Path, port: u16, throwaway: bool) -> Result<(), DevEnvError> {
        let socket_path = data_dir.join(format!(".s.PGSQL.{port}"));
        let socket_dir = if socket_path.as_os_str().len() <= MAX_SOCKET_PATH {
            data_dir.to_string_lossy().into_owned()
        } else {
            String::new()
        };
        // pg_ctl hands these to the server through `sh -c`, hence the quoting.
        let mut options =
            format!("-c listen_addresses=127.0.0.1 -p {port} -c max_connections=200 -k {}", shell_quote(&socket_dir));
        if throwaway {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = data_dir.join(SERVER_LOG);
        let mut start = self.server_command("pg_ctl");
        start.args(["start", "-w", "-t", "30", "-s", "-o", &options, "-D"]).arg(data_dir).arg("-l").arg(&log);
        run_checked_async(start).await.map(|_| ()).map_err(|failure| match failure {
            DevEnvError::Command { command, status, output } => DevEnvError::Command {
                command,
                status,
                output: format!("{output}\n--- end of {}:\n{}", log.display(), log_tail(&log)),
            },
            other => other,
        })
    }
}

/// `pg_config --bindir` when it points at a server installation, else the newest `/usr/lib/postgresql/*/bin`.
fn find_bindir() -> Result<PathBuf, DevEnvError> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let bindir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        // libpq-dev's pg_config may describe a client-only installation.
        if output.status.success() && has_server_binaries(&bindir) {
            return Ok(bindir);
        }
    }
    newest_versioned_bindir(Path::new(DEBIAN_VERSIONS_ROOT)).ok_or_else(|| DevEnvError::NoBinaries {
        searched: format!("`pg_config --bindir`, {DEBIAN_VERSIONS_ROOT}/*/bin"),
    })
}

fn has_server_binaries(bindir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres", "pg_isready"].iter().all(|tool| bindir.join(tool).is_file())
}

/// The `bin` directory of the highest version (`15` > `9.6`) under `root` that holds the server binaries.
fn newest_versioned_bindir(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let version: Vec<u32> =
                entry.file_name().to_str()?.split('.').map(|part| part.parse().ok()).collect::<Option<_>>()?;
            let bindir = entry.path().join("bin");
            has_server_binaries(&bindir).then_some((version, bindir))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bindir)| bindir)
}

fn running_as_root() -> Result<bool, DevEnvError> {
    let mut id = Command::new("id");
    id.arg("-u");
    let output = run_checked(id)?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// The port is the fourth line of `postmaster.pid` (pid, data directory, start time, port, ...).
fn port_from_pid_file(contents: &str) -> Result<u16, String> {
    let line = contents.lines().nth(3).ok_or_else(|| "it has fewer than 4 lines".to_string())?;
    line.trim().parse().map_err(|_| format!("line 4 is {line:?}, not a port"))
}

fn check_database_name(name: &str) -> Result<(), DevEnvError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if (1..=63).contains(&name.len()) && name.chars().all(allowed) {
        Ok(())
    } else {
        Err(DevEnvError::InvalidDatabaseName(name.to_string()))
    }
}

/// Asks the kernel for a free loopback port. The port is released before the server binds it, hence the retries
/// in [`ServerTools::start_server`].
fn free_port() -> Result<u16, DevEnvError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| DevEnvError::Io { context: "finding a free loopback port".into(), source })
}

/// `s` as one word for `sh`, whatever it contains.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn log_tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
        Err(e) => format!("(unreadable: {e})"),
    }
}

fn run(mut command: Command) -> Result<Output, DevEnvError> {
    command.output().map_err(|source| DevEnvError::Io { context: format!("running {command:?}"), source })
}

async fn run_async(command: Command) -> Result<Output, DevEnvError> {
    let description = format!("{command:?}");
    tokio::process::Command::from(command)
        .output()
        .await
        .map_err(|source| DevEnvError::Io { context: format!("running {description}"), source })
}

fn run_checked(command: Command) -> Result<Output, DevEnvError> {
    let description = format!("{command:?}");
    check_success(description, run(command)?)
}

async fn run_checked_async(command: Command) -> Result<Output, DevEnvError> {
    let description = format!("{command:?}");
    check_success(description, run_async(command).await?)
}

fn check_success(command: String, output: Output) -> Result<Output, DevEnvError> {
    if output.status.success() {
        return Ok(output);
    }
    Err(DevEnvError::Command {
        command,
        status: output.status.to_string(),
        output: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
            .trim()
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devenv::{test_cluster, unique_db_name};

    /// A directory under the temp dir that no other test uses.
    fn fresh_dir(label: &str) -> PathBuf {
        std::env::temp_dir().join(format!("modelcopy-devenv-{label}-{}", uuid::Uuid::new_v4().simple()))
    }

    fn accepts_tcp(port: u16) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    async fn select_one(url: &str) -> (i32, String) {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        let row: (i32, String) =
            sqlx::query_as("SELECT 1, current_database()::text").fetch_one(&mut conn).await.expect("SELECT 1");
        conn.close().await.expect("close");
        row
    }

    #[tokio::test]
    async fn test_cluster_gives_distinct_usable_databases() {
        let cluster = test_cluster().await;
        let (a, b) = (unique_db_name("devenv_a_"), unique_db_name("devenv_b_"));
        let url_a = cluster.create_database(&a).await.expect("create a");
        let url_b = cluster.create_database(&b).await.expect("create b");
        assert_ne!(url_a, url_b);
        assert_eq!(url_a, cluster.database_url(&a));

        assert_eq!(select_one(&url_a).await, (1, a.clone()));
        assert_eq!(select_one(&url_b).await, (1, b.clone()));

        // A table made in one database is not visible in the other.
        let mut conn_a = PgConnection::connect(&url_a).await.expect("connect a");
        sqlx::raw_sql("CREATE TABLE only_in_a (id int)").execute(&mut conn_a).await.expect("create table");
        let mut conn_b = PgConnection::connect(&url_b).await.expect("connect b");
        let visible: bool = sqlx::query_scalar("SELECT to_regclass('only_in_a') IS NOT NULL")
            .fetch_one(&mut conn_b)
            .await
            .expect("lookup");
        assert!(!visible, "a table of database {a} is visible in {b}");
    }

    #[tokio::test]
    async fn test_cluster_is_one_cluster_per_process() {
        let first = test_cluster().await;
        let second = test_cluster().await;
        assert!(std::ptr::eq(first, second));
        assert_eq!(first.admin_url(), format!("postgres://postgres@127.0.0.1:{}/postgres", first.port()));
        assert!(accepts_tcp(first.port()));
    }

    #[tokio::test]
    async fn create_database_twice_keeps_the_first() {
        let cluster = test_cluster().await;
        let name = unique_db_name("devenv_twice_");
        let url = cluster.create_database(&name).await.expect("first create");
        let mut conn = PgConnection::connect(&url).await.expect("connect");
        sqlx::raw_sql("CREATE TABLE survives (id int)").execute(&mut conn).await.expect("create table");
        conn.close().await.expect("close");

        assert_eq!(cluster.create_database(&name).await.expect("second create"), url);
        let mut conn = PgConnection::connect(&url).await.expect("reconnect");
        let kept: bool = sqlx::query_scalar("SELECT to_regclass('survives') IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .expect("lookup");
        assert!(kept, "the second create_database replaced the database");
    }

    #[tokio::test]
    async fn create_database_rejects_names_that_need_quoting() {
        let cluster = test_cluster().await;
        for bad in ["", "a\"b", "a b", "semi;colon", &"x".repeat(64)] {
            assert!(
                matches!(cluster.create_database(bad).await, Err(DevEnvError::InvalidDatabaseName(_))),
                "{bad:?} was accepted"
            );
        }
    }

    #[tokio::test]
    async fn start_twice_reuses_the_running_cluster_and_stop_is_idempotent() {
        let dir = fresh_dir("reuse");
        let requested = free_port().expect("free port");
        let first = LocalPostgres::start(&dir, requested, Lifetime::WithThisProcess).await.expect("first start");
        assert_eq!(first.port(), requested);
        assert!(dir.join("PG_VERSION").is_file(), "initdb did not run in {}", dir.display());

        // Asking for port 0 must not start a second server: the running one is reused, on its own port.
        let second = LocalPostgres::start(&dir, 0, Lifetime::WithThisProcess).await.expect("second start");
        assert_eq!(second.port(), first.port());
        assert_eq!(second.data_dir(), first.data_dir());
        assert_eq!(select_one(&second.admin_url()).await.0, 1);

        first.stop().expect("stop");
        assert!(!accepts_tcp(first.port()), "still listening after stop");
        assert_eq!(first.tools.running_port(first.data_dir()).expect("status"), None);
        second.stop().expect("stopping a stopped cluster");

        // The cluster survives a stop: starting again reuses its data and works.
        let third = LocalPostgres::start(&dir, 0, Lifetime::WithThisProcess).await.expect("restart");
        assert_eq!(select_one(&third.admin_url()).await.0, 1);
        third.stop().expect("stop again");
        std::fs::remove_dir_all(&dir).expect("remove data dir");
    }

    #[tokio::test]
    async fn watchdog_stops_and_removes_the_cluster_when_the_watched_process_dies() {
        let dir = fresh_dir("watchdog");
        let cluster = LocalPostgres::start(&dir, 0, Lifetime::WithThisProcess).await.expect("start");
        let mut stand_in = Command::new("sleep").arg("60").spawn().expect("spawn sleep");
        cluster.tools.spawn_watchdog(cluster.data_dir(), stand_in.id(), true).expect("watchdog");

        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(accepts_tcp(cluster.port()), "stopped while the watched process still ran");

        stand_in.kill().expect("kill");
        stand_in.wait().expect("reap"); // a zombie would still answer `kill -0`
        let deadline = Instant::now() + Duration::from_secs(20);
        while (dir.exists() || accepts_tcp(cluster.port())) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!accepts_tcp(cluster.port()), "cluster still up after the watched process died");
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }

    #[tokio::test]
    async fn start_explains_a_directory_the_cluster_user_cannot_reach() {
        if !running_as_root().expect("id -u") {
            return; // Only root hands the directory to another user.
        }
        let private = fresh_dir("private");
        std::fs::create_dir_all(&private).expect("mkdir");
        std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700)).expect("chmod");
        let outcome = LocalPostgres::start(&private.join("cluster"), 0, Lifetime::WithThisProcess).await;
        std::fs::remove_dir_all(&private).expect("cleanup");
        assert!(
            matches!(outcome, Err(DevEnvError::NotAccessible { ref user, .. }) if user == CLUSTER_USER),
            "{outcome:?}"
        );
    }

    #[test]
    fn newest_versioned_bindir_prefers_the_highest_version_with_binaries() {
        let root = fresh_dir("versions");
        for version in ["9.6", "13", "15", "16"] {
            let bin = root.join(version).join("bin");
            std::fs::create_dir_all(&bin).expect("mkdir");
            // 16 lacks the server binaries (a client-only install), so 15 must win, over 9.6 too, which sorts
            // last as text.
            if version != "16" {
                for tool in ["initdb", "pg_ctl", "postgres", "pg_isready"] {
                    std::fs::write(bin.join(tool), "").expect("touch");
                }
            }
        }
        std::fs::create_dir_all(root.join("not-a-version/bin")).expect("mkdir");
        assert_eq!(newest_versioned_bindir(&root), Some(root.join("15").join("bin")));
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn finds_this_machines_server_binaries() {
        let bindir = find_bindir().expect("PostgreSQL server binaries");
        assert!(bindir.join("initdb").is_file());
    }

    #[test]
    fn port_is_the_fourth_line_of_the_pid_file() {
        let pid_file = "4242\n/tmp/data\n1700000000\n54321\n/tmp/data\n127.0.0.1\n  1234   5678\nready   \n";
        assert_eq!(port_from_pid_file(pid_file), Ok(54321));
        assert!(port_from_pid_file("4242\n/tmp/data\n").is_err());
        assert!(port_from_pid_file("4242\n/tmp/data\n1700000000\nnot-a-port\n").is_err());
    }

    #[test]
    fn shell_quote_survives_quotes_and_spaces() {
        let tricky = "it's a $dir with spaces";
        let output =
            Command::new("sh").args(["-c", &format!("printf %s {}", shell_quote(tricky))]).output().expect("sh");
        assert_eq!(String::from_utf8_lossy(&output.stdout), tricky);
    }
}
