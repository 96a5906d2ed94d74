//! `realip proxy` attacked as a client would: path and host tricks against
//! allow lists (nginx with two virtual hosts as the upstream, which decodes
//! and normalizes paths), smuggling through upgrades, look-alike client-IP
//! headers, abandoned requests, reloads that used to reset rate limits,
//! IPv4-mapped addresses, h2 header floods, slow and oversized bodies, and
//! configurations `--check` must refuse. Raw sockets for the byte-level
//! cases, curl and the `h2` crate for HTTP/2.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{
    base, echo, free_port, header_values, need, proxy, raw_http, self_signed, spawn, wait_line, wait_port, Proc,
    TempDir,
};
use serde_json::Value;

/// nginx serving two virtual hosts that say who answered and which
/// (decoded, normalized) path they saw.
fn nginx_vhosts(dir: &TempDir) -> (Proc, SocketAddr) {
    let port = free_port();
    let conf = dir.0.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\npid {pid};\nerror_log stderr;\nworker_processes 1;\nevents {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  \
             fastcgi_temp_path {tmp};\n  uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n  \
             server {{\n    listen 127.0.0.1:{port} default_server;\n    server_name public.example.com;\n    \
             location / {{ return 200 \"public $uri\\n\"; }}\n    location /admin {{ return 200 \"ADMIN $uri\\n\"; }}\n  }}\n  \
             server {{\n    listen 127.0.0.1:{port};\n    server_name internal.example.com;\n    \
             location / {{ return 200 \"INTERNAL $uri\\n\"; }}\n  }}\n}}\n",
            pid = dir.0.join("nginx.pid").display(),
            tmp = dir.0.display(),
        ),
    )
    .unwrap();
    let p = spawn(Command::new("nginx").arg("-p").arg(&dir.0).arg("-c").arg(&conf));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr, 20);
    (p, addr)
}

/// The proxy in front of the two vhosts: `/` open, `/admin` denied to
/// everyone, the internal host allowed only from 192.0.2.1.
fn guarded(up: SocketAddr) -> common::Proxy {
    proxy(&format!(
        r#"
[[listener]]
name = "web"
bind = "127.0.0.1:0"

[[route]]
path_prefix = "/"
upstream = "ngx"

[[route]]
path_prefix = "/admin"
deny = ["0.0.0.0/0", "::/0"]
upstream = "ngx"

[[route]]
host = "internal.example.com"
allow = ["192.0.2.1/32"]
upstream = "ngx"

[[upstream]]
name = "ngx"
endpoints = ["{up}"]

[admin]
bind = "127.0.0.1:0"

[lifecycle]
watch_interval = "0s"
drain_delay = "0s"
"#
    ))
}

fn send(addr: SocketAddr, raw: &str) -> (u16, String) {
    raw_http(addr, raw.as_bytes()).unwrap_or((0, String::new()))
}

#[test]
fn encoded_paths_cannot_reach_a_denied_route() {
    if !need(&["nginx", "curl"]) {
        return;
    }
    let dir = TempDir::new("attack-path");
    let (_n, up) = nginx_vhosts(&dir);
    let p = guarded(up);
    let web = p.addr("web");
    let get = |path: &str| {
        send(web, &format!("GET {path} HTTP/1.1\r\nHost: public.example.com\r\nConnection: close\r\n\r\n"))
    };
    // The open route still works, with the normalized path passed on.
    assert_eq!(get("/x/../public"), (200, "public /public\n".into()));
    for path in [
        "/admin",
        "/%61dmin",
        "/public/../admin",
        "/./admin",
        "//admin",
        "/%2e/admin",
        "/admin/",
        "/%2E%2E/admin/../admin",
    ] {
        let (s, body) = get(path);
        assert!(s == 403 || s == 400, "{path}: {s} {body:?}");
        assert!(!body.contains("ADMIN"), "{path} reached the upstream's /admin: {body:?}");
    }
    for path in ["/a%2Fadmin", "/a%2fadmin", "/admin%00", "/a%zz", "/a\\admin", "/a%5Cadmin", "/../admin"] {
        let (s, body) = get(path);
        assert_eq!(s, 400, "{path}: {body:?}");
    }
    // The same over h2 (`:path`), with curl keeping the path as written.
    for path in ["/%61dmin", "/public/../admin", "//admin", "/%2e/admin"] {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--http2-prior-knowledge"])
            .arg("--path-as-is")
            .arg(format!("http://{web}{path}"))
            .args(["-H", "Host: public.example.com"])
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(code == "403" || code == "400", "h2 {path}: {code}");
    }
}

#[test]
fn one_host_decides_both_the_route_and_the_upstream() {
    if !need(&["nginx"]) {
        return;
    }
    let dir = TempDir::new("attack-host");
    let (_n, up) = nginx_vhosts(&dir);
    let p = guarded(up);
    let web = p.addr("web");
    // Absolute URI wins: routed as public, and nginx serves public.
    let (s, body) = send(
        web,
        "GET http://public.example.com/x HTTP/1.1\r\nHost: internal.example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((s, body.as_str()), (200, "public /x\n"));
    // The other way round: routed as internal, so the allow list applies.
    let (s, body) = send(
        web,
        "GET http://internal.example.com/x HTTP/1.1\r\nHost: public.example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(s, 403, "{body}");
    // A trailing dot names the same host.
    let (s, body) = send(web, "GET / HTTP/1.1\r\nHost: internal.example.com.\r\nConnection: close\r\n\r\n");
    assert_eq!(s, 403, "{body}");
    let (s, body) = send(web, "GET / HTTP/1.1\r\nHost: INTERNAL.example.com:80\r\nConnection: close\r\n\r\n");
    assert_eq!(s, 403, "{body}");
    // Two trailing dots (an empty label) are no host at all.
    let (s, body) = send(web, "GET / HTTP/1.1\r\nHost: internal.example.com..\r\nConnection: close\r\n\r\n");
    assert_eq!(s, 400, "{body}");
    let got = h2_request(web, "http://internal.example.com../", &[]);
    assert_eq!(got.map(|(s, _)| s), Ok(400));
    for bad in [
        "GET / HTTP/1.1\r\nHost: internal.example.com:abc\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: public.example.com\r\nHost: internal.example.com\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\\\r\nConnection: close\r\n\r\n",
    ] {
        let (s, body) = send(web, bad);
        assert_eq!(s, 400, "{bad:?}: {body}");
        assert!(!body.contains("INTERNAL"), "{bad:?}");
    }
    // h2: `:authority` public with a `host` header naming internal.
    let got = h2_request(web, "http://public.example.com/", &[("host", "internal.example.com")]);
    assert_eq!(got.map(|(s, _)| s), Ok(400));
    let got = h2_request(web, "http://public.example.com/y", &[]);
    assert_eq!(got, Ok((200, "public /y\n".to_owned())));
}

/// One h2 (prior knowledge) request with extra headers: (status, body).
fn h2_request(addr: SocketAddr, uri: &str, headers: &[(&str, &str)]) -> Result<(u16, String), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (mut client, conn) = h2::client::handshake(tcp).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = http::Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (resp, _) = client.send_request(req.body(()).unwrap(), true).map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(10), resp).await.map_err(|e| e.to_string())?;
        let resp = resp.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = body.flow_control().release_capacity(chunk.len());
            out.extend_from_slice(&chunk);
        }
        Ok((status, String::from_utf8_lossy(&out).into_owned()))
    })
}

