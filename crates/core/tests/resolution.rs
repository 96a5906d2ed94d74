//! The resolution contract of DESIGN.md as a table: each row is one request
//! (peer, PROXY header, header lines) under one policy, and the answer a
//! user relies on. The seed guide's own settings (`proxy-real-ip-cidr:
//! 10.0.0.0/8`, uvicorn `--forwarded-allow-ips="10.0.0.0/8,127.0.0.1"`) are
//! the trust sets of most rows.

use realip_core::proxy_protocol::{decode_complete, V2Builder};
use realip_core::{Error, Resolver, Sources, Strategy, TrustedProxies};

struct Case {
    name: &'static str,
    peer: &'static str,
    trust: &'static [&'static str],
    sources: &'static [&'static str],
    strategy: &'static str,
    headers: &'static [(&'static str, &'static str)],
    /// PROXY v2 source address the connection began with.
    proxy_src: Option<&'static str>,
    /// (client ip, source, hop, a substring of the warnings or "")
    want: (&'static str, &'static str, u16, &'static str),
}

const GUIDE_TRUST: &[&str] = &["10.0.0.0/8", "127.0.0.1"];
const XFF: &[&str] = &["xff"];

fn case(
    name: &'static str,
    peer: &'static str,
    headers: &'static [(&'static str, &'static str)],
    want: (&'static str, &'static str, u16, &'static str),
) -> Case {
    Case {
        name,
        peer,
        trust: GUIDE_TRUST,
        sources: XFF,
        strategy: "rightmost-untrusted",
        headers,
        proxy_src: None,
        want,
    }
}

#[allow(clippy::too_many_lines)] // a table
fn cases() -> Vec<Case> {
    vec![
        case(
            "untrusted peer: forged XFF ignored",
            "198.51.100.1",
            &[("X-Forwarded-For", "1.2.3.4")],
            ("198.51.100.1", "peer", 0, ""),
        ),
        case(
            "seed guide chain: ingress appended client",
            "10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10")],
            ("203.0.113.10", "xff", 1, ""),
        ),
        case(
            "client forges the left, ingress appends the real one",
            "10.0.0.5",
            &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10")],
            ("203.0.113.10", "xff", 1, ""),
        ),
        case(
            "trusted hops skipped from the right",
            "10.0.0.5",
            &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10, 10.1.1.1, 10.2.2.2")],
            ("203.0.113.10", "xff", 3, ""),
        ),
        case(
            "all trusted: leftmost is the client",
            "10.0.0.5",
            &[("X-Forwarded-For", "10.9.9.9, 10.1.1.1")],
            ("10.9.9.9", "xff", 2, ""),
        ),
        case(
            "several lines join in order",
            "10.0.0.5",
            &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10"), ("X-Forwarded-For", "10.1.1.1")],
            ("203.0.113.10", "xff", 2, ""),
        ),
        case(
            "the last line is the rightmost",
            "10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10"), ("X-Forwarded-For", "198.51.100.3")],
            ("198.51.100.3", "xff", 1, ""),
        ),
        case(
            "ports and brackets stripped",
            "10.0.0.5",
            &[("X-Forwarded-For", "[2001:db8::7]:4711, 10.1.1.1:80")],
            ("2001:db8::7", "xff", 2, ""),
        ),
        case(
            "mapped IPv6 entry becomes IPv4",
            "10.0.0.5",
            &[("X-Forwarded-For", "::ffff:203.0.113.10")],
            ("203.0.113.10", "xff", 1, ""),
        ),
        case(
            "mapped trusted proxy entry is trusted",
            "10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10, ::ffff:10.1.1.1")],
            ("203.0.113.10", "xff", 2, ""),
        ),
        case(
            "mapped peer is trusted",
            "::ffff:10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10")],
            ("203.0.113.10", "xff", 1, ""),
        ),
        case(
            "mapped untrusted peer printed as IPv4",
            "::ffff:198.51.100.1",
            &[("X-Forwarded-For", "203.0.113.10")],
            ("198.51.100.1", "peer", 0, ""),
        ),
        case(
            "string-prefix trust would accept 100.x",
            "10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10, 100.0.0.1")],
            ("100.0.0.1", "xff", 1, ""),
        ),
        case(
            "invalid rightmost entry: peer",
            "10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10, unknown")],
            ("10.0.0.5", "peer", 0, "invalid entry"),
        ),
        case(
            "invalid entry stops the walk",
            "10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10, _hidden, 10.1.1.1")],
            ("10.1.1.1", "xff", 1, "invalid entry"),
        ),
        case(
            "garbage entry stops the walk",
            "10.0.0.5",
            &[("X-Forwarded-For", "203.0.113.10, <script>, 10.1.1.1")],
            ("10.1.1.1", "xff", 1, "invalid entry"),
        ),
        case("empty header yields the peer", "10.0.0.5", &[("X-Forwarded-For", "")], ("10.0.0.5", "peer", 0, "")),
        case(
            "empty list elements skipped",
            "10.0.0.5",
            &[("X-Forwarded-For", ",203.0.113.10,, ")],
            ("203.0.113.10", "xff", 1, ""),
        ),
        case("no header: peer", "10.0.0.5", &[("Host", "x")], ("10.0.0.5", "peer", 0, "")),
        case("IPv6 peer and entry", "::1", &[("X-Forwarded-For", "2001:DB8:0:0::1")], ("::1", "peer", 0, "")),
        Case {
            trust: &["::1"],
            ..case(
                "IPv6 printed in RFC 5952 form",
                "::1",
                &[("X-Forwarded-For", "2001:DB8:0:0::1")],
                ("2001:db8::1", "xff", 1, ""),
            )
        },
        Case {
            trust: &["0.0.0.0/0"],
            ..case(
                "IPv4 /0 never matches IPv6",
                "2001:db8::9",
                &[("X-Forwarded-For", "1.2.3.4")],
                ("2001:db8::9", "peer", 0, ""),
            )
        },
        Case {
            trust: &[],
            ..case(
                "nothing trusted by default",
                "127.0.0.1",
                &[("X-Forwarded-For", "1.2.3.4")],
                ("127.0.0.1", "peer", 0, ""),
            )
        },
        // Strategies.
        Case {
            strategy: "trusted-hops:1",
            ..case(
                "trusted-hops:1 is the rightmost",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4, 198.51.100.2, 10.1.1.1")],
                ("10.1.1.1", "xff", 1, ""),
            )
        },
        Case {
            strategy: "trusted-hops:2",
            ..case(
                "trusted-hops:2",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4, 198.51.100.2, 10.1.1.1")],
                ("198.51.100.2", "xff", 2, ""),
            )
        },
        Case {
            strategy: "trusted-hops:0",
            ..case(
                "trusted-hops:0 is the peer",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4")],
                ("10.0.0.5", "peer", 0, ""),
            )
        },
        Case {
            strategy: "trusted-hops:3",
            ..case(
                "trusted-hops too short: peer with warning",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4, 10.1.1.1")],
                ("10.0.0.5", "peer", 0, "fewer than the 3 trusted hops"),
            )
        },
        Case {
            strategy: "trusted-hops:1",
            ..case(
                "trusted-hops needs a trusted peer",
                "198.51.100.1",
                &[("X-Forwarded-For", "1.2.3.4")],
                ("198.51.100.1", "peer", 0, ""),
            )
        },
        Case {
            strategy: "trusted-hops:2",
            ..case(
                "trusted-hops stops at an invalid entry",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4, unknown, 10.1.1.1")],
                ("10.1.1.1", "xff", 1, "invalid entry"),
            )
        },
        Case {
            strategy: "leftmost",
            ..case(
                "leftmost takes the forgeable first entry",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10")],
                ("1.2.3.4", "xff", 2, "forge"),
            )
        },
        Case {
            strategy: "leftmost",
            ..case(
                "leftmost still needs a trusted peer",
                "198.51.100.1",
                &[("X-Forwarded-For", "1.2.3.4")],
                ("198.51.100.1", "peer", 0, ""),
            )
        },
        // Sources.
        Case {
            sources: &["forwarded"],
            ..case(
                "Forwarded quoted IPv6 with port",
                "10.0.0.5",
                &[("Forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.1.1.1")],
                ("2001:db8:cafe::17", "forwarded", 2, ""),
            )
        },
        Case {
            sources: &["forwarded"],
            ..case(
                "Forwarded obfuscated node stops the walk",
                "10.0.0.5",
                &[("Forwarded", "for=203.0.113.10, for=_gazonk, for=10.1.1.1")],
                ("10.1.1.1", "forwarded", 1, "invalid entry"),
            )
        },
        Case {
            sources: &["forwarded"],
            ..case(
                "Forwarded syntax error: peer",
                "10.0.0.5",
                &[("Forwarded", "for=203.0.113.10 x")],
                ("10.0.0.5", "peer", 0, "invalid entry"),
            )
        },
        Case {
            sources: &["x-real-ip"],
            ..case(
                "X-Real-IP from a trusted peer",
                "10.0.0.5",
                &[("X-Real-IP", "203.0.113.10")],
                ("203.0.113.10", "x-real-ip", 1, ""),
            )
        },
        Case {
            sources: &["x-real-ip"],
            ..case(
                "X-Real-IP list is not an address",
                "10.0.0.5",
                &[("X-Real-IP", "1.2.3.4, 203.0.113.10")],
                ("10.0.0.5", "peer", 0, "invalid entry"),
            )
        },
        // A custom header (`header:NAME`) has X-Real-IP's rules: one address,
        // read only from a trusted hop, name matched in any case.
        Case {
            sources: &["header:CF-Connecting-IP"],
            ..case(
                "header:NAME from a trusted peer",
                "10.0.0.5",
                &[("cf-connecting-ip", "203.0.113.10")],
                ("203.0.113.10", "header:cf-connecting-ip", 1, ""),
            )
        },
        Case {
            sources: &["header:cf-connecting-ip"],
            ..case(
                "header:NAME from an untrusted peer: ignored",
                "198.51.100.1",
                &[("CF-Connecting-IP", "203.0.113.10")],
                ("198.51.100.1", "peer", 0, ""),
            )
        },
        Case {
            sources: &["header:true-client-ip"],
            ..case(
                "header:NAME holding a list is not an address",
                "10.0.0.5",
                &[("True-Client-IP", "1.2.3.4, 203.0.113.10")],
                ("10.0.0.5", "peer", 0, "invalid entry in header:true-client-ip at hop 1"),
            )
        },
        Case {
            sources: &["header:true-client-ip"],
            ..case(
                "header:NAME repeated: the last line is the nearest hop",
                "10.0.0.5",
                &[("True-Client-IP", "1.2.3.4"), ("True-Client-IP", "203.0.113.10")],
                ("203.0.113.10", "header:true-client-ip", 1, ""),
            )
        },
        Case {
            sources: &["header:cf-connecting-ip", "xff"],
            ..case(
                "header:NAME absent: the next source",
                "10.0.0.5",
                &[("X-Forwarded-For", "198.51.100.3")],
                ("198.51.100.3", "xff", 1, ""),
            )
        },
        Case {
            sources: &["proxy-protocol", "header:cf-connecting-ip"],
            trust: &["10.0.0.0/8", "198.51.100.0/24"],
            proxy_src: Some("198.51.100.77:5555"),
            ..case(
                "PROXY from the LB, then the CDN's header from the trusted CDN",
                "10.0.0.5",
                &[("CF-Connecting-IP", "203.0.113.10")],
                ("203.0.113.10", "header:cf-connecting-ip", 1, ""),
            )
        },
        Case {
            sources: &["proxy-protocol", "header:cf-connecting-ip"],
            proxy_src: Some("203.0.113.10:5555"),
            ..case(
                "PROXY client cannot add the custom header",
                "10.0.0.5",
                &[("CF-Connecting-IP", "1.2.3.4")],
                ("203.0.113.10", "proxy-protocol", 0, ""),
            )
        },
        Case {
            sources: &["xff", "x-real-ip"],
            ..case(
                "first present source wins",
                "10.0.0.5",
                &[("X-Real-IP", "203.0.113.10"), ("X-Forwarded-For", "198.51.100.3")],
                ("198.51.100.3", "xff", 1, ""),
            )
        },
        Case {
            sources: &["xff", "x-real-ip"],
            ..case(
                "absent sources are skipped",
                "10.0.0.5",
                &[("X-Real-IP", "203.0.113.10")],
                ("203.0.113.10", "x-real-ip", 1, ""),
            )
        },
        Case {
            sources: &["xff", "x-real-ip"],
            ..case(
                "present-but-empty source still wins",
                "10.0.0.5",
                &[("X-Forwarded-For", " "), ("X-Real-IP", "203.0.113.10")],
                ("10.0.0.5", "peer", 0, ""),
            )
        },
        Case {
            sources: &["peer", "xff"],
            ..case("peer listed first", "10.0.0.5", &[("X-Forwarded-For", "203.0.113.10")], ("10.0.0.5", "peer", 0, ""))
        },
        // PROXY protocol: layer 4 first, then headers from the effective peer.
        Case {
            sources: &["proxy-protocol", "xff"],
            proxy_src: Some("203.0.113.10:5555"),
            ..case("PROXY from a trusted LB", "10.0.0.5", &[], ("203.0.113.10", "proxy-protocol", 0, ""))
        },
        Case {
            sources: &["proxy-protocol", "xff"],
            proxy_src: Some("203.0.113.10:5555"),
            ..case(
                "PROXY client cannot add XFF",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4")],
                ("203.0.113.10", "proxy-protocol", 0, ""),
            )
        },
        Case {
            sources: &["proxy-protocol", "xff"],
            trust: &["10.0.0.0/8", "198.51.100.0/24"],
            proxy_src: Some("198.51.100.77:5555"),
            ..case(
                "CDN -> L4 LB (PROXY) -> ingress: both layers",
                "10.0.0.5",
                &[("X-Forwarded-For", "1.2.3.4, 203.0.113.10")],
                ("203.0.113.10", "xff", 1, ""),
            )
        },
        Case {
            sources: &["xff"],
            proxy_src: Some("203.0.113.10:5555"),
            ..case(
                "PROXY header without the source: still the effective peer",
                "10.0.0.5",
                &[],
                ("203.0.113.10", "proxy-protocol", 0, ""),
            )
        },
        // Hardening item 7: the LB (trusted, speaking PROXY) never writes
        // XFF, so with `sources = ["xff"]` a client's own XFF must not win.
        Case {
            sources: &["xff"],
            proxy_src: Some("203.0.113.7:5555"),
            ..case(
                "PROXY accepted, xff only listed: client XFF cannot forge",
                "10.0.0.5",
                &[("X-Forwarded-For", "6.6.6.6")],
                ("203.0.113.7", "proxy-protocol", 0, ""),
            )
        },
    ]
}

