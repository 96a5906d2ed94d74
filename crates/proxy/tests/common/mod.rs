//! What the proxy's in-process tests share: an upstream that allocates
//! nothing per request, the listener started on a given state, and a
//! directory removed on drop.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::sync::Arc;

use realip_proxy::accept::Acceptor;
use realip_proxy::http::Shared;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// Answers every request head on every connection with `response`
/// (raw sockets and a stack buffer: no allocation per request).
pub async fn upstream(l: TcpListener, response: &'static [u8]) {
    loop {
        let Ok((mut s, _)) = l.accept().await else { return };
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut have = 0;
            loop {
                let Ok(n) = s.read(&mut buf[have..]).await else { return };
                if n == 0 {
                    return;
                }
                have += n;
                while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    if s.write_all(response).await.is_err() {
                        return;
                    }
                    buf.copy_within(end + 4..have, 0);
                    have -= end + 4;
                }
            }
        });
    }
}

/// Serves listener `web` of `shared` on a new loopback port (the drain
/// never starts while the returned handle lives).
pub async fn serve(shared: &Arc<Shared>) -> (SocketAddr, realip_proxy::drain::Drain) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (drain, watch) = realip_proxy::drain::Drain::new();
    tokio::spawn(realip_proxy::listener::serve(
        "web".into(),
        Acceptor::new(tcp, "web".into()),
        Arc::clone(shared),
        Arc::new(tokio::sync::Semaphore::new(100)),
        watch,
        0,
    ));
    (addr, drain)
}

/// A temporary directory, removed on drop (also when the test fails).
pub struct Cleanup(pub std::path::PathBuf);

impl Cleanup {
    /// Creates `realip-NAME-PID` under the temporary directory.
    pub fn new(name: &str) -> Cleanup {
        let dir = std::env::temp_dir().join(format!("realip-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Cleanup(dir)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A redis-server on 127.0.0.1:`port`, no persistence, `DEBUG` allowed
/// from loopback; killed and its directory removed on drop.
pub struct Redis {
    child: std::process::Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts redis-server, or `None` (printed) when it is not installed and
/// `REALIP_REQUIRE_PEERS` is not set.
pub fn redis() -> Option<Redis> {
    if std::process::Command::new("redis-server").arg("--version").stdout(std::process::Stdio::null()).status().is_err()
    {
        assert!(
            std::env::var_os("REALIP_REQUIRE_PEERS").is_none_or(|v| v != "1"),
            "redis-server is not installed (REALIP_REQUIRE_PEERS=1)"
        );
        eprintln!("skipped: redis-server is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("realip-test-redis-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .args(["--enable-debug-command", "local", "--dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let r = Redis { child, port, dir };
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(20), "redis-server did not open port {port}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some(r)
}
