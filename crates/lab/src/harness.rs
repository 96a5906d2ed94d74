//! One lab instance: a topology, the kube-proxy and kubelet emulation
//! that keep it in step with the pods, a load balancer, and the
//! measurements taken from each hop.
//!
//! The endpoint state (EndpointSlices) lives here; any change (a pod turns
//! ready or not ready, a pod starts terminating) bumps a version and wakes
//! the reconciler, which re-renders every node's ruleset and health-check
//! answer, the way kube-proxy follows the EndpointSlice watch.
//!
//! Drop order is teardown order: processes, then tasks, then namespaces,
//! then the scratch directory.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::kubeproxy::{self, Endpoint, NodeHealth, Policy};
use crate::lb::{self, HealthCheck, LbState};
use crate::load::{self, Load, Sample};
use crate::measure;
use crate::netns::Proc;
use crate::pods::{self, IngressConfig, Kind, Pod};
use crate::report::Measure;
use crate::topo::{self, Topology, HEALTH_CHECK_NODE_PORT, KUBE_PROXY_HEALTHZ_PORT, NODE_PORT};

/// kubelet readiness probing in the lab (fast, so scenarios stay short).
pub const PROBE_PERIOD: Duration = Duration::from_millis(300);
/// A probe's own timeout (the kubelet's default `timeoutSeconds: 1`), so a
/// loaded machine does not fail healthy pods.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Consecutive failures before a pod is not ready.
pub const PROBE_FAILURE_THRESHOLD: u32 = 5;

/// How long the access logs get to catch up with the last answers.
const LOG_SETTLE: Duration = Duration::from_millis(100);

/// Where the lab finds things, and how the passthrough LB checks nodes.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `realip` binary to run as proxy and echo.
    pub realip: PathBuf,
    /// Time between LB health checks (default 200 ms).
    pub lb_interval: Duration,
    /// Consecutive successes before the LB sends to a node (default 2).
    pub lb_healthy_threshold: u32,
    /// Consecutive failures before the LB stops (default 2).
    pub lb_unhealthy_threshold: u32,
}

impl Options {
    /// The defaults, running `realip`.
    pub fn new(realip: PathBuf) -> Options {
        Options { realip, lb_interval: Duration::from_millis(200), lb_healthy_threshold: 2, lb_unhealthy_threshold: 2 }
    }
}

#[derive(Debug, Default)]
struct Endpoints {
    ingress: Vec<Endpoint>,
    app: Vec<Endpoint>,
    version: u64,
}

/// Which load balancer is in front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbKind {
    /// nftables DNAT with health checks.
    Passthrough(HealthCheck),
    /// `realip proxy` in L4 mode, PROXY v2 towards the nodes when `true`.
    Proxy {
        /// Send PROXY v2.
        proxy_protocol: bool,
    },
}

