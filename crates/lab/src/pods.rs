//! Ingress and app pods: real `realip proxy` and `realip echo` processes in
//! pod namespaces, with the downward-API environment (`NODE_NAME`,
//! `POD_NAME`, `POD_IP`), and a kubelet-like readiness prober.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns::{Netns, Proc};
use crate::topo::{ADMIN_PORT, APP_CLUSTER_IP, APP_PORT, CLUSTER_CIDRS, POD_PORT};

/// How the ingress pods are configured.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// PROXY protocol on the listener: `off` or `required`.
    pub proxy_protocol: &'static str,
    /// `[client_ip] trusted`.
    pub trusted: Vec<String>,
    /// `[client_ip] sources`.
    pub sources: Vec<&'static str>,
    /// `[lifecycle] drain_delay`.
    pub drain_delay: Duration,
    /// `[lifecycle] drain_timeout`.
    pub drain_timeout: Duration,
    /// Kubernetes mode: routes come from Ingresses served by the API
    /// server this kubeconfig names (no static route).
    pub kubeconfig: Option<PathBuf>,
    /// Gateway listener ports the `web` listener serves (`gateway_ports`).
    pub gateway_ports: Vec<u16>,
    /// `[policy] rate`: per second, burst, scope (`local` or `global`).
    pub rate: Option<(f64, f64, &'static str)>,
    /// `[rate_limit_store] redis` URL.
    pub redis: Option<String>,
    /// `proxy_protocol_from` when PROXY is on (`None`: the cluster's CIDRs).
    pub proxy_protocol_from: Option<Vec<String>>,
    /// `[forward] x_forwarded_for`: `append` or `replace`.
    pub forward_xff: &'static str,
    /// `--ingress-class` in Kubernetes mode.
    pub ingress_class: &'static str,
}

impl IngressConfig {
    /// Behind a passthrough LB: nothing in front sends forwarding headers,
    /// so nothing is trusted and the TCP peer is the client.
    pub fn direct() -> IngressConfig {
        IngressConfig {
            proxy_protocol: "off",
            trusted: Vec::new(),
            sources: vec!["xff"],
            drain_delay: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(5),
            kubeconfig: None,
            gateway_ports: Vec::new(),
            rate: None,
            redis: None,
            proxy_protocol_from: None,
            forward_xff: "append",
            ingress_class: "realip",
        }
    }

    /// Behind an LB sending PROXY v2 from the cluster's addresses.
    pub fn proxy_protocol() -> IngressConfig {
        IngressConfig {
            proxy_protocol: "required",
            trusted: CLUSTER_CIDRS.iter().map(|s| (*s).to_owned()).collect(),
            sources: vec!["proxy-protocol", "xff"],
            ..IngressConfig::direct()
        }
    }

    /// The TOML for one pod.
    pub fn toml(&self, access_log: &Path) -> String {
        let list = |v: &[String]| v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ");
        let mut t = String::new();
        let _ = writeln!(t, "[[listener]]\nname = \"web\"\nbind = \"0.0.0.0:{POD_PORT}\"");
        let _ = writeln!(t, "proxy_protocol = \"{}\"", self.proxy_protocol);
        if self.proxy_protocol != "off" {
            let cluster: Vec<String> = CLUSTER_CIDRS.iter().map(|s| (*s).to_owned()).collect();
            let from = self.proxy_protocol_from.as_ref().unwrap_or(&cluster);
            let _ = writeln!(t, "proxy_protocol_from = [{}]\nheader_timeout = \"2s\"", list(from));
        }
        if !self.gateway_ports.is_empty() {
            let ports: Vec<String> = self.gateway_ports.iter().map(ToString::to_string).collect();
            let _ = writeln!(t, "gateway_ports = [{}]", ports.join(", "));
        }
        let sources: Vec<String> = self.sources.iter().map(|s| (*s).to_owned()).collect();
        let _ = writeln!(t, "\n[client_ip]\ntrusted = [{}]\nsources = [{}]", list(&self.trusted), list(&sources));
        let _ = writeln!(t, "\n[forward]\nx_forwarded_for = \"{}\"\nx_real_ip = true", self.forward_xff);
        if self.kubeconfig.is_none() {
            let _ = writeln!(t, "\n[[route]]\nupstream = \"app\"");
            let _ = writeln!(
                t,
                "\n[[upstream]]\nname = \"app\"\nendpoints = [\"{APP_CLUSTER_IP}:{APP_PORT}\"]\nconnect_timeout = \"1s\""
            );
        }
        if let Some((per_second, burst, scope)) = self.rate {
            let _ = writeln!(
                t,
                "\n[policy]\nrate = {{ per_second = {per_second:?}, burst = {burst:?}, scope = \"{scope}\" }}"
            );
        }
        if let Some(url) = &self.redis {
            let _ = writeln!(t, "\n[rate_limit_store]\nredis = \"{url}\"\ntimeout = \"200ms\"");
        }
        let _ = writeln!(t, "\n[log]\nformat = \"json\"\npath = \"{}\"", access_log.display());
        let _ = writeln!(t, "\n[admin]\nbind = \"0.0.0.0:{ADMIN_PORT}\"");
        let _ = writeln!(
            t,
            "\n[lifecycle]\ndrain_delay = \"{}ms\"\ndrain_timeout = \"{}ms\"\nwatch_interval = \"0s\"",
            self.drain_delay.as_millis(),
            self.drain_timeout.as_millis()
        );
        t
    }
}

