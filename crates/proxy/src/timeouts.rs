//! HTTP/1.1 connection timeouts that answer instead of hanging: a request
//! head that is not complete within `header_read_timeout` gets
//! `408 Request Timeout` (slowloris), and a keep-alive connection idle for
//! `idle_timeout` is closed.
//!
//! [`Guarded`] wraps the connection's I/O and follows its phase:
//! - *idle*: waiting for the first byte of a request (idle timer);
//! - *head*: bytes of a request head arrived, the service has not been
//!   called yet (header timer; on expiry 408 is written, then EOF);
//! - *busy*: the service was called (counted through [`HeadCounter`]);
//!   body uploads and slow upstreams are not timed here. The first
//!   response write returns the connection to *idle*, and every write
//!   pushes the idle deadline back, so streaming responses are not cut.
//!
//! HTTP/2 (prior knowledge, detected by its preface, or ALPN `h2`) is left
//! alone: it has its own framing and keep-alive.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Counts requests whose head the service received.
pub type HeadCounter = Arc<AtomicU64>;

const TIMEOUT_408: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Head,
    Busy,
}

/// I/O with HTTP/1.1 head and idle timeouts.
#[derive(Debug)]
pub struct Guarded<IO> {
    io: IO,
    heads: HeadCounter,
    seen: u64,
    phase: Phase,
    header_timeout: Duration,
    idle_timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// `Some(true)` once the connection is known to speak HTTP/2.
    h2: Option<bool>,
    expired: bool,
}

impl<IO> Guarded<IO> {
    /// Wraps `io`; `h2` is `Some(true)` when ALPN already chose HTTP/2.
    pub fn new(io: IO, heads: HeadCounter, header_timeout: Duration, idle_timeout: Duration, h2: Option<bool>) -> Self {
        let seen = heads.load(Ordering::Relaxed);
        Guarded {
            io,
            heads,
            seen,
            phase: Phase::Idle,
            header_timeout,
            idle_timeout,
            sleep: Box::pin(tokio::time::sleep(idle_timeout)),
            h2,
            expired: false,
        }
    }

    /// Resets the timer and registers the task to be woken by it: hyper
    /// may not poll the read side again before the deadline on its own.
    fn arm(&mut self, d: Duration, cx: &mut Context<'_>) {
        self.sleep.as_mut().reset(Instant::now() + d);
        let _ = self.sleep.as_mut().poll(cx);
    }

    fn sync_phase(&mut self) {
        let now = self.heads.load(Ordering::Relaxed);
        if now != self.seen {
            self.seen = now;
            self.phase = Phase::Busy;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.expired {
            return Poll::Ready(Ok(())); // EOF: hyper closes the connection
        }
        if this.h2 == Some(true) {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        this.sync_phase();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().get(before..).unwrap_or_default();
                if this.h2.is_none() && !got.is_empty() {
                    this.h2 = Some(got.starts_with(b"PRI "));
                }
                if !got.is_empty() && this.phase == Phase::Idle {
                    this.phase = Phase::Head;
                    let d = this.header_timeout;
                    this.arm(d, cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.phase != Phase::Busy && this.h2 != Some(true) => {
                if this.sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.expired = true;
                if this.phase == Phase::Head {
                    // Best effort: the socket buffer normally takes 80 bytes at once.
                    let _ = Pin::new(&mut this.io).poll_write(cx, TIMEOUT_408);
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Guarded<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.h2 != Some(true) {
            let now = this.heads.load(Ordering::Relaxed);
            if now != this.seen {
                this.seen = now;
            }
            this.phase = Phase::Idle;
            let d = this.idle_timeout;
            this.arm(d, cx);
        }
        Pin::new(&mut this.io).poll_write(cx, data)
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
        let this = &mut *self;
        if this.h2 != Some(true) {
            this.sync_phase();
            this.phase = Phase::Idle;
            let d = this.idle_timeout;
            this.arm(d, cx);
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
