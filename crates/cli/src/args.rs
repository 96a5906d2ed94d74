//! Command-line arguments: the stable CLI contract of DESIGN.md.

use clap::{Args, Parser, Subcommand};

/// Keep the real client IP intact from the internet edge to the app.
#[derive(Debug, Parser)]
#[command(name = "realip", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide who the client is, from a peer, headers and a PROXY header.
    #[command(after_help = RESOLVE_EXAMPLES)]
    Resolve(ResolveArgs),
    /// Decode or encode PROXY protocol v1/v2 headers.
    Pp {
        #[command(subcommand)]
        command: PpCommand,
    },
    /// Audit manifests and Helm values for what loses or forges the client IP (docs/doctor.md).
    #[command(
        after_help = "Examples:\n  realip doctor deploy/                       # a directory of manifests\n  kubectl get svc,deploy,cm -A -o yaml | realip doctor -\n  realip doctor --helm-values values.yaml --format sarif > doctor.sarif\n\nExit status: 0 no findings at or above --fail-on, 1 findings, 2 unreadable input or usage error."
    )]
    Doctor(DoctorArgs),
    /// Run the edge/ingress proxy from a TOML config (docs/proxy.md).
    #[command(
        after_help = "Examples:\n  realip proxy --config realip.toml --check   # validate, print every error\n  realip proxy --config realip.toml           # serve; SIGHUP reloads, SIGTERM drains"
    )]
    Proxy(ProxyArgs),
    /// Serve /debug/ip: what this hop sees of the client (the seed guide's debug app).
    #[command(after_help = ECHO_EXAMPLES)]
    Echo(EchoArgs),
    /// Print the Helm chart's objects as plain YAML: `realip manifests | kubectl apply -f -` (docs/kubernetes.md).
    Manifests(ManifestsArgs),
    /// Reproduce LB → kube-proxy (Cluster/Local) → ingress → app in network namespaces and measure what each hop sees (docs/lab.md).
    #[command(after_help = LAB_EXAMPLES)]
    Lab(LabArgs),
    /// Migrate an ingress controller's setup to the Gateway API, keeping the client IP (docs/migrate.md).
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// ingress-nginx (ConfigMap, Service, Ingresses) to a Gateway, HTTPRoutes and client-IP policies, with a report.
    #[command(after_help = MIGRATE_EXAMPLES)]
    IngressNginx(MigrateArgs),
}

const MIGRATE_EXAMPLES: &str = "\
Examples:
  realip migrate ingress-nginx deploy/ --out gateway/ --report report.txt
  kubectl get deploy,ds,cm,svc,ing,ingressclass -A -o yaml | realip migrate ingress-nginx - > gateway.yaml
  realip migrate ingress-nginx --live --to envoy-gateway --trust 10.0.0.0/16 --format json --report report.json

