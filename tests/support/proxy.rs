//! A TCP proxy between the service and its PostgreSQL, for database faults: it passes bytes, black-holes them
//! (connections stay open and nothing reaches either side, as on a network partition) or cuts every connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Pass,
    /// Accepts connections but forwards nothing, either way, until the path passes again.
    BlackHole,
    /// Connections open now pass; new ones are accepted but reach the server only once the path passes again (a
    /// server slow to take new connections, as one starting up).
    HoldNew,
    /// Clients' bytes reach the server (new connections too), the server's answers wait until the path passes
    /// again: a COMMIT that lands and whose answer is lost on the way back.
    HoldReplies,
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    ToServer,
    ToClient,
}

impl Path {
    fn passes(self, way: Way) -> bool {
        match self {
            Path::Pass | Path::HoldNew => true,
            Path::BlackHole => false,
            Path::HoldReplies => way == Way::ToServer,
        }
    }

    fn lets_connections_in(self) -> bool {
        matches!(self, Path::Pass | Path::HoldReplies)
    }
}

pub struct Proxy {
    addr: SocketAddr,
    path: watch::Sender<Path>,
    /// Fired to close every connection open now.
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<Mutex<u64>>,
    /// Reads from clients forwarded to the server: about one per round trip a client makes.
    to_server: Arc<AtomicU64>,
    /// Per open connection, by the local port of its server side (PostgreSQL's `client_port`): what resets it.
    resets: Resets,
}

type Resets = Arc<Mutex<HashMap<u16, tokio::sync::oneshot::Sender<()>>>>;

impl Proxy {
    /// A proxy on a loopback port, to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let (path, path_rx) = watch::channel(Path::Pass);
        let (cut, cut_rx) = watch::channel(0);
        let connections = Arc::new(Mutex::new(0));
        let counted = connections.clone();
        let to_server = Arc::new(AtomicU64::new(0));
        let forwarded = to_server.clone();
        let resets = Resets::default();
        let registered = resets.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                *counted.lock().unwrap() += 1;
                let (path, cut) = (path_rx.clone(), cut_rx.clone());
                tokio::spawn(relay(client, target, path, cut, forwarded.clone(), registered.clone()));
            }
        });
        Proxy { addr, path, cut, task, connections, to_server, resets }
    }

    /// A proxy in front of the PostgreSQL that `url` names, and the same URL through the proxy.
    pub async fn in_front_of(url: &str) -> (Proxy, String) {
        let direct: sqlx::postgres::PgConnectOptions = url.parse().expect("a PostgreSQL URL");
        let target = SocketAddr::new(direct.get_host().parse().expect("an IP address"), direct.get_port());
        let proxy = Proxy::start(target).await;
        let proxied = url.replacen(&format!(":{}/", target.port()), &format!(":{}/", proxy.addr().port()), 1);
        assert_ne!(proxied, url, "the URL names the proxy");
        (proxy, proxied)
    }

    /// Resets the one connection whose server side has local port `server_port` (as PostgreSQL's
    /// `pg_stat_activity.client_port` shows it): its client sees "connection reset by peer", the others nothing.
    pub fn reset(&self, server_port: u16) -> bool {
        self.resets.lock().unwrap().remove(&server_port).is_some_and(|reset| reset.send(()).is_ok())
    }

    /// Reads forwarded from clients to the server so far: a client's round trips (a query, with its parse, bind
    /// and execute, goes out in one write), give or take what TCP splits or joins.
    pub fn writes_to_server(&self) -> u64 {
        self.to_server.load(Ordering::Relaxed)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, path: Path) {
        self.path.send_replace(path);
    }

    /// Closes every connection open now (later ones are not affected).
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        *self.connections.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn relay(
    mut client: TcpStream,
    target: SocketAddr,
    mut path: watch::Receiver<Path>,
    mut cut: watch::Receiver<u64>,
    to_server: Arc<AtomicU64>,
    resets: Resets,
) {
    cut.mark_unchanged();
    // A connection made while black-holed (or held) never reaches the server, as behind a partition.
    while !path.borrow_and_update().lets_connections_in() {
        tokio::select! {
            changed = path.changed() => if changed.is_err() { return },
            _ = cut.changed() => return,
        }
    }
    let Ok(mut server) = TcpStream::connect(target).await else { return };
    let (reset, reset_rx) = tokio::sync::oneshot::channel();
    if let Ok(local) = server.local_addr() {
        resets.lock().unwrap().insert(local.port(), reset);
    }
    // Borrowed halves: dropping them sends nothing, so the client's socket closes as set below.
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let server_ended = tokio::select! {
        _ = pump(client_read, server_write, path.clone(), Way::ToServer, Some(to_server)) => false,
        _ = pump(server_read, client_write, path, Way::ToClient, None) => true,
        _ = cut.changed() => false,
        _ = reset_rx => false,
    };
    // Ended by the server (a FATAL, a shutdown), the session ends for the client as the server ended it: its last
    // bytes, then a FIN. Closed by the proxy, it is reset (RST), as a peer that vanished or a middlebox would.
    if !server_ended {
        let _ = client.set_zero_linger();
    }
}

/// Copies `from` to `to` while the path passes. While it black-holes, nothing is read or written: bytes wait in
/// the sockets' buffers, as they wait in TCP retransmissions during a partition, and flow again when it heals.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut path: watch::Receiver<Path>,
    way: Way,
    counted: Option<Arc<AtomicU64>>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if !passing(&mut path, way).await {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !passing(&mut path, way).await || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
        if let Some(counted) = &counted {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits while the path holds bytes going `way`; false when the proxy is gone.
async fn passing(path: &mut watch::Receiver<Path>, way: Way) -> bool {
    while !path.borrow_and_update().passes(way) {
        if path.changed().await.is_err() {
            return false;
        }
    }
    true
}
