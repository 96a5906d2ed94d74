//! Encode then decode PROXY v1 and v2 from fuzzed fields: the same fields
//! come back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realip_core::proxy_protocol::{decode_complete, encode_v1, V2Builder};
use std::net::{IpAddr, SocketAddr};

fuzz_target!(|data: &[u8]| {
    let Some((head, tlv_bytes)) = data.split_first_chunk::<36>() else { return };
    let v6 = head[0] & 1 == 1;
    let (src, dst) = if v6 {
        let s: [u8; 16] = head[1..17].try_into().unwrap();
        let d: [u8; 16] = head[17..33].try_into().unwrap();
        (IpAddr::from(s), IpAddr::from(d))
    } else {
        (IpAddr::from([head[1], head[2], head[3], head[4]]), IpAddr::from([head[5], head[6], head[7], head[8]]))
    };
    let sport = u16::from_be_bytes([head[33], head[34]]);
    let src = SocketAddr::new(src, sport);
    let dst = SocketAddr::new(dst, u16::from(head[35]));

    let mut v1 = Vec::new();
    encode_v1(Some((src, dst)), &mut v1).unwrap();
    let (h, len) = decode_complete(&v1).unwrap();
    assert_eq!((h.source(), h.destination(), len), (Some(src), Some(dst), v1.len()));

    // TLVs: 0xF0 (custom) values cut from the rest of the input.
    let tlvs: Vec<&[u8]> = tlv_bytes.chunks(7).collect();
    let mut b = V2Builder::proxy(src, dst).crc32c(head[0] & 2 == 2);
    for t in &tlvs {
        b = b.tlv(0xF0, t);
    }
    let v2 = b.encode().unwrap();
    let (h, len) = decode_complete(&v2).unwrap();
    assert_eq!((h.source(), h.destination(), len), (Some(src), Some(dst), v2.len()));
    let got: Vec<&[u8]> = h.tlvs().filter(|t| t.kind == 0xF0).map(|t| t.bytes).collect();
    assert_eq!(got, tlvs);
});
