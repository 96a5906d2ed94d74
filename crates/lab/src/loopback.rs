//! The loopback approximation, for machines where the lab cannot create
//! network namespaces (not root, no nftables): the same processes — an L4
//! `realip proxy` as the load balancer, `realip proxy` as the ingress,
//! `realip echo` as the app — chained on 127.0.0.0/8 addresses, the client
//! binding 127.0.0.10 as its source. What needs kube-proxy, nodes or a
//! health-checking LB cannot be reproduced there and is reported as skipped
//! with the reason.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::harness::mode;
use crate::load::{self, Load, Sample};
use crate::netns::Proc;
use crate::report::{Measure, Part, Requests, ScenarioResult};
use crate::scenario::FORGED;

/// Scenarios the loopback approximation can run honestly.
pub const RUNNABLE: [&str; 3] = ["proxy-protocol", "proxy-protocol-mismatch", "spoof"];

const CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
const LB: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const INGRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 21);
const APP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 31);
/// Where the L4 LB's connections to the ingress come from.
const LB_SOURCES: &[&str] = &["127.0.0.1/32", "127.0.0.11/32"];

fn free_port(ip: Ipv4Addr) -> Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0)).map_err(|e| Error::io(format!("binding {ip}:0"), e))?;
    l.local_addr().map(|a| a.port()).map_err(|e| Error::io("local address", e))
}

