//! Resolution and PROXY decoding never touch the heap: a counting global
//! allocator (allocation-counter) sees zero allocations per call.

use http::HeaderMap;
use realip_core::proxy_protocol::{decode, V2Builder};
use realip_core::{Resolver, Sources, Strategy, TrustedProxies};

fn resolver(strategy: Strategy) -> Resolver {
    let cidrs: Vec<String> = (0..20).map(|i| format!("10.{i}.0.0/16")).collect();
    Resolver::new(
        TrustedProxies::parse(&cidrs).unwrap(),
        Sources::parse(["proxy-protocol", "forwarded", "xff", "x-real-ip"]).unwrap(),
        strategy,
    )
}

#[test]
fn resolving_allocates_nothing() {
    let mut map = HeaderMap::new();
    map.append("x-forwarded-for", "198.51.100.1, 203.0.113.7".parse().unwrap());
    map.append("x-forwarded-for", "10.3.0.9, unknown, 10.4.0.1".parse().unwrap());
    let fwd = [("forwarded", "for=\"[2001:db8::1]:80\";proto=https, for=10.1.0.1")];
    let pp_bytes = V2Builder::proxy("10.2.0.1:1000".parse().unwrap(), "10.0.0.1:443".parse().unwrap())
        .tlv(0x05, b"id-1")
        .crc32c(true)
        .encode()
        .unwrap();
    let peer = "10.0.0.2".parse().unwrap();
    for strategy in [Strategy::RightmostUntrusted, Strategy::TrustedHops(2), Strategy::Leftmost] {
        let r = resolver(strategy);
        let info = allocation_counter::measure(|| {
            let Ok(realip_core::proxy_protocol::Decoded::Header { header, .. }) = decode(&pp_bytes) else { panic!() };
            let a = r.resolve(peer, Some(&header), &map).unwrap();
            let b = r.resolve(peer, None, &fwd[..]).unwrap();
            std::hint::black_box((a, b));
        });
        assert_eq!(info.count_total, 0, "{strategy}: {info:?}");
    }
}

#[test]
fn resolving_a_custom_header_allocates_nothing() {
    // The name is parsed (and interned) once, outside the measured call.
    let r = Resolver::new(
        TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
        Sources::parse(["header:CF-Connecting-IP", "xff"]).unwrap(),
        Strategy::RightmostUntrusted,
    );
    let mut map = HeaderMap::new();
    map.append("cf-connecting-ip", "203.0.113.7".parse().unwrap());
    let pairs = [("CF-Connecting-IP", "203.0.113.8")];
    let peer = "10.0.0.2".parse().unwrap();
    let info = allocation_counter::measure(|| {
        let a = r.resolve(peer, None, &map).unwrap();
        let b = r.resolve(peer, None, &pairs[..]).unwrap();
        std::hint::black_box((a.source.as_str(), b));
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}
