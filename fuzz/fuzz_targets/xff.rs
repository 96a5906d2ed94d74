//! X-Forwarded-For entries and single nodes: never panic; every address
//! found round-trips through its own text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realip_core::headers::{xff_rev, Entry};
use realip_core::node::parse_node;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    for e in xff_rev(lines.iter().copied()) {
        if let Entry::Ip(ip) = e {
            assert_eq!(parse_node(ip.to_string().as_bytes()), Some(ip));
        }
    }
});
