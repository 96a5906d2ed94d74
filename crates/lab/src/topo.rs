//! The lab's network: client hosts, a load-balancer host, nodes and pods,
//! each its own network namespace, addressed like a small cloud VPC with a
//! host-gw CNI.
//!
//! ```text
//!  c1 203.0.113.10 ─┐                         ┌─ node1 192.0.2.11 ─ pods 198.51.100.128/28
//!  c2 203.0.113.20  ├─ lb (VIP 192.0.2.200, ──┼─ node2 192.0.2.12 ─ pods 198.51.100.144/28
//!  c6 2001:db8:c::10┘   [2001:db8:1b::100])   └─ node3 192.0.2.13 ─ pods 198.51.100.160/28
//! ```
//!
//! Clients live in 203.0.113.0/24, each on its own link (a /28), and in
//! 2001:db8:c::/64: never in a /24 that holds nodes (192.0.2.0/24) or pods
//! (198.51.100.0/24), so a client's address never looks like the cluster's.
//!
//! Invariants: only documentation ranges are used (192.0.2.0/24,
//! 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32); no namespace has a
//! link to the caller's namespace, so nothing can leave the lab. Pods are
//! routed, not bridged (a /32 route per pod on its node, the node's address
//! as the pod's on-link gateway, other nodes' pod ranges via those nodes), so
//! every packet between pods crosses a node's nftables like kube-proxy
//! expects. The lb namespace is the nodes' default router, so replies to
//! clients go back through it (direct server return is not modelled).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::netns::{Netns, NsRuntime, PREFIX};

/// The load balancer's public address (IPv4).
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
/// The load balancer's public address (IPv6).
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1b, 0, 0, 0, 0, 0x100);
/// Port the load balancer listens on.
pub const LB_PORT: u16 = 80;
/// The ingress Service's NodePort.
pub const NODE_PORT: u16 = 30080;
/// The ingress Service's `healthCheckNodePort` (Local only).
pub const HEALTH_CHECK_NODE_PORT: u16 = 32000;
/// kube-proxy's own `/healthz` port, what load balancers check for `Cluster`.
pub const KUBE_PROXY_HEALTHZ_PORT: u16 = 10256;
/// The app Service's ClusterIP.
pub const APP_CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 250);
/// The app Service's port.
pub const APP_PORT: u16 = 80;
/// Where every pod listens for traffic.
pub const POD_PORT: u16 = 8080;
/// The ingress pods' admin port (`/readyz`, `/metrics`).
pub const ADMIN_PORT: u16 = 9901;
/// Most nodes a lab holds (pod ranges are /28s inside 198.51.100.128/25).
pub const MAX_NODES: usize = 6;
/// Most pods per node.
pub const MAX_PODS_PER_NODE: usize = 12;

/// A node's address.
pub fn node_ip(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 11 + node as u8)
}

/// A node's pod range (a /28).
pub fn pod_cidr(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 128 + 16 * node as u8)
}

/// The lab's Kubernetes API server (on the lb host, `kubernetes` scenario).
pub const API_SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 250)), 6443);

/// The CIDRs the cluster's own traffic comes from (nodes and pods).
pub const CLUSTER_CIDRS: [&str; 2] = ["192.0.2.0/25", "198.51.100.128/25"];

/// True for an address of a node or a pod.
pub fn is_cluster_addr(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (o[..3] == [192, 0, 2] && o[3] < 128) || (o[..3] == [198, 51, 100] && o[3] >= 128)
        }
        IpAddr::V6(_) => false,
    }
}

/// One client host on the internet side.
#[derive(Clone, Copy, Debug)]
pub struct ClientSpec {
    /// Short name (namespace suffix).
    pub name: &'static str,
    /// Its public address.
    pub addr: IpAddr,
    /// The load balancer's address on the client's link.
    pub gateway: IpAddr,
    /// Prefix length of that link.
    pub prefix: u8,
}

/// The clients every lab has.
pub const CLIENTS: [ClientSpec; 3] = [
    ClientSpec {
        name: "c1",
        addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
        gateway: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
        prefix: 28,
    },
    ClientSpec {
        name: "c2",
        addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)),
        gateway: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 17)),
        prefix: 28,
    },
    ClientSpec {
        name: "c6",
        addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 0x10)),
        gateway: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xc, 0, 0, 0, 0, 1)),
        prefix: 64,
    },
];