/// An upstream that answers every request with `101` (valid or not, as
/// told) and records the request heads it saw.
fn upgrading_upstream(valid_accept: bool) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().take(16) {
            let Ok(mut s) = s else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let head = common::read_head(&mut s);
                let head = String::from_utf8_lossy(&head).into_owned();
                let key = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-key:"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default();
                let _ = tx.send(head);
                let accept =
                    if valid_accept { realip_proxy::websocket::accept_for(key.as_bytes()) } else { "AAAA".into() };
                let _ = s.write_all(
                    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                        .as_bytes(),
                );
                // Whatever comes next would be a smuggled request.
                let mut rest = [0u8; 512];
                if let Ok(n) = s.read(&mut rest) {
                    let _ = tx.send(format!("TUNNELLED {}", String::from_utf8_lossy(&rest[..n])));
                }
            });
        }
    });
    (addr, rx)
}

const WS_HEAD: &str = "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

#[test]
fn only_completed_websocket_handshakes_become_tunnels() {
    // h2c upgrade: the Upgrade is stripped; the upstream's 101 is refused.
    let (up, seen) = upgrading_upstream(true);
    let p = proxy(&base(up, ""));
    let web = p.addr("web");
    let (s, _) = send(
        web,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(s, 502);
    let head = seen.recv_timeout(Duration::from_secs(5)).unwrap().to_ascii_lowercase();
    assert!(!head.contains("upgrade"), "the upstream was offered an upgrade: {head}");
    // A made-up protocol: the same.
    let (s, _) = send(web, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: evil\r\n\r\n");
    assert_eq!(s, 502);
    // A WebSocket request answered without the right Sec-WebSocket-Accept.
    let (bad_up, _seen) = upgrading_upstream(false);
    let p2 = proxy(&base(bad_up, ""));
    let (s, _) = send(p2.addr("web"), WS_HEAD);
    assert_eq!(s, 502);
    // A complete handshake tunnels, and is logged once, when it closes.
    let mut c = TcpStream::connect(web).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(WS_HEAD.as_bytes()).unwrap();
    let head = common::read_head(&mut c);
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    c.write_all(b"frame").unwrap();
    drop(c);
    let line = wait_line(&p.proc.stdout, "\"path\":\"/ws\"", 10);
    assert!(line.contains("\"status\":101"), "{line}");
}

#[test]
fn look_alike_and_vendor_client_ip_headers_do_not_pass_from_untrusted_clients() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&base(up, ""));
    let (s, body) = send(
        p.addr("web"),
        "GET /debug/headers HTTP/1.1\r\nHost: x\r\nX_Real_IP: 6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nCF-Connecting-IP: 6.6.6.6\r\nFastly-Client-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\nX-Cluster-Client-IP: 6.6.6.6\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(!body.contains("6.6.6.6"), "a forged header reached the upstream: {v}");
    assert_eq!(header_values(&v, "x-real-ip"), ["127.0.0.1"], "{v}");
}

#[test]
fn a_request_the_client_abandoned_is_logged_as_499() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    std::thread::spawn(move || {
        // Takes the request and never answers.
        let conns: Vec<_> = l.incoming().take(2).filter_map(Result::ok).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(conns);
    });
    let p = proxy(&base(up, ""));
    let mut c = TcpStream::connect(p.addr("web")).unwrap();
    c.write_all(b"GET /abandoned HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(c);
    let line = wait_line(&p.proc.stdout, "\"path\":\"/abandoned\"", 10);
    assert!(line.contains("\"status\":499"), "{line}");
    assert!(line.contains(&format!("\"upstream\":\"{up}\"")), "{line}");
}

#[test]
fn a_reload_keeps_the_rate_limit_of_routes_it_did_not_change() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base(up, "").replace("[[route]]\n", "[[route]]\nrate = { per_second = 0.1, burst = 2 }\n");
    let p = proxy(&cfg);
    let web = p.addr("web");
    let statuses: Vec<u16> = (0..3).map(|_| common::get(web, "/debug/ip", &[]).0).collect();
    assert_eq!(statuses, [200, 200, 429]);
    // Reload with an unrelated change (a new route elsewhere).
    std::fs::write(&p.config, format!("{cfg}\n[[route]]\npath_prefix = \"/other\"\nupstream = \"app\"\n")).unwrap();
    let _ = Command::new("kill").args(["-HUP", &p.pid().to_string()]).status();
    wait_line(&p.proc.stderr, "\"reloaded\"", 10);
    assert_eq!(common::get(web, "/debug/ip", &[]).0, 429, "the reload handed out a fresh burst");
}