/// A scratch directory removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running lab.
#[derive(Debug)]
pub struct Lab {
    /// Pods, killed first.
    pub pods: Vec<Pod>,
    lb_proc: Option<Proc>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    eps: Arc<Mutex<Endpoints>>,
    changed: Arc<Notify>,
    applied: Arc<AtomicU64>,
    apply_error: Arc<Mutex<Option<String>>>,
    lb_state: Arc<Mutex<LbState>>,
    lb_kind: Option<LbKind>,
    opts: Options,
    /// The network.
    pub topo: Topology,
    scratch: Scratch,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Lab {
    /// Builds the network with `nodes` nodes and starts kube-proxy on each.
    pub async fn new(opts: &Options, run: &str, nodes: usize, policy: Policy) -> Result<Lab> {
        let dir = std::env::temp_dir().join(format!("{}{run}", crate::netns::PREFIX));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let scratch = Scratch(dir.clone());
        let topo = tokio::task::block_in_place(|| Topology::build(run, nodes, &dir))?;
        let mut lab = Lab {
            pods: Vec::new(),
            lb_proc: None,
            tasks: Vec::new(),
            eps: Arc::default(),
            changed: Arc::new(Notify::new()),
            applied: Arc::new(AtomicU64::new(0)),
            apply_error: Arc::default(),
            lb_state: Arc::new(Mutex::new(LbState::new(nodes))),
            lb_kind: None,
            opts: opts.clone(),
            topo,
            scratch,
        };
        let mut health = Vec::new();
        for node in &lab.topo.nodes {
            let state = Arc::new(Mutex::new(NodeHealth::default()));
            health.push(Arc::clone(&state));
            for (port, always_ok) in [(HEALTH_CHECK_NODE_PORT, false), (KUBE_PROXY_HEALTHZ_PORT, true)] {
                let addr = SocketAddr::new(IpAddr::V4(node.ip), port);
                let listener = node
                    .rt
                    .spawn(async move { tokio::net::TcpListener::bind(addr).await })
                    .await
                    .map_err(|e| Error::Unavailable(e.to_string()))?
                    .map_err(|e| Error::io(format!("binding {addr}"), e))?;
                let state = Arc::clone(&state);
                lab.tasks.push(node.rt.spawn(kubeproxy::serve_health(
                    listener,
                    state,
                    "ingress/realip".into(),
                    always_ok,
                )));
            }
        }
        // The reconciler: kube-proxy on every node, following the endpoints.
        let nodes: Vec<(usize, Ipv4Addr, String)> =
            lab.topo.nodes.iter().enumerate().map(|(i, n)| (i, n.ip, n.ns.name().to_owned())).collect();
        let (eps, changed, applied) = (Arc::clone(&lab.eps), Arc::clone(&lab.changed), Arc::clone(&lab.applied));
        let apply_error = Arc::clone(&lab.apply_error);
        changed.notify_one();
        lab.tasks.push(tokio::spawn(async move {
            let mut last: HashMap<usize, String> = HashMap::new();
            loop {
                changed.notified().await;
                let (version, rules, counts) = {
                    let Ok(e) = eps.lock() else { return };
                    let rules: Vec<String> = nodes
                        .iter()
                        .map(|(i, ip, _)| kubeproxy::node_ruleset(*i, *ip, policy, &e.ingress, &e.app))
                        .collect();
                    let counts: Vec<usize> =
                        nodes.iter().map(|(i, _, _)| kubeproxy::local_ready(&e.ingress, *i)).collect();
                    (e.version, rules, counts)
                };
                let mut failed = None;
                for ((i, _, ns), (rule, count)) in nodes.iter().zip(rules.into_iter().zip(counts)) {
                    if last.get(i) != Some(&rule) {
                        let args = ["ip", "netns", "exec", ns, "nft", "-f", "-"].map(str::to_owned).to_vec();
                        match crate::netns::sh_async(args, Some(rule.clone())).await {
                            Ok(_) => {
                                last.insert(*i, rule);
                            }
                            Err(e) => failed = Some(e.to_string()),
                        }
                    }
                    if let Ok(mut h) = health[*i].lock() {
                        h.local_endpoints = count;
                    }
                }
                match failed {
                    // Not applied: converged() times out naming the error.
                    Some(e) => *apply_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e),
                    None => applied.store(version, Ordering::SeqCst),
                }
            }
        }));
        Ok(lab)
    }