Exit status: 0 everything converted, 1 something could not be (the output is still written; the
report says what and why), 2 unreadable input or usage error.";

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Manifest files or directories (YAML/JSON, multi-document, List kinds); `-` reads stdin.
    #[arg(value_name = "FILE|DIR|-")]
    pub paths: Vec<std::path::PathBuf>,
    /// Read the cluster the kubeconfig points at (read-only).
    #[arg(long)]
    pub live: bool,
    /// Policies of realip (ClientIPPolicy / ClientAccessPolicy) or Envoy Gateway
    /// (ClientTrafficPolicy / SecurityPolicy / BackendTrafficPolicy).
    #[arg(long, value_name = "TARGET", default_value = "realip", value_parser = ["realip", "envoy-gateway"])]
    pub to: String,
    /// gatewayClassName of the Gateway (default: realip, or eg with --to envoy-gateway).
    #[arg(long, value_name = "NAME")]
    pub gateway_class: Option<String>,
    /// Namespace and name of the Gateway (default: the controller's namespace / ingress-nginx).
    #[arg(long, value_name = "NS/NAME")]
    pub gateway: Option<String>,
    /// Write one file per object into DIR (default: one YAML stream on stdout).
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Write the report to FILE (default: stderr, or stdout with --out).
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// Report format: text or json. With json, stdout and stderr hold only JSON: the objects (without
    /// --out) as one v1 List, the report as one object.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Trust these CIDRs (your load balancer's) instead of proxy-real-ip-cidr, e.g. to replace its
    /// trust-all default.
    #[arg(long, value_name = "CIDR")]
    pub trust: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ManifestsArgs {
    /// One controller pod per node (DaemonSet) instead of a spread Deployment.
    #[arg(long)]
    pub daemonset: bool,
    /// Controller replicas (Deployment).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub replicas: u32,
    /// The load balancer sends PROXY v2: required on the listener (from 10.0.0.0/8) and the AWS annotations set.
    #[arg(long)]
    pub proxy_protocol: bool,
    /// Namespace for the controller's objects.
    #[arg(long, default_value = "realip", value_name = "NS")]
    pub namespace: String,
    /// Container image.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Gateway API mode: realip's ClientIPPolicy / ClientAccessPolicy CRDs, the GatewayClass `realip`,
    /// --gateway-class and RBAC for Gateway API objects (chart value gateway.enabled; docs/gateway.md).
    #[arg(long)]
    pub gateway: bool,
    /// Redis URL for `scope = "global"` rate limits: renders [rate_limit_store] (chart value rateLimit.redis.url).
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Secret whose key `password` is the Redis password (chart value rateLimit.redis.existingSecret).
    #[arg(long, value_name = "SECRET", requires = "redis_url")]
    pub redis_secret: Option<String>,
    /// Gateway-API-only controller: --no-ingress, `ingress = false` on the listeners, no IngressClass
    /// or Ingress RBAC (chart value ingress.enabled=false).
    #[arg(long, requires = "gateway")]
    pub no_ingress: bool,
    /// NS/NAME or NS/*: a Gateway allowed to program the listeners (repeatable; renders
    /// `gateways = [...]`; chart value gateway.allowedGateways).
    #[arg(long, value_name = "NS/NAME", requires = "gateway")]
    pub allowed_gateway: Vec<String>,
}

const LAB_EXAMPLES: &str = "\
Examples:
  sudo realip lab                           # every scenario, a table each
  sudo realip lab --scenario local-uneven --json
  sudo realip lab --out lab-report          # report.md + SVG charts
  realip lab --loopback                     # no root: what loopback can show
  sudo realip lab --cleanup                 # remove leftovers of a killed run
  realip lab sim --nodes 20 --replicas 3 --spread none

