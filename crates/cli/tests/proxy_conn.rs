//! `realip proxy` connection lifecycle end to end, on loopback: HTTP/2
//! preface / first-request and idle timeouts (raw h2 frames, `openssl
//! s_client` with ALPN h2, curl and h2load from nghttp2), the admin
//! listener's limits, accept back-off under EMFILE (the proxy started with
//! `ulimit -n 64`), the global connection cap, a connection keeping the
//! limits of the snapshot it was accepted under across a reload, and idle
//! HTTP/1.1 keep-alive connections parked between requests.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    base_with_listener, echo, need, proxy, raw_http, read_head, self_signed, spawn, wait_line, Proxy, TempDir,
};
use serde_json::Value;

/// Starts the proxy with its RLIMIT_NOFILE lowered to `nofile`.
fn proxy_with_nofile(config: &str, nofile: u32) -> Proxy {
    let dir = TempDir::new("proxy-nofile");
    let path = dir.0.join("realip.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\"")).arg(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["proxy", "--config"]).arg(&path);
    let p = spawn(&mut cmd);
    let mut listeners = std::collections::HashMap::new();
    for _ in 0..=config.matches("[[listener]]").count() {
        let line = wait_line(&p.stderr, "\"listening\"", 20);
        let v: Value = serde_json::from_str(&line).unwrap();
        listeners.insert(v["listener"].as_str().unwrap().to_owned(), v["addr"].as_str().unwrap().parse().unwrap());
    }
    Proxy { proc: p, listeners, config: path, _dir: dir }
}

/// `common::base` with `listener_lines` in the `web` listener and `extra`
/// (e.g. a `[limits]` table) appended.
fn config(upstream: SocketAddr, listener_lines: &str, extra: &str) -> String {
    format!("{}\n{extra}", base_with_listener(upstream, listener_lines))
}

/// Reads until EOF or `within`; returns what came and whether the peer
/// closed (EOF or reset) in time.
fn read_until_closed(s: &mut TcpStream, within: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, false);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return (out, false),
            Err(_) => return (out, true), // reset: closed
        }
    }
}

// --- a minimal HTTP/2 client, enough to open a stream and idle ---

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], ty, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The next frame (type, flags, stream, payload), `None` at EOF / reset.
fn read_frame(s: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut h = [0u8; 9];
    s.read_exact(&mut h).ok()?;
    let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).ok()?;
    let stream = u32::from_be_bytes([h[5] & 0x7f, h[6], h[7], h[8]]);
    Some((h[3], h[4], stream, payload))
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ACK: u8 = 1;

/// `GET /healthz` on stream 1 (HPACK: static `:method GET`, `:scheme
/// http`, literal `:path` and `:authority`).
fn h2_get_healthz() -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x44, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x41, 1, b'x']);
    frame(HEADERS, END_STREAM | END_HEADERS, 1, &block)
}

/// A cleartext h2 connection that sends nothing after `PRI ` is closed
/// after `header_read_timeout`, not kept forever.
#[test]
fn h2_preface_that_never_completes_is_closed() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&config(up, "", "[limits]\nheader_read_timeout = \"500ms\"\nidle_timeout = \"60s\"\n"));
    let mut s = TcpStream::connect(p.addr("web")).unwrap();
    s.write_all(b"PRI ").unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    assert!(closed, "a connection stuck in the h2 preface is still open after 15 s");
    assert!(started.elapsed() >= Duration::from_millis(400), "closed before the header timeout");
    // A complete preface that never sends a request is closed as well.
    let mut s = TcpStream::connect(p.addr("web")).unwrap();
    s.write_all(PREFACE).unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(15));
    assert!(closed, "an h2 connection without a first request is still open after 15 s");
}

