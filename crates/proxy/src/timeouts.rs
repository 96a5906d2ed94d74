//! Connection timeouts that answer instead of hanging.
//!
//! HTTP/1.1: a request head that is not complete within
//! `header_read_timeout` gets `408 Request Timeout` (slowloris), and a
//! keep-alive connection idle for `idle_timeout` is closed.
//! HTTP/2: the preface and the first request's HEADERS must arrive within
//! `header_read_timeout` (else the connection is closed: no request was
//! read); a connection with no open stream for `idle_timeout` is shut down
//! gracefully (GOAWAY) by the connection driver in `listener.rs`, which
//! reads [`Activity`].
//!
//! [`Guarded`] wraps the connection's I/O and follows its phase:
//! - *idle*: waiting for the first byte of a request (idle timer);
//! - *head*: bytes of a request head arrived (HTTP/1.1), or the
//!   connection speaks HTTP/2 (prior knowledge `PRI ` or ALPN `h2`), and the
//!   service has not been called yet (header timer; on expiry, HTTP/1.1
//!   gets 408, then EOF; HTTP/2 gets EOF);
//! - *busy*: the service was called (counted in [`Activity`]); body
//!   uploads and slow upstreams are not timed here. HTTP/1.1: the first
//!   response write returns the connection to *idle*, and every write
//!   pushes the idle deadline back, so streaming responses are not cut.
//!   HTTP/2 stays *busy*: its idle time is the time without open streams.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What a connection is doing, shared by its I/O ([`Guarded`]), its
/// service (one [`StreamGuard`] per request) and its driver.
#[derive(Debug)]
pub struct Activity {
    /// Requests whose head the service received.
    heads: AtomicU64,
    /// Requests whose response has not ended (or been dropped).
    open: AtomicUsize,
    /// When `open` last fell to 0: milliseconds since `base`.
    idle_since_ms: AtomicU64,
    /// The connection speaks HTTP/2.
    h2: AtomicBool,
    /// HTTP/1.1: hyper asked for the next request head and none has
    /// arrived (set by [`Guarded`] on a pending read while idle).
    waiting: AtomicBool,
    /// The last request came without a body (nothing left to read of it).
    bodyless: AtomicBool,
    /// The driver is parking the connection: hyper's shutdown of the I/O
    /// must leave the socket open (see [`crate::park`]).
    parking: AtomicBool,
    base: Instant,
}

impl Activity {
    /// A connection that has served nothing yet.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            heads: AtomicU64::new(0),
            open: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            bodyless: AtomicBool::new(false),
            parking: AtomicBool::new(false),
            base: Instant::now(),
        })
    }

    /// A request reached the service; it is open until the guard drops
    /// (hold it in the response body).
    pub fn begin(self: &Arc<Self>) -> StreamGuard {
        self.heads.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::AcqRel);
        StreamGuard(Arc::clone(self))
    }

    /// Records whether the request about to be served has a body.
    pub fn note_body(&self, bodyless: bool) {
        self.bodyless.store(bodyless, Ordering::Relaxed);
    }

    /// When an HTTP/1.1 connection can give its HTTP state back while
    /// idle: `after` past the end of its last response, if that request
    /// had no body, no request is open and hyper is waiting for the next
    /// head with nothing read of it. `None` while any of that is not so.
    pub fn park_at(&self, after: Duration) -> Option<Instant> {
        let quiet = self.waiting.load(Ordering::Acquire) && self.bodyless.load(Ordering::Relaxed) && !self.is_h2();
        self.idle_deadline(after).filter(|_| quiet)
    }

    /// Marks (or clears) a park in progress (see [`Guarded`]'s shutdown).
    pub fn set_parking(&self, on: bool) {
        self.parking.store(on, Ordering::Release);
    }

    /// A park is in progress.
    pub fn is_parking(&self) -> bool {
        self.parking.load(Ordering::Acquire)
    }

    /// The connection speaks HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    /// Requests whose head the service received.
    pub fn requests(&self) -> u64 {
        self.heads.load(Ordering::Relaxed)
    }

    /// When an HTTP/2 connection idle for `idle` should be shut down: `None`
    /// while a stream is open (or before the first request, which
    /// [`Guarded`]'s header timer bounds).
    pub fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.open.load(Ordering::Acquire) > 0 || self.requests() == 0 {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        Some(self.base + since + idle)
    }
}

