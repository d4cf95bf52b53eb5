//! The benchmark's default watching client: gRPC server streams read off the socket frame by frame, 100 streams a
//! connection, one task a connection, all on one thread.
//!
//! Why this low: the client shares the machine's two cores with the server it measures, and every microsecond it
//! spends on a message is taken from the server's fan-out. Measured at 10,000 streams: tonic's client used 3.0 µs
//! of CPU per message, the `h2` client of [`super::lean_client`] 2.2 µs, as much as half of what the server spends
//! to send it. This one does for each message only what the benchmark needs (find the DATA frame, take gRPC's
//! 5-byte prefix off, decode the event), as a load generator such as `h2load` does: the connection is what
//! HTTP/2 (RFC 9113) asks of a client that opens streams and reads them, no more. It sends its requests' headers
//! as HPACK literals, which need no table; it never decodes the server's headers (HPACK state it does not need):
//! a HEADERS frame without END_STREAM is a stream's response beginning, one with END_STREAM is its end, which in
//! this benchmark is a failure (`MODELCOPY_BENCH_CLIENT=h2` shows the status). The windows are HTTP/2's largest,
//! so it never has to send a WINDOW_UPDATE; it checks that a run stays within them.
//!
//! The other clients stay (`MODELCOPY_BENCH_CLIENT=h2`, `=tonic`) to show what a client costs.

use std::net::SocketAddr;

use bytes::{BufMut, BytesMut};
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tls::BenchTls;

/// The connection's bytes: TCP, or TLS over it.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADER_LEN: usize = 9;
/// The read buffer's size: several frames of the largest size the client allows (16 KiB: it does not raise
/// SETTINGS_MAX_FRAME_SIZE).
const INPUT: usize = 64 * 1024;
const MAX_FRAME: usize = 16 * 1024;
/// HTTP/2's largest window (RFC 9113 §6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// A connection's and a stream's window before any SETTINGS or WINDOW_UPDATE (RFC 9113 §6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

mod frame {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
}

mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
}

mod setting {
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
}

/// One HTTP/2 connection of gRPC server streams, opened and reading.
pub struct Connection {
    tcp: Box<dyn Socket>,
    /// What is read from the socket, of a fixed size: allocated once, so that reading allocates nothing (a
    /// growing buffer had the client fault in fresh huge pages, 50–70 ms of its CPU, on the second change).
    input: Box<[u8]>,
    /// `input[start..end]` is read and not yet handled: at most one frame's beginning.
    start: usize,
    end: usize,
    /// Per stream (the `i`th opened is stream `2i + 1`): a message's beginning, when a frame ended inside it.
    partial: Vec<BytesMut>,
    /// Per stream: its response has begun.
    answered: Vec<bool>,
    /// Per stream: still read (its reader wants more, and it has not ended).
    reading: Vec<bool>,
    /// DATA received on the connection, against its window.
    received: u64,
    /// Still opening: DATA is kept whole in `partial`, for `read`.
    opening: bool,
}

fn put_header(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    out.put_uint(len as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream);
}

