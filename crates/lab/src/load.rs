//! The clients' traffic: bounded HTTP/1.1 requests from inside the client
//! namespaces, one new connection per request (so every request is a new
//! flow for the load balancer to place), each recorded as a [`Sample`].
//!
//! Bounded in count and time: a run stops at `requests` or at `duration`,
//! whichever comes first, and each request has a connect and a total
//! timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpSocket;

use tokio::runtime::Handle;

/// What one request saw.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Completion time since the start of the run.
    pub at: Duration,
    /// The client that sent it.
    pub client: IpAddr,
    /// HTTP status, if a response came.
    pub status: Option<u16>,
    /// The echo app's JSON answer, for 200s.
    pub body: Option<serde_json::Value>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

impl Sample {
    /// A 200 with the echo app's answer.
    pub fn ok(&self) -> bool {
        self.status == Some(200) && self.body.is_some()
    }
}

/// How much traffic to send.
#[derive(Clone, Debug)]
pub struct Load {
    /// Stop after this many requests (all clients together).
    pub requests: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// Concurrent requests per client.
    pub concurrency: usize,
    /// Pause between a worker's requests (steady load), if any.
    pub pause: Option<Duration>,
    /// Extra request header lines (`Name: value`).
    pub headers: Vec<String>,
    /// Connect timeout (a dropped SYN ends here).
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            requests: 300,
            duration: Duration::from_secs(20),
            concurrency: 6,
            pause: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
        }
    }
}

/// What every lab request's `User-Agent` starts with, before the sender's address.
pub const USER_AGENT_PREFIX: &str = "realip-lab client=";

/// The `User-Agent` of requests sent from `source`: it names the client, so
/// an ingress access log can be split per client even where a SNATing hop
/// replaced the client's address (see [`crate::measure`]).
pub fn user_agent(source: IpAddr) -> String {
    format!("{USER_AGENT_PREFIX}{source}")
}

/// One request on a new connection from `source`; the status and body.
pub async fn request(
    source: IpAddr,
    target: SocketAddr,
    headers: &[String],
    load: &Load,
) -> Result<(u16, Vec<u8>), String> {
    let connect = async {
        let sock = if source.is_ipv6() { TcpSocket::new_v6()? } else { TcpSocket::new_v4()? };
        sock.bind(SocketAddr::new(source, 0))?;
        sock.connect(target).await
    };
    let mut s = match tokio::time::timeout(load.connect_timeout, connect).await {
        Err(_) => return Err(format!("connect timeout after {} ms", load.connect_timeout.as_millis())),
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Ok(Ok(s)) => s,
    };
    let mut req = format!("GET /debug/ip HTTP/1.1\r\nHost: app.example\r\nUser-Agent: {}\r\n", user_agent(source));
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    let exchange = async {
        s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) if buf.len() + n <= 256 * 1024 => buf.extend_from_slice(&chunk[..n]),
                Ok(_) => return Err("response larger than 256 KiB".to_owned()),
                Err(e) if buf.is_empty() => return Err(format!("read: {e}")),
                Err(_) => break,
            }
        }
        Ok(buf)
    };
    let buf = tokio::time::timeout(load.timeout, exchange)
        .await
        .map_err(|_| format!("no complete response within {} ms", load.timeout.as_millis()))??;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or("connection closed without a response")?;
    let status = std::str::from_utf8(buf.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("malformed status line")?;
    Ok((status, buf[head_end + 4..].to_vec()))
}

/// Sends `load` from every `(runtime in the client's namespace, client
/// address, target)`; returns the samples in completion order.
pub async fn run(clients: Vec<(Handle, IpAddr, SocketAddr)>, load: Load) -> Vec<Sample> {
    let start = Instant::now();
    let issued = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for (rt, client, target) in clients {
        for _ in 0..load.concurrency.max(1) {
            let (issued, tx, load) = (Arc::clone(&issued), tx.clone(), load.clone());
            workers.push(rt.spawn(async move {
                while issued.fetch_add(1, Ordering::Relaxed) < load.requests && start.elapsed() < load.duration {
                    let r = request(client, target, &load.headers, &load).await;
                    let mut sample = Sample { at: start.elapsed(), client, status: None, body: None, error: None };
                    match r {
                        Ok((status, body)) => {
                            sample.status = Some(status);
                            if status == 200 {
                                sample.body = serde_json::from_slice(&body).ok();
                            } else {
                                sample.error = Some(format!("HTTP {status}"));
                            }
                        }
                        Err(e) => sample.error = Some(e),
                    }
                    if tx.send(sample).is_err() {
                        return;
                    }
                    if let Some(p) = load.pause {
                        tokio::time::sleep(p).await; // pacing a steady load, not synchronisation
                    }
                }
            }));
        }
    }
    drop(tx);
    let mut samples = Vec::new();
    while let Some(s) = rx.recv().await {
        samples.push(s);
    }
    for w in workers {
        let _ = w.await;
    }
    samples
}
