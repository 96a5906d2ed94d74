//! The PROXY acceptor over real loopback sockets: accepted headers,
//! replayed bytes, and every way a connection is refused.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use realip_core::proxy_protocol::V2Builder;
use realip_core::TrustedProxies;
use realip_tower::acceptor::{OnReject, ProxyProtocolConfig, ProxyProtocolListener, ProxyProtocolMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Harness {
    listener: ProxyProtocolListener,
    addr: SocketAddr,
    rejected: Arc<Mutex<Vec<String>>>,
}

async fn harness(mode: ProxyProtocolMode, allowed: &[&str], timeout_ms: u64) -> Harness {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rejected = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&rejected);
    let on_reject: OnReject = Arc::new(move |e| sink.lock().unwrap().push(e.to_string()));
    let cfg = ProxyProtocolConfig {
        mode,
        allowed_from: TrustedProxies::parse(allowed).unwrap(),
        header_timeout: Duration::from_millis(timeout_ms),
    };
    let listener = ProxyProtocolListener::new(tcp, cfg, on_reject).unwrap();
    let addr = listener.local_addr();
    Harness { listener, addr, rejected }
}

fn v2(src: &str) -> Vec<u8> {
    V2Builder::proxy(src.parse().unwrap(), "127.0.0.1:443".parse().unwrap()).tlv(0x05, b"abc").encode().unwrap()
}

/// Reads until EOF (the server closed), bounded by the test's own timeout.
async fn closed(mut c: TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test]
async fn header_and_first_bytes_in_one_segment() {
    let mut h = harness(ProxyProtocolMode::Required, &["127.0.0.1"], 2000).await;
    let mut c = TcpStream::connect(h.addr).await.unwrap();
    let mut bytes = v2("203.0.113.7:40000");
    bytes.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    c.write_all(&bytes).await.unwrap();
    let (mut stream, info) = h.listener.accept().await.unwrap();
    let p = info.proxy.expect("header");
    assert_eq!(
        (p.src.as_ref().and_then(realip_tower::Endpoint::inet), p.tlvs.len()),
        (Some("203.0.113.7:40000".parse().unwrap()), 1)
    );
    let mut got = vec![0u8; 18];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");
}

#[tokio::test]
async fn header_split_over_many_writes() {
    let mut h = harness(ProxyProtocolMode::Required, &["127.0.0.1"], 2000).await;
    let mut c = TcpStream::connect(h.addr).await.unwrap();
    let bytes = b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 443\r\nX".to_vec();
    tokio::spawn(async move {
        for b in bytes {
            c.write_all(&[b]).await.unwrap();
            c.flush().await.unwrap();
        }
        // keep the connection open until the test is done
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let (mut stream, info) = h.listener.accept().await.unwrap();
    assert_eq!(info.proxy.unwrap().src.as_ref().map(ToString::to_string).as_deref(), Some("[2001:db8::1]:1000"));
    let mut x = [0u8; 1];
    stream.read_exact(&mut x).await.unwrap();
    assert_eq!(&x, b"X");
}

#[tokio::test]
async fn optional_mode_passes_plain_connections() {
    let mut h = harness(ProxyProtocolMode::Optional, &["127.0.0.1"], 2000).await;
    let mut c = TcpStream::connect(h.addr).await.unwrap();
    c.write_all(b"POST / HTTP/1.1\r\n").await.unwrap();
    let (mut stream, info) = h.listener.accept().await.unwrap();
    assert!(info.proxy.is_none());
    let mut got = vec![0u8; 17];
    stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"POST / HTTP/1.1\r\n");
}

#[tokio::test]
async fn refusals_close_the_connection_and_are_reported() {
    // Untrusted sender on a required listener: closed at once.
    let h = harness(ProxyProtocolMode::Required, &["10.0.0.0/8"], 2000).await;
    let mut c = TcpStream::connect(h.addr).await.unwrap();
    c.write_all(&v2("203.0.113.7:1")).await.unwrap();
    assert!(closed(c).await);
    // Untrusted sender of a header on an optional listener.
    let h2 = harness(ProxyProtocolMode::Optional, &["10.0.0.0/8"], 2000).await;
    let mut c = TcpStream::connect(h2.addr).await.unwrap();
    c.write_all(&v2("203.0.113.7:1")).await.unwrap();
    assert!(closed(c).await);
    // Malformed header.
    let h3 = harness(ProxyProtocolMode::Required, &["127.0.0.1"], 2000).await;
    let mut c = TcpStream::connect(h3.addr).await.unwrap();
    c.write_all(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n").await.unwrap();
    assert!(closed(c).await);
    // No header on a required listener.
    let mut c = TcpStream::connect(h3.addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closed(c).await);
    // A sender that never finishes: closed after the header timeout.
    let h4 = harness(ProxyProtocolMode::Required, &["127.0.0.1"], 200).await;
    let mut c = TcpStream::connect(h4.addr).await.unwrap();
    c.write_all(b"PROXY TCP4 1.2.3.4").await.unwrap();
    assert!(closed(c).await);

    let all: Vec<String> = [&h, &h2, &h3, &h4].iter().flat_map(|h| h.rejected.lock().unwrap().clone()).collect();
    let joined = all.join("\n");
    for needle in [
        "not allowed to send a PROXY header",
        "source port is not a decimal",
        "PROXY header required",
        "not received within",
    ] {
        assert!(joined.contains(needle), "missing `{needle}` in:\n{joined}");
    }
}