#[test]
fn ipv4_mapped_peers_are_written_as_ipv4() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base(up, "[forward]\nforwarded = true\n")
        .replace("bind = \"127.0.0.1:0\"\n\n[client_ip]", "bind = \"[::]:0\"\n\n[client_ip]");
    let p = proxy(&cfg);
    let web = SocketAddr::from(([127, 0, 0, 1], p.addr("web").port()));
    let (s, body) = send(web, "GET /debug/headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(header_values(&v, "x-forwarded-for"), ["127.0.0.1"], "{v}");
    assert_eq!(header_values(&v, "x-real-ip"), ["127.0.0.1"], "{v}");
    assert!(header_values(&v, "forwarded")[0].starts_with("for=127.0.0.1;"), "{v}");
    assert!(!body.contains("::ffff:"), "{v}");
}

#[test]
fn proxy_protocol_source_is_the_peer_even_when_only_xff_is_listed() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let cfg = base(up, "")
        .replace("bind = \"127.0.0.1:0\"\n\n[client_ip]", "bind = \"127.0.0.1:0\"\nproxy_protocol = \"required\"\nproxy_protocol_from = [\"127.0.0.1\"]\n\n[client_ip]")
        .replace("trusted = [\"10.0.0.0/8\"]", "trusted = [\"127.0.0.1\"]\nsources = [\"xff\"]");
    let p = proxy(&cfg);
    let mut req = realip_core::proxy_protocol::V2Builder::proxy(
        "203.0.113.7:4000".parse().unwrap(),
        "127.0.0.1:80".parse().unwrap(),
    )
    .encode()
    .unwrap();
    req.extend_from_slice(
        b"GET /debug/ip HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n",
    );
    let (s, body) = raw_http(p.addr("web"), &req).unwrap();
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["x_real_ip"], "203.0.113.7", "{v}");
}