/// What runs in a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `realip proxy`.
    Ingress,
    /// `realip echo`.
    App,
}

/// A running pod.
#[derive(Debug)]
pub struct Pod {
    /// The process (killed on drop).
    pub proc: Proc,
    /// Pod name.
    pub name: String,
    /// What it runs.
    pub kind: Kind,
    /// Node index.
    pub node: usize,
    /// Address.
    pub ip: Ipv4Addr,
    /// Access log (ingress) or stdout log (app).
    pub log: PathBuf,
}

impl Pod {
    /// Where its readiness is probed: the admin `/readyz` for ingress pods,
    /// `/healthz` on the app port for app pods.
    pub fn readiness(&self) -> (Ipv4Addr, u16, &'static str) {
        match self.kind {
            Kind::Ingress => (self.ip, ADMIN_PORT, "/readyz"),
            Kind::App => (self.ip, POD_PORT, "/healthz"),
        }
    }
}

/// Starts a pod's process in `ns`.
#[allow(clippy::too_many_arguments)]
pub fn start(
    realip: &Path,
    dir: &Path,
    ns: &Netns,
    name: &str,
    kind: Kind,
    node: (usize, &str),
    ip: Ipv4Addr,
    ingress: &IngressConfig,
) -> Result<Pod> {
    let mut cmd = ns.command(realip);
    let log = dir.join(format!("{name}.log"));
    match kind {
        Kind::Ingress => {
            let access = dir.join(format!("{name}-access.log"));
            let cfg = dir.join(format!("{name}.toml"));
            std::fs::write(&cfg, ingress.toml(&access))
                .map_err(|e| Error::io(format!("writing {}", cfg.display()), e))?;
            cmd.args(["proxy", "--workers", "1", "--config"]).arg(&cfg);
            if let Some(kc) = &ingress.kubeconfig {
                cmd.args(["--kubernetes", "--ingress-class", ingress.ingress_class]).env("KUBECONFIG", kc);
            }
            cmd.env("NODE_NAME", node.1).env("POD_NAME", name).env("POD_IP", ip.to_string());
            let proc = Proc::spawn(name, cmd, &log)?;
            Ok(Pod { proc, name: name.to_owned(), kind, node: node.0, ip, log: access })
        }
        Kind::App => {
            cmd.args(["echo", "--listen", &format!("0.0.0.0:{POD_PORT}")]);
            for c in CLUSTER_CIDRS {
                cmd.args(["--trust", c]);
            }
            cmd.env("NODE_NAME", node.1).env("POD_NAME", name).env("POD_IP", ip.to_string());
            let proc = Proc::spawn(name, cmd, &log)?;
            Ok(Pod { proc, name: name.to_owned(), kind, node: node.0, ip, log })
        }
    }
}

/// One readiness probe (HTTP GET, ready on 200), as the kubelet does it.
pub async fn probe(ip: Ipv4Addr, port: u16, path: &str, timeout: Duration) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.ok()?;
        Some(&head[9..12] == b"200")
    };
    tokio::time::timeout(timeout, attempt).await.ok().flatten().unwrap_or(false)
}
