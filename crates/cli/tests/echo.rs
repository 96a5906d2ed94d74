//! `realip echo` end to end on loopback: curl, HAProxy `send-proxy-v2`,
//! raw sockets with bad input.

mod common;

use std::process::Command;

use common::{echo, get, have, peer_missing, raw_http, spawn, wait_line, wait_port};

#[test]
fn debug_ip_fields_and_forged_headers() {
    let (p, addr) = echo(&["--trust", "127.0.0.1"]);
    let (s, v) = get(addr, "/debug/ip", &["X-Forwarded-For: 1.2.3.4, 203.0.113.7", "X-Real-IP: 9.9.9.9"]);
    assert_eq!(s, 200);
    assert_eq!(v["client_host"], "127.0.0.1");
    assert_eq!(v["client_ip"], "203.0.113.7");
    assert_eq!((v["source"].as_str(), v["hop"].as_u64()), (Some("xff"), Some(1)));
    assert_eq!(v["x_forwarded_for"], "1.2.3.4, 203.0.113.7");
    assert_eq!(v["x_real_ip"], "9.9.9.9");
    assert!(v["forwarded"].is_null() && v["proxy_protocol"].is_null() && v["node"].is_null());
    // Any path answers the same JSON; /healthz and /debug/headers have their own.
    let (_, v) = get(addr, "/some/app/route", &["X-Forwarded-For: 198.51.100.1"]);
    assert_eq!((v["client_ip"].as_str(), v["path"].as_str()), (Some("198.51.100.1"), Some("/some/app/route")));
    let (s, _) = raw_http(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(s, 200);
    let (_, v) = get(addr, "/debug/headers", &["X-Forwarded-For: a", "X-Forwarded-For: b"]);
    assert_eq!(common::header_values(&v, "x-forwarded-for"), ["a", "b"]);
    // One log line per request, with peer and client.
    let line = wait_line(&p.stdout, "203.0.113.7", 10);
    assert!(line.contains("\"peer\":\"127.0.0.1:"), "{line}");
}

#[test]
fn untrusted_peer_cannot_forge() {
    let (_p, addr) =
        echo(&["--trust", "10.0.0.0/8", "--source", "xff", "--source", "x-real-ip", "--source", "forwarded"]);
    let (_, v) = get(addr, "/debug/ip", &["X-Forwarded-For: 1.2.3.4", "X-Real-IP: 1.2.3.4", "Forwarded: for=1.2.3.4"]);
    assert_eq!((v["client_ip"].as_str(), v["source"].as_str()), (Some("127.0.0.1"), Some("peer")));
    let (_p, addr) = echo(&["--trust", "10.0.0.0/8", "--reject-untrusted-forwarding"]);
    let (s, _) = get(addr, "/debug/ip", &["X-Forwarded-For: 1.2.3.4"]);
    assert_eq!(s, 400);
}

#[test]
fn pod_identity_from_downward_api() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["echo", "--listen", "127.0.0.1:0"])
        .env("NODE_NAME", "node-1")
        .env("POD_NAME", "app-7")
        .env("POD_IP", "10.1.0.7");
    let p = spawn(&mut cmd);
    let addr = wait_line(&p.stderr, "listening on", 20).trim_start_matches("listening on ").parse().unwrap();
    let (_, v) = get(addr, "/debug/ip", &[]);
    assert_eq!(
        (v["node"].as_str(), v["pod"].as_str(), v["pod_ip"].as_str()),
        (Some("node-1"), Some("app-7"), Some("10.1.0.7"))
    );
}

