//! Helpers for end-to-end tests: processes that are killed on drop, waits
//! bounded by a deadline (never sleeps as synchronisation), raw HTTP over
//! loopback, and the skip-or-fail rule for missing peers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
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

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("realip-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Proxy {
    pub proc: Proc,
    pub listeners: std::collections::HashMap<String, SocketAddr>,
    pub config: PathBuf,
    pub _dir: TempDir,
}

impl Proxy {
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.listeners[name]
    }
    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
    pub fn metrics(&self) -> String {
        let (_, body) =
            raw_http(self.addr("admin"), b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        body
    }
    pub fn counter(&self, line_prefix: &str) -> u64 {
        self.metrics()
            .lines()
            .filter(|l| l.starts_with(line_prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

/// Starts the proxy with `config` (listeners may bind port 0; the actual
/// addresses are read from its `listening` events).
pub fn proxy(config: &str) -> Proxy {
    proxy_args(config, &[])
}

/// [`proxy`] with more command-line arguments (`--workers 2`).
pub fn proxy_args(config: &str, args: &[&str]) -> Proxy {
    let dir = TempDir::new("proxy");
    let path = dir.0.join("realip.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_realip"));
    cmd.args(["proxy", "--config"]).arg(&path).args(args);
    let p = spawn(&mut cmd);
    let n = config.matches("[[listener]]").count() + usize::from(config.contains("[admin]"));
    let mut listeners = std::collections::HashMap::new();
    for _ in 0..n {
        let line = wait_line(&p.stderr, "\"listening\"", 20);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        listeners.insert(v["listener"].as_str().unwrap().to_owned(), v["addr"].as_str().unwrap().parse().unwrap());
    }
    Proxy { proc: p, listeners, config: path, _dir: dir }
}

pub fn base(upstream: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[[listener]]
name = "web"
bind = "127.0.0.1:0"

[client_ip]
trusted = ["10.0.0.0/8"]

[[route]]
upstream = "app"

[[upstream]]
name = "app"
endpoints = ["{upstream}"]

[admin]
bind = "127.0.0.1:0"

[lifecycle]
drain_delay = "300ms"
drain_timeout = "5s"
watch_interval = "0s"
{extra}"#
    )
}

/// `base` with extra lines in the `web` listener (TLS, PROXY settings).
pub fn base_with_listener(upstream: SocketAddr, listener_lines: &str) -> String {
    base(upstream, "").replacen(
        "bind = \"127.0.0.1:0\"\n\n[client_ip]",
        &format!("bind = \"127.0.0.1:0\"\n{listener_lines}\n\n[client_ip]"),
        1,
    )
}

pub fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl").args(["-s", "--max-time", "10"]).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn need(cmds: &[&str]) -> bool {
    let missing: Vec<&&str> = cmds.iter().filter(|c| !have(c)).collect();
    missing.is_empty() || !peer_missing(&format!("{missing:?} not installed"))
}

/// uvicorn, pinned: the version the parity table and the upstream tests run.
pub const UVICORN: &str = "uvicorn==0.54.0";

/// The python of a virtualenv with uvicorn from PyPI, made once per target
/// directory (test binaries run at once: a lock directory makes one of
/// them install while the others wait). `None` when it cannot be made.
pub fn uvicorn_python() -> Option<PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("uvicorn-venv");
    let python = dir.join("bin/python");
    let ready = dir.join(".installed");
    let lock = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("uvicorn-venv.lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        if std::fs::read_to_string(&ready).is_ok_and(|v| v == UVICORN) {
            return Some(python);
        }
        if std::fs::create_dir(&lock).is_ok() {
            break;
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let ok = Command::new("python3").args(["-m", "venv"]).arg(&dir).status().is_ok_and(|s| s.success())
        && Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check", UVICORN])
            .status()
            .is_ok_and(|s| s.success());
    let done = ok && std::fs::write(&ready, UVICORN).is_ok();
    let _ = std::fs::remove_dir(&lock);
    done.then_some(python)
}

/// The bytes of an HTTP head, up to and including the blank line, read one
/// byte at a time so nothing after it is consumed; shorter if the peer
/// closes or errs first.
pub fn read_head(s: &mut impl Read) -> Vec<u8> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read_exact(&mut b).is_ok() {
        head.push(b[0]);
    }
    head
}
