//! The proxy's TOML configuration: the file format of DESIGN.md, parsed
//! with serde (unknown keys are errors), then [`Config::validate`]d into a
//! list of every problem, each naming its key.
//!
//! Units: durations are strings like `"5s"`, `"250ms"`, `"2m"`; sizes are
//! integers in bytes.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use realip_core::{Sources, Strategy, TrustedProxies};
use serde::Deserialize;

use crate::Error;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where traffic comes in.
    #[serde(rename = "listener", default)]
    pub listeners: Vec<ListenerConfig>,
    /// Who the client is.
    #[serde(default)]
    pub client_ip: ClientIpConfig,
    /// What the upstream receives.
    #[serde(default)]
    pub forward: ForwardConfig,
    /// How requests are read.
    #[serde(default)]
    pub http: HttpConfig,
    /// Host/path routes, most specific first when matched. Shared: a
    /// Kubernetes route unchanged since the last reload is the same value,
    /// which is not checked or compiled again.
    #[serde(rename = "route", default)]
    pub routes: Vec<std::sync::Arc<RouteConfig>>,
    /// Pools of backends.
    #[serde(rename = "upstream", default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// Allow/deny and rate limits on the resolved client IP.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Where `scope = "global"` rate limits keep their state (Redis).
    pub rate_limit_store: Option<RateLimitStoreConfig>,
    /// Access log.
    #[serde(default)]
    pub log: LogConfig,
    /// Metrics and health endpoints.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Bounds against abuse.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Shutdown behaviour.
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
}

/// A duration written as `"5s"`, `"250ms"`, `"2m"`, `"1h"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Dur).map_err(serde::de::Error::custom)
    }
}

/// The longest duration accepted: longer ones would overflow deadlines
/// (`Instant` arithmetic) and are never meant.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses `"5s"`, `"250ms"`, `"2m"`, `"1h"` (also fractional, `"1.5s"`),
/// at most [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (write e.g. \"5s\", \"250ms\", \"2m\")");
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(bad()),
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
    if d > MAX_DURATION {
        return Err(format!("`{s}` is longer than the 365 days a duration may be"));
    }
    Ok(d)
}

/// `off`, `optional` or `required`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocolIn {
    /// No PROXY header is read.
    #[default]
    Off,
    /// Read one if the connection starts with it.
    Optional,
    /// Every connection must start with one.
    Required,
}

/// `http` (default) or `tcp` (L4 pass-through).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerMode {
    /// HTTP/1.1 and HTTP/2, routed.
    #[default]
    Http,
    /// Raw TCP to one upstream (optionally with PROXY v2 prepended).
    Tcp,
}

/// One `[[listener]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Name used in logs and metrics.
    pub name: String,
    /// `IP:PORT`; IPv6 as `[::]:8080`.
    pub bind: String,
    /// `http` or `tcp`.
    #[serde(default)]
    pub mode: ListenerMode,
    /// PROXY protocol in.
    #[serde(default)]
    pub proxy_protocol: ProxyProtocolIn,
    /// Who may send a PROXY header.
    #[serde(default)]
    pub proxy_protocol_from: Vec<String>,
    /// Longest wait for the PROXY header (default 5s).
    pub header_timeout: Option<Dur>,
    /// TLS termination.
    pub tls: Option<TlsConfig>,
    /// `tcp` mode: the upstream to forward to.
    pub upstream: Option<String>,
    /// Kubernetes Gateway API mode: the Gateway listener ports this bind
    /// serves. Routes attached to a Gateway listener with one of these
    /// ports are served here (and only on listeners that name its port).
    #[serde(default)]
    pub gateway_ports: Vec<u16>,
    /// Kubernetes mode: whether Ingress routes are served on this bind
    /// (default `true`). With `false`, a bind with `gateway_ports` is the
    /// Gateways' alone: no Ingress can take one of its hosts or paths, and
    /// no Ingress makes the file's chain apply to it (file `[[route]]`s
    /// still run on every listener).
    #[serde(default = "yes")]
    pub ingress: bool,
    /// Kubernetes Gateway API mode: the Gateways (`NS/NAME`, or `NS/*` for
    /// every Gateway of a namespace) allowed to program this bind, with the
    /// ListenerSets attached to them; empty (default): any Gateway of the
    /// class. A listener of another Gateway on one of its `gateway_ports`
    /// is not served here (and its status says `PortUnavailable`).
    #[serde(default)]
    pub gateways: Vec<String>,
    /// Kubernetes Gateway API mode: the client-IP chain of a
    /// `ClientIPPolicy` on the Gateway listeners this bind serves, which
    /// replaces `[client_ip]` and `[forward]` here (never from the file).
    #[serde(skip)]
    pub chain: Option<ListenerChain>,
}

/// A listener's own client-IP chain (from a Gateway API `ClientIPPolicy`):
/// who is trusted, what is read, what the upstream receives, and whether
/// a request without a trustworthy answer is refused. Its PROXY settings
/// are the listener's `proxy_protocol` / `proxy_protocol_from`.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerChain {
    /// `NS/NAME` of the policy (logs).
    pub policy: String,
    /// Trusted proxies, sources, strategy.
    pub client_ip: ClientIpConfig,
    /// Forwarding headers.
    pub forward: ForwardConfig,
    /// Answer 403 when no listed source gave a clean answer.
    pub fail_closed: bool,
}

/// TLS certificates; several are chosen by SNI.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain (the default certificate).
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
    /// More certificates, chosen by the SNI names they carry.
    #[serde(default)]
    pub certificates: Vec<CertConfig>,
    /// Also serve the certificates of the TLS Secrets named by Ingresses
    /// (Kubernetes mode); the listener may then start with none.
    #[serde(default)]
    pub kubernetes: bool,
    /// Kubernetes mode: the certificates of the Gateway listeners this
    /// bind serves, by listener hostname (never from the file).
    #[serde(skip)]
    pub gateway: Vec<HostCerts>,
}