/// An upstream that reads a whole (chunked or sized) request body before
/// it answers, as an app that parses its input does.
fn body_reading_upstream() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(32) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let complete = |g: &[u8]| {
                    let text = String::from_utf8_lossy(g).to_ascii_lowercase();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { return false };
                    if head.contains("transfer-encoding: chunked") {
                        return body.ends_with("0\r\n\r\n");
                    }
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    body.len() >= len
                };
                while !complete(&got) {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            });
        }
    });
    addr
}

#[test]
fn bodies_and_h2_headers_get_the_right_status() {
    let up = body_reading_upstream();
    let p = proxy(&base(up, "\n[limits]\nmax_body_bytes = 100\nmax_headers = 20\nbody_timeout = \"500ms\"\n"));
    let web = p.addr("web");
    // Chunked, over the limit: 413, not 502.
    let chunk = "a".repeat(80);
    let (s, _) = send(
        web,
        &format!("POST /debug/ip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n50\r\n{chunk}\r\n50\r\n{chunk}\r\n0\r\n\r\n"),
    );
    assert_eq!(s, 413);
    // A body that stops coming: 408 after body_timeout, not 504 at 60 s.
    let (s, _) =
        send(web, "POST /debug/ip HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nConnection: close\r\n\r\n0123456789");
    assert_eq!(s, 408);
    // Malformed chunk framing is the client's error (400), never a 499 on the wire.
    let (s, _) = send(
        web,
        "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(s, 400);
    // h2 with more headers than max_headers: 431.
    if need(&["curl"]) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "--http2-prior-knowledge"]);
        for i in 0..30 {
            cmd.args(["-H", &format!("x-h{i}: v")]);
        }
        let out = cmd.arg(format!("http://{web}/debug/ip")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "431");
    }
}

