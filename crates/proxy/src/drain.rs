//! Drain: one signal broadcast to the accept loops and every connection,
//! and a wait for the connections to finish.
//!
//! [`Drain`] is held by the server; each accept loop and each HTTP
//! connection holds a [`Watch`] (a clone of one `watch` receiver). On
//! [`Drain::drain`] the accept loops return and every connection is asked
//! to shut down gracefully (HTTP/1.1: close after the response in flight;
//! HTTP/2: GOAWAY, then close when its streams end); the drain is over when
//! the last `Watch` is dropped, i.e. the last connection closed.
//! Connections still before HTTP (PROXY header, TLS handshake) close at
//! once: no request of theirs has been read.

use std::time::Duration;

use tokio::sync::watch;

/// The server's end: starts the drain and waits for it.
#[derive(Debug)]
pub struct Drain {
    tx: watch::Sender<bool>,
}

/// A connection's (or accept loop's) end: tells it to shut down.
#[derive(Clone, Debug)]
pub struct Watch {
    rx: watch::Receiver<bool>,
}

impl Drain {
    /// A drain not started, and the first [`Watch`] on it.
    pub fn new() -> (Drain, Watch) {
        let (tx, rx) = watch::channel(false);
        (Drain { tx }, Watch { rx })
    }

    /// Signals every [`Watch`], then waits up to `timeout` for all of them
    /// to be dropped. `true` if they all were in time.
    pub async fn drain(self, timeout: Duration) -> bool {
        self.tx.send_replace(true);
        tokio::time::timeout(timeout, self.tx.closed()).await.is_ok()
    }
}

impl Watch {
    /// Completes once the drain started (at once if it has); never if the
    /// [`Drain`] is gone without starting one.
    pub async fn signaled(&mut self) {
        if self.rx.wait_for(|d| *d).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_signals_every_watch_and_waits_for_them() {
        let (drain, watch) = Drain::new();
        let mut w2 = watch.clone();
        let task = tokio::spawn(async move {
            w2.signaled().await;
            tokio::time::sleep(Duration::from_millis(50)).await; // finishing its response
            drop(w2);
        });
        drop(watch);
        assert!(drain.drain(Duration::from_secs(5)).await);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_timeout() {
        let (drain, watch) = Drain::new();
        let _held = watch; // a connection that never closes
        assert!(!drain.drain(Duration::from_millis(50)).await);
    }
}
