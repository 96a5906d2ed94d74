//! The request body on its way to the upstream: bounded in size
//! (`max_body_bytes`, 413) and in time between two reads (`body_timeout`,
//! 408, nginx `client_body_timeout`), and telling the upstream side when
//! it has been sent in full — the response timeout starts only then, so a
//! slow upload is the client's fault (408), not the upstream's (504).
//!
//! Failures are typed ([`BodyError`]) and travel inside hyper's error as
//! its source, where [`BodyError::find`] recovers them: no string matching.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::upstream::BoxError;

/// Why a request body could not be passed on.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Occurs when the body grows past the route's `max_body_bytes`.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// Occurs when the client sends nothing for `body_timeout`.
    #[error("no request body data for {0:?}")]
    Timeout(Duration),
    /// Occurs when the client's connection fails while sending the body.
    #[error("client body: {0}")]
    Client(BoxError),
}

impl BodyError {
    /// The body error somewhere in `e`'s source chain, if any.
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyError> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(b) = err.downcast_ref::<BodyError>() {
                return Some(b);
            }
            cur = err.source();
        }
        None
    }
}

/// Signals that the request body has ended (in full, or with an error).
#[derive(Debug, Default)]
pub struct Sent(Notify, std::sync::atomic::AtomicBool);

impl Sent {
    /// Completes once the body has ended.
    pub async fn wait(&self) {
        while !self.1.load(std::sync::atomic::Ordering::Acquire) {
            let notified = self.0.notified();
            if self.1.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// A body that has already ended (a request without one).
    pub fn finished() -> Sent {
        Sent(Notify::new(), std::sync::atomic::AtomicBool::new(true))
    }

    fn done(&self) {
        self.1.store(true, std::sync::atomic::Ordering::Release);
        self.0.notify_waiters();
    }
}

/// A request body with a size limit, a read timeout and an end signal.
#[derive(Debug)]
pub struct RequestBody<B> {
    inner: B,
    left: u64,
    limit: u64,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    sent: Arc<Sent>,
    ended: bool,
}

impl<B> RequestBody<B> {
    /// Wraps `inner`; `sent` fires when it ends. An already-empty body
    /// should be marked by the caller with [`RequestBody::sent_now`].
    pub fn new(inner: B, limit: u64, timeout: Duration) -> (RequestBody<B>, Arc<Sent>) {
        let sent = Arc::new(Sent::default());
        let body =
            RequestBody { inner, left: limit, limit, timeout, sleep: None, sent: Arc::clone(&sent), ended: false };
        (body, sent)
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.sent.done();
        }
    }
}

impl<B> Drop for RequestBody<B> {
    fn drop(&mut self) {
        self.end();
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.end();
                    return Poll::Ready(Some(Err(Box::new(BodyError::Timeout(timeout)))));
                }
                Poll::Pending
            }
            Poll::Ready(None) => {
                this.end();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.end();
                Poll::Ready(Some(Err(Box::new(BodyError::Client(e.into())))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(sleep) = this.sleep.as_mut() {
                    sleep.as_mut().reset(Instant::now() + this.timeout);
                }
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.left {
                        this.end();
                        return Poll::Ready(Some(Err(Box::new(BodyError::TooLarge(this.limit)))));
                    }
                    this.left -= n;
                }
                if this.inner.is_end_stream() {
                    this.end();
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};

    #[tokio::test]
    async fn over_the_limit_is_a_typed_error() {
        let (b, sent) = RequestBody::new(Full::new(Bytes::from_static(b"0123456789")), 4, Duration::from_secs(5));
        let e = b.collect().await.unwrap_err();
        assert!(matches!(BodyError::find(&*e), Some(BodyError::TooLarge(4))), "{e}");
        sent.wait().await;
    }

    #[tokio::test]
    async fn within_the_limit_passes_and_signals_the_end() {
        let (b, sent) = RequestBody::new(Full::new(Bytes::from_static(b"0123")), 4, Duration::from_secs(5));
        assert_eq!(b.collect().await.unwrap().to_bytes(), Bytes::from_static(b"0123"));
        tokio::time::timeout(Duration::from_secs(1), sent.wait()).await.expect("end signalled");
    }

    /// One data frame, then silence.
    struct Stalls(bool);

    impl Body for Stalls {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if std::mem::replace(&mut self.0, true) {
                Poll::Pending
            } else {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"a")))))
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_times_out() {
        let (b, sent) = RequestBody::new(Stalls(false), 1024, Duration::from_secs(3));
        let e = b.collect().await.unwrap_err();
        assert!(matches!(BodyError::find(&*e), Some(BodyError::Timeout(_))), "{e}");
        sent.wait().await;
    }
}