/// The certificates (`certificateRefs`) of the Gateway listeners with one
/// hostname on one bind: offered for a TLS server name this hostname is
/// the bind's most specific match of, and for no other.
#[derive(Clone, Debug)]
pub struct HostCerts {
    /// The listener hostname (exact or `*.` wildcard, lower case);
    /// `None`: any name (and a client that sends none).
    pub hostname: Option<String>,
    /// Its certificates, in `certificateRefs` order.
    pub certs: Vec<CertConfig>,
    /// The hosts (exact or `*.` wildcard, lower case) its routes serve on
    /// this bind, each with the hosts within it the route leaves out
    /// there. For a host-less listener (`hostname` `None`): its
    /// certificates come before an Ingress's for them; for one with a
    /// hostname (filled only when `ingress_hosts` is not empty): they stay
    /// its own even where an Ingress names them ([`crate::tls`]).
    pub routed: Vec<(String, Vec<String>)>,
    /// For a listener with a hostname: the names on this bind the
    /// Ingresses serve that overlap it (either side a wildcard; an
    /// Ingress with a host-less rule serves its TLS hosts): its
    /// certificates are not offered for them, except where its own
    /// routes serve them (`routed`; an exact host an older Ingress keeps
    /// is not among those).
    pub ingress_hosts: Vec<String>,
}

/// One certificate for SNI.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// The PEM chain and key themselves (from a Kubernetes Secret, named
    /// by `cert`), instead of files.
    #[serde(skip)]
    pub pem: Option<std::sync::Arc<(Vec<u8>, Vec<u8>)>>,
    /// An Ingress's Secret (`pem`): the names it may be offered for (its
    /// Ingresses' hosts, exact or `*.` wildcard), see
    /// `realip_kube::ingress::Cert::hosts`.
    #[serde(skip)]
    pub hosts: Vec<String>,
}

/// `[client_ip]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientIpConfig {
    /// Proxies in front of us.
    #[serde(default)]
    pub trusted: Vec<String>,
    /// Sources in order.
    #[serde(default = "default_sources")]
    pub sources: Vec<String>,
    /// Strategy.
    #[serde(default = "default_strategy")]
    pub strategy: String,
}

fn default_sources() -> Vec<String> {
    vec!["proxy-protocol".into(), "xff".into()]
}
fn default_strategy() -> String {
    "rightmost-untrusted".into()
}

impl Default for ClientIpConfig {
    fn default() -> Self {
        ClientIpConfig { trusted: Vec::new(), sources: default_sources(), strategy: default_strategy() }
    }
}

/// `append`, `replace` or `off`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XffMode {
    /// Keep a trusted chain and append the hop that connected to us.
    #[default]
    Append,
    /// Send only the resolved client.
    Replace,
    /// Remove X-Forwarded-For.
    Off,
}

/// `[forward]`: headers the upstream receives.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)]
pub struct ForwardConfig {
    /// X-Forwarded-For handling.
    #[serde(default)]
    pub x_forwarded_for: XffMode,
    /// Send X-Real-IP: the resolved client.
    #[serde(default = "yes")]
    pub x_real_ip: bool,
    /// Send an RFC 7239 `Forwarded` element for this hop.
    #[serde(default)]
    pub forwarded: bool,
    /// Send X-Forwarded-Proto.
    #[serde(default = "yes")]
    pub x_forwarded_proto: bool,
    /// Send X-Forwarded-Host.
    #[serde(default = "yes")]
    pub x_forwarded_host: bool,
    /// Send X-Forwarded-Port.
    #[serde(default = "yes")]
    pub x_forwarded_port: bool,
    /// Client-IP headers of CDNs and other proxies that are removed when
    /// the hop that connected to us is not trusted (they pass from
    /// trusted hops). Default: [`DEFAULT_STRIP_UNTRUSTED`].
    #[serde(default = "default_strip_untrusted")]
    pub strip_untrusted: Vec<String>,
}

/// Vendor client-IP headers an untrusted client must not be able to send
/// on: apps and frameworks read each of them somewhere.
pub const DEFAULT_STRIP_UNTRUSTED: [&str; 15] = [
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "client-ip",
    "x-forwarded",
    "forwarded-for",
    "x-originating-ip",
    "x-remote-ip",
    "x-remote-addr",
    "fly-client-ip",
    "akamai-client-ip",
    "x-azure-clientip",
    "x-appengine-user-ip",
];

fn default_strip_untrusted() -> Vec<String> {
    DEFAULT_STRIP_UNTRUSTED.iter().map(|&s| s.to_owned()).collect()
}

/// `[http]`: how requests are read.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Pass header names holding `_` on (default false, nginx
    /// `underscores_in_headers off`): WSGI/CGI apps read `X_Real_IP` as
    /// `HTTP_X_REAL_IP`, the same variable as `X-Real-IP`.
    #[serde(default)]
    pub underscores_in_headers: bool,
    /// Accept `\` and `%5C` in paths as ordinary characters (default
    /// false: 400, since some servers treat them as `/`).
    #[serde(default)]
    pub allow_backslash: bool,
}

fn yes() -> bool {
    true
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            x_forwarded_for: XffMode::Append,
            x_real_ip: true,
            forwarded: false,
            x_forwarded_proto: true,
            x_forwarded_host: true,
            x_forwarded_port: true,
            strip_untrusted: default_strip_untrusted(),
        }
    }
}

