//! Conformance vectors (captured from HAProxy 2.6 `send-proxy`/`send-proxy-v2`),
//! prefix sweeps, named rejections and round-trip properties.

use super::*;
use crate::Error;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// HAProxy `send-proxy-v2 proxy-v2-options crc32c,unique-id` over IPv4,
/// followed by the 5-byte payload `hello`.
const HAPROXY_V2_CRC_UNIQUE: &str = "0d0a0d0a000d0a515549540a2111003f7f0000017f000001b47846a00300040559bf7505002937463030303030313a423437385f37463030303030313a343641305f36423036464635455f3030303068656c6c6f";
/// HAProxy `send-proxy-v2` from an IPv6 client, followed by `six`.
const HAPROXY_V2_V6: &str =
    "0d0a0d0a000d0a515549540a212100240000000000000000000000000000000100000000000000000000000000000001d5d446a4736978";
/// HAProxy `send-proxy`, followed by `hi`.
const HAPROXY_V1: &str = "50524f58592054435034203132372e302e302e31203132372e302e302e312034303638302031383038320d0a6869";
/// AWS NLB style: PROXY v2 with the VPC endpoint TLV (0xEA, subtype 0x01).
fn aws_nlb() -> Vec<u8> {
    V2Builder::proxy("198.51.100.23:40000".parse().unwrap(), "10.0.1.5:80".parse().unwrap())
        .tlv(kinds::AWS, b"\x01vpce-08d2bf15fac5001c9")
        .encode()
        .unwrap()
}

#[test]
fn haproxy_v2_with_crc_and_unique_id() {
    let bytes = hex(HAPROXY_V2_CRC_UNIQUE);
    let Decoded::Header { header, len } = decode(&bytes).unwrap() else { panic!() };
    assert_eq!(&bytes[len..], b"hello");
    assert_eq!(header.version, Version::V2);
    assert_eq!(header.command, Command::Proxy);
    assert_eq!(header.family_name(), "tcp4");
    assert_eq!(header.source(), Some("127.0.0.1:46200".parse().unwrap()));
    assert_eq!(header.destination(), Some("127.0.0.1:18080".parse().unwrap()));
    let kinds_seen: Vec<u8> = header.tlvs().map(|t| t.kind).collect();
    assert_eq!(kinds_seen, [kinds::CRC32C, kinds::UNIQUE_ID]);
    let Some(TlvValue::UniqueId(id)) = header.tlv(kinds::UNIQUE_ID) else { panic!() };
    assert_eq!(id, b"7F000001:B478_7F000001:46A0_6B06FF5E_0000");
}

#[test]
fn haproxy_v2_ipv6_and_v1() {
    let bytes = hex(HAPROXY_V2_V6);
    let (header, len) = decode_complete(&bytes).unwrap();
    assert_eq!(&bytes[len..], b"six");
    assert_eq!(header.family_name(), "tcp6");
    assert_eq!(header.source(), Some("[::1]:54740".parse().unwrap()));

    let bytes = hex(HAPROXY_V1);
    let (header, len) = decode_complete(&bytes).unwrap();
    assert_eq!(&bytes[len..], b"hi");
    assert_eq!(header.version, Version::V1);
    assert_eq!(header.source(), Some("127.0.0.1:40680".parse().unwrap()));
    assert_eq!(header.destination(), Some("127.0.0.1:18082".parse().unwrap()));
}

#[test]
fn aws_vpce_tlv_is_typed() {
    let bytes = aws_nlb();
    let (header, _) = decode_complete(&bytes).unwrap();
    assert_eq!(header.tlv(kinds::AWS), Some(TlvValue::AwsVpceId("vpce-08d2bf15fac5001c9")));
}

/// Every strict prefix of a valid header is `Incomplete`, never an error
/// and never a header; the full one parses.
#[test]
fn every_prefix_is_incomplete() {
    let v1_full = hex(HAPROXY_V1);
    let v1 = &v1_full[..v1_full.len() - 2];
    for h in [hex(HAPROXY_V2_CRC_UNIQUE)[..79].to_vec(), hex(HAPROXY_V2_V6)[..52].to_vec(), v1.to_vec(), aws_nlb()] {
        for i in 0..h.len() {
            match decode(&h[..i]) {
                Ok(Decoded::Incomplete { needed }) => {
                    assert!(needed >= 1 && needed <= h.len() - i, "prefix {i}: {needed}");
                }
                other => panic!("prefix {i} of {h:02x?}: {other:?}"),
            }
        }
        assert!(matches!(decode(&h), Ok(Decoded::Header { len, .. }) if len == h.len()));
    }
}

