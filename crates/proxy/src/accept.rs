//! Accepting with back-off: an accept error that concerns the listener
//! (out of file descriptors, out of memory) returns at once for as long as
//! the condition lasts, so retrying in a loop burns a core and starves the
//! other listeners. [`Acceptor`] waits 5 ms after such an error, doubling
//! up to 1 s, and resets on the next success (as tokio's `TcpListener`
//! docs and linkerd2-proxy advise). Errors that concern one connection
//! (the peer reset it while it waited in the backlog) are retried at once.
//!
//! Invariant: one stderr line when a listener starts failing (or fails
//! differently), one when it recovers — never one per error; every error
//! is counted in `realip_accept_errors_total{listener}`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;

/// First wait after a listener-level accept error.
pub const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest wait between attempts while errors persist.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The doubling wait between failed accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The wait to apply now; the following one is twice as long, up to
    /// [`BACKOFF_MAX`].
    pub fn step(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        now
    }

    /// Back to [`BACKOFF_MIN`] (an accept succeeded).
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Errors about one pending connection, not the listener: retry at once.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

use crate::log::event;

/// A listener whose `accept` backs off on errors.
#[derive(Debug)]
pub struct Acceptor {
    tcp: TcpListener,
    name: Arc<str>,
    backoff: Backoff,
    /// The error the listener is failing with (its text), if it is.
    failing: Option<String>,
}

impl Acceptor {
    /// Wraps `tcp`, named `name` in events and metrics.
    pub fn new(tcp: TcpListener, name: Arc<str>) -> Acceptor {
        Acceptor { tcp, name, backoff: Backoff::default(), failing: None }
    }

    /// Our address (unspecified if the socket cannot say).
    pub fn local_addr(&self) -> SocketAddr {
        self.tcp.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The next connection. Cancel-safe: the back-off state is updated
    /// before each wait, so dropping the future loses nothing.
    pub async fn accept(&mut self, metrics: &Metrics) -> (TcpStream, SocketAddr) {
        loop {
            match self.tcp.accept().await {
                Ok(c) => {
                    if self.failing.take().is_some() {
                        event(&serde_json::json!({"event": "accept_recovered", "listener": &*self.name}));
                    }
                    self.backoff.reset();
                    return c;
                }
                Err(e) if per_connection(&e) => {}
                Err(e) => {
                    metrics.listener(&self.name).accept_error();
                    let wait = self.backoff.step();
                    let text = e.to_string();
                    if self.failing.as_deref() != Some(text.as_str()) {
                        event(&serde_json::json!({
                            "event": "accept_error",
                            "listener": &*self.name,
                            "error": text,
                            "note": "retrying with back-off (5 ms doubling to 1 s) until an accept succeeds",
                        }));
                        self.failing = Some(text);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u128> = (0..10).map(|_| b.step().as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.step(), BACKOFF_MIN);
    }

    #[test]
    fn connection_level_errors_are_not_backed_off() {
        assert!(per_connection(&io::Error::from(io::ErrorKind::ConnectionAborted)));
        assert!(!per_connection(&io::Error::from_raw_os_error(24))); // EMFILE
    }
}
