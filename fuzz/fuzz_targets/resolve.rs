//! Full resolution over fuzzed headers, peer and PROXY bytes: never panic;
//! an untrusted peer's headers (X-Forwarded-For, Forwarded, X-Real-IP and
//! the custom header source `header:cf-connecting-ip`) are never used.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realip_core::proxy_protocol::{decode, Decoded};
use realip_core::{Resolver, Source, Sources, Strategy, TrustedProxies};
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, strat, split1, split2, rest @ ..] = data else { return };
    let peer = IpAddr::from([*a, *b, *c, *d]);
    let trusted = TrustedProxies::parse(["10.0.0.0/8", "::1", "2001:db8::/32"]).unwrap();
    let strategy = match strat % 4 {
        0 => Strategy::RightmostUntrusted,
        1 => Strategy::Leftmost,
        n => Strategy::TrustedHops(u16::from(n + strat / 4 % 4)),
    };
    let sources =
        Sources::parse(["proxy-protocol", "forwarded", "xff", "x-real-ip", "header:cf-connecting-ip"]).unwrap();
    let resolver = Resolver::new(trusted.clone(), sources, strategy);
    let s1 = usize::from(*split1) % (rest.len() + 1);
    let s2 = s1 + usize::from(*split2) % (rest.len() - s1 + 1);
    let (xff, tail) = rest.split_at(s1);
    let (fwd, pp) = tail.split_at(s2 - s1);
    let headers: [(&str, &[u8]); 4] =
        [("x-forwarded-for", xff), ("forwarded", fwd), ("x-real-ip", pp), ("cf-connecting-ip", xff)];
    let header = match decode(pp) {
        Ok(Decoded::Header { header, .. }) => Some(header),
        _ => None,
    };
    match resolver.resolve(peer, header.as_ref(), &headers[..]) {
        Ok(r) => {
            if !trusted.contains(peer) {
                assert!(r.ip == peer && r.source == Source::Peer);
            }
        }
        Err(_) => assert!(header.is_some() && !trusted.contains(peer)),
    }
});