/// TLS with ALPN h2 and no preface: closed after `header_read_timeout`.
#[test]
fn tls_alpn_h2_without_preface_is_closed() {
    if !need(&["openssl"]) {
        return;
    }
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let dir = TempDir::new("tls");
    let (cert, key) = self_signed(&dir.0, "h2.example");
    let tls = format!("tls = {{ cert = \"{}\", key = \"{}\" }}", cert.display(), key.display());
    let p = proxy(&config(up, &tls, "[limits]\nheader_read_timeout = \"500ms\"\nidle_timeout = \"60s\"\n"));
    let mut client = Command::new("openssl")
        .args(["s_client", "-alpn", "h2", "-servername", "h2.example", "-connect"])
        .arg(p.addr("web").to_string())
        .stdin(Stdio::piped()) // held open: the client sends nothing after the handshake
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let exited = loop {
        if client.try_wait().unwrap().is_some() {
            break true;
        }
        if Instant::now() > deadline {
            let _ = client.kill();
            let _ = client.wait();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let _ = client.stdout.take().unwrap().read_to_string(&mut out);
    assert!(out.contains("ALPN protocol: h2"), "h2 was not negotiated: {out}");
    assert!(exited, "TLS + ALPN h2 without a preface is still open after 15 s");
}

/// An h2 connection that made a request and then idles, answering every
/// PING, gets GOAWAY and is closed after `idle_timeout`.
#[test]
fn idle_h2_connection_answering_pings_gets_goaway_then_close() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&config(up, "", "[limits]\nheader_read_timeout = \"2s\"\nidle_timeout = \"1s\"\n"));
    let mut s = TcpStream::connect(p.addr("web")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(PREFACE).unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    s.write_all(&h2_get_healthz()).unwrap();
    let (mut answered, mut pings, mut goaway) = (false, 0, None);
    let started = Instant::now();
    while let Some((ty, flags, stream, payload)) = read_frame(&mut s) {
        assert!(started.elapsed() < Duration::from_secs(15), "idle h2 connection still open after 15 s");
        match ty {
            SETTINGS if flags & ACK == 0 => s.write_all(&frame(SETTINGS, ACK, 0, &[])).unwrap(),
            PING if flags & ACK == 0 => {
                pings += 1;
                // A best effort: the proxy may close as we answer.
                let _ = s.write_all(&frame(PING, ACK, 0, &payload));
            }
            HEADERS | DATA if stream == 1 && flags & END_STREAM != 0 => answered = true,
            GOAWAY => goaway = Some(started.elapsed()),
            _ => {}
        }
    }
    assert!(answered, "the request on stream 1 was answered");
    let goaway = goaway.expect("GOAWAY before the close (graceful, not a socket cut)");
    assert!(goaway >= Duration::from_millis(900), "GOAWAY came before idle_timeout: {goaway:?}");
    eprintln!("GOAWAY after {goaway:?}, {pings} PINGs answered");
}

/// A raw upstream that answers every request after `delay`; the
/// receiver gets a message as each request head arrives.
fn slow_upstream(delay: Duration) -> (SocketAddr, std::sync::mpsc::Receiver<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tx.send(());
                std::thread::sleep(delay);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nslow\n");
            });
        }
    });
    (addr, rx)
}

/// Real h2 clients: a stream open longer than `idle_timeout` is not cut
/// (curl), and many multiplexed requests all succeed (h2load).
#[test]
fn h2_streams_longer_than_idle_timeout_and_h2load_succeed() {
    if !need(&["curl", "h2load"]) {
        return;
    }
    let (up, _) = slow_upstream(Duration::from_millis(2500));
    let p = proxy(&config(up, "", "[limits]\nheader_read_timeout = \"1s\"\nidle_timeout = \"1s\"\n"));
    let url = format!("http://{}/", p.addr("web"));
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "--http2-prior-knowledge", "-w", "%{http_code} %{http_version}"])
        .arg(&url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "slow\n200 2", "a 2.5 s response over h2 with idle_timeout 1 s");
    let (_e, fast) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&config(fast, "", "[limits]\nheader_read_timeout = \"1s\"\nidle_timeout = \"1s\"\n"));
    let out = Command::new("h2load")
        .args(["-n", "400", "-c", "4", "-m", "8", "-T", "20"])
        .arg(format!("http://{}/healthz", p.addr("web")))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("400 succeeded, 0 failed, 0 errored"), "{text}");
}

/// The admin listener answers a slow request head with 408, closes idle
/// keep-alive connections, and refuses connections over its cap.
#[test]
fn admin_listener_has_timeouts_and_a_connection_cap() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&config(up, "", "[limits]\nheader_read_timeout = \"300ms\"\nidle_timeout = \"500ms\"\n"));
    let admin = p.addr("admin");
    let mut slow = TcpStream::connect(admin).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (out, closed) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(closed && out.starts_with(b"HTTP/1.1 408"), "slow admin head: {:?}", String::from_utf8_lossy(&out));
    let mut idle = TcpStream::connect(admin).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (out, closed) = read_until_closed(&mut idle, Duration::from_secs(10));
    assert!(out.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&out));
    assert!(closed, "idle admin keep-alive connection still open after 10 s");
    drop(p);

    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&config(up, "", ""));
    let admin = p.addr("admin");
    let held: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(admin).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = TcpStream::connect(admin).unwrap();
        let (out, _) = read_until_closed(&mut c, Duration::from_secs(2));
        if out.starts_with(b"HTTP/1.1 503") {
            break;
        }
        assert!(Instant::now() < deadline, "no 503 over the admin cap: {:?}", String::from_utf8_lossy(&out));
    }
    drop(held);
    // The data listener was never affected.
    let (s, _) = raw_http(p.addr("web"), b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(s, 200);
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    #[allow(clippy::cast_precision_loss)]
    let secs = ticks as f64 / 100.0; // CLK_TCK is 100 on Linux
    secs
}