#[test]
fn bad_input_gets_clear_answers() {
    let (p, addr) = echo(&["--trust", "127.0.0.1"]);
    // Invalid UTF-8 in a header value: answered, shown lossily, no forged IP.
    let (s, body) = raw_http(
        addr,
        b"GET /debug/ip HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: \xff\xfe, 203.0.113.7\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((s, v["client_ip"].as_str()), (200, Some("203.0.113.7")));
    let (_, body) = raw_http(
        addr,
        b"GET /debug/ip HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7, \xff\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["client_ip"], "127.0.0.1");
    assert!(v["warnings"][0].as_str().unwrap().contains("invalid entry"));
    // Oversized headers: 431, not a hang.
    let huge = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(512 * 1024));
    let (s, _) = raw_http(addr, huge.as_bytes()).unwrap_or((431, String::new()));
    assert_eq!(s, 431);
    // Garbage instead of HTTP: 400.
    let (s, _) = raw_http(addr, b"\x00\x01garbage\r\n\r\n").unwrap();
    assert_eq!(s, 400);
    drop(p);

    // A PROXY header from a sender that may not send one: closed and logged.
    let (p, addr) = echo(&["--trust", "10.0.0.0/8", "--proxy-protocol", "optional"]);
    let r = raw_http(addr, b"PROXY TCP4 203.0.113.7 127.0.0.1 1 2\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(r.is_err(), "{r:?}");
    let line = wait_line(&p.stdout, "rejected", 10);
    assert!(line.contains("not allowed to send a PROXY header"), "{line}");
}

#[test]
fn curl_with_proxy_protocol_v1() {
    if !have("curl") && peer_missing("curl is not installed") {
        return;
    }
    let (_p, addr) = echo(&["--trust", "127.0.0.1", "--proxy-protocol", "required"]);
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--haproxy-protocol", "-H", "X-Forwarded-For: 198.51.100.20"])
        .arg(format!("http://{addr}/debug/ip"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from echo");
    assert_eq!(v["proxy_protocol"]["version"], 1);
    assert_eq!(v["client_ip"], "198.51.100.20");
    // Without the header a required listener closes the connection.
    let out =
        Command::new("curl").args(["-s", "--max-time", "10"]).arg(format!("http://{addr}/debug/ip")).output().unwrap();
    assert!(!out.status.success());
}

/// HAProxy in TCP mode with `send-proxy-v2` in front of the echo app: the
/// app sees the client HAProxy saw, from the PROXY header.
#[test]
fn haproxy_send_proxy_v2() {
    if !(have("haproxy") && have("curl")) && peer_missing("haproxy or curl is not installed") {
        return;
    }
    let (_echo, echo_addr) =
        echo(&["--trust", "127.0.0.1", "--proxy-protocol", "required", "--source", "proxy-protocol"]);
    let front = common::free_port();
    let dir = std::env::temp_dir().join(format!("realip-haproxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  log stderr local0\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend f\n  bind 127.0.0.1:{front}\n  default_backend b\n\
             backend b\n  server echo {echo_addr} send-proxy-v2 proxy-v2-options unique-id\n"
        ),
    )
    .unwrap();
    let _haproxy = spawn(Command::new("haproxy").arg("-db").arg("-f").arg(&cfg));
    wait_port(format!("127.0.0.1:{front}").parse().unwrap(), 20);
    // The client connects from 127.0.0.2; the echo app's TCP peer is
    // HAProxy on 127.0.0.1, so only the PROXY header can tell it .2.
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--interface", "127.0.0.2", "-H", "X-Forwarded-For: 1.2.3.4"])
        .arg(format!("http://127.0.0.1:{front}/debug/ip"))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON through HAProxy");
    assert_eq!(v["client_host"], "127.0.0.1");
    assert_eq!(
        (v["proxy_protocol"]["version"].as_u64(), v["proxy_protocol"]["family"].as_str()),
        (Some(2), Some("tcp4"))
    );
    assert_eq!((v["client_ip"].as_str(), v["source"].as_str()), (Some("127.0.0.2"), Some("proxy-protocol")));
    // The unique-id TLV (0x05) HAProxy was told to send.
    assert!(v["proxy_protocol"]["tlvs"].as_array().unwrap().iter().any(|t| t["type"] == 5), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}
