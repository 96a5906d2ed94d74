//! Thread-per-core serving: `N` OS threads, each running a single-threaded
//! tokio runtime with its own `SO_REUSEPORT` socket per data listener (the
//! kernel spreads new connections over the sockets of a port), as nginx
//! workers do; a connection lives on the thread that accepted it.
//!
//! What the workers share: the snapshot in force (an `ArcSwap`, so a
//! reload reaches every worker at its next connection or request), the
//! metrics (atomics), the rate limiter, the access log, the connection cap
//! and the drain signal. The control runtime (signals, reloader, file and
//! Kubernetes watchers, admin listener) is not a worker.
//!
//! What each worker has of its own: its listener sockets, the tasks of
//! its connections, and its shard of every upstream endpoint's idle
//! keep-alive connections ([`shard`]): a pooled upstream socket is
//! registered with the reactor of the runtime that opened it, so only
//! that worker reuses it (no cross-thread wake-up per request).
//!
//! Invariants: [`set_count`] is called once, before the first snapshot is
//! built (pools size their shards from it); a thread that is not a worker
//! (tests, `--runtime multi-thread`, the control runtime) uses shard 0.

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};

use crate::accept::Acceptor;
use crate::drain::Watch;
use crate::http::Shared;

/// Workers this process runs (1 until [`set_count`]).
static COUNT: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Sets how many workers the process runs: pools built from now on keep
/// one idle-connection shard per worker.
pub fn set_count(n: usize) {
    COUNT.store(n.max(1), Ordering::Relaxed);
}

/// Workers this process runs.
pub fn count() -> usize {
    COUNT.load(Ordering::Relaxed)
}

/// Marks the calling thread as worker `i`.
pub fn enter(i: usize) {
    INDEX.with(|c| c.set(i));
}

/// The shard of the calling thread among `len` shards.
pub fn shard(len: usize) -> usize {
    INDEX.with(Cell::get) % len.max(1)
}

/// The worker count for `requested` (`None`: one per CPU).
pub fn resolve(requested: Option<usize>) -> usize {
    requested.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
}

/// `n` listening sockets on `bind`, all with `SO_REUSEPORT` so each
/// worker accepts on its own. With port 0 the first socket gets a port
/// from the kernel and the others join it.
pub fn bind_group(bind: &str, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut addr: SocketAddr = bind
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address resolves to nothing"))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
        // As tokio's `TcpListener::bind`: a restart may bind while old
        // connections are in TIME_WAIT.
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        let l: std::net::TcpListener = s.into();
        if addr.port() == 0 {
            addr = l.local_addr()?;
        }
        out.push(l);
    }
    Ok(out)
}

/// What one worker thread serves, and with what.
#[derive(Debug)]
pub struct Worker {
    /// Its index (metrics label, idle-pool shard).
    pub index: usize,
    /// Its own socket of every data listener, by listener name.
    pub listeners: Vec<(Arc<str>, std::net::TcpListener)>,
    /// State shared by every worker.
    pub shared: Arc<Shared>,
    /// The connection cap shared by every worker.
    pub slots: Arc<Semaphore>,
    /// The drain signal; held by its accept loops and connections.
    pub drain: Watch,
    /// Turns true when the server is done draining: the runtime ends and
    /// connections still open are cut (also when the sender is dropped).
    pub stop: watch::Receiver<bool>,
}

/// Starts `w` on a thread of its own, with a single-threaded runtime.
/// Fails (and starts nothing) if the runtime or a socket cannot be set up.
pub fn spawn(w: Worker) -> io::Result<std::thread::JoinHandle<()>> {
    let Worker { index, listeners, shared, slots, drain, mut stop } = w;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let acceptors = {
        // Sockets join the reactor of the runtime that will poll them.
        let _in = rt.enter();
        listeners
            .into_iter()
            .map(|(name, s)| Ok((Arc::clone(&name), Acceptor::new(tokio::net::TcpListener::from_std(s)?, name))))
            .collect::<io::Result<Vec<_>>>()?
    };
    std::thread::Builder::new().name(format!("realip-w{index}")).spawn(move || {
        enter(index);
        rt.block_on(async move {
            let mut tasks = Vec::with_capacity(acceptors.len());
            for (name, acceptor) in acceptors {
                tasks.push(tokio::spawn(crate::listener::serve(
                    name,
                    acceptor,
                    Arc::clone(&shared),
                    Arc::clone(&slots),
                    drain.clone(),
                    index,
                )));
            }
            drop(drain);
            let reaper = tokio::spawn(prune_idle_upstreams(Arc::clone(&shared)));
            for t in tasks {
                let _ = t.await;
            }
            // The accept loops returned (the drain started); connections
            // finish on this runtime until the server says stop.
            let _ = stop.wait_for(|s| *s).await;
            reaper.abort();
        });
        rt.shutdown_background();
    })
}

/// Every second, closes the calling worker's upstream connections idle
/// for longer than their pool's `idle_timeout` ([`crate::upstream::Pool::prune_idle`]),
/// in the pools of the snapshot in force.
pub async fn prune_idle_upstreams(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        for pool in shared.snapshot.load().pools.values() {
            pool.prune_idle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_shares_one_port_even_when_it_asked_for_port_0() {
        let group = bind_group("127.0.0.1:0", 3).unwrap();
        let ports: Vec<u16> = group.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    }

    #[test]
    fn a_port_held_without_reuse_port_is_refused() {
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap().to_string();
        assert!(bind_group(&addr, 2).is_err());
    }

    #[test]
    fn threads_that_are_not_workers_use_shard_0() {
        std::thread::spawn(|| {
            assert_eq!(shard(4), 0);
            enter(5);
            assert_eq!(shard(4), 1);
            assert_eq!(shard(0), 0);
        })
        .join()
        .unwrap();
    }
}
