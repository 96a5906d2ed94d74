//! The loopback approximation, for machines where the lab cannot create
//! network namespaces (not root, no nftables): the same processes — an L4
//! `realip proxy` as the load balancer, `realip proxy` as the ingress,
//! `realip echo` as the app — chained on 127.0.0.0/8 addresses, the client
//! binding 127.0.0.10 as its source. What needs kube-proxy, nodes or a
//! health-checking LB cannot be reproduced there and is reported as skipped
//! with the reason. Which scenarios run here, and their pass criteria, are
//! in [`crate::scenario::SCENARIOS`]: the same criteria as in namespaces.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::load::{self, Load, Sample};
use crate::measure;
use crate::netns::Proc;
use crate::report::{Measure, Part};
use crate::scenario::{FORGED, MISMATCH_PARTS, SPOOF_PARTS};

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
    // Each configuration of a scenario measures only its own requests.
    let _ = std::fs::remove_file(&ingress_log);
    let _ = std::fs::remove_file(dir.join("lb-access.log"));
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
    // The proxies log a request or connection when it ends, which can be a
    // moment after the client has its answer.
    std::thread::sleep(Duration::from_millis(100));
    let lb = c.lb_log.as_deref().map(measure::l4_peers);
    let hits = measure::ingress_log(&c.ingress_log, "ingress", None);
    measure::measure(lb.as_ref(), &hits, samples, false)
}

async fn traffic(c: &Chain, headers: Vec<String>) -> Vec<Sample> {
    let load = Load { requests: 100, concurrency: 4, headers, ..Load::default() };
    load::run(vec![(tokio::runtime::Handle::current(), IpAddr::V4(CLIENT), c.entry)], load).await
}

/// `proxy-protocol`: client → L4 LB sending PROXY v2 → ingress requiring it → echo.
pub async fn proxy_protocol(realip: &Path, dir: &Path) -> Result<Vec<Part>> {
    let c = chain(realip, dir, Some(true), true, LB_SOURCES).await?;
    let m = measure(&c, &traffic(&c, Vec::new()).await);
    Ok(vec![Part { label: String::new(), measure: m }])
}

/// `proxy-protocol-mismatch`: PROXY on one side only, both ways.
pub async fn mismatch(realip: &Path, dir: &Path) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for (label, lb_pp, ingress_pp) in [(MISMATCH_PARTS[0], true, false), (MISMATCH_PARTS[1], false, true)] {
        let c = chain(realip, dir, Some(lb_pp), ingress_pp, LB_SOURCES).await?;
        parts.push(Part { label: label.into(), measure: measure(&c, &traffic(&c, Vec::new()).await) });
    }
    Ok(parts)
}

/// `spoof`: a forged X-Forwarded-For, ingress trusting nobody, then everyone.
pub async fn spoof(realip: &Path, dir: &Path) -> Result<Vec<Part>> {
    let mut parts = Vec::new();
    for (label, trusted) in [(SPOOF_PARTS[0], &[][..]), (SPOOF_PARTS[1], &["0.0.0.0/0", "::/0"][..])] {
        let c = chain(realip, dir, None, false, trusted).await?;
        let m = measure(&c, &traffic(&c, vec![format!("X-Forwarded-For: {FORGED}")]).await);
        parts.push(Part { label: label.into(), measure: m });
    }
    Ok(parts)
}