/// One `[[route]]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name in logs and metrics (default: host and prefix, `*` for any
    /// host, e.g. `app.example.com/api`).
    pub name: Option<String>,
    /// Exact host, or `*.example.com`; absent matches any host.
    pub host: Option<String>,
    /// Path prefix (default `/`); the longest match wins.
    #[serde(default = "slash")]
    pub path_prefix: String,
    /// Upstream name.
    pub upstream: String,
    /// Route-level allow list (replaces the global one when set). (Shared
    /// by the Kubernetes routes one policy covers, as `deny`.)
    pub allow: Option<std::sync::Arc<[String]>>,
    /// Route-level deny list (added to the global one).
    #[serde(default)]
    pub deny: std::sync::Arc<[String]>,
    /// Route-level rate limit (replaces the global one when set).
    pub rate: Option<RateConfig>,
    /// Whose bucket `rate` is (never from the file): the Kubernetes
    /// policy or Ingress that set it, shared by every route it applies to
    /// (see `realip_kube::routes::RateLimit::scope`); `None`: the route's
    /// own.
    #[serde(skip)]
    pub rate_scope: Option<String>,
    /// A second limit every request of the route is counted in as well
    /// (never from the file), with its scope: the Gateway
    /// ClientAccessPolicy's, whose bucket the Gateway's routes share, when
    /// the route's own policy set `rate` (see
    /// `realip_kube::routes::Access::gateway_rate_limit`).
    #[serde(skip)]
    pub also_rate: Option<(RateConfig, String)>,
    /// Largest request body in bytes (default: `limits.max_body_bytes`).
    pub max_body_bytes: Option<u64>,
    /// Answer plain-HTTP requests with `308` to `https://` (not when a
    /// trusted proxy says `X-Forwarded-Proto: https`).
    #[serde(default)]
    pub https_redirect: bool,
    /// Set for routes of Gateway API objects (never from the file).
    #[serde(skip)]
    pub gateway: Option<GatewayMatch>,
    /// Gateway API weighted backends (never from the file): upstream
    /// names, `None` for a reference that did not resolve (its share is
    /// answered 500), and weights. When set, `upstream` is the first
    /// resolved one (or empty when none resolved).
    #[serde(skip)]
    pub backends: Vec<(Option<String>, u32)>,
    /// Gateway API filters, in order (never from the file); shared with
    /// the route set's route when the proxy leaves none of it out.
    #[serde(skip)]
    pub filters: std::sync::Arc<[realip_kube::routes::Filter]>,
    /// Gateway API: for each file listener the route is served on, the
    /// Gateway listener port clients reached (a redirect's default port).
    #[serde(skip)]
    pub listener_ports: Vec<(String, u16)>,
    /// Kubernetes Ingress routes (never from the file): the file listeners
    /// they are served on when some have `ingress = false`; empty: every
    /// one.
    #[serde(skip)]
    pub only_listeners: Vec<String>,
}

/// How a Gateway API route matches beyond host and prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayMatch {
    /// File listeners ([`ListenerConfig::name`]) it is served on.
    pub listeners: Vec<String>,
    /// `true`: the path must equal `path_prefix`; `false`: `path_prefix`
    /// matches whole `/`-separated segments (Gateway API `PathPrefix`).
    pub exact: bool,
    /// Method (upper case) the request must have.
    pub method: Option<String>,
    /// Headers (lower-case name, exact value) the request must have.
    /// (Shared with the route set's route and with the other routes of its
    /// HTTPRoute rule's match, as `query`.)
    pub headers: std::sync::Arc<[realip_kube::routes::ValueMatch]>,
    /// Query parameters (name and value, exact, as sent) the request must
    /// have.
    pub query: std::sync::Arc<[realip_kube::routes::ValueMatch]>,
    /// Hosts (exact, or `*.` wildcards; lower case) the route does not
    /// serve: a more specific Gateway listener on the port owns them
    /// (listener isolation).
    pub except_hosts: std::sync::Arc<[String]>,
    /// (file listener, exact host) pairs the route does not serve on that
    /// listener only: an older Ingress keeps the host on the binds that
    /// serve Ingresses, while the route's `ingress = false` binds keep it.
    pub excepted_on: Vec<(String, String)>,
}

impl GatewayMatch {
    /// Whether the route leaves `host` (lower case, no trailing dot) out
    /// on file listener `listener` ([`GatewayMatch::excludes`], or an older
    /// Ingress keeps it there).
    pub fn excludes_on(&self, listener: &str, host: &str) -> bool {
        self.excludes(host) || self.excepted_on.iter().any(|(l, h)| l == listener && h == host)
    }

    /// Whether `host` (lower case, no trailing dot) is one a more specific
    /// listener owns, on every listener of the route.
    pub fn excludes(&self, host: &str) -> bool {
        self.except_hosts.iter().any(|e| match e.strip_prefix('*') {
            Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            None => e == host,
        })
    }

    /// Whether `path` (normalized) matches `pattern` this way.
    pub fn path_matches(&self, pattern: &str, path: &str) -> bool {
        if self.exact {
            return path == pattern;
        }
        let p = pattern.trim_end_matches('/');
        p.is_empty() || path == p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
    }

    /// Whether the request's method meets this match's method condition
    /// (header and query conditions are the route set's to check:
    /// `route::Conditions`).
    pub fn method_matches(&self, method: &http::Method) -> bool {
        self.method.as_deref().is_none_or(|m| m == method.as_str())
    }
}

/// Whether `g` is `NS/NAME` or `NS/*` with DNS-label-like parts (a
/// `[[listener]] gateways` entry).
fn gateway_ref_ok(g: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    g.split_once('/').is_some_and(|(ns, name)| part(ns) && (name == "*" || part(name)))
}

fn slash() -> String {
    "/".into()
}

/// `off`, `v1` or `v2`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocolOut {
    /// Plain connections.
    #[default]
    Off,
    /// Text header.
    V1,
    /// Binary header.
    V2,
}

/// TLS towards an upstream: `off`, `verify` (the system's web PKI roots,
/// `tls_server_name` or the endpoint IP as the name) or `insecure`
/// (encrypted, certificate not checked: nginx's `proxy_ssl_verify off`,
/// what ingress-nginx does for `backend-protocol: HTTPS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTls {
    /// Plain HTTP.
    #[default]
    Off,
    /// TLS, verified against the web PKI roots.
    Verify,
    /// TLS without certificate verification.
    Insecure,
}

/// `round-robin` or `least-requests`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each endpoint in turn.
    #[default]
    RoundRobin,
    /// The endpoint with the fewest requests in flight (ties: in turn).
    LeastRequests,
}

