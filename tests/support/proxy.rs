//! A TCP proxy between the service and its PostgreSQL, for database faults: it passes bytes, black-holes them
//! (connections stay open and nothing reaches either side, as on a network partition) or cuts every connection.

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
}

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
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                *counted.lock().unwrap() += 1;
                tokio::spawn(relay(client, target, path_rx.clone(), cut_rx.clone(), forwarded.clone()));
            }
        });
        Proxy { addr, path, cut, task, connections, to_server }
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
    client: TcpStream,
    target: SocketAddr,
    mut path: watch::Receiver<Path>,
    mut cut: watch::Receiver<u64>,
    to_server: Arc<AtomicU64>,
) {
    cut.mark_unchanged();
    // A connection made while black-holed never reaches the server, as behind a partition.
    while *path.borrow_and_update() == Path::BlackHole {
        tokio::select! {
            changed = path.changed() => if changed.is_err() { return },
            _ = cut.changed() => return,
        }
    }
    let Ok(server) = TcpStream::connect(target).await else { return };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = pump(client_read, server_write, path.clone(), Some(to_server)) => {}
        _ = pump(server_read, client_write, path, None) => {}
        _ = cut.changed() => {}
    }
}

/// Copies `from` to `to` while the path passes. While it black-holes, nothing is read or written: bytes wait in
/// the sockets' buffers, as they wait in TCP retransmissions during a partition, and flow again when it heals.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut path: watch::Receiver<Path>,
    counted: Option<Arc<AtomicU64>>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if !passing(&mut path).await {
            return;
        }
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !passing(&mut path).await || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
        if let Some(counted) = &counted {
            counted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits while the path black-holes; false when the proxy is gone.
async fn passing(path: &mut watch::Receiver<Path>) -> bool {
    while *path.borrow_and_update() == Path::BlackHole {
        if path.changed().await.is_err() {
            return false;
        }
    }
    true
}