Scenarios: cluster, local, local-no-healthcheck, local-uneven, daemonset, proxy-protocol,
proxy-protocol-mismatch, spoof, rollout, ipv6, kubernetes, gateway, global-rate-limit, migrate (or all).
Exit status: 0 every scenario passed or was skipped, 1 a scenario failed (or, with
REALIP_REQUIRE_NETNS=1, was skipped), 2 usage error.";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: Option<LabCommand>,
    /// Scenario to run (repeatable), or `all`.
    #[arg(long = "scenario", value_name = "NAME|all", default_value = "all")]
    pub scenarios: Vec<String>,
    /// Print the report as one JSON object (schema in DESIGN.md and docs/lab.md).
    #[arg(long)]
    pub json: bool,
    /// Run the loopback approximation even as root.
    #[arg(long)]
    pub loopback: bool,
    /// Also write report.md and SVG charts into DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Remove namespaces (and their processes) left by a killed run, then exit.
    #[arg(long)]
    pub cleanup: bool,
    /// Passthrough LB: milliseconds between health checks of each node.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub lb_interval_ms: u64,
    /// Passthrough LB: consecutive passed checks before a node gets traffic.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub lb_healthy_threshold: u32,
    /// Passthrough LB: consecutive failed checks before a node gets none.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub lb_unhealthy_threshold: u32,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Model per-pod traffic share and rollout losses for clusters the lab cannot hold.
    Sim(SimArgs),
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Ingress replicas (ignored with --daemonset).
    #[arg(long, default_value_t = 2)]
    pub replicas: usize,
    /// Placement: none | hostname | zone.
    #[arg(long, default_value = "hostname")]
    pub spread: String,
    /// Zones (nodes are assigned round-robin).
    #[arg(long, default_value_t = 1)]
    pub zones: usize,
    /// externalTrafficPolicy: local | cluster.
    #[arg(long, default_value = "local")]
    pub policy: String,
    /// One ingress pod per node.
    #[arg(long)]
    pub daemonset: bool,
    /// The LB sends to every node whatever its health check says.
    #[arg(long)]
    pub ignore_health_checks: bool,
    /// Seconds between LB health checks.
    #[arg(long, default_value_t = 10.0, value_name = "S")]
    pub health_interval: f64,
    /// Failed checks before the LB takes a node out.
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub unhealthy_threshold: u32,
    /// Seconds a deleted ingress pod keeps serving (the proxy's drain_delay).
    #[arg(long, default_value_t = 0.0, value_name = "S")]
    pub drain_delay: f64,
    /// Seconds from pod creation to ready.
    #[arg(long, default_value_t = 5.0, value_name = "S")]
    pub pod_ready: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

const ECHO_EXAMPLES: &str = "\
Examples:
  # Behind an ingress in 10.0.0.0/8, like uvicorn --proxy-headers --forwarded-allow-ips=10.0.0.0/8:
  realip echo --listen 0.0.0.0:8000 --trust 10.0.0.0/8
  curl -s localhost:8000/debug/ip

  # Directly behind an L4 load balancer sending PROXY v2:
  realip echo --listen 0.0.0.0:8000 --trust 10.0.0.0/8 --proxy-protocol required

Endpoints: GET /debug/ip (also any other path), GET /debug/headers, GET /healthz.";

#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Address to listen on, IP:PORT (port 0 picks one; the address is printed).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// Trust (which also decides who may send PROXY headers), sources, strategy.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// PROXY protocol on the listener: off, optional or required.
    #[arg(long, value_name = "MODE", default_value = "off")]
    pub proxy_protocol: String,
    /// Longest wait for a PROXY header, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub header_timeout: f64,
    /// Answer 400 to forwarding headers sent by an untrusted peer.
    #[arg(long)]
    pub reject_untrusted_forwarding: bool,
}