/// One `[[upstream]]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Name routes refer to.
    pub name: String,
    /// `IP:PORT` of each backend.
    pub endpoints: Vec<String>,
    /// PROXY protocol towards the backends.
    #[serde(default)]
    pub proxy_protocol: ProxyProtocolOut,
    /// Balancing.
    #[serde(default)]
    pub balance: Balance,
    /// TCP connect timeout (default 2s).
    pub connect_timeout: Option<Dur>,
    /// Time to the response head, counted from the end of the request
    /// body (default 60s).
    pub response_timeout: Option<Dur>,
    /// Idle pooled connections are closed after this (default 4s: below
    /// the 5 s keep-alive of uvicorn and Node, so we close first).
    pub idle_timeout: Option<Dur>,
    /// Consecutive failures that eject an endpoint (default 3).
    pub max_fails: Option<u32>,
    /// How long an ejected endpoint rests (default 10s).
    pub fail_timeout: Option<Dur>,
    /// TLS towards the backends.
    #[serde(default)]
    pub tls: UpstreamTls,
    /// Name to verify (and send as SNI) with `tls = "verify"`.
    pub tls_server_name: Option<String>,
    /// Made from a Kubernetes Service (`--kubernetes`), not the file: it may
    /// have no endpoints for a while (the route then answers 503).
    #[serde(skip)]
    pub from_kubernetes: bool,
}

impl UpstreamConfig {
    /// An upstream with every option at its default (plain TCP, no PROXY,
    /// default balancing and timeouts).
    pub fn plain(name: String, endpoints: Vec<String>) -> UpstreamConfig {
        UpstreamConfig {
            name,
            endpoints,
            proxy_protocol: ProxyProtocolOut::Off,
            balance: Balance::default(),
            connect_timeout: None,
            response_timeout: None,
            idle_timeout: None,
            max_fails: None,
            fail_timeout: None,
            tls: UpstreamTls::Off,
            tls_server_name: None,
            from_kubernetes: false,
        }
    }
}

/// Token bucket: `per_second` refill, `burst` capacity.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size (default: `per_second`).
    pub burst: Option<f64>,
    /// Per replica (`local`, default) or shared by every replica through
    /// `[rate_limit_store]` (`global`).
    #[serde(default)]
    pub scope: RateScope,
    /// IPv6 keying of this limit, instead of `[policy] ipv6_prefix`
    /// (Gateway API `rateLimit.ipv6PrefixLength`; never from the file).
    #[serde(skip)]
    pub ipv6_prefix: Option<u8>,
}

/// Where a rate limit's state lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateScope {
    /// In this process: each replica has its own buckets.
    #[default]
    Local,
    /// In `[rate_limit_store]`: one limit across every replica.
    Global,
}

/// What a global limit does while its store is unreachable or slow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Fall back to this replica's own buckets (same rate).
    #[default]
    Local,
    /// Let the request through.
    Allow,
    /// Answer 429.
    Deny,
}

/// `[rate_limit_store]`: the Redis (or Valkey) that global limits share.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitStoreConfig {
    /// `redis://[user@]host:port/db` or `rediss://` (TLS).
    pub redis: String,
    /// File holding the password (first line; a Kubernetes Secret mount).
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// PEM CA bundle to verify a `rediss://` server with (default: the
    /// system roots).
    pub ca_file: Option<PathBuf>,
    /// What to do while the store fails (default `local`).
    #[serde(default)]
    pub on_error: OnStoreError,
    /// How long a decision may wait for the store (default 50ms).
    pub timeout: Option<Dur>,
}

/// The default `[rate_limit_store].timeout`.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(50);

impl RateLimitStoreConfig {
    /// The password from `password_file` or `password_env`, if either is
    /// set; an error names the key (`rate_limit_store.password_file: ...`).
    pub fn password(&self) -> Result<Option<String>, String> {
        match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => {
                Err("rate_limit_store.password_file: set password_file or password_env, not both".into())
            }
            (Some(f), None) => std::fs::read_to_string(f)
                .map(|t| Some(t.lines().next().unwrap_or("").to_owned()))
                .map_err(|e| format!("rate_limit_store.password_file: `{}`: {e}", f.display())),
            (None, Some(v)) => std::env::var(v).map(Some).map_err(|_| {
                format!("rate_limit_store.password_env: environment variable `{v}` is not set (or not UTF-8)")
            }),
            (None, None) => Ok(None),
        }
    }
}

/// `[policy]`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// CIDRs allowed; empty allows everyone.
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDRs denied (checked first).
    #[serde(default)]
    pub deny: Vec<String>,
    /// Per-client rate limit.
    pub rate: Option<RateConfig>,
    /// IPv6 clients share a bucket per prefix of this length (default 64).
    pub ipv6_prefix: Option<u8>,
}

/// `json` or `combined`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// nginx `combined` plus realip fields.
    Combined,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Line format.
    #[serde(default)]
    pub format: LogFormat,
    /// File to append to; default stdout.
    pub path: Option<PathBuf>,
    /// Collect lines in a buffer of this many bytes and write it when full
    /// or after `flush_interval` (nginx `access_log ... buffer=`); 0 (the
    /// default) writes every line at once.
    #[serde(default)]
    pub buffer_bytes: usize,
    /// Longest a buffered line waits before it is written (nginx
    /// `flush=`); default 1s. Only with `buffer_bytes`.
    #[serde(default = "d_log_flush")]
    pub flush_interval: Dur,
}

/// The largest access-log buffer accepted (nginx's examples use 32k-64k;
/// more only delays lines).
pub const MAX_LOG_BUFFER_BYTES: usize = 16 << 20;

fn d_log_flush() -> Dur {
    Dur(Duration::from_secs(1))
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::default(), path: None, buffer_bytes: 0, flush_interval: d_log_flush() }
    }
}

/// `[admin]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// `/metrics`, `/healthz`, `/readyz`; never behind PROXY or TLS.
    pub bind: Option<String>,
}