fn run(c: &Case) -> Result<realip_core::Resolution, Error> {
    let resolver = Resolver::new(
        TrustedProxies::parse(c.trust).unwrap(),
        Sources::parse(c.sources).unwrap(),
        c.strategy.parse::<Strategy>().unwrap(),
    );
    let pp_bytes =
        c.proxy_src.map(|s| V2Builder::proxy(s.parse().unwrap(), "10.0.0.5:443".parse().unwrap()).encode().unwrap());
    let pp = pp_bytes.as_deref().map(|b| decode_complete(b).unwrap().0);
    resolver.resolve(c.peer.parse().unwrap(), pp.as_ref(), c.headers)
}

#[test]
fn resolution_table() {
    let mut failures = Vec::new();
    for c in cases() {
        let r = run(&c).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let warnings: Vec<String> = r.warnings.iter().map(|w| w.to_string()).collect();
        let (ip, source, hop, warn) = c.want;
        let warn_ok = if warn.is_empty() { warnings.is_empty() } else { warnings.iter().any(|w| w.contains(warn)) };
        if r.ip.to_string() != ip || r.source.as_str() != source || r.hop != hop || !warn_ok {
            failures.push(format!("{}: got {} {} {} {:?}, want {:?}", c.name, r.ip, r.source, r.hop, warnings, c.want));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn header_sources_are_checked_when_parsed() {
    let e = Sources::parse(["header:cf-connecting-ip", "header:true-client-ip"]).unwrap_err();
    assert!(e.to_string().contains("only one header:NAME source"), "{e}");
    let e = Sources::parse(["header:cf-connecting-ip", "header:CF-Connecting-IP"]).unwrap_err();
    assert_eq!(e, Error::DuplicateSource("header:cf-connecting-ip"));
    for (bad, why) in [("header:", "empty"), ("header:x-forwarded-for", "its own source"), ("header:a b", "character")]
    {
        let e = Sources::parse([bad]).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let e = Sources::parse(["headers:x"]).unwrap_err().to_string();
    assert!(e.contains("header:NAME"), "{e}");
}

#[test]
fn proxy_header_from_untrusted_sender_is_rejected() {
    let resolver =
        Resolver::new(TrustedProxies::parse(["10.0.0.0/8"]).unwrap(), Sources::default(), Strategy::default());
    let bytes = V2Builder::proxy("1.2.3.4:1".parse().unwrap(), "10.0.0.5:443".parse().unwrap()).encode().unwrap();
    let pp = decode_complete(&bytes).unwrap().0;
    let headers: [(&str, &str); 0] = [];
    let err = resolver.resolve("198.51.100.1".parse().unwrap(), Some(&pp), &headers[..]).unwrap_err();
    assert_eq!(err, Error::UntrustedProxySender("198.51.100.1".parse().unwrap()));
}

#[test]
fn proxy_local_command_means_the_peer() {
    let resolver =
        Resolver::new(TrustedProxies::parse(["10.0.0.0/8"]).unwrap(), Sources::default(), Strategy::default());
    let bytes = V2Builder::local().encode().unwrap();
    let pp = decode_complete(&bytes).unwrap().0;
    let r =
        resolver.resolve("10.0.0.9".parse().unwrap(), Some(&pp), &[("X-Forwarded-For", "203.0.113.1")][..]).unwrap();
    assert_eq!((r.ip.to_string().as_str(), r.source.as_str(), r.hop), ("203.0.113.1", "xff", 1));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever an untrusted peer sends, the answer is the peer.
        #[test]
        fn untrusted_peer_headers_never_used(peer in any::<[u8; 4]>(), xff in ".{0,200}", fwd in ".{0,200}", real in ".{0,60}") {
            let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
            let peer = std::net::IpAddr::from(peer);
            prop_assume!(!trusted.contains(peer));
            for strategy in ["rightmost-untrusted", "leftmost", "trusted-hops:2"] {
                let resolver = Resolver::new(trusted.clone(), Sources::parse(["xff", "forwarded", "x-real-ip"]).unwrap(), strategy.parse().unwrap());
                let h = [("X-Forwarded-For", xff.as_str()), ("Forwarded", fwd.as_str()), ("X-Real-IP", real.as_str())];
                let r = resolver.resolve(peer, None, &h[..]).unwrap();
                prop_assert_eq!(r.ip, peer);
            }
        }

        /// Random bytes in every header never panic, and the answer is
        /// always the peer or an address that appears in the input.
        #[test]
        fn random_headers_never_panic(xff in proptest::collection::vec(any::<u8>(), 0..200), fwd in proptest::collection::vec(any::<u8>(), 0..200)) {
            let resolver = Resolver::new(TrustedProxies::parse(["0.0.0.0/0", "::/0"]).unwrap(), Sources::parse(["forwarded", "xff"]).unwrap(), realip_core::Strategy::default());
            let h: [(&str, &[u8]); 2] = [("x-forwarded-for", &xff), ("forwarded", &fwd)];
            let r = resolver.resolve("10.0.0.1".parse().unwrap(), None, &h[..]).unwrap();
            prop_assert!(r.hop == 0 || r.source.as_str() != "peer");
        }
    }
}