/// An HPACK integer with an `n`-bit prefix whose other bits are `first` (RFC 7541 §5.1).
fn put_integer(out: &mut BytesMut, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.put_u8(first | value as u8);
        return;
    }
    out.put_u8(first | max as u8);
    value -= max;
    while value >= 128 {
        out.put_u8((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.put_u8(value as u8);
}

/// A header as an HPACK "literal without indexing, new name", neither string Huffman-coded (RFC 7541 §6.2.2).
fn put_literal(out: &mut BytesMut, name: &str, value: &str) {
    out.put_u8(0x00);
    put_integer(out, 0x00, 7, name.len());
    out.put_slice(name.as_bytes());
    put_integer(out, 0x00, 7, value.len());
    out.put_slice(value.as_bytes());
}

impl Connection {
    /// Opens `count` calls of `path` with `request` on one new HTTP/2 connection to `addr`, each with `metadata`;
    /// returns once every call's response has begun (a refused or reset call panics: the benchmark is wrong).
    pub async fn open(
        addr: SocketAddr,
        tls: Option<&BenchTls>,
        path: &str,
        request: &impl Message,
        metadata: &[(&'static str, &str)],
        count: usize,
    ) -> Connection {
        let tcp = TcpStream::connect(addr).await.expect("the server accepts");
        tcp.set_nodelay(true).unwrap();
        let mut out = BytesMut::new();
        out.put_slice(PREFACE);
        put_header(&mut out, 12, frame::SETTINGS, 0, 0);
        out.put_u16(setting::ENABLE_PUSH);
        out.put_u32(0);
        out.put_u16(setting::INITIAL_WINDOW_SIZE);
        out.put_u32(MAX_WINDOW);
        // The connection's window can only be raised by a WINDOW_UPDATE.
        put_header(&mut out, 4, 0x8, 0, 0);
        out.put_u32(MAX_WINDOW - DEFAULT_WINDOW);

        let mut block = BytesMut::new();
        let authority = addr.to_string();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", authority.as_str()),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .into_iter()
        .chain(metadata.iter().copied())
        {
            put_literal(&mut block, name, value);
        }
        let mut message = BytesMut::with_capacity(5 + request.encoded_len());
        message.put_u8(0);
        message.put_u32(request.encoded_len() as u32);
        request.encode(&mut message).unwrap();
        for i in 0..count {
            let stream = 2 * i as u32 + 1;
            put_header(&mut out, block.len(), frame::HEADERS, flag::END_HEADERS, stream);
            out.put_slice(&block);
            put_header(&mut out, message.len(), frame::DATA, flag::END_STREAM, stream);
            out.put_slice(&message);
        }
        let mut tcp: Box<dyn Socket> = match tls {
            Some(tls) => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
                Box::new(tls.connector().connect(name, tcp).await.expect("a TLS session"))
            }
            None => Box::new(tcp),
        };
        tcp.write_all(&out).await.expect("the requests sent");

        let mut connection = Connection {
            tcp,
            input: vec![0; INPUT].into_boxed_slice(),
            start: 0,
            end: 0,
            partial: (0..count).map(|_| BytesMut::new()).collect(),
            answered: vec![false; count],
            reading: vec![true; count],
            received: 0,
            opening: true,
        };
        // Messages that come before every response has begun wait in `partial` for `read`.
        while connection.answered.iter().any(|answered| !answered) {
            connection.step(&mut |_, _| true).await;
        }
        connection.opening = false;
        connection
    }

    /// Reads every stream until `each` says it has had enough of it (returns false); `each` gets the stream's entry
    /// in `state` and each of its messages, as received. Gives back the connection, still open.
    pub async fn read<T>(mut self, mut state: Vec<T>, each: impl Fn(&mut T, &[u8]) -> bool) -> (Vec<T>, Connection) {
        assert_eq!(state.len(), self.reading.len(), "a state a stream");
        let mut each = |index: usize, message: &[u8]| each(&mut state[index], message);
        // What came while the streams opened.
        for index in 0..self.partial.len() {
            let early = std::mem::take(&mut self.partial[index]);
            self.messages(index, &mut BytesMut::new(), &early, &mut each);
        }
        while self.reading.iter().any(|&reading| reading) {
            self.step(&mut each).await;
        }
        (state, self)
    }

    /// Reads from the socket once and handles every whole frame read.
    async fn step(&mut self, each: &mut impl FnMut(usize, &[u8]) -> bool) {
        // Room for a whole frame after what is waiting: the waiting frame's beginning moves to the front.
        if INPUT - self.end < HEADER_LEN + MAX_FRAME {
            self.input.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        let read = self.tcp.read(&mut self.input[self.end..]).await.expect("the connection reads");
        assert!(read > 0, "the server closed the connection");
        self.end += read;
        let mut replies = BytesMut::new();
        let input = std::mem::take(&mut self.input);
        while self.end - self.start >= HEADER_LEN {
            let head = &input[self.start..self.start + HEADER_LEN];
            let len = (head[0] as usize) << 16 | (head[1] as usize) << 8 | head[2] as usize;
            assert!(len <= MAX_FRAME, "a frame of {len} bytes, over the client's SETTINGS_MAX_FRAME_SIZE");
            if self.end - self.start < HEADER_LEN + len {
                break;
            }
            let (kind, flags) = (head[3], head[4]);
            let stream = u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff;
            let payload = &input[self.start + HEADER_LEN..self.start + HEADER_LEN + len];
            self.start += HEADER_LEN + len;
            self.frame(kind, flags, stream, payload, &mut replies, each);
        }
        self.input = input;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        if !replies.is_empty() {
            self.tcp.write_all(&replies).await.expect("replies sent");
        }
    }

    fn frame(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
        replies: &mut BytesMut,
        each: &mut impl FnMut(usize, &[u8]) -> bool,
    ) {
        let index = (stream as usize).wrapping_sub(1) / 2;
        match kind {
            frame::DATA => {
                self.received += payload.len() as u64;
                assert!(self.received < u64::from(MAX_WINDOW), "the run outgrew the connection's window");
                let data = if flags & flag::PADDED != 0 {
                    let pad = payload[0] as usize;
                    &payload[1..payload.len() - pad]
                } else {
                    payload
                };
                if self.opening {
                    self.partial[index].extend_from_slice(data);
                } else if self.reading[index] {
                    let mut waiting = std::mem::take(&mut self.partial[index]);
                    self.messages(index, &mut waiting, data, each);
                }
                assert!(flags & flag::END_STREAM == 0 || !self.reading[index], "stream {stream} ended");
            }
            frame::HEADERS => {
                assert!(
                    flags & flag::END_STREAM == 0 || !self.reading[index],
                    "stream {stream} ended (or was refused): MODELCOPY_BENCH_CLIENT=h2 shows its status"
                );
                self.answered[index] = true;
            }
            frame::RST_STREAM => {
                assert!(!self.reading[index], "stream {stream} reset: error code {:?}", &payload[..4]);
            }
            frame::SETTINGS if flags & flag::ACK == 0 => put_header(replies, 0, frame::SETTINGS, flag::ACK, 0),
            frame::PING if flags & flag::ACK == 0 => {
                put_header(replies, 8, frame::PING, flag::ACK, 0);
                replies.put_slice(payload);
            }
            frame::GOAWAY => panic!("the server went away: error code {:?}", &payload[4..8]),
            // WINDOW_UPDATE (it sends nothing more), CONTINUATION (of headers it does not read), acks.
            _ => {}
        }
    }

    /// Hands `each` every whole message of stream `index` in what was waiting and `data`, and keeps the rest.
    fn messages(
        &mut self,
        index: usize,
        waiting: &mut BytesMut,
        mut data: &[u8],
        each: &mut impl FnMut(usize, &[u8]) -> bool,
    ) {
        // A message begun in an earlier frame: complete it first.
        if !waiting.is_empty() {
            let need = |w: &BytesMut| {
                if w.len() < 5 {
                    5
                } else {
                    5 + u32::from_be_bytes(w[1..5].try_into().unwrap()) as usize
                }
            };
            while waiting.len() < need(waiting) && !data.is_empty() {
                let take = (need(waiting) - waiting.len()).min(data.len());
                waiting.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
            if waiting.len() < need(waiting) {
                self.partial[index] = std::mem::take(waiting);
                return;
            }
            if !each(index, &waiting[5..]) {
                self.reading[index] = false;
                return;
            }
            waiting.clear();
        }
        // Whole messages straight from the frame.
        while data.len() >= 5 {
            let len = u32::from_be_bytes(data[1..5].try_into().unwrap()) as usize;
            if data.len() < 5 + len {
                break;
            }
            if !each(index, &data[5..5 + len]) {
                self.reading[index] = false;
                return;
            }
            data = &data[5 + len..];
        }
        waiting.extend_from_slice(data);
        self.partial[index] = std::mem::take(waiting);
    }
}