const RESOLVE_EXAMPLES: &str = "\
Examples:
  # An ingress behind an LB in 10.0.0.0/8; the client forged the first entry.
  realip resolve --peer 10.0.0.2 --trust 10.0.0.0/8 \\
      --header 'X-Forwarded-For: 1.2.3.4, 203.0.113.7, 10.0.0.3' --json
  {\"client_ip\":\"203.0.113.7\",\"source\":\"xff\",\"hops\":2,\"warnings\":[]}

  # The same request from an untrusted peer: its headers are never read.
  realip resolve --peer 198.51.100.1 --trust 10.0.0.0/8 --header 'X-Forwarded-For: 1.2.3.4'

Exit status: 0 resolved, 1 rejected input (malformed or untrusted PROXY header), 2 usage error.";

#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// Address of the TCP peer that delivered the request.
    #[arg(long, value_name = "IP")]
    pub peer: String,
    /// Trust, sources, strategy.
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// A request header line, `Name: value`; repeatable, kept in order.
    #[arg(long = "header", value_name = "\"Name: value\"")]
    pub headers: Vec<String>,
    /// PROXY v1/v2 header the connection began with, as hex.
    #[arg(long, value_name = "HEX")]
    pub proxy_protocol_hex: Option<String>,
    /// Print one JSON object: client_ip, source, hops, warnings.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PpCommand {
    /// Decode a PROXY v1/v2 header given as hex.
    #[command(
        after_help = "Example:\n  realip pp decode --hex \"$(realip pp encode --src 203.0.113.7:5000 --dst 10.0.0.1:443)\" --json"
    )]
    Decode(DecodeArgs),
    /// Encode a PROXY header and print it as hex.
    #[command(
        after_help = "Example:\n  realip pp encode --src 203.0.113.7:5000 --dst 10.0.0.1:443 --v2 --tlv 0x02=6170702e6578616d706c65"
    )]
    Encode(EncodeArgs),
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The header bytes as hex (white space and `:` ignored).
    #[arg(long, value_name = "HEX")]
    pub hex: String,
    /// Print JSON: version, command, family, src, dst, tlvs.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Client address, IP:PORT (IPv6 as [IP]:PORT).
    #[arg(long, value_name = "IP:PORT", required_unless_present = "local")]
    pub src: Option<String>,
    /// Destination address, IP:PORT.
    #[arg(long, value_name = "IP:PORT", required_unless_present = "local")]
    pub dst: Option<String>,
    /// Text format (PROXY TCP4/TCP6 ...).
    #[arg(long, conflicts_with = "v2")]
    pub v1: bool,
    /// Binary format (the default).
    #[arg(long)]
    pub v2: bool,
    /// A TLV, TYPE=HEX with TYPE decimal or 0x-hex; repeatable (v2 only).
    #[arg(long = "tlv", value_name = "T=HEX")]
    pub tlvs: Vec<String>,
    /// Append a CRC32C TLV (v2 only).
    #[arg(long)]
    pub crc32c: bool,
    /// LOCAL command (a health check; no addresses).
    #[arg(long, conflicts_with_all = ["src", "dst", "v1"])]
    pub local: bool,
    /// Datagram (UDP) transport (v2 only).
    #[arg(long)]
    pub udp: bool,
}

/// The client-IP policy flags shared by every command that resolves.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Trusted proxy network (CIDR, address, `loopback` or `private`); repeatable.
    #[arg(long = "trust", value_name = "CIDR")]
    pub trust: Vec<String>,
    /// Source to consult, in order: peer, proxy-protocol, xff, forwarded, x-real-ip, header:NAME
    /// (one address in a named header such as CF-Connecting-IP); repeatable.
    /// [default: proxy-protocol, xff]
    #[arg(long = "source", value_name = "S")]
    pub sources: Vec<String>,
    /// rightmost-untrusted, leftmost, or trusted-hops:N.
    #[arg(long, value_name = "ST", default_value = "rightmost-untrusted")]
    pub strategy: String,
}

impl PolicyArgs {
    /// The resolver these flags describe; a bad value is a usage error
    /// naming its flag.
    pub fn resolver(&self) -> Result<realip_core::Resolver, crate::failure::Failure> {
        use crate::failure::Failure;
        use anyhow::Context as _;
        let trusted = realip_core::TrustedProxies::parse(&self.trust).context("--trust").map_err(Failure::usage)?;
        let sources = if self.sources.is_empty() {
            realip_core::Sources::default()
        } else {
            realip_core::Sources::parse(&self.sources).context("--source").map_err(Failure::usage)?
        };
        let strategy = self.strategy.parse().context("--strategy").map_err(Failure::usage)?;
        Ok(realip_core::Resolver::new(trusted, sources, strategy))
    }
}