#[test]
fn not_proxy_is_handed_back() {
    for input in [&b"GET / HTTP/1.1\r\n"[..], b"\x16\x03\x01", b"PRI * HTTP/2.0", b"\r\n\r\nx", b"PROXX"] {
        assert_eq!(decode(input), Ok(Decoded::NotProxy), "{input:?}");
    }
}

#[test]
fn malformed_v1_is_named() {
    let cases: &[(&[u8], Error)] = &[
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", Error::V1BadLineEnding),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadProtocol),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", Error::V1BadFieldCount),
        (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", Error::V1BadFieldCount),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", Error::V1BadFieldCount),
        (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", Error::V1BadAddress { which: "source" }),
        (b"PROXY TCP6 ::1 5.6.7.8 1 2\r\n", Error::V1BadAddress { which: "destination" }),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", Error::V1BadPort { which: "source" }),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n", Error::V1BadPort { which: "destination" }),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", Error::V1BadPort { which: "destination" }),
        (b"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", Error::V1BadLineEnding),
    ];
    for (input, want) in cases {
        assert_eq!(decode(input).as_ref().map(|_| ()), Err(want), "{}", input.escape_ascii());
    }
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; 100]].concat();
    assert_eq!(decode(&long), Err(Error::V1TooLong));
    let unknown = decode_complete(b"PROXY UNKNOWN whatever follows\r\nGET").unwrap();
    assert_eq!((unknown.0.family_name(), unknown.0.source(), unknown.1), ("unspec", None, 32));
}

