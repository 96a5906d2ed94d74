//! `realip proxy` end to end on loopback, against real peers: curl (HTTP/1.1,
//! h2c, h2 over TLS with SNI), HAProxy `send-proxy-v2`, nginx `stream`
//! `proxy_protocol on`, raw sockets with bad PROXY headers, and
//! `realip echo` as the upstream that shows what it received.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    base, base_with_listener, curl, echo, get, need, peer_missing, proxy, proxy_args, raw_http, self_signed, spawn,
    wait_line, wait_port, TempDir,
};
use serde_json::Value;

#[test]
fn http1_and_h2c_carry_the_client_to_the_upstream_and_the_log() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&base(up, ""));
    let web = p.addr("web");
    // An untrusted client (127.0.0.1 is not in 10.0.0.0/8) forging every header.
    let (s, v) = get(
        web,
        "/debug/ip",
        &["X-Forwarded-For: 1.2.3.4", "X-Real-IP: 1.2.3.4", "Forwarded: for=1.2.3.4", "X-Forwarded-Proto: https"],
    );
    assert_eq!(s, 200);
    assert_eq!(v["x_forwarded_for"], "127.0.0.1", "forged chain replaced by the hop: {v}");
    assert_eq!(v["x_real_ip"], "127.0.0.1");
    assert!(v["forwarded"].is_null());
    assert_eq!(v["client_ip"], "127.0.0.1");
    let line = wait_line(&p.proc.stdout, "\"path\":\"/debug/ip\"", 10);
    let log: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (log["client_ip"].as_str(), log["client_ip_source"].as_str(), log["status"].as_u64()),
        (Some("127.0.0.1"), Some("peer"), Some(200))
    );
    assert!(log["peer"].as_str().unwrap().starts_with("127.0.0.1:") && log["bytes"].as_u64().unwrap() > 0, "{log}");
    if !need(&["curl"]) {
        return;
    }
    let (ok, body) = curl(&["--http2-prior-knowledge", "-w", "\n%{http_version}", &format!("http://{web}/h2c")]);
    assert!(ok, "{body}");
    let (json, version) = body.rsplit_once('\n').unwrap();
    assert_eq!(version, "2");
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!((v["x_real_ip"].as_str(), v["host"].as_str()), (Some("127.0.0.1"), Some(web.to_string().as_str())));
}

