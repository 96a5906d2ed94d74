//! Each row of docs/conformance.md, as a test: the peer's documented
//! answer for the row's example request, under the realip equivalent.

use realip_core::proxy_protocol::{decode_complete, encode_v1};
use realip_core::{Resolver, Sources, Strategy, TrustedProxies};

struct Row {
    peer_setting: &'static str,
    trust: &'static [&'static str],
    sources: &'static [&'static str],
    strategy: &'static str,
    peer: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// What the peer documents for this request.
    expect: &'static str,
}

const NGINX: &[&str] = &["10.0.0.0/8"];

#[allow(clippy::too_many_lines)] // a table
fn rows() -> Vec<Row> {
    vec![
        Row {
            peer_setting: "nginx real_ip_recursive on",
            trust: NGINX,
            sources: &["xff"],
            strategy: "rightmost-untrusted",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10, 10.1.1.1")],
            expect: "203.0.113.10",
        },
        Row {
            peer_setting: "nginx recursive, all trusted",
            trust: NGINX,
            sources: &["xff"],
            strategy: "rightmost-untrusted",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "10.9.9.9, 10.1.1.1")],
            expect: "10.9.9.9",
        },
        Row {
            peer_setting: "nginx real_ip_recursive off",
            trust: NGINX,
            sources: &["xff"],
            strategy: "trusted-hops:1",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 10.1.1.1")],
            expect: "10.1.1.1",
        },
        Row {
            peer_setting: "nginx untrusted peer",
            trust: NGINX,
            sources: &["xff"],
            strategy: "rightmost-untrusted",
            peer: "198.51.100.1",
            headers: &[("X-Forwarded-For", "1.2.3.4")],
            expect: "198.51.100.1",
        },
        Row {
            peer_setting: "nginx real_ip_header X-Real-IP",
            trust: NGINX,
            sources: &["x-real-ip"],
            strategy: "rightmost-untrusted",
            peer: "10.0.0.5",
            headers: &[("X-Real-IP", "203.0.113.10")],
            expect: "203.0.113.10",
        },
        Row {
            peer_setting: "Envoy xff_num_trusted_hops 1",
            trust: NGINX,
            sources: &["xff"],
            strategy: "trusted-hops:1",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 198.51.100.2")],
            expect: "198.51.100.2",
        },
        Row {
            peer_setting: "Envoy xff_num_trusted_hops 0",
            trust: NGINX,
            sources: &["xff"],
            strategy: "trusted-hops:0",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 198.51.100.2")],
            expect: "10.0.0.5",
        },
        Row {
            peer_setting: "Envoy too few hops",
            trust: NGINX,
            sources: &["xff"],
            strategy: "trusted-hops:3",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "198.51.100.2")],
            expect: "10.0.0.5",
        },
        Row {
            peer_setting: "uvicorn --forwarded-allow-ips=10.0.0.0/8,127.0.0.1",
            trust: &["10.0.0.0/8", "127.0.0.1"],
            sources: &["xff"],
            strategy: "rightmost-untrusted",
            peer: "127.0.0.1",
            headers: &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10")],
            expect: "203.0.113.10",
        },
        Row {
            peer_setting: "uvicorn --forwarded-allow-ips=*",
            trust: &["0.0.0.0/0", "::/0"],
            sources: &["xff"],
            strategy: "rightmost-untrusted",
            peer: "198.51.100.1",
            headers: &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10")],
            expect: "1.2.3.4",
        },
        Row {
            peer_setting: "Traefik ipStrategy.depth 2",
            trust: NGINX,
            sources: &["xff"],
            strategy: "trusted-hops:2",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 198.51.100.2, 10.1.1.1")],
            expect: "198.51.100.2",
        },
        Row {
            peer_setting: "Traefik ipStrategy.excludedIPs",
            trust: NGINX,
            sources: &["xff"],
            strategy: "rightmost-untrusted",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10, 10.1.1.1")],
            expect: "203.0.113.10",
        },
        Row {
            peer_setting: "Caddy trusted_proxies (left to right)",
            trust: NGINX,
            sources: &["xff"],
            strategy: "leftmost",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10")],
            expect: "1.2.3.4",
        },
        Row {
            peer_setting: "Caddy trusted_proxies_strict",
            trust: NGINX,
            sources: &["xff"],
            strategy: "rightmost-untrusted",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10")],
            expect: "203.0.113.10",
        },
        Row {
            peer_setting: "nginx real_ip_header CF-Connecting-IP",
            trust: NGINX,
            sources: &["header:cf-connecting-ip"],
            strategy: "rightmost-untrusted",
            peer: "10.0.0.5",
            headers: &[("CF-Connecting-IP", "203.0.113.10")],
            expect: "203.0.113.10",
        },
        Row {
            peer_setting: "Caddy client_ip_headers X-Real-IP X-Forwarded-For",
            trust: NGINX,
            sources: &["x-real-ip", "xff"],
            strategy: "rightmost-untrusted",
            peer: "10.0.0.5",
            headers: &[("X-Forwarded-For", "203.0.113.10")],
            expect: "203.0.113.10",
        },
    ]
}

#[test]
fn every_row_gives_the_documented_answer() {
    let mut wrong = Vec::new();
    for row in rows() {
        let resolver = Resolver::new(
            TrustedProxies::parse(row.trust).unwrap(),
            Sources::parse(row.sources).unwrap(),
            row.strategy.parse::<Strategy>().unwrap(),
        );
        let r = resolver.resolve(row.peer.parse().unwrap(), None, row.headers).unwrap();
        if r.ip.to_string() != row.expect {
            wrong.push(format!("{}: got {}, peer documents {}", row.peer_setting, r.ip, row.expect));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn nginx_real_ip_header_proxy_protocol() {
    let mut pp = Vec::new();
    encode_v1(Some(("203.0.113.10:5000".parse().unwrap(), "10.0.0.1:443".parse().unwrap())), &mut pp).unwrap();
    let header = decode_complete(&pp).unwrap().0;
    let resolver = Resolver::new(
        TrustedProxies::parse(NGINX).unwrap(),
        Sources::parse(["proxy-protocol"]).unwrap(),
        Strategy::default(),
    );
    let none: [(&str, &str); 0] = [];
    let r = resolver.resolve("10.0.0.5".parse().unwrap(), Some(&header), &none[..]).unwrap();
    assert_eq!(r.ip.to_string(), "203.0.113.10");
    // Where realip is stricter than nginx: an untrusted sender is rejected.
    assert!(resolver.resolve("198.51.100.1".parse().unwrap(), Some(&header), &none[..]).is_err());
}

#[test]
fn documented_differences_warn() {
    let resolver =
        Resolver::new(TrustedProxies::parse(NGINX).unwrap(), Sources::parse(["xff"]).unwrap(), Strategy::Leftmost);
    let r = resolver.resolve("10.0.0.5".parse().unwrap(), None, &[("X-Forwarded-For", "1.2.3.4")][..]).unwrap();
    assert!(r.warnings.iter().any(|w| w.to_string().contains("forge")));
    // uvicorn would return "unknown" as the client host; realip keeps the address to its right.
    let resolver =
        Resolver::new(TrustedProxies::parse(NGINX).unwrap(), Sources::parse(["xff"]).unwrap(), Strategy::default());
    let r =
        resolver.resolve("10.0.0.5".parse().unwrap(), None, &[("X-Forwarded-For", "unknown, 10.1.1.1")][..]).unwrap();
    assert_eq!(r.ip.to_string(), "10.1.1.1");
    assert!(r.warnings.iter().any(|w| w.to_string().contains("invalid entry")));
}