#[test]
fn malformed_v2_is_named() {
    let good = hex(HAPROXY_V2_CRC_UNIQUE)[..79].to_vec();
    let patch = |at: usize, b: u8| {
        let mut h = good.clone();
        h[at] = b;
        h
    };
    assert_eq!(decode(&patch(12, 0x11)), Err(Error::V2BadVersion(1)));
    assert_eq!(decode(&patch(12, 0x22)), Err(Error::V2BadCommand(2)));
    assert_eq!(decode(&patch(13, 0x41)), Err(Error::V2BadFamily(4)));
    assert_eq!(decode(&patch(13, 0x13)), Err(Error::V2BadTransport(3)));
    // A flipped address byte breaks the checksum.
    assert!(matches!(decode(&patch(20, 0x7e)), Err(Error::V2ChecksumMismatch { .. })));
    // Length too small for INET addresses.
    let mut short = good[..16].to_vec();
    short[15] = 4;
    short.extend_from_slice(&[0; 4]);
    assert_eq!(decode(&short), Err(Error::V2AddressTooShort { needed: 12, declared: 4 }));
    // A TLV running past the end.
    let mut h = V2Builder::proxy("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap())
        .tlv(0xF0, b"abc")
        .encode()
        .unwrap();
    let n = h.len();
    h[n - 4] = 9;
    assert_eq!(decode(&h), Err(Error::V2TlvTruncated { kind: 0xF0, declared: 9, available: 3 }));
    assert_eq!(
        decode_complete(&good[..28]).unwrap_err().to_string(),
        "PROXY v2: declared length 63 exceeds the 12 bytes available"
    );
    assert_eq!(decode_complete(&good[..5]), Err(Error::V2Incomplete { available: 5 }));
}

#[test]
fn local_command_is_accepted_whatever_follows() {
    let mut h = V2Builder::local().encode().unwrap();
    assert_eq!(decode_complete(&h).unwrap().0.family_name(), "unspec");
    // LOCAL with INET family and garbage block: still accepted, block skipped.
    h[13] = 0x11;
    h[15] = 3;
    h.extend_from_slice(&[1, 2, 3]);
    let (header, len) = decode_complete(&h).unwrap();
    assert_eq!((header.command, header.source(), len), (Command::Local, None, 19));
}

#[test]
fn ssl_tlv_with_sub_tlvs() {
    let ssl =
        [&[0x01u8, 0, 0, 0, 0][..], &[kinds::SSL_VERSION, 0, 7], b"TLSv1.3", &[kinds::SSL_CN, 0, 3], b"bob"].concat();
    let h = V2Builder::proxy("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap())
        .tlv(kinds::SSL, &ssl)
        .crc32c(true)
        .encode()
        .unwrap();
    let (header, _) = decode_complete(&h).unwrap();
    let Some(TlvValue::Ssl(s)) = header.tlv(kinds::SSL) else { panic!() };
    assert_eq!((s.client, s.verify, s.version()), (1, 0, Some("TLSv1.3")));
    assert_eq!(s.sub_tlvs().count(), 2);
    let broken = [&[0x01u8, 0, 0, 0, 0][..], &[kinds::SSL_VERSION, 0, 9], b"TLS"].concat();
    let h = V2Builder::proxy("192.0.2.1:1".parse().unwrap(), "192.0.2.2:2".parse().unwrap())
        .tlv(kinds::SSL, &broken)
        .encode()
        .unwrap();
    assert!(matches!(decode(&h), Err(Error::V2TlvTruncated { kind: kinds::SSL_VERSION, .. })));
}

#[test]
fn v1_encoding_matches_haproxy() {
    let mut out = Vec::new();
    encode_v1(Some(("127.0.0.1:40680".parse().unwrap(), "127.0.0.1:18082".parse().unwrap())), &mut out).unwrap();
    assert_eq!(out, &hex(HAPROXY_V1)[..out.len()]);
    assert!(encode_v1(Some(("127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap())), &mut out).is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::net::{IpAddr, SocketAddr};

    fn addr_pair() -> impl Strategy<Value = Option<(SocketAddr, SocketAddr)>> {
        prop_oneof![
            Just(None),
            (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u16>(), any::<u16>()).prop_map(|(a, b, p, q)| Some((
                SocketAddr::new(IpAddr::from(a), p),
                SocketAddr::new(IpAddr::from(b), q)
            ))),
            (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u16>(), any::<u16>()).prop_map(|(a, b, p, q)| Some((
                SocketAddr::new(IpAddr::from(a), p),
                SocketAddr::new(IpAddr::from(b), q)
            ))),
        ]
    }

    fn raw_tlv() -> impl Strategy<Value = (u8, Vec<u8>)> {
        (
            prop_oneof![Just(kinds::ALPN), Just(kinds::NOOP), Just(kinds::UNIQUE_ID), Just(0xF0u8), Just(0x7Fu8)],
            proptest::collection::vec(any::<u8>(), 0..100),
        )
    }

    proptest! {
        #[test]
        fn v2_decode_inverts_encode(addrs in addr_pair(), dgram: bool, tlvs in proptest::collection::vec(raw_tlv(), 0..5), crc: bool) {
            let mut b = match addrs { Some((s, d)) => V2Builder::proxy(s, d), None => V2Builder::unspec() };
            if dgram { b = b.transport(Transport::Dgram); }
            for (k, v) in &tlvs { b = b.tlv(*k, v); }
            let bytes = b.crc32c(crc).encode().unwrap();
            let (h, len) = decode_complete(&bytes).unwrap();
            prop_assert_eq!(len, bytes.len());
            prop_assert_eq!(h.source(), addrs.map(|a| a.0));
            prop_assert_eq!(h.destination(), addrs.map(|a| a.1));
            prop_assert_eq!(h.transport, if dgram { Transport::Dgram } else if addrs.is_some() { Transport::Stream } else { Transport::Unspec });
            let mut got: Vec<(u8, Vec<u8>)> = h.tlvs().map(|t| (t.kind, t.bytes.to_vec())).collect();
            if crc { prop_assert_eq!(got.pop().map(|t| t.0), Some(kinds::CRC32C)); }
            prop_assert_eq!(got, tlvs);
        }

        #[test]
        fn v1_decode_inverts_encode(addrs in addr_pair(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = Vec::new();
            encode_v1(addrs, &mut bytes).unwrap();
            let n = bytes.len();
            bytes.extend_from_slice(&tail);
            let (h, len) = decode_complete(&bytes).unwrap();
            prop_assert_eq!(len, n);
            prop_assert_eq!(h.source(), addrs.map(|a| a.0));
            prop_assert_eq!(h.destination(), addrs.map(|a| a.1));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), sig: bool) {
            let mut input = if sig { V2_SIGNATURE.to_vec() } else { Vec::new() };
            input.extend_from_slice(&bytes);
            if let Ok(Decoded::Header { header, len }) = decode(&input) {
                prop_assert!(len <= input.len());
                for t in header.tlvs() { let _ = t.value(); }
            }
        }
    }
}