#[test]
fn trusted_chain_is_kept_and_appended() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&base(up, "").replace(r#"trusted = ["10.0.0.0/8"]"#, r#"trusted = ["127.0.0.1"]"#));
    let (_, v) = get(p.addr("web"), "/", &["X-Forwarded-For: 203.0.113.7", "X-Request-Id: abc-123"]);
    assert_eq!(v["x_forwarded_for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(v["x_real_ip"], "203.0.113.7");
    let (_, h) = get(p.addr("web"), "/debug/headers", &["X-Request-Id: abc-123"]);
    assert_eq!(common::header_values(&h, "x-request-id"), ["abc-123"], "a trusted hop's request id is passed through");
}

#[test]
fn tls_with_sni_and_alpn_h2() {
    if !need(&["curl", "openssl"]) {
        return;
    }
    let dir = TempDir::new("tls");
    let (a_cert, a_key) = self_signed(&dir.0, "a.test");
    let (b_cert, b_key) = self_signed(&dir.0, "b.test");
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base_with_listener(
        up,
        &format!(
            "tls = {{ cert = \"{}\", key = \"{}\", certificates = [{{ cert = \"{}\", key = \"{}\" }}] }}",
            a_cert.display(),
            a_key.display(),
            b_cert.display(),
            b_key.display()
        ),
    );
    let p = proxy(&cfg);
    let port = p.addr("web").port();
    for (name, ca) in [("a.test", &a_cert), ("b.test", &b_cert)] {
        let (ok, body) = curl(&[
            "--http2",
            "--cacert",
            ca.to_str().unwrap(),
            "--resolve",
            &format!("{name}:{port}:127.0.0.1"),
            "-w",
            "\n%{http_version}",
            &format!("https://{name}:{port}/debug/ip"),
        ]);
        assert!(ok, "{name}: certificate chosen by SNI must verify against its own CA: {body}");
        let (json, version) = body.rsplit_once('\n').unwrap();
        assert_eq!(version, "2", "ALPN h2");
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["x_real_ip"], "127.0.0.1");
        let (_, h) = (0, v);
        assert!(h["host"].as_str().unwrap().starts_with(name));
    }
    // HTTP/1.1 over TLS too, and X-Forwarded-Proto says https.
    let (ok, body) = curl(&[
        "--http1.1",
        "--cacert",
        a_cert.to_str().unwrap(),
        "--resolve",
        &format!("a.test:{port}:127.0.0.1"),
        &format!("https://a.test:{port}/debug/headers"),
    ]);
    assert!(ok && body.contains("\"x-forwarded-proto\",\"value\":\"https\""), "{body}");
}

fn haproxy_cfg(dir: &Path, front: u16, backend: SocketAddr, opts: &str) -> PathBuf {
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  log stderr local0\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{front}\n  default_backend b\n\
             backend b\n  server p {backend} {opts}\n"
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn behind_haproxy_send_proxy_v2() {
    if !need(&["haproxy", "curl"]) {
        return;
    }
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base_with_listener(up, "proxy_protocol = \"required\"\nproxy_protocol_from = [\"127.0.0.1\"]");
    let p = proxy(&cfg);
    let dir = TempDir::new("haproxy");
    let front = common::free_port();
    let hcfg = haproxy_cfg(&dir.0, front, p.addr("web"), "send-proxy-v2 proxy-v2-options unique-id");
    let _h = spawn(Command::new("haproxy").arg("-db").arg("-f").arg(&hcfg));
    wait_port(format!("127.0.0.1:{front}").parse().unwrap(), 20);
    let (ok, body) = curl(&[
        "--interface",
        "127.0.0.2",
        "-H",
        "X-Forwarded-For: 1.2.3.4",
        &format!("http://127.0.0.1:{front}/debug/ip"),
    ]);
    assert!(ok, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["x_real_ip"], "127.0.0.2", "client from the PROXY header, forged XFF ignored: {v}");
    assert_eq!(v["x_forwarded_for"], "127.0.0.2");
    let line = wait_line(&p.proc.stdout, "\"client_ip_source\":\"proxy-protocol\"", 10);
    assert!(line.contains("\"proxy_src\":\"127.0.0.2:"), "{line}");
    // Direct connections without a PROXY header are closed and counted.
    assert!(raw_http(p.addr("web"), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_err());
    wait_line(&p.proc.stderr, "connection_rejected", 10);
    assert!(p.counter("realip_proxy_protocol_errors_total") >= 1);
}

#[test]
fn behind_nginx_stream_proxy_protocol_v1() {
    if !need(&["nginx", "curl"]) {
        return;
    }
    let module = ["/usr/lib/nginx/modules/ngx_stream_module.so", "/usr/share/nginx/modules/ngx_stream_module.so"]
        .into_iter()
        .find(|m| Path::new(m).exists());
    let Some(module) = module else {
        peer_missing("nginx stream module (libnginx-mod-stream) not installed");
        return;
    };
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base_with_listener(up, "proxy_protocol = \"required\"\nproxy_protocol_from = [\"127.0.0.1\"]");
    let p = proxy(&cfg);
    let dir = TempDir::new("nginx");
    let front = common::free_port();
    let conf = dir.0.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "load_module {module};\ndaemon off;\nmaster_process off;\npid {pid};\nerror_log stderr;\nevents {{}}\n\
             stream {{\n  server {{\n    listen 127.0.0.1:{front};\n    proxy_protocol on;\n    proxy_pass {web};\n  }}\n}}\n",
            pid = dir.0.join("nginx.pid").display(),
            web = p.addr("web")
        ),
    )
    .unwrap();
    let _n = spawn(Command::new("nginx").arg("-p").arg(&dir.0).arg("-c").arg(&conf));
    wait_port(format!("127.0.0.1:{front}").parse().unwrap(), 20);
    let (ok, body) = curl(&["--interface", "127.0.0.3", &format!("http://127.0.0.1:{front}/debug/ip")]);
    assert!(ok, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["x_real_ip"], "127.0.0.3");
}

#[test]
fn bad_proxy_headers_close_the_connection_and_are_counted() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base_with_listener(
        up,
        "proxy_protocol = \"optional\"\nproxy_protocol_from = [\"127.0.0.1\"]\nheader_timeout = \"300ms\"",
    );
    let p = proxy(&cfg);
    let web = p.addr("web");
    let closed = |bytes: &[u8]| {
        let mut s = TcpStream::connect(web).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut buf = [0u8; 64];
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    };
    assert!(closed(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\nGET / HTTP/1.1\r\n\r\n"), "malformed v1");
    assert!(closed(b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x40abcd"), "truncated v2 (times out)");
    assert!(closed(b"PROXY TCP4 1.2.3.4"), "partial header (times out)");
    // A well-formed header with plain HTTP after it works.
    let (s, body) = raw_http(
        web,
        b"PROXY TCP4 203.0.113.9 127.0.0.1 5000 80\r\nGET /debug/ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((s, v["x_real_ip"].as_str()), (200, Some("203.0.113.9")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.counter("realip_proxy_protocol_errors_total") < 3 {
        assert!(Instant::now() < deadline, "{}", p.metrics());
        std::thread::sleep(Duration::from_millis(20));
    }
    let m = p.metrics();
    assert!(m.contains("reason=\"malformed\"") && m.contains("reason=\"timeout\""), "{m}");
}

#[test]
fn untrusted_sender_of_proxy_header_is_refused() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base_with_listener(up, "proxy_protocol = \"optional\"\nproxy_protocol_from = [\"10.0.0.0/8\"]");
    let p = proxy(&cfg);
    let r = raw_http(p.addr("web"), b"PROXY TCP4 203.0.113.9 127.0.0.1 5000 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.is_err(), "{r:?}");
    let line = wait_line(&p.proc.stderr, "connection_rejected", 10);
    assert!(line.contains("not allowed to send a PROXY header"), "{line}");
}

#[test]
fn policy_uses_the_resolved_client_not_forged_headers() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    // Deny the forged address: an untrusted client claiming it is not denied.
    let p = proxy(&base(up, "\n[policy]\ndeny = [\"1.2.3.4\"]\n"));
    let (s, _) = get(p.addr("web"), "/", &["X-Forwarded-For: 1.2.3.4"]);
    assert_eq!(s, 200);
    drop(p);
    // Deny the real client: forging another address does not help.
    let p = proxy(&base(up, "\n[policy]\ndeny = [\"127.0.0.1\"]\n"));
    let (s, _) = get(p.addr("web"), "/", &["X-Forwarded-For: 198.51.100.1"]);
    assert_eq!(s, 403);
    assert_eq!(p.counter("realip_denied_total"), 1);
    drop(p);
    // Rate limit: 429 with Retry-After once the burst is spent.
    let p = proxy(&base(up, "\n[policy]\nrate = { per_second = 0.5, burst = 2 }\n"));
    let statuses: Vec<u16> = (0..4).map(|_| get(p.addr("web"), "/", &[]).0).collect();
    assert_eq!(statuses, [200, 200, 429, 429]);
    let (s, body) = raw_http(p.addr("web"), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(s, 429, "{body}");
    let mut c = TcpStream::connect(p.addr("web")).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(resp.to_ascii_lowercase().contains("retry-after: 2"), "{resp}");
}

#[test]
fn limits_answer_with_the_right_status() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&base(up, "\n[limits]\nmax_body_bytes = 100\nmax_headers = 20\nmax_header_bytes = 8192\n"));
    let web = p.addr("web");
    let (s, _) = raw_http(
        web,
        format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\nConnection: close\r\n\r\n{}", "a".repeat(101))
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(s, 413);
    let many = (0..30).map(|i| ["X-H", &i.to_string(), ": v\r\n"].concat()).collect::<String>();
    let (s, _) =
        raw_http(web, format!("GET / HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(s, 431);
    let (s, _) = raw_http(
        web,
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "b".repeat(20_000)).as_bytes(),
    )
    .unwrap_or((431, String::new()));
    assert_eq!(s, 431);
    let cfg = base(up, "").replace("[[route]]\n", "[[route]]\npath_prefix = \"/api\"\n");
    let p = proxy(&cfg);
    let (s, _) = get(p.addr("web"), "/other", &[]);
    assert_eq!(s, 404);
}

#[test]
fn l4_mode_and_upstream_proxy_protocol_out() {
    let (_e, up) = echo(&["--trust", "127.0.0.1", "--proxy-protocol", "required", "--source", "proxy-protocol"]);
    let cfg = format!(
        r#"
[[listener]]
name = "l4"
bind = "127.0.0.1:0"
mode = "tcp"
upstream = "pp"

[[listener]]
name = "web"
bind = "127.0.0.1:0"

[[route]]
upstream = "pp"

[[upstream]]
name = "pp"
endpoints = ["{up}"]
proxy_protocol = "v2"

[admin]
bind = "127.0.0.1:0"
"#
    );
    let p = proxy(&cfg);
    // L4: the echo app receives PROXY v2 naming our test client.
    let (s, v) = get(p.addr("l4"), "/debug/ip", &[]);
    assert_eq!(s, 200);
    assert_eq!((v["proxy_protocol"]["version"].as_u64(), v["source"].as_str()), (Some(2), Some("proxy-protocol")));
    assert_eq!(v["client_ip"], "127.0.0.1");
    // One L4 access-log line per connection, naming the upstream used.
    let line = wait_line(&p.proc.stdout, "\"mode\":\"tcp\"", 10);
    let l: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((l["listener"].as_str(), l["client_ip"].as_str()), (Some("l4"), Some("127.0.0.1")));
    assert_eq!(l["upstream"], up.to_string());
    assert!(l["bytes_in"].as_u64().unwrap() > 0 && l["bytes_out"].as_u64().unwrap() > 0, "{line}");
    assert_eq!(l["error"], Value::Null);
    // HTTP with PROXY v2 towards the upstream: one connection per request.
    let (s, v) = get(p.addr("web"), "/debug/ip", &[]);
    assert_eq!(s, 200);
    assert_eq!(v["proxy_protocol"]["version"], 2);
}

#[test]
fn check_prints_every_error_with_its_key() {
    let dir = TempDir::new("check");
    let path = dir.0.join("bad.toml");
    std::fs::write(
        &path,
        base("127.0.0.1:1".parse().unwrap(), "")
            .replace("10.0.0.0/8", "10.0.0.0/33")
            .replace("upstream = \"app\"", "upstream = \"nope\""),
    )
    .unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_realip")).args(["proxy", "--check", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("client_ip.trusted: `10.0.0.0/33` is not a CIDR")
            && err.contains("route[0].upstream: no [[upstream]] named `nope`"),
        "{err}"
    );
}

/// A tiny load loop: `n` keep-alive requests, counting non-200 answers and
/// broken connections as failures. Bounded in count and time.
fn load(addr: SocketAddr, n: usize, stop: &std::sync::atomic::AtomicBool) -> (usize, usize) {
    let (mut ok, mut failed) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conn: Option<std::io::BufReader<TcpStream>> = None;
    for _ in 0..n {
        if stop.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() > deadline {
            break;
        }
        let c = conn.get_or_insert_with(|| std::io::BufReader::new(TcpStream::connect(addr).unwrap()));
        if one_request(c) == Some(200) {
            ok += 1;
        } else {
            failed += 1;
            conn = None;
        }
    }
    (ok, failed)
}

fn one_request(c: &mut std::io::BufReader<TcpStream>) -> Option<u16> {
    use std::io::BufRead;
    c.get_mut().set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    c.get_mut().write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut status = String::new();
    c.read_line(&mut status).ok()?;
    let code = status.split(' ').nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        c.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    c.read_exact(&mut body).ok()?;
    Some(code)
}

fn kill(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

#[test]
fn reloads_under_load_lose_nothing() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let good = base(up, "");
    let bad = good.replace("10.0.0.0/8", "10.0.0.0/33");
    let p = proxy(&good);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let web = p.addr("web");
        let stop = &stop;
        let loader = s.spawn(move || load(web, 100_000, stop));
        for i in 0..100u64 {
            std::fs::write(&p.config, if i % 2 == 0 { &bad } else { &good }).unwrap();
            kill(p.pid(), "-HUP");
            // Wait for this reload to be processed before the next.
            let deadline = Instant::now() + Duration::from_secs(10);
            while p.counter("realip_config_reloads_total") < i + 1 {
                assert!(Instant::now() < deadline, "reload {i} not processed");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, failed) = loader.join().unwrap();
        assert_eq!(failed, 0, "{ok} ok");
        assert!(ok > 0);
    });
    let m = p.metrics();
    assert!(
        m.contains("realip_config_reloads_total{result=\"ok\"} 50")
            && m.contains("realip_config_reloads_total{result=\"error\"} 50"),
        "{m}"
    );
}

/// Review 14 F7: the sockets are bound at start, so a reload that renames
/// a listener (or adds one) is refused as a whole: the running
/// configuration keeps serving on the old name, nothing is dropped.
#[test]
fn a_reload_that_changes_the_listeners_is_refused() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let good = base(up, "");
    let p = proxy(&good);
    let get = || raw_http(p.addr("web"), b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap().0;
    assert_eq!(get(), 200);
    let renamed = good.replacen("name = \"web\"", "name = \"public\"", 1);
    assert_ne!(renamed, good, "the test's config names its listener `web`");
    let added = format!("{good}\n[[listener]]\nname = \"more\"\nbind = \"127.0.0.1:0\"\n");
    for (i, cfg) in [renamed, added].iter().enumerate() {
        std::fs::write(&p.config, cfg).unwrap();
        kill(p.pid(), "-HUP");
        let line = wait_line(&p.proc.stderr, "reload_failed", 10);
        assert!(line.contains("listener names or bind addresses changed"), "{line}");
        assert!(p.metrics().contains(&format!("realip_config_reloads_total{{result=\"error\"}} {}", i + 1)));
        assert_eq!(get(), 200, "the running configuration still serves");
    }
}

#[test]
fn sigterm_drains_without_failing_requests() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&base(up, "").replace("drain_delay = \"300ms\"", "drain_delay = \"1s\""));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let web = p.addr("web");
        let stop = &stop;
        let loader = s.spawn(move || load(web, 100_000, stop));
        std::thread::sleep(Duration::from_millis(200)); // let some load run first (not synchronisation)
        kill(p.pid(), "-TERM");
        wait_line(&p.proc.stderr, "draining", 10);
        let (s, _) =
            raw_http(p.addr("admin"), b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(s, 503, "/readyz during drain");
        // Traffic is still served during the drain delay.
        let (s, _) = raw_http(p.addr("web"), b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!(s, 200);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (ok, failed) = loader.join().unwrap();
        assert_eq!(failed, 0, "{ok} ok");
    });
    let mut p = p;
    let status = p.proc.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// `realip_worker_connections_total` by worker index.
fn per_worker(p: &common::Proxy) -> Vec<u64> {
    let m = p.metrics();
    let mut counts = Vec::new();
    for line in m.lines().filter(|l| l.starts_with("realip_worker_connections_total{worker=")) {
        let (labels, n) = line.rsplit_once(' ').unwrap();
        let i: usize = labels.trim_end_matches("\"}").rsplit('"').next().unwrap().parse().unwrap();
        counts.resize(counts.len().max(i + 1), 0);
        counts[i] = n.parse().unwrap();
    }
    counts
}

/// `--workers 2`: two single-threaded runtimes, each with its own
/// SO_REUSEPORT socket: both accept connections (the kernel spreads them
/// by 4-tuple; 64 connections all landing on one socket of two is a
/// 2^-63 event), and a reload reaches both: every connection accepted
/// after it, on either worker, is served by the new configuration, and so
/// is the next request of connections kept open across it.
#[test]
fn two_workers_both_accept_and_both_see_a_reload() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy_args(&base(up, ""), &["--workers", "2"]);
    let web = p.addr("web");
    let before = per_worker(&p);
    assert_eq!(before, [0, 0], "one series per worker, from the start");
    // Keep-alive connections opened before the reload (spread by the kernel).
    let mut kept: Vec<std::io::BufReader<TcpStream>> =
        (0..16).map(|_| std::io::BufReader::new(TcpStream::connect(web).unwrap())).collect();
    for c in &mut kept {
        assert_eq!(one_request(c), Some(200));
    }
    for _ in 0..64 {
        assert_eq!(get(web, "/", &[]).0, 200);
    }
    let served = per_worker(&p);
    assert!(served.iter().all(|n| *n > 0) && served.iter().sum::<u64>() == 80, "{served:?}");

    std::fs::write(&p.config, base(up, "\n[policy]\ndeny = [\"127.0.0.1\"]\n")).unwrap();
    kill(p.pid(), "-HUP");
    wait_line(&p.proc.stderr, "\"reloaded\"", 10);
    for _ in 0..64 {
        assert_eq!(get(web, "/", &[]).0, 403, "a connection accepted after the reload");
    }
    let after = per_worker(&p);
    assert!(after.iter().zip(&served).all(|(a, s)| a > s), "both workers accepted after the reload: {after:?}");
    for c in &mut kept {
        assert_eq!(one_request(c), Some(403), "a connection kept open across the reload");
    }
}

