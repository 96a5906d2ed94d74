//! A reload must free the configuration it replaced once no request uses
//! it: idle keep-alive connections must not keep it alive. (Before, each
//! connection held the snapshot it began under for its whole life, so
//! with frequent Kubernetes reloads and long-lived client connections
//! every replaced configuration — 10,000 routes each — stayed in memory.)

use std::sync::Arc;
use std::time::Duration;

mod common;

use realip_proxy::http::Shared;
use realip_proxy::log::AccessLog;
use realip_proxy::snapshot::Snapshot;
use realip_proxy::Config;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

async fn request(s: &mut TcpStream) {
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut have = 0;
    while !buf[..have].ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf[have..])).await.unwrap().unwrap();
        assert!(n > 0, "proxy closed the connection");
        have += n;
    }
    assert!(buf.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..have]));
}

fn config(up: std::net::SocketAddr, route: &str, log: &std::path::Path) -> Config {
    Config::parse(&format!(
        "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n[log]\npath = \"{}\"\n\
         [[route]]\nname = \"{route}\"\nhost = \"app.example.com\"\nupstream = \"up\"\n\
         [[upstream]]\nname = \"up\"\nendpoints = [\"{up}\"]\n",
        log.display()
    ))
    .unwrap()
}

#[test]
fn idle_connections_do_not_keep_replaced_configurations_alive() {
    let dir = common::Cleanup::new("snapshot-lifetime");
    let log_path = dir.0.join("access.log");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let up = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(common::upstream(up, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
        let snapshot = Snapshot::build(config(up_addr, "first", &log_path)).unwrap();
        let log = AccessLog::open(&snapshot.config.log).unwrap();
        let shared = Arc::new(Shared::new(snapshot, log));
        let (addr, _drain) = common::serve(&shared).await;
        // Two keep-alive clients: one stays idle, one will send again.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut busy = TcpStream::connect(addr).await.unwrap();
        request(&mut idle).await;
        request(&mut busy).await;
        let first = Arc::downgrade(&shared.snapshot.load_full());
        // A reload, while both connections stay open.
        shared.snapshot.store(Arc::new(Snapshot::build(config(up_addr, "second", &log_path)).unwrap()));
        request(&mut busy).await;
        // Idle connections park after 100 ms; neither state may hold it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            first.upgrade().is_none(),
            "the replaced configuration is still alive ({} holders)",
            first.strong_count()
        );
        request(&mut idle).await;
        request(&mut busy).await;
    });
}
