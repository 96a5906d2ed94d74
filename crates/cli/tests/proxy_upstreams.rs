//! `realip proxy` in front of real upstreams that close idle keep-alive
//! connections sooner than the proxy would: nginx with `keepalive_timeout`
//! 1 s and 2 s serving a file, and uvicorn (PyPI) with
//! `--timeout-keep-alive` 1 and 2. Requests come with gaps around those
//! timeouts, one after another and 50 at once; none may fail, and none may
//! hang (a stale pooled connection used to hold a request until the
//! 60 s response timeout).

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, need, peer_missing, proxy, raw_http, spawn, wait_port, Proc, TempDir};

/// A request that takes longer than this is a hang, not a slow answer:
/// loopback round trips take milliseconds, and the hang this test guards
/// against lasted until a timeout (10 s per try, 60 s in all). On an idle
/// machine every request is under the issue's 1 s (the slowest is
/// printed); 3 s keeps a CI machine busy with other tests from failing it.
const HANG: Duration = Duration::from_secs(3);

/// Gaps (seconds) before every 20th request: on both sides of 1 s and 2 s.
const GAPS: [f64; 10] = [0.5, 0.95, 1.0, 1.05, 1.5, 2.0, 2.05, 2.5, 3.0, 1.2];

fn nginx(dir: &TempDir, keepalive: &str) -> (Proc, SocketAddr) {
    let root = dir.0.join(format!("www-{keepalive}"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "hello from nginx\n").unwrap();
    let port = free_port();
    let conf = dir.0.join(format!("nginx-{keepalive}.conf"));
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\npid {pid};\nerror_log stderr;\nworker_processes 1;\nevents {{}}\n\
             http {{\n  access_log off;\n  keepalive_timeout {keepalive};\n  \
             client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n  \
             uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n  \
             server {{\n    listen 127.0.0.1:{port};\n    root {root};\n  }}\n}}\n",
            pid = dir.0.join(format!("nginx-{keepalive}.pid")).display(),
            tmp = dir.0.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let p = spawn(Command::new("nginx").arg("-p").arg(&dir.0).arg("-c").arg(&conf));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr, 20);
    (p, addr)
}

const APP: &str = r#"
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b"hello from uvicorn\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"#;

fn uvicorn(python: &Path, dir: &TempDir, keepalive: u32) -> (Proc, SocketAddr) {
    std::fs::write(dir.0.join("ka_app.py"), APP).unwrap();
    let port = free_port();
    let p = spawn(
        Command::new(python)
            .args(["-m", "uvicorn", "ka_app:app", "--host", "127.0.0.1", "--log-level", "warning"])
            .arg(format!("--port={port}"))
            .arg(format!("--timeout-keep-alive={keepalive}"))
            .arg("--app-dir")
            .arg(&dir.0),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr, 30);
    (p, addr)
}

/// One GET through the proxy for `host`: (status, body, time taken).
fn one(web: SocketAddr, host: &str) -> (u16, String, Duration) {
    let t = Instant::now();
    let req = format!("GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let (status, body) = raw_http(web, req.as_bytes()).unwrap_or((0, String::new()));
    (status, body, t.elapsed())
}

/// 200 sequential requests with gaps, then twice 50 at once with a 2.5 s
/// pause between: every stale pooled connection is met at once.
fn exercise(web: SocketAddr, host: &'static str, want: &str) -> (Vec<String>, Duration) {
    let mut bad = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut check = |what: String, (status, body, took): (u16, String, Duration)| {
        slowest = slowest.max(took);
        if status != 200 || !body.contains(want) || took >= HANG {
            bad.push(format!("{host} {what}: status {status} in {took:?}: {body:?}"));
        }
    };
    for k in 0..200 {
        if k % 20 == 0 {
            std::thread::sleep(Duration::from_secs_f64(GAPS[k / 20]));
        }
        check(format!("sequential #{k}"), one(web, host));
    }
    for round in 0..2 {
        std::thread::sleep(Duration::from_millis(2500));
        let handles: Vec<_> = (0..50).map(|_| std::thread::spawn(move || one(web, host))).collect();
        for (i, h) in handles.into_iter().enumerate() {
            check(format!("concurrent round {round} #{i}"), h.join().unwrap());
        }
    }
    (bad, slowest)
}

#[test]
fn upstreams_closing_idle_connections_never_fail_or_hang_a_request() {
    if !need(&["nginx"]) {
        return;
    }
    let Some(python) = common::uvicorn_python() else {
        peer_missing("uvicorn could not be installed from PyPI");
        return;
    };
    let dir = TempDir::new("keepalive");
    let (_n1, n1) = nginx(&dir, "1s");
    let (_n2, n2) = nginx(&dir, "2s");
    let (_u1, u1) = uvicorn(&python, &dir, 1);
    let (_u2, u2) = uvicorn(&python, &dir, 2);
    let mut cfg = String::from(
        "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n\n[admin]\nbind = \"127.0.0.1:0\"\n\n\
         [lifecycle]\nwatch_interval = \"0s\"\ndrain_delay = \"0s\"\n\n[log]\npath = \"/dev/null\"\n",
    );
    // The proxy keeps idle connections longer than these upstreams do
    // (its default is 4 s): the pool must cope with their closes.
    for (name, addr) in [("n1", n1), ("n2", n2), ("u1", u1), ("u2", u2)] {
        let _ = write!(
            cfg,
            "\n[[route]]\nhost = \"{name}.test\"\nupstream = \"{name}\"\n\n[[upstream]]\nname = \"{name}\"\nendpoints = [\"{addr}\"]\n"
        );
    }
    let p = proxy(&cfg);
    let web = p.addr("web");
    let runs: Vec<_> = [("n1.test", "nginx"), ("n2.test", "nginx"), ("u1.test", "uvicorn"), ("u2.test", "uvicorn")]
        .into_iter()
        .map(|(host, want)| std::thread::spawn(move || exercise(web, host, want)))
        .collect();
    let mut bad = Vec::new();
    for r in runs {
        let (b, slowest) = r.join().unwrap();
        eprintln!("slowest request: {slowest:?}");
        bad.extend(b);
    }
    assert!(bad.is_empty(), "{} of 1200 requests failed or hung:\n{}", bad.len(), bad.join("\n"));
    // Stale connections were met and handled, never counted as errors.
    assert_eq!(p.counter("realip_upstream_errors_total"), 0, "{}", p.metrics());
}