    fn bump(&self, f: impl FnOnce(&mut Endpoints)) -> u64 {
        let v = {
            let mut e = self.eps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut e);
            e.version += 1;
            e.version
        };
        self.changed.notify_one();
        v
    }

    /// Waits until kube-proxy has applied endpoint version `v` on every node.
    async fn converged(&self, v: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.applied.load(Ordering::SeqCst) < v {
            if Instant::now() > deadline {
                let why = self.apply_error.lock().ok().and_then(|e| e.clone()).unwrap_or_default();
                return Err(Error::Timeout(format!("kube-proxy rules were not applied within 10 s: {why}")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Starts a pod on `node` and its kubelet readiness prober.
    pub fn add_pod(&mut self, kind: Kind, name: &str, node: usize, ingress: &IngressConfig) -> Result<()> {
        let idx = tokio::task::block_in_place(|| self.topo.add_pod(name, node))?;
        let net = &self.topo.pods[idx];
        let node_name = self.topo.nodes[node].name.clone();
        let pod = tokio::task::block_in_place(|| {
            pods::start(&self.opts.realip, &self.scratch.0, &net.ns, name, kind, (node, &node_name), net.ip, ingress)
        })?;
        let ep = Endpoint { pod: name.to_owned(), ip: net.ip, node, serving: false, terminating: false };
        let (ip, port, path) = pod.readiness();
        self.bump(|e| match kind {
            Kind::Ingress => e.ingress.push(ep),
            Kind::App => e.app.push(ep),
        });
        // kubelet: probe every period; ready on one success, not ready after
        // PROBE_FAILURE_THRESHOLD consecutive failures.
        let (eps, changed, pod_name) = (Arc::clone(&self.eps), Arc::clone(&self.changed), name.to_owned());
        self.tasks.push(self.topo.nodes[node].rt.spawn(async move {
            let mut failures = 0;
            let mut tick = tokio::time::interval(PROBE_PERIOD / 3);
            let mut ever_ready = false;
            loop {
                tick.tick().await;
                let ok = pods::probe(ip, port, path, PROBE_TIMEOUT).await;
                failures = if ok { 0 } else { failures + 1 };
                let serving = if ok {
                    Some(true)
                } else if failures >= PROBE_FAILURE_THRESHOLD {
                    Some(false)
                } else {
                    None
                };
                if let Some(s) = serving {
                    let mut e = eps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let list = if kind == Kind::Ingress { &mut e.ingress } else { &mut e.app };
                    if let Some(ep) = list.iter_mut().find(|x| x.pod == pod_name) {
                        if ep.serving != s {
                            ep.serving = s;
                            e.version += 1;
                            changed.notify_one();
                        }
                    }
                }
                if ok && !ever_ready {
                    ever_ready = true;
                    // until then, probe three times faster (startup)
                    tick = tokio::time::interval(PROBE_PERIOD);
                    tick.tick().await;
                }
            }
        }));
        self.pods.push(pod);
        Ok(())
    }

    /// Waits until the named pods are serving and the rules reflect it.
    pub async fn wait_ready(&self, names: &[&str]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (all, v) = {
                let e = self.eps.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let all = names.iter().all(|n| e.ingress.iter().chain(&e.app).any(|x| x.pod == *n && x.serving));
                (all, e.version)
            };
            if all {
                return self.converged(v).await;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .pods
                    .iter()
                    .filter(|p| names.contains(&p.name.as_str()))
                    .map(|p| {
                        let out =
                            std::fs::read_to_string(self.scratch.0.join(format!("{}.log", p.name))).unwrap_or_default();
                        format!("{}: {}", p.name, out.lines().last().unwrap_or("(no output)"))
                    })
                    .collect();
                return Err(Error::Timeout(format!("pods {names:?} not ready within 15 s; {}", logs.join("; "))));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deletes a pod the Kubernetes way: its endpoint turns terminating at
    /// once and the process gets SIGTERM (then it drains as configured).
    pub fn terminate(&mut self, name: &str) {
        self.bump(|e| {
            for ep in e.ingress.iter_mut().chain(e.app.iter_mut()).filter(|x| x.pod == name) {
                ep.terminating = true;
            }
        });
        if let Some(p) = self.pods.iter().find(|p| p.name == name) {
            p.proc.terminate();
        }
    }

    /// Starts the load balancer.
    pub async fn start_lb(&mut self, kind: LbKind) -> Result<()> {
        self.lb_kind = Some(kind);
        let nodes: Vec<Ipv4Addr> = self.topo.nodes.iter().map(|n| n.ip).collect();
        match kind {
            LbKind::Passthrough(hc) => {
                tokio::task::block_in_place(|| self.topo.lb.nft(&lb::seen_ruleset()))?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                let name = self.topo.lb.name().to_owned();
                self.tasks.push(self.topo.lb_rt.spawn(lb::run_passthrough(
                    name,
                    nodes,
                    hc,
                    Arc::clone(&self.lb_state),
                    tx,
                )));
                rx.await.map_err(|_| Error::Unavailable("load balancer task ended".into()))?
            }
            LbKind::Proxy { proxy_protocol } => {
                let endpoints: Vec<String> = nodes.iter().map(|n| format!("\"{n}:{NODE_PORT}\"")).collect();
                let log = self.scratch.0.join("lb-access.log");
                let cfg = format!(
                    "[[listener]]\nname = \"vip\"\nbind = \"{}\"\nmode = \"tcp\"\nupstream = \"nodes\"\n\n\
                     [[listener]]\nname = \"vip6\"\nbind = \"{}\"\nmode = \"tcp\"\nupstream = \"nodes\"\n\n\
                     [[upstream]]\nname = \"nodes\"\nendpoints = [{}]\nproxy_protocol = \"{}\"\nconnect_timeout = \"500ms\"\n\n\
                     [log]\nformat = \"json\"\npath = \"{}\"\n\n[lifecycle]\nwatch_interval = \"0s\"\n",
                    Topology::vip(false),
                    Topology::vip(true),
                    endpoints.join(", "),
                    if proxy_protocol { "v2" } else { "off" },
                    log.display()
                );
                let path = self.scratch.0.join("lb.toml");
                std::fs::write(&path, cfg).map_err(|e| Error::io("writing lb.toml", e))?;
                let mut cmd = self.topo.lb.command(&self.opts.realip);
                cmd.args(["proxy", "--workers", "1", "--config"]).arg(&path);
                self.lb_proc = Some(Proc::spawn("lb", cmd, &self.scratch.0.join("lb.log"))?);
                // Ready when the VIP accepts connections, checked from the lb
                // host itself so no client's row counts the check.
                let deadline = Instant::now() + Duration::from_secs(10);
                let target = Topology::vip(false);
                loop {
                    let up = self
                        .topo
                        .lb_rt
                        .spawn(async move { tokio::net::TcpStream::connect(target).await.is_ok() })
                        .await
                        .unwrap_or(false);
                    if up {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        let log = std::fs::read_to_string(self.scratch.0.join("lb.log")).unwrap_or_default();
                        return Err(Error::Timeout(format!("the L4 load balancer did not listen within 10 s: {log}")));
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Waits until the passthrough LB's health checks agree with `healthy`.
    pub async fn wait_lb(&self, healthy: &[bool]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.lb_state.lock().is_ok_and(|s| s.healthy == healthy) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let now = self.lb_state.lock().map(|s| s.healthy.clone()).unwrap_or_default();
                return Err(Error::Timeout(format!("LB health checks saw {now:?}, expected {healthy:?}, after 10 s")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The named clients (`c1`, `c2`, `c6`) as load sources aimed at the VIP.
    pub fn clients(&self, names: &[&str]) -> Vec<(tokio::runtime::Handle, IpAddr, SocketAddr)> {
        self.topo
            .clients
            .iter()
            .filter(|c| names.contains(&c.spec.name))
            .map(|c| (c.rt.handle(), c.spec.addr, Topology::vip(c.spec.addr.is_ipv6())))
            .collect()
    }

    /// Sends `load` from the named clients and waits for it to finish.
    pub async fn traffic(&self, names: &[&str], load: &Load) -> Vec<Sample> {
        load::run(self.clients(names), load.clone()).await
    }

    /// Truncates the access logs and empties the LB's record of sources, so
    /// the next measurement sees only new requests.
    pub fn reset_logs(&self) {
        for p in self.pods.iter().filter(|p| p.kind == Kind::Ingress) {
            let _ = std::fs::write(&p.log, "");
        }
        let _ = std::fs::write(self.scratch.0.join("lb-access.log"), "");
        if matches!(self.lb_kind, Some(LbKind::Passthrough(_))) {
            tokio::task::block_in_place(|| lb::reset_seen(&self.topo.lb));
        }
    }

    /// The scratch directory (configs and logs).
    pub fn dir(&self) -> &Path {
        &self.scratch.0
    }

    /// Everything measured for `samples`, from the LB, the ingress access
    /// logs and the app's answers ([`crate::measure`]).
    pub fn measure(&self, samples: &[Sample], timeline: bool) -> Measure {
        // The proxies write a log line when a request or connection ends,
        // which can be a moment after the client has its answer.
        tokio::task::block_in_place(|| std::thread::sleep(LOG_SETTLE));
        let lb_seen: Option<BTreeMap<String, u64>> = match self.lb_kind {
            Some(LbKind::Passthrough(_)) => Some(
                tokio::task::block_in_place(|| lb::seen(&self.topo.lb))
                    .into_iter()
                    .map(|(ip, n)| (ip.to_string(), n))
                    .collect(),
            ),
            Some(LbKind::Proxy { .. }) => Some(measure::l4_peers(&self.scratch.0.join("lb-access.log"))),
            None => None,
        };
        let hits: Vec<measure::Hit> = self
            .pods
            .iter()
            .filter(|p| p.kind == Kind::Ingress)
            .flat_map(|p| measure::ingress_log(&p.log, &p.name, Some(&self.topo.nodes[p.node].name)))
            .collect();
        measure::measure(lb_seen.as_ref(), &hits, samples, timeline)
    }

    /// True when `ip` (as text) is a node's or pod's address.
    pub fn is_cluster(ip: Option<&String>) -> bool {
        ip.and_then(|s| s.parse::<IpAddr>().ok()).is_some_and(topo::is_cluster_addr)
    }
}
