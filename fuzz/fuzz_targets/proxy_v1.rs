//! PROXY v1: never panic; a header never claims more bytes than given or
//! more than 107; any prefix of accepted input is incomplete, not an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realip_core::proxy_protocol::{decode, Decoded, V1_MAX_LEN};

fuzz_target!(|data: &[u8]| {
    let mut input = b"PROXY ".to_vec();
    input.extend_from_slice(data);
    if let Ok(Decoded::Header { len, .. }) = decode(&input) {
        assert!(len <= input.len() && len <= V1_MAX_LEN);
        for i in 0..len {
            assert!(matches!(decode(&input[..i]), Ok(Decoded::Incomplete { .. })), "prefix {i}");
        }
    }
});