/// How `realip proxy` runs its listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyRuntime {
    /// One single-threaded runtime per worker thread.
    PerCore,
    /// One multi-threaded, work-stealing runtime.
    MultiThread,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// The TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: std::path::PathBuf,
    /// Validate the configuration (and load certificates), print every error, exit.
    #[arg(long)]
    pub check: bool,
    /// Worker threads [default: one per CPU]. Each runs a single-threaded runtime with its own
    /// SO_REUSEPORT socket per listener (with --runtime multi-thread: the runtime's worker threads).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// per-core: one single-threaded runtime per worker thread; multi-thread: one work-stealing
    /// runtime and one socket per listener.
    #[arg(long, value_enum, default_value = "per-core", value_name = "KIND")]
    pub runtime: ProxyRuntime,
    /// Also route the Ingresses of --ingress-class, with pool members from
    /// EndpointSlices (in-cluster service account, or KUBECONFIG) (docs/kubernetes.md).
    #[arg(long)]
    pub kubernetes: bool,
    /// IngressClass served in Kubernetes mode.
    #[arg(long, default_value = "realip", value_name = "NAME")]
    pub ingress_class: String,
    /// Kubernetes mode: do not watch or serve Ingresses at all (Gateway API only; no Ingress RBAC
    /// needed). Chart value ingress.enabled=false.
    #[arg(long, conflicts_with = "ingress_class")]
    pub no_ingress: bool,
    /// Only watch this namespace [default: all].
    #[arg(long, value_name = "NS")]
    pub watch_namespace: Option<String>,
    /// GatewayClass served in Kubernetes mode (controllerName realip.dev/gateway-controller);
    /// empty turns Gateway API mode off. Absent Gateway API CRDs are logged once, not an error.
    #[arg(long, default_value = "realip", value_name = "NAME")]
    pub gateway_class: String,
    /// NAMESPACE/NAME of the LoadBalancer Service whose address is written into Ingress status.
    #[arg(long, value_name = "NS/NAME")]
    pub publish_service: Option<String>,
    /// Kubernetes mode: seconds between checks for Gateway API / realip.dev kinds that were not
    /// served at start (CRDs installed later are then watched without a restart).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub kubernetes_recheck: u64,
    /// Gateway API mode: the most routes (parents × listener hostnames × matches) the HTTPRoutes of
    /// one namespace may expand to together; oldest route first, one that would pass it is
    /// `Accepted: False, UnsupportedValue` and not served (one HTTPRoute: at most 4096 whatever this
    /// is). Chart value gateway.maxRoutesPerNamespace (docs/gateway.md).
    #[arg(long, default_value_t = realip_kube::gateway::translate::MAX_ROUTES_PER_NAMESPACE, value_name = "N")]
    pub kubernetes_max_routes_per_namespace: usize,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Manifest files or directories (YAML/JSON, multi-document, List kinds); `-` reads stdin.
    #[arg(value_name = "FILE|DIR|-")]
    pub paths: Vec<std::path::PathBuf>,
    /// A chart values file to audit too (ingress-nginx, Traefik or realip; recognised from its keys).
    #[arg(long, value_name = "FILE")]
    pub helm_values: Vec<std::path::PathBuf>,
    /// text, json or sarif.
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json", "sarif"])]
    pub format: String,
    /// Also read the cluster the kubeconfig points at (read-only).
    #[arg(long)]
    pub live: bool,
    /// Probe a live endpoint that echoes the client IP (e.g. realip echo's /debug/ip) with forged headers.
    #[arg(long, value_name = "URL")]
    pub probe: Option<String>,
    /// With --probe: the address the endpoint should see for us.
    #[arg(long, value_name = "IP", requires = "probe")]
    pub expect_client: Option<std::net::IpAddr>,
    /// With --probe: also send a forged PROXY v1 header.
    #[arg(long, requires = "probe")]
    pub probe_proxy_protocol: bool,
    /// With --probe: JSON field (dot path) holding the client IP.
    #[arg(long, value_name = "PATH", default_value = "client_ip", requires = "probe")]
    pub probe_field: String,
    /// Lowest severity that makes the exit status 1: warning or error.
    #[arg(long, value_name = "SEVERITY", default_value = "error", value_parser = ["warning", "error"])]
    pub fail_on: String,
}
