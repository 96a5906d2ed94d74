//! Hex text for PROXY headers on the command line.

use anyhow::{anyhow, bail};

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Parses hex, ignoring white space and `:` separators and an optional `0x`.
pub fn decode(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    let text = text.strip_prefix("0x").unwrap_or(text);
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace() && *b != b':').collect();
    if digits.len() % 2 != 0 {
        bail!("hex has an odd number of digits ({})", digits.len());
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s = std::str::from_utf8(pair).ok();
            s.and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| anyhow!("`{}` at byte {i} is not hex", String::from_utf8_lossy(pair)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_errors() {
        assert_eq!(super::decode("0x0d 0A:ff").unwrap(), [0x0d, 0x0a, 0xff]);
        assert_eq!(super::encode(&[0, 0xab]), "00ab");
        assert!(super::decode("abc").unwrap_err().to_string().contains("odd"));
        assert!(super::decode("zz").unwrap_err().to_string().contains("`zz`"));
    }
}
