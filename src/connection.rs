//! The API port's connections, as HTTP/2 gets them.
//!
//! Why a wrapper: h2 writes a DATA frame of 256 bytes or more as a separate buffer of its own when the connection
//! says it can write vectored (a TCP socket does), and then writes it out before it encodes the next frame. A watch
//! change is one such frame for each of thousands of streams: 10,000 streams over 100 connections made about 9,800
//! `writev` calls per change (`perf stat` over the watch fan-out benchmark), each waking the client for one message.
//! A connection that says it cannot write vectored has h2 copy frames of up to 1 KiB into its 16 KiB write buffer
//! instead, and the frames of the streams that sent meanwhile go out in one write.
//!
//! With TLS the wrapper must sit outside the TLS stream, where HTTP/2 writes: tonic's own `tls_config` wraps the
//! connection after it is accepted, so h2 would see a stream that writes vectored, and send each frame in a TLS
//! record and a system call of its own. The service therefore accepts TLS itself ([`tls`]).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;
use tracing::debug;

/// A connection whose writes HTTP/2 gathers in its own buffer.
#[derive(Debug)]
pub struct Gathered<T>(pub T);

impl<T: AsyncRead + Unpin> AsyncRead for Gathered<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Gathered<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    /// The point of the wrapper (see the module's comment).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<T: Connected> Connected for Gathered<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.connect_info()
    }
}

/// The TLS connections of `incoming`, handshaken with `acceptor` (each within `timeout`, several at once, so that a
/// slow client holds up nobody), gathered. A failed or late handshake drops its connection, as tonic's does. An
/// error accepting a connection is handed on, so that the server treats it as it does without TLS (tonic goes on
/// after a transient one and stops on any other, instead of accepting again at once, which would spin on, say,
/// too many open files). The accepting stops when the stream given back is dropped (the server stopped).
pub fn tls<I>(
    incoming: I,
    acceptor: TlsAcceptor,
    timeout: Duration,
) -> impl Stream<Item = io::Result<Gathered<TlsStream<TcpStream>>>>
where
    I: Stream<Item = io::Result<TcpStream>> + Send + 'static,
{
    let (ready, handed) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut incoming = std::pin::pin!(incoming);
        let mut handshakes = JoinSet::new();
        loop {
            tokio::select! {
                accepted = incoming.next() => match accepted {
                    Some(Ok(tcp)) => {
                        let acceptor = acceptor.clone();
                        handshakes.spawn(tokio::time::timeout(timeout, async move { acceptor.accept(tcp).await }));
                    }
                    Some(Err(err)) => {
                        if ready.send(Err(err)).await.is_err() {
                            return;
                        }
                    }
                    None => return,
                },
                Some(done) = handshakes.join_next() => match done {
                    Ok(Ok(Ok(stream))) => {
                        if ready.send(Ok(Gathered(stream))).await.is_err() {
                            return;
                        }
                    }
                    Ok(Ok(Err(err))) => debug!(%err, "TLS handshake failed"),
                    Ok(Err(_)) => debug!(?timeout, "TLS handshake not finished in time"),
                    Err(err) => debug!(%err, "TLS handshake task ended"),
                },
                _ = ready.closed() => return,
            }
        }
    });
    ReceiverStream::new(handed)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
    use tokio_rustls::TlsConnector;
    use tonic::transport::server::TcpIncoming;

    use super::*;

    /// A TLS acceptor for `localhost` with a self-signed certificate, and a connector that trusts it.
    fn pair() -> (TlsAcceptor, TlsConnector) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let der = cert.der().clone();
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let server =
            ServerConfig::builder().with_no_client_auth().with_single_cert(vec![der.clone()], private).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(der).unwrap();
        let client = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        (TlsAcceptor::from(Arc::new(server)), TlsConnector::from(Arc::new(client)))
    }

    async fn listening() -> (SocketAddr, TcpIncoming) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        (listener.local_addr().unwrap(), TcpIncoming::from(listener))
    }

    #[tokio::test]
    async fn a_client_stalled_in_its_handshake_holds_up_nobody_and_is_dropped_at_the_timeout() {
        let (acceptor, connector) = pair();
        let (addr, incoming) = listening().await;
        let mut accepted = std::pin::pin!(tls(incoming, acceptor, Duration::from_millis(500)));

        // Connects and says nothing.
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        let client = tokio::spawn(async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
            tls.write_all(b"ping").await.unwrap();
            tls
        });
        let mut server_side = tokio::time::timeout(Duration::from_millis(400), accepted.next())
            .await
            .expect("the second client's connection, before the first one's timeout")
            .unwrap()
            .unwrap();
        // What HTTP/2 will write to gathers its frames, and still tells the handlers about the TLS session.
        assert!(!server_side.is_write_vectored());
        let info: tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo> =
            server_side.connect_info();
        assert!(info.peer_certs().is_none(), "this client sent no certificate");
        let mut ping = [0; 4];
        server_side.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping, b"ping");
        drop(client.await.unwrap());

        // The stalled one is closed once its handshake is late.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    }

    #[tokio::test]
    async fn an_error_accepting_a_connection_is_handed_to_the_server() {
        let (acceptor, _) = pair();
        let incoming = futures::stream::iter([Err(io::Error::other("too many open files"))]);
        let mut accepted = std::pin::pin!(tls(incoming, acceptor, Duration::from_secs(1)));
        let handed = accepted.next().await.expect("the error").expect_err("an error");
        assert_eq!(handed.to_string(), "too many open files");
        assert!(accepted.next().await.is_none(), "the incoming stream ended, and so does this one");
    }

    #[tokio::test]
    async fn accepting_stops_when_the_server_drops_the_stream() {
        let (acceptor, _) = pair();
        let (addr, incoming) = listening().await;
        let accepted = tls(incoming, acceptor, Duration::from_secs(1));
        drop(accepted);
        // The listener goes with the accepting task.
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "the listener is still open");
    }
}