/// `[limits]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request head (request line + headers), bytes (default 65536): 431 beyond.
    #[serde(default = "d_header_bytes")]
    pub max_header_bytes: usize,
    /// Most request headers (default 100): 431 beyond.
    #[serde(default = "d_headers")]
    pub max_headers: usize,
    /// Time to read a request head (default 10s): 408 / close beyond.
    #[serde(default = "d_header_read")]
    pub header_read_timeout: Dur,
    /// Keep-alive idle time before closing (default 60s).
    #[serde(default = "d_idle")]
    pub idle_timeout: Dur,
    /// Concurrent downstream connections (default 10000): 503 beyond.
    #[serde(default = "d_conns")]
    pub max_connections: usize,
    /// Largest request body, bytes (default 10 MiB): 413 beyond.
    #[serde(default = "d_body")]
    pub max_body_bytes: u64,
    /// Longest wait between two reads of a request body (default 60s,
    /// nginx `client_body_timeout`): 408 beyond.
    #[serde(default = "d_body_timeout")]
    pub body_timeout: Dur,
}

fn d_header_bytes() -> usize {
    65536
}
fn d_headers() -> usize {
    100
}
fn d_header_read() -> Dur {
    Dur(Duration::from_secs(10))
}
fn d_idle() -> Dur {
    Dur(Duration::from_secs(60))
}
fn d_conns() -> usize {
    10_000
}
fn d_body() -> u64 {
    10 * 1024 * 1024
}
fn d_body_timeout() -> Dur {
    Dur(Duration::from_secs(60))
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_header_bytes: d_header_bytes(),
            max_headers: d_headers(),
            header_read_timeout: d_header_read(),
            idle_timeout: d_idle(),
            max_connections: d_conns(),
            max_body_bytes: d_body(),
            body_timeout: d_body_timeout(),
        }
    }
}

/// `[lifecycle]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// After SIGTERM, keep serving this long with `/readyz` at 503 (default 5s).
    #[serde(default = "d_drain_delay")]
    pub drain_delay: Dur,
    /// Then wait this long for in-flight requests (default 30s).
    #[serde(default = "d_drain_timeout")]
    pub drain_timeout: Dur,
    /// Poll the config file for changes this often; `"0s"` disables (default 2s).
    #[serde(default = "d_watch")]
    pub watch_interval: Dur,
}

fn d_drain_delay() -> Dur {
    Dur(Duration::from_secs(5))
}
fn d_drain_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn d_watch() -> Dur {
    Dur(Duration::from_secs(2))
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig { drain_delay: d_drain_delay(), drain_timeout: d_drain_timeout(), watch_interval: d_watch() }
    }
}

