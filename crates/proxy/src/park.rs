//! Parking idle HTTP/1.1 keep-alive connections: an idle connection gives
//! hyper's state back and waits on the bare socket, like nginx's keep-alive
//! handler, so it costs about a kilobyte instead of hyper's two 8 KiB
//! buffers, its boxed request future and the connection's driver state.
//!
//! A plain-TCP HTTP/1.1 connection is served in *bursts*. A burst is one
//! hyper connection (boxed, so its memory exists only while it runs) over
//! the connection's [`Guarded`] I/O. When the connection has been quiet
//! for [`PARK_AFTER`] — see [`Activity::park_at`]: the last response ended,
//! its request had no body, and hyper is waiting for the next head with
//! nothing of it read — the driver marks the park, asks hyper to close the
//! idle connection, lets [`Guarded`] turn hyper's I/O shutdown into a
//! no-op, and takes the I/O back with hyper's unread bytes
//! (`into_parts`). The parked connection then waits for readability, the
//! idle deadline that [`Guarded`] armed, or the drain; the next burst
//! replays the unread bytes first.
//!
//! Invariants: bytes read by hyper are never lost (they are replayed); a
//! connection is parked only between requests, never with a request body
//! half read; HTTP/2 (prior knowledge) is never parked; timeouts are the
//! same as without parking (the parked wait ends at [`Guarded`]'s deadline).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use realip_tower::acceptor::ProxiedStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::LimitsConfig;
use crate::drain::Watch;
use crate::http::{ConnCtx, Shared};
use crate::timeouts::{Activity, Guarded};

/// How long an HTTP/1.1 connection must be quiet before it is parked.
/// Short enough that idle connections hold hyper's buffers only briefly,
/// long enough that a busy keep-alive client (a request every few
/// milliseconds) never pays for rebuilding the hyper connection.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// The HTTP/2 connection preface starts with these bytes.
const H2_START: &[u8] = b"PRI ";

/// A plain-TCP connection's I/O, as the bursts share it.
pub type PlainIo = Guarded<ProxiedStream<TcpStream>>;

/// What the first bytes of a connection say about its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBytes {
    /// Not HTTP/2's preface: HTTP/1.x, served in parkable bursts.
    Http1,
    /// HTTP/2 prior knowledge, or too few bytes to tell: hyper-util's
    /// version detection serves it, unparked.
    Other,
    /// The peer closed (or the socket failed) before sending anything, or
    /// the deadline or drain came first.
    Closed,
}

fn classify(got: &[u8]) -> FirstBytes {
    if got.is_empty() {
        FirstBytes::Closed
    } else if got.len() >= H2_START.len() {
        if got.starts_with(H2_START) {
            FirstBytes::Other
        } else {
            FirstBytes::Http1
        }
    } else if H2_START.starts_with(got) {
        FirstBytes::Other
    } else {
        FirstBytes::Http1
    }
}

/// Waits, holding no buffer, until the connection has bytes to read (and
/// says what they start with), the peer closes, `io`'s deadline passes or
/// the drain starts.
pub async fn wait_for_bytes(io: &PlainIo, pending: &[u8], drain: &mut Watch) -> FirstBytes {
    let buffered = if pending.is_empty() { io.get_ref().buffered() } else { pending };
    if !buffered.is_empty() {
        return classify(buffered);
    }
    let mut peek = [0u8; 4];
    tokio::select! {
        r = io.get_ref().get_ref().peek(&mut peek) => match r {
            Ok(n) => classify(peek.get(..n).unwrap_or_default()),
            Err(_) => FirstBytes::Closed,
        },
        () = tokio::time::sleep_until(io.deadline()) => FirstBytes::Closed,
        () = drain.signaled() => FirstBytes::Closed,
    }
}

/// How a burst ended.
pub enum Burst {
    /// The connection is over (closed, failed, drained or upgraded).
    Closed,
    /// Parked: the I/O, and the bytes hyper had read but not used.
    Parked(PlainIo, Bytes),
}

impl std::fmt::Debug for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Burst::Closed => f.write_str("Closed"),
            Burst::Parked(_, b) => write!(f, "Parked({} bytes pending)", b.len()),
        }
    }
}

/// Serves HTTP/1.1 requests on `io` (after replaying `pending`) until the
/// connection ends or can be parked. Box the returned future: its size is
/// hyper's connection state, which a parked connection must not keep.
pub async fn burst(
    io: PlainIo,
    pending: Bytes,
    activity: Arc<Activity>,
    ctx: ConnCtx,
    shared: Arc<Shared>,
    limits: &LimitsConfig,
    drain: &mut Watch,
) -> Burst {
    activity.set_parking(false);
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(None) // crate::timeouts answers 408 instead of closing
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let svc = crate::listener::service(Arc::clone(&activity), ctx, shared);
    let mut conn = b.serve_connection(TokioIo::new(Replay { io, pending }), svc).with_upgrades();
    let timer = tokio::time::sleep(PARK_AFTER);
    tokio::pin!(timer);
    let mut draining = false;
    loop {
        tokio::select! {
            r = &mut conn => {
                if r.is_err() || !activity.is_parking() {
                    return Burst::Closed;
                }
                let Some(parts) = conn.into_parts() else { return Burst::Closed };
                let Replay { io, pending } = parts.io.into_inner();
                // hyper's unread bytes come before any we had not replayed.
                // Copied: `read_buf` is a view of hyper's whole read buffer,
                // which would otherwise stay allocated while parked.
                let mut rest = Vec::with_capacity(parts.read_buf.len() + pending.len());
                rest.extend_from_slice(&parts.read_buf);
                rest.extend_from_slice(&pending);
                return Burst::Parked(io, Bytes::from(rest));
            }
            () = drain.signaled(), if !draining => {
                draining = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
            () = timer.as_mut(), if !draining => {
                let now = tokio::time::Instant::now();
                match activity.park_at(PARK_AFTER) {
                    Some(at) if at <= now => {
                        // hyper is idle (between requests): closing it
                        // leaves the socket to us (see Guarded's shutdown).
                        activity.set_parking(true);
                        Pin::new(&mut conn).graceful_shutdown();
                        draining = true;
                    }
                    Some(at) => timer.as_mut().reset(at),
                    None => timer.as_mut().reset(now + PARK_AFTER),
                }
            }
        }
    }
}

/// I/O that returns `pending` before reading from `io`.
#[derive(Debug)]
pub struct Replay<IO> {
    io: IO,
    pending: Bytes,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Replay<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.pending.is_empty() {
            let n = this.pending.len().min(out.remaining());
            out.put_slice(this.pending.get(..n).unwrap_or_default());
            this.pending.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, out)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Replay<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_tell_http1_from_the_h2_preface() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), FirstBytes::Http1);
        assert_eq!(classify(b"PRI * HTTP/2.0"), FirstBytes::Other);
        assert_eq!(classify(b"PR"), FirstBytes::Other, "could still be the preface");
        assert_eq!(classify(b"PO"), FirstBytes::Http1);
        assert_eq!(classify(b""), FirstBytes::Closed);
    }
}