/// A slow request head gets 408; an idle keep-alive connection is closed;
/// a client over the connection limit gets 503.
#[test]
fn slow_heads_idle_connections_and_connection_limit() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&base(
        up,
        "\n[limits]\nheader_read_timeout = \"300ms\"\nidle_timeout = \"500ms\"\nmax_connections = 2\n",
    ));
    let web = p.addr("web");
    let read_all = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let mut slow = TcpStream::connect(web).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert!(read_all(&mut slow).starts_with("HTTP/1.1 408"), "slowloris gets 408");
    let mut idle = TcpStream::connect(web).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let started = Instant::now();
    let text = read_all(&mut idle); // returns when the proxy closes the idle connection
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(9), "idle connection was closed by the proxy");
    // The client sees the close a moment before the proxy's task ends and
    // gives the connection's slot back (maybe on another worker): wait
    // for that, as the gauge says, before filling the slots.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.counter("realip_connections_active") > 0 {
        assert!(Instant::now() < deadline, "connections still counted open");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Two connections held open; the third is refused with 503. Each
    // worker accepts from its own socket, in no order across workers: wait
    // until both hold their slot before the third.
    let _a = TcpStream::connect(web).unwrap();
    let _b = TcpStream::connect(web).unwrap();
    while p.counter("realip_connections_active") < 2 {
        assert!(Instant::now() < deadline, "the two connections were not accepted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = TcpStream::connect(web).unwrap();
        let text = read_all(&mut c);
        if text.starts_with("HTTP/1.1 503") {
            break;
        }
        assert!(Instant::now() < deadline, "no 503 over the limit: {text:?}");
    }
}

