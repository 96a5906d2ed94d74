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