async fn wait_listening(addr: SocketAddr, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if Instant::now() > deadline {
            let out = std::fs::read_to_string(log).unwrap_or_default();
            return Err(Error::Timeout(format!("{addr} did not listen within 10 s: {out}")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

struct Chain {
    _procs: Vec<Proc>,
    entry: SocketAddr,
    ingress_log: PathBuf,
    lb_log: Option<PathBuf>,
}

/// LB (optional, with or without PROXY v2) → ingress (PROXY off or
/// required; trusting `trusted`) → echo.
async fn chain(realip: &Path, dir: &Path, lb: Option<bool>, ingress_pp: bool, trusted: &[&str]) -> Result<Chain> {
    let mut procs = Vec::new();
    let app = SocketAddr::new(IpAddr::V4(APP), free_port(APP)?);
    let mut cmd = Command::new(realip);
    // Proxies connect out from 127.0.0.1 (the kernel's choice on lo) or
    // their own address: the app trusts those, never the client's.
    cmd.args(["echo", "--listen", &app.to_string(), "--trust", "127.0.0.1/32", "--trust", &format!("{INGRESS}/32")]);
    let app_log = dir.join("app.log");
    procs.push(Proc::spawn("app", cmd, &app_log)?);
    wait_listening(app, &app_log).await?;

    let ingress = SocketAddr::new(IpAddr::V4(INGRESS), free_port(INGRESS)?);
    let ingress_log = dir.join("ingress-access.log");
    let list = |v: &[&str]| v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
    let pp = if ingress_pp {
        format!(
            "proxy_protocol = \"required\"\nproxy_protocol_from = [{}]\nheader_timeout = \"2s\"\n",
            list(LB_SOURCES)
        )
    } else {
        String::new()
    };
    let sources = if ingress_pp { "\"proxy-protocol\", \"xff\"" } else { "\"xff\"" };
    let cfg = format!(
        "[[listener]]\nname = \"web\"\nbind = \"{ingress}\"\n{pp}\n[client_ip]\ntrusted = [{}]\nsources = [{sources}]\n\n\
         [forward]\nx_forwarded_for = \"append\"\nx_real_ip = true\n\n[[route]]\nupstream = \"app\"\n\n\
         [[upstream]]\nname = \"app\"\nendpoints = [\"{app}\"]\n\n[log]\nformat = \"json\"\npath = \"{}\"\n\n\
         [lifecycle]\nwatch_interval = \"0s\"\n",
        list(trusted),
        ingress_log.display()
    );
    let path = dir.join("ingress.toml");
    std::fs::write(&path, cfg).map_err(|e| Error::io("writing ingress.toml", e))?;
    let mut cmd = Command::new(realip);
    cmd.args(["proxy", "--workers", "1", "--config"]).arg(&path);
    let log = dir.join("ingress.log");
    procs.push(Proc::spawn("ingress", cmd, &log)?);
    wait_listening(ingress, &log).await?;

    let (entry, lb_log) = match lb {
        None => (ingress, None),
        Some(pp) => {
            let vip = SocketAddr::new(IpAddr::V4(LB), free_port(LB)?);
            let lb_log = dir.join("lb-access.log");
            let cfg = format!(
                "[[listener]]\nname = \"vip\"\nbind = \"{vip}\"\nmode = \"tcp\"\nupstream = \"ingress\"\n\n\
                 [[upstream]]\nname = \"ingress\"\nendpoints = [\"{ingress}\"]\nproxy_protocol = \"{}\"\n\n\
                 [log]\nformat = \"json\"\npath = \"{}\"\n\n[lifecycle]\nwatch_interval = \"0s\"\n",
                if pp { "v2" } else { "off" },
                lb_log.display()
            );
            let path = dir.join("lb.toml");
            std::fs::write(&path, cfg).map_err(|e| Error::io("writing lb.toml", e))?;
            let mut cmd = Command::new(realip);
            cmd.args(["proxy", "--workers", "1", "--config"]).arg(&path);
            let log = dir.join("lb.log");
            procs.push(Proc::spawn("lb", cmd, &log)?);
            wait_listening(vip, &log).await?;
            (vip, Some(lb_log))
        }
    };
    Ok(Chain { _procs: procs, entry, ingress_log, lb_log })
}

fn measure(c: &Chain, samples: &[Sample]) -> Measure {
    let lines = |p: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    };
    let peer_ip = |v: &serde_json::Value| v["peer"].as_str()?.parse::<SocketAddr>().ok().map(|a| a.ip().to_string());
    let ingress: Vec<serde_json::Value> =
        lines(&c.ingress_log).into_iter().filter(|v| v["path"] == "/debug/ip").collect();
    let ok: Vec<&Sample> = samples.iter().filter(|s| s.ok()).collect();
    let field = |k: &str| mode(ok.iter().filter_map(|s| s.body.as_ref()?[k].as_str().map(str::to_owned)));
    let mut m = Measure {
        lb_seen: c.lb_log.as_deref().and_then(|p| mode(lines(p).iter().filter_map(peer_ip))),
        ingress_peer: mode(ingress.iter().filter_map(peer_ip)),
        ingress_client_ip: mode(ingress.iter().filter_map(|v| v["client_ip"].as_str().map(str::to_owned))),
        ingress_source: mode(ingress.iter().filter_map(|v| v["client_ip_source"].as_str().map(str::to_owned))),
        app_client_host: field("client_host"),
        app_client_ip: field("client_ip"),
        requests: Requests {
            sent: samples.len() as u64,
            ok: ok.len() as u64,
            failed: (samples.len() - ok.len()) as u64,
        },
        preserved: ok
            .iter()
            .filter(|s| s.body.as_ref().and_then(|b| b["client_ip"].as_str()) == Some(&s.client.to_string()))
            .count() as u64,
        ..Measure::default()
    };
    if !ingress.is_empty() {
        m.spread.insert("ingress".into(), ingress.len() as u64);
    }
    for s in samples.iter().filter(|s| !s.ok()) {
        let e = s.error.clone().unwrap_or_default();
        *m.errors.entry(e.split(" (os error").next().unwrap_or_default().to_owned()).or_default() += 1;
    }
    m
}

async fn traffic(c: &Chain, headers: Vec<String>) -> Vec<Sample> {
    let load = Load { requests: 100, concurrency: 4, headers, ..Load::default() };
    load::run(vec![(tokio::runtime::Handle::current(), IpAddr::V4(CLIENT), c.entry)], load).await
}

fn result(name: &str, setup: &str, ok: bool, reason: String, parts: Vec<Part>) -> ScenarioResult {
    ScenarioResult::from_parts(name, setup, ok, reason, parts)
}

/// Runs one of [`RUNNABLE`] on loopback.
pub async fn run(name: &str, realip: &Path, dir: &Path) -> Result<ScenarioResult> {
    match name {
        "proxy-protocol" => {
            let c = chain(realip, dir, Some(true), true, LB_SOURCES).await?;
            let m = measure(&c, &traffic(&c, Vec::new()).await);
            let ok = m.requests.failed == 0 && m.preserved == m.requests.ok && m.requests.ok > 0;
            let reason = format!(
                "loopback: the ingress's TCP peer is the LB ({}), PROXY v2 carried the client: real client at the app on {} of {}",
                m.ingress_peer.as_deref().unwrap_or("nothing"),
                m.preserved,
                m.requests.sent
            );
            let setup = "loopback: client 127.0.0.10 → L4 realip proxy (PROXY v2) → ingress (PROXY required) → echo";
            Ok(result(name, setup, ok, reason, vec![Part { label: String::new(), measure: m }]))
        }
        "proxy-protocol-mismatch" => {
            let mut parts = Vec::new();
            for (label, lb_pp, ingress_pp) in [
                ("LB sends PROXY v2, ingress expects plain HTTP", true, false),
                ("LB sends plain TCP, ingress requires PROXY", false, true),
            ] {
                let c = chain(realip, dir, Some(lb_pp), ingress_pp, LB_SOURCES).await?;
                parts.push(Part { label: label.into(), measure: measure(&c, &traffic(&c, Vec::new()).await) });
            }
            let ok = parts.iter().all(|p| p.measure.requests.ok == 0 && p.measure.requests.sent > 0);
            let reason = format!(
                "loopback: {} of {} and {} of {} requests failed when only one side speaks PROXY",
                parts[0].measure.requests.failed,
                parts[0].measure.requests.sent,
                parts[1].measure.requests.failed,
                parts[1].measure.requests.sent
            );
            Ok(result(name, "loopback: L4 realip proxy → ingress, PROXY on one side only", ok, reason, parts))
        }
        "spoof" => {
            let mut parts = Vec::new();
            for (label, trusted) in
                [("ingress trusts nobody (correct)", &[][..]), ("ingress trusts everyone", &["0.0.0.0/0", "::/0"][..])]
            {
                let c = chain(realip, dir, None, false, trusted).await?;
                let m = measure(&c, &traffic(&c, vec![format!("X-Forwarded-For: {FORGED}")]).await);
                parts.push(Part { label: label.into(), measure: m });
            }
            let (good, bad) = (&parts[0].measure, &parts[1].measure);
            let ok = good.ingress_client_ip.as_deref() == Some(&CLIENT.to_string())
                && bad.ingress_client_ip.as_deref() == Some(FORGED);
            let reason = format!(
                "loopback: forged X-Forwarded-For ignored with correct trust (ingress resolved {}), believed when trusting everyone ({})",
                good.ingress_client_ip.as_deref().unwrap_or("nothing"),
                bad.ingress_client_ip.as_deref().unwrap_or("nothing")
            );
            Ok(result(name, "loopback: client 127.0.0.10 → ingress → echo, forged X-Forwarded-For", ok, reason, parts))
        }
        other => Err(Error::UnknownScenario(other.to_owned(), RUNNABLE.join(", "))),
    }
}
