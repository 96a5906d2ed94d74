//! Helpers for end-to-end tests: processes that are killed on drop, waits
//! bounded by a deadline (never sleeps as synchronisation), raw HTTP over
//! loopback, and the skip-or-fail rule for missing peers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process killed (and reaped) when dropped, also on panic.
pub struct Proc {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pump(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn spawn(cmd: &mut Command) -> Proc {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let stdout = pump(child.stdout.take().unwrap());
    let stderr = pump(child.stderr.take().unwrap());
    Proc { child, stdout, stderr }
}

/// Waits (at most `secs`) for a line containing `needle`.
pub fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, secs: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line containing `{needle}` within {secs}s: {e}"),
        }
    }
}

/// Starts `realip echo` on a free loopback port; returns it and its address.
pub fn echo(args: &[&str]) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["echo", "--listen", "127.0.0.1:0"]).args(args);
    let p = spawn(&mut cmd);
    let line = wait_line(&p.stderr, "listening on", 20);
    let addr = line.trim_start_matches("listening on ").parse().expect("address");
    (p, addr)
}

/// Sends raw bytes, returns (status, body) of the HTTP/1.1 response.
pub fn raw_http(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(bytes)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status =
        text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("no HTTP status in {text:?}"))
        })?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// GET `path` with extra header lines (`Name: value`), `Connection: close`.
pub fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> (u16, serde_json::Value) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let (status, body) = raw_http(addr, req.as_bytes()).expect("request");
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

/// A peer program is missing: skip with a reason, or fail under
/// `REALIP_REQUIRE_PEERS=1`.
pub fn peer_missing(what: &str) -> bool {
    assert!(!std::env::var("REALIP_REQUIRE_PEERS").is_ok_and(|v| v == "1"), "REALIP_REQUIRE_PEERS=1 but {what}");
    eprintln!("SKIPPED: {what}");
    true
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output().is_ok_and(|o| o.status.success())
}

/// A free loopback port (bound and released; good enough for peers that
/// cannot be told to pick their own).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits (at most `secs`) until something accepts on `addr`.
pub fn wait_port(addr: SocketAddr, secs: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{addr} not accepting within {secs}s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A self-signed EC certificate for `name` (SAN DNS:name), made with
/// openssl in `dir`: (certificate PEM path, key PEM path).
pub fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
        ])
        .arg(format!("/CN={name}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    (cert, key)
}

/// The values of header `name` in a `/debug/headers` answer, in order.
pub fn header_values<'a>(headers: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    headers
        .as_array()
        .map(|a| a.iter().filter(|h| h["name"] == name).filter_map(|h| h["value"].as_str()).collect())
        .unwrap_or_default()
}
