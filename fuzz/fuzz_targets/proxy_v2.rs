//! PROXY v2: never panic; consumed length is within the input; typed TLV
//! views never fail on a decoded header.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realip_core::proxy_protocol::{decode, Decoded, V2_SIGNATURE};

fuzz_target!(|data: &[u8]| {
    let mut input = V2_SIGNATURE.to_vec();
    input.extend_from_slice(data);
    match decode(&input) {
        Ok(Decoded::Header { header, len }) => {
            assert!(len <= input.len());
            for t in header.tlvs() {
                let _ = t.value();
            }
            let _ = (header.source(), header.family_name());
        }
        Ok(Decoded::Incomplete { needed }) => assert!(needed >= 1),
        Ok(Decoded::NotProxy) => unreachable!("signature was given"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