impl Config {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Config, Error> {
        toml::from_str(text).map_err(|e| Error::Config(vec![e.to_string().trim().to_owned()]))
    }

    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Config, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Config(vec![format!("{}: {e}", path.display())]))?;
        Config::parse(&text)
    }

    /// Every problem, each naming its key; empty when the config is usable.
    pub fn validate(&self) -> Vec<String> {
        self.validate_with(&|_| false)
    }

    /// [`Config::validate`], leaving out the checks of one route on its
    /// own ([`route_errors`]) for the routes `checked` says passed them
    /// with the same upstream names and path rules: a reload does not
    /// check again the 10,000 routes it kept.
    #[allow(clippy::too_many_lines)] // one flat list of checks, in file order
    pub(crate) fn validate_with(&self, checked: &dyn Fn(&std::sync::Arc<RouteConfig>) -> bool) -> Vec<String> {
        let mut errs = Vec::new();
        let mut push = |key: String, msg: String| errs.push(format!("{key}: {msg}"));
        let cidrs = |list: &[String]| TrustedProxies::parse(list).err().map(|e| e.to_string());

        if self.listeners.is_empty() {
            push("listener".into(), "at least one [[listener]] is required".into());
        }
        let upstreams: foldhash::HashSet<&str> = self.upstreams.iter().map(|u| u.name.as_str()).collect();
        let mut names = HashSet::new();
        let mut binds = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let key = format!("listener[{i}] `{}`", l.name);
            if !names.insert(l.name.as_str()) {
                push(key.clone(), "name is used twice".into());
            }
            match l.bind.parse::<SocketAddr>() {
                Ok(a) if a.port() != 0 && !binds.insert(a) => {
                    push(format!("{key}.bind"), format!("`{a}` is used twice"));
                }
                Ok(_) => {}
                Err(_) => push(format!("{key}.bind"), format!("`{}` is not IP:PORT", l.bind)),
            }
            if let Some(e) = cidrs(&l.proxy_protocol_from) {
                push(format!("{key}.proxy_protocol_from"), e);
            }
            if l.proxy_protocol != ProxyProtocolIn::Off && l.proxy_protocol_from.is_empty() {
                push(
                    format!("{key}.proxy_protocol_from"),
                    "is empty, so no PROXY header could ever be accepted".into(),
                );
            }
            match (l.mode, &l.upstream) {
                (ListenerMode::Tcp, None) => push(format!("{key}.upstream"), "tcp mode needs an upstream".into()),
                (ListenerMode::Tcp, Some(u)) if !upstreams.contains(u.as_str()) => {
                    push(format!("{key}.upstream"), format!("no [[upstream]] named `{u}`"));
                }
                (ListenerMode::Http, Some(_)) => {
                    push(format!("{key}.upstream"), "only tcp listeners name an upstream; http uses [[route]]".into());
                }
                _ => {}
            }
            for (j, g) in l.gateways.iter().enumerate() {
                if !gateway_ref_ok(g) {
                    push(
                        format!("{key}.gateways[{j}]"),
                        format!("`{}` is not NAMESPACE/NAME or NAMESPACE/* (a Gateway)", g.escape_debug()),
                    );
                }
            }
            if let Some(c) = &l.chain {
                let key = format!("{key}.chain (ClientIPPolicy {})", c.policy);
                if let Some(e) = cidrs(&c.client_ip.trusted) {
                    push(format!("{key}.trustedProxies"), e);
                }
                if let Err(e) = Sources::parse(&c.client_ip.sources) {
                    push(format!("{key}.sources"), e.to_string());
                }
                if let Err(e) = c.client_ip.strategy.parse::<Strategy>() {
                    push(format!("{key}.strategy"), e.to_string());
                }
                if let Err(e) = crate::forward::ForwardRules::new(&c.forward) {
                    push(key.clone(), e);
                }
            }
            if let Some(tls) = &l.tls {
                if l.mode == ListenerMode::Tcp {
                    push(format!("{key}.tls"), "tcp listeners pass bytes through; TLS is for http listeners".into());
                }
                if tls.cert.is_some() != tls.key.is_some() {
                    push(format!("{key}.tls"), "cert and key go together".into());
                }
                if tls.cert.is_none() && tls.certificates.is_empty() && !tls.kubernetes {
                    push(
                        format!("{key}.tls"),
                        "no certificate (or `kubernetes = true` for Ingress TLS Secrets)".into(),
                    );
                }
            }
        }
        if let Some(e) = cidrs(&self.client_ip.trusted) {
            push("client_ip.trusted".into(), e);
        }
        if let Err(e) = Sources::parse(&self.client_ip.sources) {
            push("client_ip.sources".into(), e.to_string());
        }
        if let Err(e) = self.client_ip.strategy.parse::<Strategy>() {
            push("client_ip.strategy".into(), e.to_string());
        }
        let mut unames = HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let key = format!("upstream[{i}] `{}`", u.name);
            if !unames.insert(u.name.as_str()) {
                push(key.clone(), "name is used twice".into());
            }
            for (what, msg) in upstream_errors(u) {
                push(format!("{key}{what}"), msg);
            }
        }
        let mut seen_routes: foldhash::HashMap<(String, &str), usize> = foldhash::HashMap::default();
        let mut route_names: foldhash::HashMap<std::borrow::Cow<'_, str>, usize> = foldhash::HashMap::default();
        route_names.reserve(self.routes.len());
        let mut lists_checked = HashMap::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = || format!("route[{i}]");
            if !checked(r) {
                for (what, msg) in route_errors(r, &upstreams, self.http.allow_backslash, &mut lists_checked) {
                    push(format!("{}{what}", key()), msg);
                }
            }
            // Gateway routes sharing host and prefix differ in their other
            // matches and are ordered by precedence: no conflict.
            let conflict = if r.gateway.is_none() {
                let host_key =
                    r.host.as_deref().map_or_else(String::new, |h| h.trim_end_matches('.').to_ascii_lowercase());
                seen_routes.insert((host_key, r.path_prefix.as_str()), i)
            } else {
                None
            };
            if let Some(j) = conflict {
                push(
                    key(),
                    format!(
                        "same host and path_prefix as route[{j}] ({} {}): one of them would never be used",
                        r.host.as_deref().unwrap_or("any host"),
                        r.path_prefix
                    ),
                );
            }
            let name = match &r.name {
                Some(n) => std::borrow::Cow::Borrowed(n.as_str()),
                None => std::borrow::Cow::Owned(route_name(r)),
            };
            if let Some(j) = route_names.get(&name) {
                push(format!("{}.name", key()), format!("`{name}` is also the name of route[{j}]"));
            } else {
                route_names.insert(name, i);
            }
        }
        if let Some(e) = cidrs(&self.policy.allow) {
            push("policy.allow".into(), e);
        }
        if let Some(e) = cidrs(&self.policy.deny) {
            push("policy.deny".into(), e);
        }
        if let Some(rate) = &self.policy.rate {
            check_rate("policy.rate", rate, &mut push);
        }
        let global = |r: &Option<RateConfig>| r.is_some_and(|r| r.scope == RateScope::Global);
        if self.rate_limit_store.is_none() {
            if global(&self.policy.rate) {
                push(
                    "policy.rate.scope".into(),
                    "is \"global\" but there is no [rate_limit_store] (set rate_limit_store.redis)".into(),
                );
            }
            for (i, r) in self.routes.iter().enumerate() {
                if global(&r.rate) || global(&r.also_rate.as_ref().map(|(rate, _)| *rate)) {
                    push(
                        format!("route[{i}].rate.scope"),
                        "is \"global\" but there is no [rate_limit_store] (set rate_limit_store.redis)".into(),
                    );
                }
            }
        }
        if let Some(store) = &self.rate_limit_store {
            check_store(store, &mut push);
        }
        if self.policy.ipv6_prefix.is_some_and(|p| p > 128) {
            push("policy.ipv6_prefix".into(), "must be at most 128".into());
        }
        if let Some(b) = &self.admin.bind {
            if b.parse::<SocketAddr>().is_err() {
                push("admin.bind".into(), format!("`{b}` is not IP:PORT"));
            }
        }
        if self.limits.max_headers == 0 {
            push("limits.max_headers".into(), "must be > 0".into());
        }
        for (name, d) in [
            ("header_read_timeout", self.limits.header_read_timeout),
            ("idle_timeout", self.limits.idle_timeout),
            ("body_timeout", self.limits.body_timeout),
        ] {
            if d.0.is_zero() {
                push(format!("limits.{name}"), "must be longer than 0s".into());
            }
        }
        if self.limits.max_header_bytes > MAX_HEADER_BYTES {
            push("limits.max_header_bytes".into(), format!("must be at most {MAX_HEADER_BYTES}"));
        }
        if self.log.buffer_bytes > 0 && self.log.flush_interval.0.is_zero() {
            push("log.flush_interval".into(), "must be longer than 0s when log.buffer_bytes is set".into());
        }
        if self.log.buffer_bytes > MAX_LOG_BUFFER_BYTES {
            push("log.buffer_bytes".into(), format!("must be at most {MAX_LOG_BUFFER_BYTES}"));
        }
        if let Some(dir) = self.log.path.as_deref().and_then(std::path::Path::parent) {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                push("log.path".into(), format!("directory {} does not exist", dir.display()));
            }
        }
        if self.limits.max_header_bytes < MIN_HEADER_BYTES {
            push(
                "limits.max_header_bytes".into(),
                format!("must be at least {MIN_HEADER_BYTES} (the smallest request-head buffer hyper can enforce)"),
            );
        }
        if let Err(e) = crate::forward::ForwardRules::new(&self.forward) {
            let (key, msg) = e.split_once(": ").unwrap_or(("forward", &e));
            push(key.to_owned(), msg.to_owned());
        }
        if self.limits.max_connections == 0 {
            push("limits.max_connections".into(), "must be > 0".into());
        }
        errs
    }
}

