//! `realip resolve`: one resolution, printed as text or JSON.

use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, Context as _};
use realip_core::proxy_protocol::decode_complete;

use crate::args::ResolveArgs;
use crate::failure::Failure;
use crate::hex;

pub fn run(a: &ResolveArgs) -> Result<(), Failure> {
    let peer = parse_peer(&a.peer).map_err(Failure::usage)?;
    let resolver = a.policy.resolver()?;
    let headers = a
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<anyhow::Result<Vec<(&str, &str)>>>()
        .map_err(Failure::usage)?;
    let pp_bytes = match &a.proxy_protocol_hex {
        Some(h) => Some(hex::decode(h).context("--proxy-protocol-hex").map_err(Failure::usage)?),
        None => None,
    };
    let pp = match &pp_bytes {
        Some(b) => Some(decode_complete(b).map_err(Failure::rejected)?.0),
        None => None,
    };
    let r = resolver.resolve(peer, pp.as_ref(), &headers[..]).map_err(Failure::rejected)?;
    if a.json {
        let out = serde_json::json!({
            "client_ip": r.ip.to_string(),
            "source": r.source,
            "hops": r.hop,
            "warnings": r.warnings,
        });
        println!("{out}");
    } else {
        println!("{} (source: {}, hop {})", r.ip, r.source, r.hop);
        for w in r.warnings.iter() {
            println!("warning: {w}");
        }
    }
    Ok(())
}

/// `IP`, or `IP:PORT` / `[IPv6]:PORT` for convenience.
fn parse_peer(s: &str) -> anyhow::Result<IpAddr> {
    s.parse::<IpAddr>()
        .or_else(|_| s.parse::<SocketAddr>().map(|a| a.ip()))
        .map_err(|_| anyhow!("--peer: `{s}` is not an IP address"))
}

fn parse_header(h: &str) -> anyhow::Result<(&str, &str)> {
    let (name, value) = h.split_once(':').ok_or_else(|| anyhow!("--header: `{h}` is not `Name: value`"))?;
    let valid_name =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(anyhow!("--header: `{name}` is not a valid header name"));
    }
    Ok((name, value.trim_matches([' ', '\t'])))
}
