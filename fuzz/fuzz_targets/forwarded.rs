//! RFC 7239 parser: never panic, never loop; error offsets lie in the line.
#![no_main]
use libfuzzer_sys::fuzz_target;
use realip_core::forwarded::{elements, forwarded_rev, ForwardedError};

fuzz_target!(|data: &[u8]| {
    for el in elements(data) {
        if let Err(e) = el {
            let at = match e {
                ForwardedError::BadName { at }
                | ForwardedError::MissingEquals { at }
                | ForwardedError::BadValue { at }
                | ForwardedError::UnterminatedQuote { at }
                | ForwardedError::DuplicateParameter { at }
                | ForwardedError::UnexpectedByte { at } => at,
            };
            assert!(at <= data.len());
        }
    }
    let n = forwarded_rev([data].into_iter()).count();
    assert!(n <= data.len() + 1);
});