/// The `Sec-WebSocket-Key` value as the client sent it (case kept).
fn original_key(head: &str) -> String {
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-key:"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// A raw upstream for what `realip echo` cannot do: it answers WebSocket
/// upgrades and echoes bytes, sleeps before answering `/slow`, and counts
/// the request body bytes it receives.
fn raw_upstream() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let head = common::read_head(&mut s);
                let head_raw = String::from_utf8_lossy(&head).into_owned();
                let head = head_raw.to_ascii_lowercase();
                if head.contains("upgrade: websocket") {
                    let key = original_key(&head_raw);
                    let accept = realip_proxy::websocket::accept_for(key.as_bytes());
                    let _ = s.write_all(
                        format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                            .as_bytes(),
                    );
                    let mut buf = [0u8; 256];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                } else if head.starts_with("get /slow") {
                    std::thread::sleep(Duration::from_secs(2));
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow");
                } else {
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    let _ = s.read_exact(&mut body);
                    let reply = len.to_string();
                    let _ = s.write_all(
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{reply}", reply.len()).as_bytes(),
                    );
                }
            });
        }
    });
    addr
}

#[test]
fn websocket_upgrade_streaming_body_and_upstream_timeout() {
    let up = raw_upstream();
    let p = proxy(&base(up, "").replace("endpoints = [", "response_timeout = \"500ms\"\nendpoints = ["));
    let web = p.addr("web");
    // WebSocket: 101 through the proxy, then bytes both ways.
    let mut c = TcpStream::connect(web).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let head = common::read_head(&mut c);
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    c.write_all(b"ping-through-proxy").unwrap();
    let mut echoed = [0u8; 18];
    c.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ping-through-proxy");
    // A 1 MiB body streams through to the upstream.
    let body = vec![b'x'; 1 << 20];
    let mut req =
        format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
            .into_bytes();
    req.extend_from_slice(&body);
    let (s, got) = raw_http(web, &req).unwrap();
    assert_eq!((s, got.as_str()), (200, "1048576"));
    // An upstream slower than response_timeout: 504.
    let (s, _) = raw_http(web, b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let line = wait_line(&p.proc.stdout, "\"path\":\"/slow\"", 10);
    assert_eq!(s, 504, "{line}");
}

#[test]
fn balancing_retry_and_ejection() {
    let pod = |name: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
        cmd.args(["echo", "--listen", "127.0.0.1:0"]).env("POD_NAME", name);
        let proc = spawn(&mut cmd);
        let addr: SocketAddr =
            wait_line(&proc.stderr, "listening on", 20).trim_start_matches("listening on ").parse().unwrap();
        (proc, addr)
    };
    let (_pa, aa) = pod("a");
    let (_pb, ba) = pod("b");
    let dead = common::free_port(); // nothing listens here
    let cfg = base(aa, "").replace(
        &format!("endpoints = [\"{aa}\"]"),
        &format!("endpoints = [\"{aa}\", \"{ba}\", \"127.0.0.1:{dead}\"]\nmax_fails = 1\nfail_timeout = \"30s\""),
    );
    let p = proxy(&cfg);
    let mut seen = std::collections::HashMap::new();
    for _ in 0..30 {
        let (s, v) = get(p.addr("web"), "/debug/ip", &[]);
        assert_eq!(s, 200, "a connect failure is retried on another endpoint: {v}");
        *seen.entry(v["pod"].as_str().unwrap_or("?").to_owned()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.values().all(|&n| n >= 10), "round-robin over the live endpoints: {seen:?}");
    // The dead endpoint failed once and was ejected: one connect error only.
    assert_eq!(p.counter("realip_upstream_errors_total{upstream=\"app\",kind=\"connect\"}"), 1, "{}", p.metrics());
}

/// The configuration examples in docs/proxy.md are valid.
#[test]
fn documented_examples_pass_check() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/proxy.md")).unwrap();
    let dir = TempDir::new("docs");
    let blocks: Vec<&str> = doc.split("```toml\n").skip(1).filter_map(|b| b.split("```").next()).collect();
    assert!(blocks.len() >= 2);
    for (i, block) in blocks.iter().enumerate() {
        // Certificates in the examples are deployment paths; check the rest.
        let text = block.lines().filter(|l| !l.starts_with("tls = ")).collect::<Vec<_>>().join("\n");
        let path = dir.0.join(format!("example{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_realip"))
            .args(["proxy", "--check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "example {i}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn tls_towards_the_upstream_insecure_and_verified() {
    if !need(&["openssl"]) {
        return;
    }
    let dir = TempDir::new("up-tls");
    let (cert, key) = self_signed(&dir.0, "backend.test");
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    // The "pod": a realip proxy terminating TLS in front of the echo app.
    let backend = proxy(&format!(
        "[[listener]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n\n\
         [client_ip]\ntrusted = [\"127.0.0.1\"]\n\n[[route]]\nupstream = \"echo\"\n\n[[upstream]]\nname = \"echo\"\nendpoints = [\"{up}\"]\n",
        cert.display(),
        key.display()
    ));
    let front = |mode: &str| {
        proxy(&format!(
            "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n\n[[route]]\nupstream = \"b\"\n\n\
             [[upstream]]\nname = \"b\"\nendpoints = [\"{}\"]\ntls = \"{mode}\"\n",
            backend.addr("tls")
        ))
    };
    // insecure: encrypted, the self-signed certificate is not checked.
    let insecure = front("insecure");
    let (s, v) = get(insecure.addr("web"), "/debug/ip", &[]);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["client_ip"], "127.0.0.1");
    // Keep-alive over TLS: a second request on the pooled connection.
    assert_eq!(get(insecure.addr("web"), "/debug/ip", &[]).0, 200);
    // verify: a self-signed certificate is refused (502), nothing reaches the app.
    let verify = front("verify");
    assert_eq!(get(verify.addr("web"), "/debug/ip", &[]).0, 502);
    // Plain HTTP to a TLS port fails too.
    let plain = front("off");
    assert_eq!(get(plain.addr("web"), "/debug/ip", &[]).0, 502);
}
