//! Heap allocations per proxied request, counted with dhat's global
//! allocator: a client and an upstream that allocate nothing per request
//! (raw sockets, reused buffers) talk through the real listener, routing,
//! client-IP resolution, header rewriting, upstream pool, metrics and
//! access log, all on one current-thread runtime, so every allocation
//! counted between two points is the proxy's.
//!
//! The count is deterministic (one thread, same requests), so it is a
//! regression test: it fails when the hot path allocates more than
//! `MAX_PER_REQUEST` times. It never measures time.
//!
//! `REALIP_ALLOC_PROFILE=1` writes `dhat-heap.json` (allocation sites,
//! for dh_view) instead of asserting.

#![allow(clippy::cast_precision_loss)] // counts far below 2^52

use std::sync::Arc;
use std::time::Duration;

mod common;

use realip_proxy::http::Shared;
use realip_proxy::log::AccessLog;
use realip_proxy::snapshot::Snapshot;
use realip_proxy::Config;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations one keep-alive HTTP/1.1 request may cost, measured: see
/// docs/benchmarks.md ("Allocations per request").
const MAX_PER_REQUEST: u64 = 26;
const WARMUP: u64 = 50;
const MEASURED: u64 = 400;

const UPSTREAM_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";

/// One request and its whole response on `s`, into `buf`.
async fn request(s: &mut TcpStream, buf: &mut [u8]) {
    s.write_all(
        b"GET /api/items?id=7 HTTP/1.1\r\nHost: app.example.com\r\nUser-Agent: alloc-test\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n",
    )
    .await
    .unwrap();
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..]).await.unwrap();
        assert!(n > 0, "proxy closed the connection");
        have += n;
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..have]));
            if have >= end + 4 + 2 {
                assert_eq!(&buf[end + 4..end + 6], b"ok");
                return;
            }
        }
    }
}

#[test]
fn allocations_per_proxied_request() {
    let profile = std::env::var_os("REALIP_ALLOC_PROFILE").is_some();
    let _profiler = if profile { dhat::Profiler::new_heap() } else { dhat::Profiler::builder().testing().build() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let cleanup = common::Cleanup::new("allocs");
    let dir = cleanup.0.clone();
    let per_request = rt.block_on(async {
        let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(common::upstream(up, UPSTREAM_RESPONSE));
        let config = Config::parse(&format!(
            r#"
[[listener]]
name = "web"
bind = "127.0.0.1:0"
[client_ip]
trusted = ["127.0.0.1"]
sources = ["xff"]
[forward]
x_forwarded_for = "append"
x_real_ip = true
[log]
path = "{}"
[[route]]
name = "api"
host = "app.example.com"
path_prefix = "/api"
upstream = "up"
[[upstream]]
name = "up"
endpoints = ["{up_addr}"]
"#,
            dir.join("access.log").display()
        ))
        .unwrap();
        let snapshot = Snapshot::build(config).unwrap();
        let log = AccessLog::open(&snapshot.config.log).unwrap();
        let shared = Arc::new(Shared::new(snapshot, log));
        let (addr, _drain) = common::serve(&shared).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        for _ in 0..WARMUP {
            request(&mut client, &mut buf).await;
        }
        let before = dhat::HeapStats::get().total_blocks;
        for _ in 0..MEASURED {
            request(&mut client, &mut buf).await;
        }
        let after = dhat::HeapStats::get().total_blocks;
        // Let the last access-log line be written before the counts are read.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let metrics = shared.metrics.render();
        assert!(
            metrics.contains(&format!(
                "realip_requests_total{{listener=\"web\",route=\"api\",status=\"200\"}} {}",
                WARMUP + MEASURED
            )),
            "every request counted: {metrics}"
        );
        (after - before) as f64 / MEASURED as f64
    });
    let lines = std::fs::read_to_string(dir.join("access.log")).unwrap().lines().count() as u64;
    assert_eq!(lines, WARMUP + MEASURED, "every request logged");
    println!("heap allocations per proxied request: {per_request:.2}");
    if !profile {
        assert!(
            per_request <= MAX_PER_REQUEST as f64,
            "{per_request:.2} allocations per request, more than {MAX_PER_REQUEST}: see REALIP_ALLOC_PROFILE"
        );
    }
}