/// Warnings that do not stop the configuration from loading but leave
/// it open: printed by `--check` and logged on start and reload.
impl Config {
    /// Every warning, each naming its key.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        let everyone = |list: &[String]| TrustedProxies::parse(list).is_ok_and(|t| t.covers_all_of_a_family());
        if everyone(&self.client_ip.trusted) {
            w.push(
                "client_ip.trusted: trusts every address of a family (0.0.0.0/0 or ::/0, in one or several \
                 entries): any client can forge its IP with X-Forwarded-For; list only your load balancers \
                 and proxies"
                    .to_owned(),
            );
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.proxy_protocol != ProxyProtocolIn::Off && everyone(&l.proxy_protocol_from) {
                w.push(format!(
                    "listener[{i}] `{}`.proxy_protocol_from: accepts PROXY headers from every address: any client \
                     can forge its IP; list only your load balancers",
                    l.name
                ));
            }
        }
        w
    }
}

/// The name of a route in logs and metrics.
pub fn route_name(r: &RouteConfig) -> String {
    match &r.name {
        Some(n) => n.clone(),
        None => format!("{}{}", r.host.as_deref().unwrap_or("*"), r.path_prefix),
    }
}

/// hyper's smallest HTTP/1.1 read buffer: a request-head limit below it
/// could not be enforced exactly.
pub const MIN_HEADER_BYTES: usize = 8192;

/// The largest request head allowed.
pub const MAX_HEADER_BYTES: usize = 16 * 1024 * 1024;

/// The checks [`Config::validate`] makes of one upstream on its own (not
/// the uniqueness of its name), as `(key suffix, message)`: also made of
/// the pools an endpoint change replaces without a full validation.
pub(crate) fn upstream_errors(u: &UpstreamConfig) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut push = |key: String, msg: String| errs.push((key, msg));
    if u.endpoints.is_empty() && !u.from_kubernetes {
        push(".endpoints".into(), "is empty".into());
    }
    for e in &u.endpoints {
        match e.parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => {
                push(".endpoints".into(), format!("`{e}`: port 0 cannot be connected to"));
            }
            Ok(_) => {}
            Err(_) => push(".endpoints".into(), format!("`{e}` is not IP:PORT")),
        }
    }
    if u.max_fails == Some(0) {
        push(".max_fails".into(), "must be at least 1".into());
    }
    for (name, d) in [
        ("connect_timeout", u.connect_timeout),
        ("response_timeout", u.response_timeout),
        ("idle_timeout", u.idle_timeout),
        ("fail_timeout", u.fail_timeout),
    ] {
        if d.is_some_and(|d| d.0.is_zero()) {
            push(format!(".{name}"), "must be longer than 0s".into());
        }
    }
    if let Some(name) = &u.tls_server_name {
        if u.tls == UpstreamTls::Off {
            push(".tls_server_name".into(), "is set but `tls` is off".into());
        }
        if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
            push(".tls_server_name".into(), format!("`{name}` is not a DNS name or IP address"));
        }
    }
    errs
}

/// The checks of one route on its own (upstream names, path, host, lists,
/// rate): `(field, message)` pairs, the field starting with `.`. The
/// Kubernetes composition runs them per route, so a route the proxy cannot
/// serve is left out and reported instead of failing the whole
/// configuration (and with it every other route). Each allow or deny
/// list is checked once: `checked` holds what a list (by its address and
/// length) gave, for the routes that share it (the Kubernetes routes one
/// access policy covers); the lists must be held while `checked` is used.
pub(crate) fn route_errors<S: std::hash::BuildHasher>(
    r: &RouteConfig,
    upstreams: &HashSet<&str, S>,
    allow_backslash: bool,
    checked: &mut HashMap<(usize, usize), Option<String>>,
) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    let mut push = |key: String, msg: String| errs.push((key, msg));
    let mut cidrs = |list: &std::sync::Arc<[String]>| {
        let at = (std::sync::Arc::as_ptr(list).cast::<()>().addr(), list.len());
        checked.entry(at).or_insert_with(|| TrustedProxies::parse(&list[..]).err().map(|e| e.to_string())).clone()
    };
    // A Gateway route whose backends all failed to resolve (or that
    // only redirects), or a Kubernetes route that answers 500 in the place
    // of one that must fail closed (`backends` is never from the file),
    // names no upstream: it answers by itself.
    let answers_itself = (r.gateway.is_some() || !r.backends.is_empty()) && r.upstream.is_empty();
    if !answers_itself && !upstreams.contains(r.upstream.as_str()) {
        push(".upstream".into(), format!("no [[upstream]] named `{}`", r.upstream));
    }
    for (b, _) in &r.backends {
        if let Some(b) = b.as_deref().filter(|b| !upstreams.contains(b)) {
            push(".backends".into(), format!("no [[upstream]] named `{b}`"));
        }
    }
    match crate::path::normalize(&r.path_prefix, allow_backslash) {
        Ok(n) if n == r.path_prefix.as_str() => {}
        Ok(n) => push(
            ".path_prefix".into(),
            format!("`{}` would never match: request paths are normalized first (write `{n}`)", r.path_prefix),
        ),
        Err(crate::path::PathError::NotAbsolute) => {
            push(".path_prefix".into(), format!("`{}` must start with /", r.path_prefix));
        }
        Err(e) => push(".path_prefix".into(), format!("`{}`: {e}", r.path_prefix)),
    }
    if let Some(h) = &r.host {
        let bare = h.strip_prefix("*.").unwrap_or(h);
        let bare = bare.strip_suffix('.').unwrap_or(bare);
        if bare.is_empty() || bare.contains(['*', '/', ' ', ':']) || bare.split('.').any(str::is_empty) {
            push(".host".into(), format!("`{h}` is not a host name or `*.domain` wildcard"));
        }
    }
    if let Some(e) = r.allow.as_ref().and_then(&mut cidrs) {
        push(".allow".into(), e);
    }
    if let Some(e) = cidrs(&r.deny) {
        push(".deny".into(), e);
    }
    if let Some(rate) = &r.rate {
        check_rate(".rate", rate, &mut push);
    }
    if let Some((rate, _)) = &r.also_rate {
        check_rate(".rate", rate, &mut push);
    }
    errs
}