/// Out of file descriptors: accept errors back off (no spin, one log
/// line per listener), and both listeners serve again once fds free up.
#[test]
fn accept_errors_back_off_and_recover() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("SKIPPED: needs /proc to read the proxy's CPU time");
        return;
    }
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p =
        proxy_with_nofile(&config(up, "", "[limits]\nidle_timeout = \"120s\"\nheader_read_timeout = \"120s\"\n"), 64);
    // Hold more connections than the proxy has descriptors for.
    let held: Vec<TcpStream> = (0..90).map(|_| TcpStream::connect(p.addr("web")).unwrap()).collect();
    let line = wait_line(&p.proc.stderr, "\"accept_error\"", 20);
    assert!(line.contains("\"web\""), "{line}");
    // Admin connections wait in its backlog: its accept fails too.
    let admin_held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(p.addr("admin")).unwrap()).collect();
    let before = cpu_seconds(p.pid());
    std::thread::sleep(Duration::from_secs(3)); // the measurement window, not synchronisation
    let used = cpu_seconds(p.pid()) - before;
    let lines: Vec<String> = p.proc.stderr.try_iter().collect();
    let errors = lines.iter().filter(|l| l.contains("\"accept_error\"")).count();
    eprintln!("{used:.2} CPU-s in 3 s of EMFILE");
    assert!(used < 0.5, "{used:.2} CPU-s in 3 s of EMFILE: the accept loop spins");
    assert!(errors <= 3, "one accept_error line per listener and state, got {errors} more: {lines:?}");
    drop(held);
    drop(admin_held);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let web = raw_http(p.addr("web"), b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        let admin = raw_http(p.addr("admin"), b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        if matches!((&web, &admin), (Ok((200, _)), Ok((200, _)))) {
            break;
        }
        assert!(Instant::now() < deadline, "not serving after the fds were freed: {web:?} {admin:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(p.counter("realip_accept_errors_total{listener=\"web\"}") > 0);
    wait_line(&p.proc.stderr, "\"accept_recovered\"", 10);
}

/// `limits.max_connections` is one cap over all data listeners.
#[test]
fn max_connections_is_global_across_listeners() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = config(up, "", "[limits]\nmax_connections = 2\n").replacen(
        "[[route]]",
        "[[listener]]\nname = \"web2\"\nbind = \"127.0.0.1:0\"\n\n[[route]]",
        1,
    );
    let p = proxy(&cfg);
    let _a = TcpStream::connect(p.addr("web")).unwrap();
    let _b = TcpStream::connect(p.addr("web2")).unwrap();
    // Both held connections were accepted (each took a slot) ...
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.counter("realip_connections_total") < 2 {
        assert!(Instant::now() < deadline, "held connections not accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
    // ... so the first extra one, on a listener with one connection, is refused.
    let mut c = TcpStream::connect(p.addr("web")).unwrap();
    let (out, _) = read_until_closed(&mut c, Duration::from_secs(5));
    assert!(out.starts_with(b"HTTP/1.1 503"), "third connection: {:?}", String::from_utf8_lossy(&out));
}

/// A connection accepted before a reload keeps the limits of its own
/// snapshot once it reaches HTTP (here: after its PROXY header); new
/// connections get the new ones.
#[test]
fn a_connection_keeps_the_limits_it_was_accepted_with() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let pp = "proxy_protocol = \"required\"\nproxy_protocol_from = [\"127.0.0.0/8\"]";
    let old = config(up, pp, "[limits]\nheader_read_timeout = \"10s\"\n");
    let p = proxy(&old);
    let mut s = TcpStream::connect(p.addr("web")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.counter("realip_connections_total{listener=\"web\"}") < 1 {
        assert!(Instant::now() < deadline, "connection not accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(&p.config, old.replace("header_read_timeout = \"10s\"", "header_read_timeout = \"300ms\"")).unwrap();
    assert!(Command::new("kill").args(["-HUP", &p.pid().to_string()]).status().unwrap().success());
    wait_line(&p.proc.stderr, "\"reloaded\"", 10);
    s.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 4000 80\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (out, closed) = read_until_closed(&mut s, Duration::from_millis(1500));
    assert!(!closed && out.is_empty(), "old connection got the new 300ms limit: {:?}", String::from_utf8_lossy(&out));
    s.write_all(b"Connection: close\r\n\r\n").unwrap();
    let (out, _) = read_until_closed(&mut s, Duration::from_secs(10));
    assert!(out.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&out));
    // A new connection gets the new limit.
    let mut s = TcpStream::connect(p.addr("web")).unwrap();
    s.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 4000 80\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (out, closed) = read_until_closed(&mut s, Duration::from_secs(5));
    assert!(closed && out.starts_with(b"HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&out));
}

/// SIGTERM with HTTP/2 connections: a request in flight (curl) finishes,
/// an idle connection gets GOAWAY, and the drain completes.
#[test]
fn sigterm_drains_h2_connections() {
    if !need(&["curl"]) {
        return;
    }
    let (up, arrived) = slow_upstream(Duration::from_millis(1500));
    let p = proxy(&config(up, "", "[limits]\nheader_read_timeout = \"30s\"\nidle_timeout = \"60s\"\n"));
    let mut idle = TcpStream::connect(p.addr("web")).unwrap();
    idle.write_all(PREFACE).unwrap();
    idle.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    let url = format!("http://{}/", p.addr("web"));
    let curl = std::thread::spawn(move || {
        Command::new("curl")
            .args(["-s", "--max-time", "20", "--http2-prior-knowledge", "-w", "%{http_code} %{http_version}"])
            .arg(&url)
            .output()
            .unwrap()
    });
    arrived.recv_timeout(Duration::from_secs(10)).expect("the request reached the upstream");
    assert!(Command::new("kill").args(["-TERM", &p.pid().to_string()]).status().unwrap().success());
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut goaway = false;
    while let Some((ty, flags, _, payload)) = read_frame(&mut idle) {
        match ty {
            SETTINGS if flags & ACK == 0 => idle.write_all(&frame(SETTINGS, ACK, 0, &[])).unwrap(),
            // The graceful GOAWAY waits for a PING round trip.
            PING if flags & ACK == 0 => {
                let _ = idle.write_all(&frame(PING, ACK, 0, &payload));
            }
            GOAWAY => goaway = true,
            _ => {}
        }
    }
    assert!(goaway, "the idle h2 connection got GOAWAY on drain");
    let out = curl.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "slow\n200 2", "the in-flight h2 request finished");
    wait_line(&p.proc.stderr, "\"drained\"", 10);
    let mut p = p;
    let status = p.proc.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Reads one response (head, then a `content-length` body): (status, body).
fn read_response(s: &mut TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = String::from_utf8_lossy(&read_head(s)).into_owned();
    let status = head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A keep-alive connection that idles past the park delay (100 ms) gives
/// hyper's state back and waits on the bare socket; it must keep serving
/// exactly as before: the next request, a request head split across the
/// park, two pipelined requests in one write, and the idle timeout still
/// closing it.
#[test]
fn parked_keep_alive_connections_keep_serving_and_still_time_out() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&config(up, "", "[limits]\nidle_timeout = \"2s\"\nheader_read_timeout = \"1s\"\n"));
    let web = p.addr("web");
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let mut c = TcpStream::connect(web).unwrap();
    c.write_all(&get("/one")).unwrap();
    let (status, body) = read_response(&mut c);
    assert_eq!(status, 200, "{body}");
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(400)); // parked by now
        c.write_all(&get(&format!("/round-{round}"))).unwrap();
        let (status, body) = read_response(&mut c);
        assert_eq!(status, 200, "round {round}: {body}");
        assert!(body.contains(&format!("/round-{round}")), "round {round}: {body}");
    }
    // Half a head, a pause, the rest: one request.
    std::thread::sleep(Duration::from_millis(400));
    let req = get("/split");
    c.write_all(&req[..7]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.write_all(&req[7..]).unwrap();
    let (status, body) = read_response(&mut c);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("/split"), "{body}");
    // Two requests in one write after a park: both answered, in order.
    std::thread::sleep(Duration::from_millis(400));
    let mut two = get("/first");
    two.extend_from_slice(&get("/second"));
    c.write_all(&two).unwrap();
    let (s1, b1) = read_response(&mut c);
    let (s2, b2) = read_response(&mut c);
    assert_eq!((s1, s2), (200, 200), "{b1} {b2}");
    assert!(b1.contains("/first") && b2.contains("/second"), "{b1} {b2}");
    // The idle timeout still applies to a parked connection: closed, with
    // nothing sent (no 408: no request had started).
    let started = Instant::now();
    let (rest, closed) = read_until_closed(&mut c, Duration::from_secs(6));
    assert!(closed, "parked connection not closed after idle_timeout");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500), "closed after {waited:?}, before idle_timeout");
}
