//! Hot paths of realip-core, each beside the most used crate doing the
//! same job, in one run:
//! - `resolve/*`: a 3-entry X-Forwarded-For over a 20-CIDR trust set;
//!   `client-ip` (used by `axum-client-ip`) extracts the rightmost entry,
//!   which is our `trusted-hops:1`;
//! - `proxy_v2_decode/*`: a PROXY v2 header with 2 TLVs, vs `ppp`;
//! - `forwarded/*`: RFC 7239 parsing, vs `client-ip`'s rightmost `Forwarded`.
//!
//! Run: `cargo bench -p realip-core --bench core`.

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use http::HeaderMap;
use realip_core::forwarded::forwarded_rev;
use realip_core::headers::{xff_rev, Field};
use realip_core::proxy_protocol::{decode, Decoded, V2Builder};
use realip_core::{Headers as _, Resolver, Sources, Strategy, TrustedProxies};

fn trust20() -> TrustedProxies {
    let cidrs: Vec<String> = (0..20).map(|i| format!("10.{i}.0.0/16")).collect();
    TrustedProxies::parse(&cidrs).unwrap()
}

fn xff_map() -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("host", "app.example.com".parse().unwrap());
    map.insert("user-agent", "curl/8.0".parse().unwrap());
    map.insert("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.7.0.3".parse().unwrap());
    map
}

fn resolve(c: &mut Criterion) {
    let peer: IpAddr = "10.3.0.1".parse().unwrap();
    let map = xff_map();
    let mut g = c.benchmark_group("resolve");
    let r = Resolver::new(trust20(), Sources::parse(["xff"]).unwrap(), Strategy::RightmostUntrusted);
    assert_eq!(r.resolve(peer, None, &map).unwrap().ip.to_string(), "203.0.113.9");
    g.bench_function("realip_rightmost_untrusted_20cidr", |b| {
        b.iter(|| r.resolve(black_box(peer), None, black_box(&map)).unwrap());
    });
    let hops1 = Resolver::new(trust20(), Sources::parse(["xff"]).unwrap(), Strategy::TrustedHops(1));
    assert_eq!(hops1.resolve(peer, None, &map).unwrap().ip.to_string(), "10.7.0.3");
    g.bench_function("realip_trusted_hops_1", |b| {
        b.iter(|| hops1.resolve(black_box(peer), None, black_box(&map)).unwrap());
    });
    g.bench_function("realip_xff_rightmost_entry", |b| {
        b.iter(|| xff_rev(black_box(&map).lines(Field::XForwardedFor)).next().unwrap());
    });
    assert_eq!(client_ip::rightmost_x_forwarded_for(&map).unwrap().to_string(), "10.7.0.3");
    g.bench_function("client_ip_rightmost_x_forwarded_for", |b| {
        b.iter(|| client_ip::rightmost_x_forwarded_for(black_box(&map)).unwrap());
    });
    g.finish();
}

fn proxy_v2(c: &mut Criterion) {
    let bytes = V2Builder::proxy("203.0.113.7:51234".parse().unwrap(), "10.0.0.1:443".parse().unwrap())
        .tlv(0x02, b"app.example.com")
        .tlv(0x05, b"0123456789abcdef")
        .encode()
        .unwrap();
    let mut g = c.benchmark_group("proxy_v2_decode");
    g.bench_function("realip", |b| {
        b.iter(|| match decode(black_box(&bytes)) {
            Ok(Decoded::Header { header, len }) => (header.source(), header.tlvs().count(), len),
            _ => unreachable!(),
        });
    });
    g.bench_function("ppp", |b| {
        b.iter(|| {
            let h = ppp::v2::Header::try_from(black_box(&bytes[..])).unwrap();
            (h.addresses, h.tlvs().count(), h.len())
        });
    });
    g.finish();
}

fn forwarded(c: &mut Criterion) {
    let mut map = HeaderMap::new();
    map.insert(
        "forwarded",
        "for=198.51.100.7;proto=https, for=\"[2001:db8:cafe::17]:4711\", for=10.7.0.3".parse().unwrap(),
    );
    let mut g = c.benchmark_group("forwarded");
    g.bench_function("realip_walk_all", |b| {
        b.iter(|| forwarded_rev(black_box(&map).lines(Field::Forwarded)).count());
    });
    let r = Resolver::new(trust20(), Sources::parse(["forwarded"]).unwrap(), Strategy::RightmostUntrusted);
    let peer: IpAddr = "10.3.0.1".parse().unwrap();
    g.bench_function("realip_resolve", |b| {
        b.iter(|| r.resolve(black_box(peer), None, black_box(&map)).unwrap());
    });
    g.bench_function("client_ip_rightmost_forwarded", |b| {
        b.iter(|| client_ip::rightmost_forwarded(black_box(&map)).unwrap());
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = resolve, proxy_v2, forwarded }
criterion_main!(benches);