fn check_rate(key: &str, rate: &RateConfig, push: &mut impl FnMut(String, String)) {
    if !(rate.per_second.is_finite() && rate.per_second > 0.0) {
        push(format!("{key}.per_second"), "must be a positive number".into());
    }
    if rate.burst.is_some_and(|b| !(b.is_finite() && b >= 1.0)) {
        push(format!("{key}.burst"), "must be at least 1".into());
    }
}

/// `url` with the password of its userinfo (or a lone userinfo) shown as
/// `***`, for error messages and logs.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    let user = rest[..at].split_once(':').map_or("", |(u, _)| u);
    format!("{scheme}://{user}:***{}", &rest[at..])
}

fn check_store(store: &RateLimitStoreConfig, push: &mut impl FnMut(String, String)) {
    let shown = redact_url(store.redis.trim());
    let url = store.redis.trim();
    let tls = url.starts_with("rediss://");
    if !(tls || url.starts_with("redis://")) {
        push(
            "rate_limit_store.redis".into(),
            format!("`{shown}` is not a redis:// or rediss:// URL (e.g. \"redis://127.0.0.1:6379/0\")"),
        );
    } else if let Err(e) = url.parse::<redis::ConnectionInfo>() {
        push("rate_limit_store.redis".into(), format!("`{shown}`: {e}"));
    } else if url.contains('#') {
        push("rate_limit_store.redis".into(), "no `#fragment` (use ca_file to trust a private CA)".into());
    }
    if let Err(e) = store.password() {
        let (key, msg) = e.split_once(": ").unwrap_or(("rate_limit_store", &e));
        push(key.to_owned(), msg.to_owned());
    }
    if let Some(ca) = &store.ca_file {
        if !tls {
            push("rate_limit_store.ca_file".into(), "is set but the URL is not rediss:// (TLS)".into());
        }
        if let Err(e) = std::fs::read(ca) {
            push("rate_limit_store.ca_file".into(), format!("`{}`: {e}", ca.display()));
        }
    }
    if let Some(t) = store.timeout {
        if t.0.is_zero() || t.0 > Duration::from_secs(5) {
            push(
                "rate_limit_store.timeout".into(),
                "must be more than 0 and at most 5s (every request with a global limit may wait this long)".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_url_errors_never_show_the_password() {
        assert_eq!(super::redact_url("redis://:TopSecret@127.0.0.1:6379/x"), "redis://:***@127.0.0.1:6379/x");
        assert_eq!(super::redact_url("rediss://app:pw@h/0"), "rediss://app:***@h/0");
        assert_eq!(super::redact_url("redis://127.0.0.1/0"), "redis://127.0.0.1/0");
        let cfg: super::Config = toml::from_str(
            "[[listener]]\nname = \"w\"\nbind = \"127.0.0.1:0\"\n[rate_limit_store]\nredis = \"redis://:TopSecret@127.0.0.1:6379/x\"\n",
        )
        .unwrap();
        let errors = format!("{:?}", cfg.validate());
        assert!(errors.contains("rate_limit_store.redis") && !errors.contains("TopSecret"), "{errors}");
    }

    use super::*;

    const GOOD: &str = r#"
[[listener]]
name = "web"
bind = "127.0.0.1:8080"
proxy_protocol = "optional"
proxy_protocol_from = ["10.0.0.0/8"]
header_timeout = "5s"

[client_ip]
trusted = ["10.0.0.0/8"]
sources = ["proxy-protocol", "xff"]

[[route]]
host = "*.example.com"
upstream = "app"

[[upstream]]
name = "app"
endpoints = ["127.0.0.1:9000"]

[policy]
deny = ["192.0.2.0/24"]
rate = { per_second = 100, burst = 200 }
"#;

    #[test]
    fn design_example_is_valid() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.validate(), Vec::<String>::new());
        assert_eq!(c.forward.x_forwarded_for, XffMode::Append);
        assert_eq!(c.listeners[0].header_timeout, Some(Dur(Duration::from_secs(5))));
    }

    #[test]
    fn every_error_names_its_key() {
        let bad = GOOD
            .replace("\"10.0.0.0/8\"]\nheader", "\"10.0.0.0/33\"]\nheader")
            .replace("upstream = \"app\"", "upstream = \"nope\"")
            .replace("per_second = 100", "per_second = -1");
        let errs = Config::parse(&bad).unwrap().validate();
        let all = errs.join("\n");
        for needle in [
            "listener[0] `web`.proxy_protocol_from: `10.0.0.0/33` is not a CIDR",
            "route[0].upstream: no [[upstream]] named `nope`",
            "policy.rate.per_second: must be a positive number",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_durations_are_rejected() {
        let e = Config::parse(&GOOD.replace("header_timeout = \"5s\"", "header_timeout = \"5 seconds\"")).unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
        let e = Config::parse(&format!("{GOOD}\n[admin]\nbindd = \"x\"\n")).unwrap_err();
        assert!(e.to_string().contains("bindd"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err() && parse_duration("s").is_err() && parse_duration("-1s").is_err());
    }
}