/// A client host.
#[derive(Debug)]
pub struct Client {
    /// Runtime inside its namespace (dropped before the namespace).
    pub rt: NsRuntime,
    /// What it is.
    pub spec: ClientSpec,
    /// Its namespace.
    pub ns: Netns,
}

/// A node.
#[derive(Debug)]
pub struct Node {
    /// Runtime inside its namespace.
    pub rt: NsRuntime,
    /// `node1`, `node2`, …
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its namespace.
    pub ns: Netns,
    pods: usize,
}

/// A pod's network.
#[derive(Debug)]
pub struct PodNet {
    /// Pod name.
    pub name: String,
    /// Index of its node.
    pub node: usize,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its namespace.
    pub ns: Netns,
}

/// The whole lab network; dropping it removes every namespace.
#[derive(Debug)]
pub struct Topology {
    /// Pods first: they drop before the nodes they hang off.
    pub pods: Vec<PodNet>,
    /// Clients.
    pub clients: Vec<Client>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Runtime inside the lb namespace.
    pub lb_rt: NsRuntime,
    /// The load-balancer host.
    pub lb: Netns,
    /// Namespace name prefix of this run (`rlab-<id>-`).
    pub prefix: String,
    /// Scratch directory for configs and logs.
    pub dir: PathBuf,
}