#[test]
fn check_refuses_what_would_break_or_open_the_proxy() {
    let dir = TempDir::new("attack-check");
    let (cert_a, _key_a) = self_signed(&dir.0, "a.test");
    let (_cert_b, key_b) = self_signed(&dir.0, "b.test");
    let check = |cfg: &str| {
        let path = dir.0.join("c.toml");
        std::fs::write(&path, cfg).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_realip"))
            .args(["proxy", "--check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let up: SocketAddr = "127.0.0.1:9".parse().unwrap();
    // Every problem in one run.
    let bad = base(up, "\n[limits]\nmax_header_bytes = 4096\nbody_timeout = \"3000000000000000h\"\n").replace(
        "bind = \"127.0.0.1:0\"\n\n[client_ip]",
        &format!(
            "bind = \"127.0.0.1:0\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n\n[client_ip]",
            cert_a.display(),
            key_b.display()
        ),
    ) + "\n[[route]]\nupstream = \"app\"\n";
    let (code, out) = check(&bad);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("longer than the 365 days"), "{out}");
    // The duration error is a parse error and stops there; the rest are
    // reported together once it is fixed.
    let bad = bad.replace("body_timeout = \"3000000000000000h\"\n", "");
    let (code, out) = check(&bad);
    assert_eq!(code, Some(1), "{out}");
    for needle in [
        "same host and path_prefix as route[0]",
        "max_header_bytes: must be at least 8192",
        "does not match the certificate",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // Zero timeouts, a log directory that does not exist, a certificate
    // path that is a device (it used to hang --check): all refused.
    let bad = base(up, "\n[limits]\nidle_timeout = \"0s\"\n[log]\npath = \"/nonexistent/dir/x.log\"\n").replace(
        "bind = \"127.0.0.1:0\"\n\n[client_ip]",
        "bind = \"127.0.0.1:0\"\ntls = { cert = \"/dev/zero\", key = \"/dev/zero\" }\n\n[client_ip]",
    );
    let (code, out) = check(&bad);
    assert_eq!(code, Some(1), "{out}");
    for needle in [
        "limits.idle_timeout: must be longer than 0s",
        "log.path: directory /nonexistent/dir does not exist",
        "/dev/zero: not a regular file",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // Trusting everyone in two halves is trusting everyone.
    let (code, out) =
        check(&base(up, "").replace("trusted = [\"10.0.0.0/8\"]", "trusted = [\"0.0.0.0/1\", \"128.0.0.0/1\"]"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("warning: client_ip.trusted: trusts every address"), "{out}");
    // Trusting everyone loads, with a warning.
    let (code, out) = check(&base(up, "").replace("trusted = [\"10.0.0.0/8\"]", "trusted = [\"0.0.0.0/0\"]"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("warning: client_ip.trusted: trusts every address"), "{out}");
    let (code, out) = check(&base(up, "").replace("[[upstream]]\n", "[[upstream]]\ntls_server_name = \"bad name!\"\n"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("tls_server_name"), "{out}");
}

#[test]
fn an_upstream_length_contradicting_its_chunking_is_not_passed_on() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(4) {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            );
        }
    });
    let p = proxy(&base(up, ""));
    let mut c = TcpStream::connect(p.addr("web")).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(!resp.to_ascii_lowercase().contains("content-length: 50"), "{resp}");
    assert!(resp.ends_with("ok") || resp.contains("\r\n\r\n2\r\nok\r\n0\r\n\r\n"), "{resp}");
}

#[test]
fn silent_sockets_do_not_hold_the_admin_port_past_the_header_timeout() {
    let (_e, up) = echo(&["--trust", "127.0.0.1"]);
    let p = proxy(&base(up, "\n[limits]\nheader_read_timeout = \"1s\"\n"));
    let admin = p.addr("admin");
    let held: Vec<TcpStream> = (0..64).filter_map(|_| TcpStream::connect(admin).ok()).collect();
    assert_eq!(held.len(), 64);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, _) = send(admin, "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        if s == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "/healthz still {s} with 64 silent sockets");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(held);
}
