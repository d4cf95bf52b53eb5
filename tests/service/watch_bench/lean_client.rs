//! A lean watching client (`MODELCOPY_BENCH_CLIENT=h2`): gRPC server streams read straight off HTTP/2 (the `h2`
//! crate, under tonic and hyper), 100 streams a connection, all on one thread, and of each message only what the
//! benchmark measures.
//!
//! Why: the client shares the machine's two cores with the server it measures. With a tokio task per stream and
//! tonic's decoding, the client used 3–4 µs of CPU per message received, as much as the server spent to send it,
//! and that time was the server's delay too. This client does per message what an HTTP/2 library does (framing,
//! flow control, a stream's buffer and waker) and gRPC's 5-byte prefix: 2.2 µs. The default client
//! ([`super::wire_client`]) goes lower still; this one stays to show what a general HTTP/2 client costs.

use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};
use prost::Message;

/// An open gRPC response stream.
pub struct Stream(h2::RecvStream);

/// Opens `count` calls of `path` with `request` on one new HTTP/2 connection to `addr`, each with `metadata`;
/// returns once every call has its response headers (a refused call panics: the benchmark is wrong).
pub async fn open(
    addr: SocketAddr,
    path: &str,
    request: &impl Message,
    metadata: &[(&'static str, &str)],
    count: usize,
) -> Vec<Stream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("the server accepts");
    tcp.set_nodelay(true).unwrap();
    // Windows as large as tonic's client asks for (hyper's defaults), so that flow control does not pace the
    // streams differently from the tonic client.
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(2 * 1024 * 1024)
        .initial_connection_window_size(5 * 1024 * 1024)
        .handshake::<_, Bytes>(tcp)
        .await
        .expect("an HTTP/2 connection");
    tokio::spawn(connection);
    let mut message = BytesMut::with_capacity(5 + request.encoded_len());
    message.extend_from_slice(&[0]);
    message.extend_from_slice(&(request.encoded_len() as u32).to_be_bytes());
    request.encode(&mut message).unwrap();
    let message = message.freeze();
    let mut responses = Vec::with_capacity(count);
    for _ in 0..count {
        let mut client = client.clone().ready().await.expect("room for a stream");
        let mut call = http::Request::post(format!("http://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in metadata {
            call = call.header(*name, *value);
        }
        let (response, mut body) = client.send_request(call.body(()).unwrap(), false).expect("a stream");
        body.send_data(message.clone(), true).expect("the request sent");
        responses.push(response);
    }
    let mut streams = Vec::with_capacity(count);
    for response in responses {
        let response = response.await.expect("response headers");
        assert_eq!(response.status(), 200);
        let status = response.headers().get("grpc-status").map(|value| value.to_str().unwrap().to_owned());
        assert!(status.is_none(), "the call was refused: grpc-status {status:?}, {:?}", response.headers());
        streams.push(Stream(response.into_body()));
    }
    streams
}

/// Reads every stream until `each` says it has had enough of it (returns false) or the stream ends; `each` gets
/// the stream's entry in `state` and each of its messages, as received. All on the caller's task. Gives back the
/// streams it had enough of, still open.
pub async fn read<T>(
    streams: Vec<Stream>,
    mut state: Vec<T>,
    each: impl Fn(&mut T, &[u8]) -> bool,
) -> (Vec<T>, Vec<h2::RecvStream>) {
    // Each stream's future yields the stream back with its next chunk, so that one task drives them all.
    let mut pending: FuturesUnordered<_> =
        streams.into_iter().enumerate().map(|(index, stream)| next_chunk(index, stream.0)).collect();
    let mut partial: Vec<BytesMut> = (0..state.len()).map(|_| BytesMut::new()).collect();
    let mut done = Vec::with_capacity(state.len());
    while let Some((index, mut stream, chunk)) = pending.next().await {
        let Some(chunk) = chunk else { continue };
        let _ = stream.flow_control().release_capacity(chunk.len());
        let buffer = &mut partial[index];
        buffer.extend_from_slice(&chunk);
        let mut more = true;
        while more && buffer.len() >= 5 {
            let len = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
            if buffer.len() < 5 + len {
                break;
            }
            buffer.advance(5);
            let payload = buffer.split_to(len);
            more = each(&mut state[index], &payload);
        }
        if more {
            pending.push(next_chunk(index, stream));
        } else {
            done.push(stream);
        }
    }
    (state, done)
}

async fn next_chunk(index: usize, mut stream: h2::RecvStream) -> (usize, h2::RecvStream, Option<Bytes>) {
    let chunk = stream.data().await.and_then(Result::ok);
    (index, stream, chunk)
}