impl Topology {
    /// Builds the lb, the three clients and `nodes` nodes.
    pub fn build(run: &str, nodes: usize, dir: &Path) -> Result<Topology> {
        if nodes == 0 || nodes > MAX_NODES {
            return Err(Error::Invalid(format!("a lab has 1 to {MAX_NODES} nodes, not {nodes}")));
        }
        let prefix = format!("{PREFIX}{run}-");
        let lb = Netns::create(&format!("{prefix}lb"))?;
        lb.sysctl(&[
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ])?;
        lb.ip(&["link", "add", "br0", "type", "bridge"])?;
        lb.ip(&["addr", "add", "192.0.2.1/25", "dev", "br0"])?;
        lb.ip(&["link", "set", "br0", "up"])?;
        lb.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
        lb.ip(&["-6", "addr", "add", &format!("{VIP6}/128"), "dev", "lo", "nodad"])?;
        let lb_rt = lb.runtime()?;
        let mut topo = Topology {
            pods: Vec::new(),
            clients: Vec::new(),
            nodes: Vec::new(),
            lb_rt,
            lb,
            prefix: prefix.clone(),
            dir: dir.to_owned(),
        };
        for spec in CLIENTS {
            let ns = Netns::create(&format!("{prefix}{}", spec.name))?;
            ns.sysctl(&["net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])?;
            veth(&ns, "eth0", &topo.lb, spec.name)?;
            let six = if spec.addr.is_ipv6() { "-6" } else { "-4" };
            ns.ip(&[six, "addr", "add", &format!("{}/{}", spec.addr, spec.prefix), "dev", "eth0", "nodad"])?;
            topo.lb.ip(&[
                six,
                "addr",
                "add",
                &format!("{}/{}", spec.gateway, spec.prefix),
                "dev",
                spec.name,
                "nodad",
            ])?;
            ns.ip(&[six, "route", "add", "default", "via", &spec.gateway.to_string()])?;
            let rt = ns.runtime()?;
            topo.clients.push(Client { rt, spec, ns });
        }
        for i in 0..nodes {
            let name = format!("node{}", i + 1);
            let ns = Netns::create(&format!("{prefix}{name}"))?;
            ns.sysctl(&[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ])?;
            let lb_end = format!("n{}", i + 1);
            veth(&ns, "eth0", &topo.lb, &lb_end)?;
            topo.lb.ip(&["link", "set", &lb_end, "master", "br0"])?;
            let ip = node_ip(i);
            ns.ip(&["addr", "add", &format!("{ip}/25"), "dev", "eth0"])?;
            ns.ip(&["route", "add", "default", "via", "192.0.2.1"])?;
            for j in 0..nodes {
                if j != i {
                    ns.ip(&["route", "add", &format!("{}/28", pod_cidr(j)), "via", &node_ip(j).to_string()])?;
                }
            }
            // The VPC router knows the pod ranges (host-gw), so the lb host
            // (which also runs the lab's API server) can answer pods.
            topo.lb.ip(&["route", "add", &format!("{}/28", pod_cidr(i)), "via", &ip.to_string()])?;
            let rt = ns.runtime()?;
            topo.nodes.push(Node { rt, name, ip, ns, pods: 0 });
        }
        Ok(topo)
    }

    /// Attaches a new pod namespace to `node`; returns its index in `pods`.
    pub fn add_pod(&mut self, name: &str, node: usize) -> Result<usize> {
        let n = self.nodes.get_mut(node).ok_or_else(|| Error::Invalid(format!("no node {node}")))?;
        if n.pods >= MAX_PODS_PER_NODE {
            return Err(Error::Invalid(format!("{} already holds {MAX_PODS_PER_NODE} pods", n.name)));
        }
        let ip = Ipv4Addr::from(u32::from(pod_cidr(node)) + 2 + n.pods as u32);
        n.pods += 1;
        let ns = Netns::create(&format!("{}{name}", self.prefix))?;
        let host_end = format!("vp{}", n.pods);
        veth(&ns, "eth0", &n.ns, &host_end)?;
        ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"])?;
        ns.ip(&["route", "add", "default", "via", &n.ip.to_string(), "dev", "eth0", "onlink"])?;
        n.ns.ip(&["route", "add", &format!("{ip}/32"), "dev", &host_end])?;
        self.pods.push(PodNet { name: name.to_owned(), node, ip, ns });
        Ok(self.pods.len() - 1)
    }

    /// The pod called `name`.
    pub fn pod(&self, name: &str) -> Option<&PodNet> {
        self.pods.iter().find(|p| p.name == name)
    }

    /// The node address or name for `ip`, for reports.
    pub fn describe(&self, ip: IpAddr) -> String {
        if let Some(n) = self.nodes.iter().find(|n| IpAddr::V4(n.ip) == ip) {
            return format!("{ip} ({})", n.name);
        }
        if let Some(p) = self.pods.iter().find(|p| IpAddr::V4(p.ip) == ip) {
            return format!("{ip} (pod {})", p.name);
        }
        ip.to_string()
    }

    /// The LB's address for clients of `family`.
    pub fn vip(v6: bool) -> SocketAddr {
        if v6 {
            SocketAddr::new(IpAddr::V6(VIP6), LB_PORT)
        } else {
            SocketAddr::new(IpAddr::V4(VIP), LB_PORT)
        }
    }
}

/// A veth pair with one end in each namespace, both up.
fn veth(a: &Netns, a_name: &str, b: &Netns, b_name: &str) -> Result<()> {
    crate::netns::sh(&[
        "ip",
        "link",
        "add",
        a_name,
        "netns",
        a.name(),
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "netns",
        b.name(),
    ])?;
    a.ip(&["link", "set", a_name, "up"])?;
    b.ip(&["link", "set", b_name, "up"])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_documentation_ranges_and_do_not_overlap() {
        let doc = |ip: Ipv4Addr| matches!(ip.octets()[..3], [192, 0, 2] | [198, 51, 100] | [203, 0, 113]);
        let mut seen = std::collections::HashSet::new();
        for n in 0..MAX_NODES {
            assert!(doc(node_ip(n)) && seen.insert(node_ip(n)));
            for slot in 0..MAX_PODS_PER_NODE as u32 {
                let p = Ipv4Addr::from(u32::from(pod_cidr(n)) + 2 + slot);
                assert!(doc(p) && seen.insert(p) && is_cluster_addr(IpAddr::V4(p)), "{p}");
                assert_ne!(p, APP_CLUSTER_IP);
            }
        }
        let mut links = Vec::new();
        for c in CLIENTS {
            assert!(!is_cluster_addr(c.addr), "{}", c.addr);
            if let (IpAddr::V4(v4), IpAddr::V4(gw)) = (c.addr, c.gateway) {
                assert!(doc(v4) && seen.insert(v4));
                // Clients have their own /24, apart from nodes and pods.
                assert_eq!(v4.octets()[..3], [203, 0, 113], "{v4}");
                // Each on its own link: the address and its gateway share a
                // prefix no other client's link has.
                let net = |ip: Ipv4Addr| u32::from(ip) >> (32 - u32::from(c.prefix));
                assert_eq!(net(v4), net(gw), "{v4} and its gateway {gw}");
                assert!(!links.contains(&(c.prefix, net(v4))), "{v4} shares a link");
                links.push((c.prefix, net(v4)));
            }
        }
        assert!(
            CLIENTS.iter().all(|c| c.addr.to_string() != crate::scenario::FORGED),
            "the forged address is nobody's"
        );
        assert!(doc(VIP) && !is_cluster_addr(IpAddr::V4(VIP)));
        assert_eq!(VIP6.segments()[..2], [0x2001, 0xdb8]);
    }
}
