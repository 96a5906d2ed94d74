//! `realip pp decode|encode`: PROXY headers to and from hex.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context as _};
use realip_core::proxy_protocol::{decode_complete, encode_v1, Transport, V2Builder};
use realip_tower::ProxyInfo;

use crate::args::{DecodeArgs, EncodeArgs};
use crate::failure::Failure;
use crate::hex;

pub fn decode(a: &DecodeArgs) -> Result<(), Failure> {
    let bytes = hex::decode(&a.hex).context("--hex").map_err(Failure::usage)?;
    let (h, len) = decode_complete(&bytes).map_err(Failure::rejected)?;
    let v = serde_json::to_value(ProxyInfo::from(&h)).map_err(Failure::usage)?;
    if a.json {
        println!("{v}");
        return Ok(());
    }
    println!(
        "PROXY v{} {} {}",
        v["version"],
        v["command"].as_str().unwrap_or_default(),
        v["family"].as_str().unwrap_or_default()
    );
    if let Some(src) = v["src"].as_str() {
        println!("src  {src}");
    }
    if let Some(dst) = v["dst"].as_str() {
        println!("dst  {dst}");
    }
    for t in h.tlvs() {
        println!("tlv  0x{:02x} {:?} {}", t.kind, t.value(), hex::encode(t.bytes));
    }
    if len < bytes.len() {
        println!("({} bytes after the header)", bytes.len() - len);
    }
    Ok(())
}

pub fn encode(a: &EncodeArgs) -> Result<(), Failure> {
    let addrs = match (&a.src, &a.dst) {
        (Some(s), Some(d)) => Some((parse_endpoint("--src", s)?, parse_endpoint("--dst", d)?)),
        _ => None,
    };
    let tlvs = a.tlvs.iter().map(|t| parse_tlv(t)).collect::<anyhow::Result<Vec<_>>>().map_err(Failure::usage)?;
    let bytes = if a.v1 {
        if !tlvs.is_empty() || a.crc32c || a.udp {
            return Err(Failure::usage(anyhow!(
                "--tlv, --crc32c and --udp need --v2: PROXY v1 has no TLVs and carries only TCP"
            )));
        }
        let mut out = Vec::new();
        encode_v1(addrs, &mut out).map_err(Failure::usage)?;
        out
    } else {
        let mut b = match addrs {
            Some((s, d)) => V2Builder::proxy(s, d),
            None => V2Builder::local(),
        };
        if a.udp {
            b = b.transport(Transport::Dgram);
        }
        for (k, v) in &tlvs {
            b = b.tlv(*k, v);
        }
        b.crc32c(a.crc32c).encode().map_err(Failure::usage)?
    };
    println!("{}", hex::encode(&bytes));
    Ok(())
}

fn parse_endpoint(flag: &str, s: &str) -> Result<SocketAddr, Failure> {
    s.parse().map_err(|_| Failure::usage(anyhow!("{flag}: `{s}` is not IP:PORT (IPv6 as [IP]:PORT)")))
}

fn parse_tlv(t: &str) -> anyhow::Result<(u8, Vec<u8>)> {
    let (kind, value) = t.split_once('=').ok_or_else(|| anyhow!("--tlv: `{t}` is not TYPE=HEX"))?;
    let kind = match kind.strip_prefix("0x").or_else(|| kind.strip_prefix("0X")) {
        Some(h) => u8::from_str_radix(h, 16),
        None => kind.parse(),
    }
    .map_err(|_| anyhow!("--tlv: type `{kind}` is not a number from 0 to 255"))?;
    let value = hex::decode(value).with_context(|| format!("--tlv {kind}"))?;
    if value.len() > usize::from(u16::MAX) {
        bail!("--tlv {kind}: value is longer than 65535 bytes");
    }
    Ok((kind, value))
}