/// One open request of a connection (see [`Activity::begin`]).
#[derive(Debug)]
pub struct StreamGuard(Arc<Activity>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Stamp first: a driver that sees `open == 0` reads a fresh stamp.
        a.idle_since_ms.store(ms, Ordering::Release);
        a.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request open (counted in [`Activity`])
/// until it ends or is dropped — a reset h2 stream drops it.
#[derive(Debug)]
pub struct Counted<B> {
    inner: B,
    guard: Option<StreamGuard>,
}

impl<B> Counted<B> {
    /// `inner`, holding `guard` until it ends.
    pub fn new(inner: B, guard: StreamGuard) -> Self {
        Counted { inner, guard: Some(guard) }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(r, Poll::Ready(None | Some(Err(_)))) {
            self.guard = None;
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The HTTP/2 connection preface starts with these bytes.
const H2_START: &[u8] = b"PRI ";

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
    activity: Arc<Activity>,
    seen: u64,
    phase: Phase,
    header_timeout: Duration,
    idle_timeout: Duration,
    sleep: Pin<Box<Sleep>>,
    /// `Some(true)` once the connection is known to speak HTTP/2.
    h2: Option<bool>,
    /// Bytes of [`H2_START`] seen so far while `h2` is undecided.
    sniffed: usize,
    expired: bool,
}

impl<IO> Guarded<IO> {
    /// The wrapped I/O.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// When the current timer (idle, or request head) runs out.
    pub fn deadline(&self) -> Instant {
        self.sleep.deadline()
    }

    /// Wraps `io`; `alpn_h2` when ALPN already chose HTTP/2 (the preface
    /// and first request are then due within `header_timeout` from now).
    pub fn new(
        io: IO,
        activity: Arc<Activity>,
        header_timeout: Duration,
        idle_timeout: Duration,
        alpn_h2: bool,
    ) -> Self {
        let seen = activity.requests();
        if alpn_h2 {
            activity.h2.store(true, Ordering::Relaxed);
        }
        // A new connection owes its first request head within
        // `header_timeout` of accept, like nginx's `client_header_timeout`:
        // a silent socket must not hold a connection slot for the longer
        // keep-alive `idle_timeout`.
        let (phase, first) =
            if alpn_h2 { (Phase::Head, header_timeout) } else { (Phase::Idle, header_timeout.min(idle_timeout)) };
        Guarded {
            io,
            activity,
            seen,
            phase,
            header_timeout,
            idle_timeout,
            sleep: Box::pin(tokio::time::sleep(first)),
            h2: alpn_h2.then_some(true),
            sniffed: 0,
            expired: false,
        }
    }

    /// Follows the first bytes until they show HTTP/2's preface or not.
    fn sniff(&mut self, got: &[u8]) {
        for b in got {
            if H2_START.get(self.sniffed) != Some(b) {
                self.h2 = Some(false);
                return;
            }
            self.sniffed += 1;
            if self.sniffed == H2_START.len() {
                self.h2 = Some(true);
                self.activity.h2.store(true, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Resets the timer and registers the task to be woken by it: hyper
    /// may not poll the read side again before the deadline on its own.
    fn arm(&mut self, d: Duration, cx: &mut Context<'_>) {
        self.sleep.as_mut().reset(Instant::now() + d);
        let _ = self.sleep.as_mut().poll(cx);
    }

    fn sync_phase(&mut self) {
        let now = self.activity.requests();
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
        if this.h2 == Some(true) && this.phase == Phase::Busy {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        this.sync_phase();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().get(before..).unwrap_or_default();
                if !got.is_empty() {
                    this.activity.waiting.store(false, Ordering::Release);
                }
                if this.h2.is_none() {
                    this.sniff(got);
                }
                if !got.is_empty() && this.phase == Phase::Idle {
                    this.phase = Phase::Head;
                    let d = this.header_timeout;
                    this.arm(d, cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.phase != Phase::Busy => {
                if this.sleep.as_mut().poll(cx).is_pending() {
                    if this.phase == Phase::Idle {
                        this.activity.waiting.store(true, Ordering::Release);
                    }
                    return Poll::Pending;
                }
                this.expired = true;
                if this.phase == Phase::Head && this.h2 != Some(true) {
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
            let now = this.activity.requests();
            if now != this.seen {
                this.seen = now;
            }
            this.phase = Phase::Idle;
            this.activity.waiting.store(false, Ordering::Release);
            let d = this.idle_timeout;
            this.arm(d, cx);
        }
        Pin::new(&mut this.io).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.activity.is_parking() {
            // hyper closes its side of an idle connection being parked;
            // the socket stays open for the next request.
            return Poll::Ready(Ok(()));
        }
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
            this.activity.waiting.store(false, Ordering::Release);
            let d = this.idle_timeout;
            this.arm(d, cx);
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn h2_preface_is_recognised_across_reads() {
        for (chunks, h2) in [(&[&b"PR"[..], b"I * HTTP/2.0"][..], true), (&[&b"P"[..], b"OST / HTTP/1.1"][..], false)] {
            let (mut client, server) = tokio::io::duplex(64);
            let activity = Activity::new();
            let mut g =
                Guarded::new(server, Arc::clone(&activity), Duration::from_secs(5), Duration::from_secs(5), false);
            let mut buf = [0u8; 64];
            for c in chunks {
                client.write_all(c).await.unwrap();
                let n = g.read(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], *c);
            }
            assert_eq!(activity.is_h2(), h2, "{chunks:?}");
        }
    }

    #[tokio::test]
    async fn h2_without_a_first_request_gets_eof_not_408() {
        let (mut client, server) = tokio::io::duplex(64);
        let activity = Activity::new();
        let mut g =
            Guarded::new(server, Arc::clone(&activity), Duration::from_millis(50), Duration::from_secs(60), true);
        let mut buf = [0u8; 16];
        assert_eq!(g.read(&mut buf).await.unwrap(), 0, "EOF after header_timeout");
        drop(g);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "no HTTP/1.1 408 on an h2 connection: {rest:?}");
    }

    #[tokio::test]
    async fn an_h2_connection_is_idle_only_with_no_open_stream() {
        let activity = Activity::new();
        let idle = Duration::from_secs(1);
        assert_eq!(activity.idle_deadline(idle), None, "before the first request: the header timer's job");
        let a = activity.begin();
        let b = activity.begin();
        drop(a);
        assert_eq!(activity.idle_deadline(idle), None, "one stream still open");
        let counted = Counted::new(http_body_util::Empty::<Bytes>::new(), b);
        drop(counted); // a reset stream drops its body
        let at = activity.idle_deadline(idle).expect("idle");
        assert!(at > Instant::now() && at <= Instant::now() + idle);
    }
}
