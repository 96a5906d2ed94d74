//! The ingress-nginx installation in the input: the controller workload
//! (its `--configmap`, `--ingress-class`, `--controller-class`,
//! `--ingress-class-by-name`, `--watch-ingress-without-class`,
//! `--annotations-prefix`, `--publish-service`, `--enable-ssl-passthrough`,
//! `--http-port`, `--https-port`, `--ssl-passthrough-proxy-port`), its
//! ConfigMap and its Service, and what the ConfigMap says about the client
//! address.
//!
//! ingress-nginx's model (nginx.tmpl): the real-IP module is on when
//! `use-forwarded-headers`, `enable-real-ip` or `use-proxy-protocol` is;
//! `real_ip_header` is `proxy_protocol` when PROXY is on, else
//! `forwarded-for-header`; `set_real_ip_from` is every CIDR of
//! `proxy-real-ip-cidr` (default `0.0.0.0/0`: everyone); `real_ip_recursive
//! on`. Invariant: every key of the ConfigMap gets a report entry, and the
//! defaults that decide who the client is get one too.

use realip_doctor::model::{argv, bool_flag, containers, flag, pod_labels, selected_by};
use realip_kube::{Node, Object};

use crate::report::{Entry, Report, Status};
use crate::Error;

/// ConfigMap keys that restrict every server of the controller (defaults
/// for `whitelist-source-range` / `denylist-source-range`, the global
/// `block-cidrs`, `block-user-agents`, `block-referers`, and the global
/// external authentication `global-auth-url`, which an Ingress can opt out
/// of with `enable-global-auth: "false"`).
pub const GLOBAL_ACCESS_KEYS: [&str; 6] = [
    "whitelist-source-range",
    "denylist-source-range",
    "block-cidrs",
    "block-user-agents",
    "block-referers",
    "global-auth-url",
];

/// Whether the ConfigMap turns ModSecurity on for every location
/// (`enable-modsecurity`, decoded by mapstructure's weak typing:
/// `strconv.ParseBool`, an empty string false). A value ParseBool rejects
/// counts as on: the safe reading.
pub fn modsecurity_on(setup: &Setup<'_>) -> bool {
    setup
        .configmap
        .and_then(|c| c.doc.str_at(&["data", "enable-modsecurity"]))
        .is_some_and(|v| cm_bool_value(v) != Some(false))
}

/// A boolean ConfigMap value as ingress-nginx decodes it (mapstructure,
/// weakly typed: Go's ParseBool on the raw value, and an empty string is
/// false); `None` for anything else, which keeps the key's default (review
/// 29 M1: `use-forwarded-headers: ""` is off, not the default).
pub fn cm_bool_value(v: &str) -> Option<bool> {
    if v.is_empty() {
        Some(false)
    } else {
        crate::ingress::go_bool(v)
    }
}

/// ConfigMap snippets that land in every server or location (an access
/// directive there restricts every Ingress).
pub const GLOBAL_SNIPPET_KEYS: [&str; 3] = ["http-snippet", "server-snippet", "location-snippet"];

/// The controller and its objects.
#[derive(Debug, Default)]
pub struct Setup<'a> {
    /// The Deployment or DaemonSet running `/nginx-ingress-controller`.
    pub controller: Option<&'a Object>,
    /// Its ConfigMap.
    pub configmap: Option<&'a Object>,
    /// Its Service (the load balancer's target).
    pub service: Option<&'a Object>,
    /// Its other LoadBalancer or NodePort Services (selecting its pods:
    /// the chart's `controller.service.internal`, a hand-made one).
    pub other_services: Vec<&'a Object>,
    /// Its pods use the node's network (`hostNetwork: true`): clients
    /// reach nginx on the node without a Service.
    pub host_network: bool,
    /// `--ingress-class` (default `nginx`).
    pub ingress_class: String,
    /// `--controller-class` (default `k8s.io/ingress-nginx`).
    pub controller_class: String,
    /// `--watch-ingress-without-class`.
    pub without_class: bool,
    /// `--ingress-class-by-name`: an IngressClass named `--ingress-class`
    /// is the controller's whatever its `spec.controller`.
    pub class_by_name: bool,
    /// `--annotations-prefix` (default `nginx.ingress.kubernetes.io`).
    pub prefix: String,
    /// `--watch-namespace` (after `$(POD_NAMESPACE)` expansion): ONE
    /// namespace, taken as written (ingress-nginx hands it unchanged to its
    /// informers, so `a,b` is a namespace that cannot exist); `None` (flag
    /// absent or empty) means every namespace.
    pub watch_namespace: Option<String>,
    /// `--watch-namespace-selector`, a label selector on Namespaces.
    pub watch_namespace_selector: Option<String>,
    /// `--disable-catch-all`: ingress-nginx ignores every Ingress with
    /// `spec.defaultBackend`, its rules included.
    pub disable_catch_all: bool,
    /// `--enable-ssl-passthrough`: the controller itself listens on 443 and
    /// hands every TLS connection it does not pass through to nginx on
    /// 127.0.0.1:442 with a PROXY header naming its own peer.
    pub ssl_passthrough: bool,
    /// `--http-port`, `--https-port` and `--ssl-passthrough-proxy-port` as
    /// written (`None`: the flag is absent; defaults 80, 443 and 442).
    pub port_flags: [Option<String>; 3],
}

impl Setup<'_> {
    /// The ports nginx's generated servers listen on (template.go
    /// `httpListener`: `--http-port`; `httpsListener`: `--https-port`, or
    /// `--ssl-passthrough-proxy-port` with `--enable-ssl-passthrough`, when
    /// the controller holds `--https-port` itself: a server of nginx there
    /// cannot bind, so it counts too), or `None` when a flag is not a port
    /// (then any port may be theirs).
    pub fn nginx_ports(&self) -> Option<Vec<u16>> {
        let port = |i: usize, default: u16| match &self.port_flags[i] {
            None => Some(default),
            Some(v) => v.trim().parse::<u16>().ok(),
        };
        let mut out = vec![port(0, 80)?, port(1, 443)?];
        if self.ssl_passthrough {
            out.push(port(2, 442)?);
        }
        Some(out)
    }
}

/// The controller's version from the image tag (`…/controller:v1.15.1`,
/// maybe `@sha256:…`) of the container whose flags are read
/// ([`controller_container`]): `(major, minor)`, `None` when not readable.
/// The image must be ingress-nginx's under any registry or mirror: named
/// `controller` or `controller-chroot` (the Helm chart's
/// `controller.image.chroot`), or a name containing `ingress-nginx`
/// (`mirror.example/ingress-nginx-controller`). Another container's image
/// (a sidecar's `…/controller:v2.3`) says nothing about ingress-nginx.
pub fn controller_version(setup: &Setup<'_>) -> Option<(u32, u32)> {
    let mut parts = controller_tag(setup)?;
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// [`controller_version`] with the patch release: `(major, minor, patch)`,
/// `None` when the tag has no readable patch (`v1.12`).
pub fn controller_release(setup: &Setup<'_>) -> Option<(u32, u32, u32)> {
    let mut parts = controller_tag(setup)?;
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    // `1-beta.0`, `1` alike: the digits before any suffix.
    let patch = parts.next()?;
    let digits = patch.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((major, minor, digits.parse().ok()?))
}

/// The dot-separated parts of the controller image's tag, `v` stripped.
fn controller_tag<'s>(setup: &Setup<'s>) -> Option<std::str::Split<'s, char>> {
    let image = controller_container(setup.controller?)?.str_at(&["image"])?;
    let image = image.split('@').next()?;
    let (name, tag) = image.rsplit_once(':')?;
    let last = name.rsplit('/').next().unwrap_or(name);
    let ours = matches!(last, "controller" | "controller-chroot") || name.contains("ingress-nginx");
    if !ours || tag.contains('/') {
        return None;
    }
    Some(tag.strip_prefix('v').unwrap_or(tag).split('.'))
}

/// Whether ingress-nginx's admission webhook runs `nginx -t` on the
/// configuration an Ingress would make (`testTemplate` in `CheckIngress`),
/// so that an Ingress nginx refuses is refused at apply time: before
/// v1.11.5 and v1.12.1, whose fix for CVE-2025-1974 turned the test off
/// (v1.13 and later never test). `None` when the release is not known.
pub fn webhook_tests_nginx(setup: &Setup<'_>) -> Option<bool> {
    let (major, minor, patch) = controller_release(setup)?;
    Some(match (major, minor) {
        (0, _) => true,
        (1, m) if m < 11 => true,
        (1, 11) => patch < 5,
        (1, 12) => patch < 1,
        _ => false,
    })
}

/// The ingress-nginx container of the controller `o`: the one that runs
/// `/nginx-ingress-controller`, else the first.
fn controller_container(o: &Object) -> Option<&realip_kube::Node> {
    let c = containers(o).iter().find(|c| argv(c).iter().any(|a| a.ends_with("/nginx-ingress-controller")));
    c.or_else(|| containers(o).first())
}

/// Why ingress-nginx drops every snippet annotation (`*-snippet`), or
/// `None` when it applies them or that is not known (then they count).
pub fn snippet_annotations_dropped(setup: &Setup<'_>) -> Option<String> {
    let set = setup.configmap.and_then(|c| c.doc.str_at(&["data", "allow-snippet-annotations"]));
    match set.and_then(cm_bool_value) {
        Some(true) => None,
        Some(false) => Some("the ConfigMap sets allow-snippet-annotations to false".into()),
        None => {
            let (major, minor) = controller_version(setup)?;
            ((major, minor) >= (1, 9)).then(|| format!("allow-snippet-annotations is not true and its default is false since ingress-nginx v1.9 (the controller runs v{major}.{minor})"))
        }
    }
}

/// Whether ingress-nginx's validating admission webhook checks Ingresses
/// at apply time, as far as the input shows, in words. On: the controller
/// runs `--validating-webhook` (the Helm chart's default
/// `controller.admissionWebhooks.enabled: true`) and a
/// ValidatingWebhookConfiguration in the input sends Ingress CREATE/UPDATE
/// to a Service in the controller's namespace. The webhook runs the
/// store's deep inspection and annotation extraction, the word blocklist
/// with its words trimmed, and checks of its own (snippet annotations when
/// they are not allowed, `strict-validate-path-type`, the default prefix
/// under another `--annotations-prefix`: lib.rs's `webhook_refusal`), so it
/// refuses at apply time every Ingress the store refuses, and more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// On: what shows it.
    On(String),
    /// Off: what shows it.
    Off(String),
    /// Not shown by the input: why.
    Unknown(String),
}

/// [`Webhook`] of the controller in `setup`, from `objects`.
pub fn admission_webhook(objects: &[Object], setup: &Setup<'_>) -> Webhook {
    let Some(ctl) = setup.controller else {
        return Webhook::Unknown("no ingress-nginx controller is in the input".into());
    };
    let args = controller_args(ctl);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(addr) = flag(&args, "--validating-webhook").filter(|v| !v.is_empty()) else {
        return Webhook::Off(format!(
            "controller {} runs without --validating-webhook, so no admission webhook of ingress-nginx checks Ingresses",
            ctl.id()
        ));
    };
    let listed = |n: Option<&realip_kube::Node>, want: &str| {
        n.map(realip_kube::Node::items)
            .unwrap_or_default()
            .iter()
            .any(|v| v.as_str().is_some_and(|v| v == want || v == "*" || v == "*/*"))
    };
    // The last copy of each configuration wins.
    let mut vwcs: Vec<&Object> = objects.iter().rev().filter(|o| o.kind == "ValidatingWebhookConfiguration").collect();
    vwcs.sort_by_key(|o| o.name.clone());
    vwcs.dedup_by_key(|o| o.name.clone());
    for vwc in vwcs {
        for hook in vwc.doc.at(&["webhooks"]).map(realip_kube::Node::items).unwrap_or_default() {
            let to_controller =
                hook.str_at(&["clientConfig", "service", "namespace"]).is_some_and(|ns| ns == ctl.namespace);
            let ingresses = hook.at(&["rules"]).map(realip_kube::Node::items).unwrap_or_default().iter().any(|r| {
                listed(r.at(&["resources"]), "ingresses")
                    && (listed(r.at(&["operations"]), "CREATE") || listed(r.at(&["operations"]), "UPDATE"))
            });
            if !(to_controller && ingresses) {
                continue;
            }
            let policy = hook.str_at(&["failurePolicy"]).unwrap_or("Fail");
            let ignore = if policy == "Ignore" {
                "; its failurePolicy is Ignore, so an Ingress applied while the webhook did not answer was admitted unchecked"
            } else {
                ""
            };
            return Webhook::On(format!(
                "ValidatingWebhookConfiguration {} (webhook {}, failurePolicy {policy}) sends Ingresses to the controller, which runs --validating-webhook={addr}{ignore}",
                vwc.name,
                hook.str_at(&["name"]).unwrap_or_default()
            ));
        }
    }
    Webhook::Unknown(format!(
        "controller {} runs --validating-webhook={addr}, but no ValidatingWebhookConfiguration sending it Ingresses is in the input (add it: kubectl get validatingwebhookconfiguration -o yaml)",
        ctl.id()
    ))
}

fn is_controller(o: &Object) -> bool {
    matches!(o.kind.as_str(), "Deployment" | "DaemonSet")
        && containers(o).iter().any(|c| {
            argv(c).iter().any(|a| a.ends_with("/nginx-ingress-controller"))
                || c.str_at(&["image"]).is_some_and(|i| i.contains("ingress-nginx/controller"))
        })
}

/// The controller container's arguments, `$(POD_NAMESPACE)` filled in.
pub fn controller_args(o: &Object) -> Vec<String> {
    let c = controller_container(o);
    // $(POD_NAMESPACE) is the controller's own namespace (downward API).
    c.map(|c| argv(c).iter().map(|a| a.replace("$(POD_NAMESPACE)", &o.namespace)).collect()).unwrap_or_default()
}

/// `--watch-namespace` and `--watch-namespace-selector` of the controller
/// `ctl` into `s`; both set is an error (ingress-nginx does not start).
fn watch_flags(s: &mut Setup<'_>, args: &[&str], ctl: &Object, report: &mut Report) -> Result<(), Error> {
    // One namespace, not split (flags.go passes it to the informers as is); empty means all.
    s.watch_namespace = flag(args, "--watch-namespace").filter(|v| !v.is_empty()).map(str::to_owned);
    s.watch_namespace_selector =
        flag(args, "--watch-namespace-selector").filter(|v| !v.trim().is_empty()).map(str::to_owned);
    if let (Some(ns), Some(sel)) = (&s.watch_namespace, &s.watch_namespace_selector) {
        // flags.go: "flags --watch-namespace and --watch-namespace-selector are mutually exclusive".
        return Err(Error::ControllerFlags(format!(
            "controller {}: --watch-namespace={ns} and --watch-namespace-selector={sel} are both set, and ingress-nginx refuses to start with both (they are mutually exclusive), so it serves nothing; keep one",
            ctl.id()
        )));
    }
    if let Some(ns) = s.watch_namespace.as_deref().filter(|ns| !crate::dns_label(ns)) {
        report.entries.push(Entry {
            object: ctl.id(),
            file: ctl.source.file.clone(),
            line: ctl.source.line,
            key: "--watch-namespace".into(),
            value: ns.to_owned(),
            status: Status::NotConverted,
            to: String::new(),
            why: format!("`{ns}` is not a namespace name: ingress-nginx takes --watch-namespace as ONE namespace (not a list) and watches one literally named `{ns}`, which cannot exist, so it serves no Ingress and none is emitted; give one namespace, or use --watch-namespace-selector"),
        });
    }
    Ok(())
}

/// Finds the controller, its ConfigMap and Service in `objects`.
pub fn find<'a>(objects: &'a [Object], report: &mut Report) -> Result<Setup<'a>, Error> {
    // Reversed, then stable sort + dedup: the last copy of a workload wins.
    let mut controllers: Vec<&Object> = objects.iter().rev().filter(|o| is_controller(o)).collect();
    controllers.sort_by_key(|o| o.id());
    controllers.dedup_by_key(|o| o.id());
    if controllers.len() > 1 {
        return Err(Error::SeveralControllers(controllers.iter().map(|o| o.id()).collect::<Vec<_>>().join(", ")));
    }
    let mut s = Setup {
        ingress_class: "nginx".into(),
        controller_class: "k8s.io/ingress-nginx".into(),
        prefix: "nginx.ingress.kubernetes.io".into(),
        ..Setup::default()
    };
    // The last one wins when an object is given twice (a patch file after the base, as kubectl applies them).
    let find_obj = |kind: &str, ns: &str, name: &str| {
        objects.iter().rev().find(|o| o.kind == kind && o.namespace == ns && o.name == name)
    };
    let Some(ctl) = controllers.first().copied() else {
        // Ingresses and a ConfigMap without the workload (e.g. `kubectl get cm,ing`).
        s.configmap = objects.iter().rev().find(|o| {
            o.kind == "ConfigMap"
                && (matches!(o.name.as_str(), "ingress-nginx-controller" | "nginx-configuration")
                    || o.label("app.kubernetes.io/name") == Some("ingress-nginx") && o.doc.get("data").is_some())
        });
        report.notes.push(match s.configmap {
            Some(cm) => format!(
                "no ingress-nginx controller workload in the input; using ConfigMap {} by its name, and the default class `nginx`",
                cm.id()
            ),
            None => "no ingress-nginx controller workload or ConfigMap in the input: ingress-nginx's defaults apply".into(),
        });
        // Its Service by the chart's name or labels (`kubectl get svc,cm,ing`).
        s.service = objects.iter().rev().find(|o| {
            o.kind == "Service"
                && matches!(o.str_type(), "LoadBalancer" | "NodePort")
                && (o.name == "ingress-nginx-controller" || o.label("app.kubernetes.io/name") == Some("ingress-nginx"))
        });
        return Ok(s);
    };
    s.controller = Some(ctl);
    let args = controller_args(ctl);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if let Some(c) = flag(&args, "--ingress-class") {
        c.clone_into(&mut s.ingress_class);
    }
    if let Some(c) = flag(&args, "--controller-class") {
        c.clone_into(&mut s.controller_class);
    }
    if let Some(p) = flag(&args, "--annotations-prefix") {
        p.clone_into(&mut s.prefix);
    }
    // Boolean flags take a value only as `--flag=value` (Go's flag parsing).
    let on = |name: &str| bool_flag(&args, name).and_then(crate::ingress::go_bool) == Some(true);
    s.without_class = on("--watch-ingress-without-class");
    s.class_by_name = on("--ingress-class-by-name");
    s.disable_catch_all = on("--disable-catch-all");
    s.ssl_passthrough = on("--enable-ssl-passthrough");
    for (i, name) in ["--http-port", "--https-port", "--ssl-passthrough-proxy-port"].into_iter().enumerate() {
        s.port_flags[i] = flag(&args, name).map(str::to_owned);
    }
    watch_flags(&mut s, &args, ctl, report)?;
    report.notes.push(format!(
        "controller {} ({}:{}): ingress class `{}`, controller class `{}`",
        ctl.id(),
        ctl.source.file,
        ctl.source.line,
        s.ingress_class,
        s.controller_class
    ));
    match flag(&args, "--configmap") {
        Some(cm) => {
            let (ns, name) = cm.split_once('/').unwrap_or((&ctl.namespace, cm));
            s.configmap = find_obj("ConfigMap", ns, name);
            if s.configmap.is_none() {
                // Its keys decide who the client is: defaults in its place
                // would silently change the client-IP chain.
                report.entries.push(Entry {
                    object: ctl.id(),
                    file: ctl.source.file.clone(),
                    line: ctl.source.line,
                    key: "--configmap".into(),
                    value: format!("{ns}/{name}"),
                    status: Status::NotConverted,
                    to: String::new(),
                    why: format!("the controller reads ConfigMap {ns}/{name}, which is not in the input: its client-IP keys (use-forwarded-headers, proxy-real-ip-cidr, use-proxy-protocol, …) are unknown, so the output assumes ingress-nginx's defaults and Ingresses with an allow/deny list or a rate limit are left out; add the ConfigMap to the input (kubectl get cm -n {ns} {name} -o yaml)"),
                });
            }
        }
        None => report.notes.push("the controller has no --configmap: ingress-nginx's defaults apply".into()),
    }
    let fronts = fronts(objects, ctl);
    s.service = flag(&args, "--publish-service")
        .and_then(|p| p.split_once('/'))
        .and_then(|(ns, name)| find_obj("Service", ns, name))
        .or_else(|| fronts.first().copied());
    let publish = s.service.map(Object::id);
    s.other_services = fronts.into_iter().filter(|o| Some(o.id()) != publish).collect();
    s.host_network = ctl.doc.str_at(&["spec", "template", "spec", "hostNetwork"]) == Some("true");
    Ok(s)
}

/// The LoadBalancer and NodePort Services in front of the controller
/// `ctl`'s pods (the last copy of each), newest in the input first.
fn fronts<'a>(objects: &'a [Object], ctl: &Object) -> Vec<&'a Object> {
    let labels = pod_labels(ctl);
    let mut seen = std::collections::BTreeSet::new();
    objects
        .iter()
        .rev()
        .filter(|o| {
            o.kind == "Service"
                && o.namespace == ctl.namespace
                && matches!(o.str_type(), "LoadBalancer" | "NodePort")
                && selected_by(o, labels)
        })
        .filter(|o| seen.insert(o.id()))
        .collect()
}

trait ServiceType {
    fn str_type(&self) -> &str;
}

impl ServiceType for Object {
    fn str_type(&self) -> &str {
        self.doc.str_at(&["spec", "type"]).unwrap_or("ClusterIP")
    }
}

/// How ingress-nginx told HTTPS from HTTP on its http port when the load
/// balancer ends TLS there (lua_ingress.lua `rewrite`, whose scheme decides
/// `ssl-redirect`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsAtLb {
    /// use-forwarded-headers: X-Forwarded-Proto, when sent, is the scheme.
    ForwardedProto,
    /// use-proxy-protocol: the PROXY header's destination port 443 is
    /// HTTPS (no HTTPRoute can see it).
    ProxyPort,
    /// Neither: every request there was HTTP to ingress-nginx.
    Blind,
    /// No Service shows the load balancer ending TLS, but
    /// use-forwarded-headers is on: ingress-nginx took X-Forwarded-Proto as
    /// the scheme all the same (a CDN or proxy ending TLS in front of it;
    /// review 33 H2), so requests carrying `https` were served, not
    /// redirected (set by the emitter for realip's Gateway).
    ForwardedHeader,
    /// [`TlsAtLb::ForwardedProto`] for Envoy Gateway, which replaces the
    /// header from untrusted downstreams before routing (set by the
    /// emitter for that target only).
    EnvoyForwardedProto,
    /// [`TlsAtLb::ForwardedHeader`] for Envoy Gateway: the redirect stays
    /// (no route can tell the header's `https` apart), reported (review 35
    /// H-2).
    EnvoyForwardedHeader,
}

/// Whether the controller's Service sends its port 443 (or the one named
/// `https`) to the port nginx serves plain HTTP on (`--http-port`, 80):
/// the load balancer ends TLS (an AWS certificate, a TLS listener) and
/// the controller sees HTTPS as HTTP there. A named targetPort is resolved
/// through the controller's containerPorts (ingress-nginx's AWS manifest
/// sends 80 to `tohttps`, 2443, and 443 to `http`), the chart's names
/// `http` / `https` being 80 / 443 when the controller is not in the input;
/// what port 80 targets does not matter (review 30 H-1). Every Service in
/// front of the controller counts.
pub fn tls_at_lb(setup: &Setup<'_>) -> bool {
    let http_port = setup.port_flags[0].as_deref().map_or("80", str::trim).to_owned();
    let mut named: std::collections::BTreeMap<String, String> =
        [("http", "80"), ("https", "443")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    for c in setup.controller.map(containers).unwrap_or_default() {
        for p in c.get("ports").map(Node::items).unwrap_or_default() {
            if let (Some(n), Some(port)) = (p.str_at(&["name"]), p.str_at(&["containerPort"])) {
                named.insert(n.to_owned(), port.to_owned());
            }
        }
    }
    // Any Service in front of the controller: the published one, an
    // internal load balancer (review 31 H-1).
    setup.service.into_iter().chain(setup.other_services.iter().copied()).any(|svc| {
        let ports = svc.doc.at(&["spec", "ports"]).map(Node::items).unwrap_or_default();
        ports.iter().filter(|p| p.str_at(&["port"]) == Some("443") || p.str_at(&["name"]) == Some("https")).any(|p| {
            let t = p.str_at(&["targetPort"]).or_else(|| p.str_at(&["port"])).unwrap_or_default();
            named.get(t).map_or(t, String::as_str) == http_port
        })
    })
}

/// Where ingress-nginx reads the client address, from its ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIp {
    /// `use-proxy-protocol`: every listener requires a PROXY header.
    pub proxy_protocol: bool,
    /// The header the real-IP module reads (None: the TCP peer is the client).
    pub header: Option<String>,
    /// `proxy-real-ip-cidr` (or `--trust`): who is believed.
    pub trusted: Vec<String>,
    /// The trusted list covers every address of a family (ingress-nginx's
    /// default covers all IPv4).
    pub trust_all: bool,
    /// It covers every IPv4 address (`0.0.0.0/0`, or networks adding up to it).
    pub trust_all_v4: bool,
    /// It covers every IPv6 address (`::/0`, or networks adding up to it).
    pub trust_all_v6: bool,
    /// `compute-full-forwarded-for`: append the peer to X-Forwarded-For
    /// instead of sending only the client.
    pub full_xff: bool,
    /// `ssl-redirect` (default true): redirect plain HTTP for TLS hosts.
    pub ssl_redirect: bool,
    /// `force-ssl-redirect` (default false): the default of the
    /// annotation of that name (redirect also hosts without TLS here).
    pub force_ssl_redirect: bool,
    /// `http-redirect-code`: the status of that redirect (301, 302, 307
    /// or 308; anything else is the default, 308, as ingress-nginx).
    pub redirect_code: u16,
    /// `no-tls-redirect-locations` (default `/.well-known/acme-challenge`):
    /// locations whose path starts with one are never redirected to HTTPS.
    pub no_redirect: Vec<String>,
    /// `proxy-protocol-header-timeout`, when set.
    pub pp_timeout: Option<String>,
    /// The load balancer ends TLS and sends HTTPS to the controller's
    /// http port ([`tls_at_lb`]): how ingress-nginx then told HTTPS from
    /// HTTP.
    pub tls_at_lb: Option<TlsAtLb>,
    /// use-forwarded-headers (with or without use-proxy-protocol): ingress-nginx's
    /// scheme is X-Forwarded-Proto when a request carries it.
    pub forwarded_proto: bool,
    /// ingress-nginx v1.13 on with `use-proxy-protocol` and
    /// `use-forwarded-headers` both on: the header (`forwarded-for-header`)
    /// it reads when the PROXY header's source is in `proxy-real-ip-cidr`
    /// (PR #12768). `None` before v1.13, or with either key off.
    pub pp_header: Option<String>,
    /// Both keys on and the controller's version not known: whether
    /// ingress-nginx reads the PROXY source only (before v1.13) or the
    /// header too (v1.13 on) is not known.
    pub pp_header_unknown: bool,
}

impl ClientIp {
    /// Whether every peer is believed, IPv4 and native IPv6 alike (both
    /// `0.0.0.0/0` and `::/0`). nginx's `0.0.0.0/0` alone never matches a
    /// native IPv6 peer, so ingress-nginx's trust-all default is not this.
    pub fn trusts_every_peer(&self) -> bool {
        self.trust_all_v4 && self.trust_all_v6
    }
}

/// Which address families a list of networks covers entirely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Families {
    v4: bool,
    v6: bool,
}

impl Families {
    /// `nets` are masked ([`crate::ingress::go_ipnet`]); a union of smaller
    /// networks that adds up to a whole family counts as prefix 0 does.
    fn of(nets: &[(std::net::IpAddr, u8)]) -> Families {
        let covers = |v4: bool| {
            let (bits, max) = if v4 { (32u32, u128::from(u32::MAX)) } else { (128, u128::MAX) };
            let mut ranges: Vec<(u128, u128)> = nets
                .iter()
                .filter(|(a, _)| a.is_ipv4() == v4)
                .map(|(a, l)| {
                    let start = match a {
                        std::net::IpAddr::V4(a) => u128::from(u32::from(*a)),
                        std::net::IpAddr::V6(a) => u128::from(*a),
                    };
                    let host = bits - u32::from(*l);
                    let span = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
                    (start, start.saturating_add(span))
                })
                .collect();
            ranges.sort_unstable();
            let mut next = 0u128;
            for (start, end) in ranges {
                if start > next {
                    return false;
                }
                if end >= max {
                    return true;
                }
                next = next.max(end + 1);
            }
            false
        };
        Families { v4: covers(true), v6: covers(false) }
    }

    /// What the trust-all warning says is trusted.
    fn says(self) -> &'static str {
        match (self.v4, self.v6) {
            (true, true) => "EVERY peer, IPv4 and native IPv6 alike",
            (true, false) => "EVERY IPv4 peer (native IPv6 peers are not trusted, by nginx nor by the output)",
            (false, true) => "EVERY native IPv6 peer (IPv4 peers only as the rest of the list says)",
            (false, false) => "no whole address family",
        }
    }
}

/// ConfigMap keys that stop mattering once the Gateway serves the traffic.
const NO_EFFECT: &[(&str, &str)] = &[
    ("allow-snippet-annotations", "read with the snippet annotations: when it is not true (the default since v1.9) ingress-nginx drops them, and they are reported ignored"),
    ("strict-validate-path-type", "path types map one to one onto HTTPRoute path matches"),
    (
        "enable-annotation-validation",
        "not a ConfigMap key of ingress-nginx, which ignores it here: annotation validation is the controller flag --enable-annotation-validation (on by default since v1.12), which the migration reads from the controller's args",
    ),
];

const SNIPPET_KEYS: &[&str] = &["http-snippet", "server-snippet", "location-snippet", "main-snippet", "stream-snippet"];

/// The ConfigMap's `limit-conn-zone-variable` when it is not the client
/// address: nginx.tmpl keys every limit-rps / limit-rpm / limit-connections
/// zone on `$limit_ID`, which maps to that variable (`$binary_remote_addr`
/// by default; `$remote_addr` is the same client).
pub fn limit_key_not_client(setup: &Setup<'_>) -> Option<String> {
    let v = setup.configmap?.doc.str_at(&["data", "limit-conn-zone-variable"])?.trim();
    (!matches!(v, "$binary_remote_addr" | "$remote_addr")).then(|| v.to_owned())
}

/// `major.minor` of a known controller version.
fn version_str(version: Option<(u32, u32)>) -> String {
    version.map_or_else(|| "?".to_owned(), |(major, minor)| format!("{major}.{minor}"))
}

/// Why the v1.13+ PROXY-then-header chain is not converted, for the target
/// whose client-IP policy is `to` (`Kind ns/name`).
fn pp_header_gap(to: &str) -> String {
    let lead = "No policy says exactly that, so the client address is not converted and Ingresses with allow/deny lists or rate limits are left out (deny-all, see their entries)";
    if to.starts_with("ClientIPPolicy") {
        format!("{lead}: the ClientIPPolicy carries the closest chain (proxyProtocol.trustedSenders, trustedProxies = proxy-real-ip-cidr, the header as its source, RightmostUntrusted), which agrees while the header holds an address but, from a trusted PROXY source, takes the PROXY source where ingress-nginx took the load balancer's address; check that difference and add the lists by hand")
    } else {
        format!("{lead}: the ClientTrafficPolicy keeps proxyProtocol only (Envoy Gateway has no PROXY trusted-sender list and cannot make reading X-Forwarded-For depend on the PROXY source), so the client is the PROXY source; add the lists by hand once the Gateway's chain is settled")
    }
}

/// Why `forwarded-for-header` (`name`) is not a header the output may read
/// the client from, with the entry's status, or `None` when it is.
/// - nginx never reads it, so the client is the TCP peer, as in the output
///   (converted): `real_ip_header proxy_protocol` (exact) is the PROXY
///   source, absent without use-proxy-protocol; a name with `_` is a field
///   nginx drops (nginx.tmpl `underscores_in_headers off` unless
///   `enable-underscores-in-headers`), so it is never found.
/// - realip's controller refuses it as a named header source (Forwarded,
///   Host, Content-Length, …: `realip_core::NamedHeader`): a policy naming
///   it would be invalid and fail closed; not converted (the policy reads
///   the TCP peer, and Ingresses with lists or limits are left out).
fn header_not_read(name: &str, underscores: bool) -> Option<(Status, String)> {
    if name == "proxy_protocol" {
        return Some((Status::Converted, "`proxy_protocol` makes nginx's real-IP module read the PROXY header, and use-proxy-protocol is off: there is none, so ingress-nginx's client is the TCP peer, as in the output (nothing is read)".into()));
    }
    if name.contains('_') && !underscores {
        return Some((Status::Converted, format!("`{name}` has an underscore: nginx drops such request fields (underscores_in_headers is off unless enable-underscores-in-headers), so the real-IP module never finds it and ingress-nginx's client is the TCP peer, as in the output (nothing is read)")));
    }
    let lower = name.to_ascii_lowercase();
    if lower == "x-forwarded-for" || lower == "x-real-ip" {
        return None;
    }
    realip_core::NamedHeader::new(name).err().map(|e| {
        (Status::NotConverted, format!("realip's controller refuses `{name}` as a header source ({e}), so a ClientIPPolicy naming it would be invalid and leave the Gateway unserved; nginx reads it as a list of addresses (a Forwarded `for=…` element or a host name never parses, so there the client stays the TCP peer). Not converted: the policy reads the TCP peer, and every Ingress with an allow/deny list or a rate limit is left out (deny-all)"))
    })
}

/// Converts the ConfigMap into [`ClientIp`], with an entry for every key.
#[allow(clippy::too_many_lines)] // one arm per ConfigMap key, kept together so the table reads as one
pub fn client_ip(setup: &Setup<'_>, trust_override: &[String], report: &mut Report, to: &str) -> ClientIp {
    let cm = setup.configmap;
    let get = |k: &str| cm.and_then(|c| c.doc.str_at(&["data", k])).map(str::trim);
    // Go's strconv.ParseBool, as ingress-nginx; any other spelling is an
    // error there, so the default stands and the key is reported below.
    // ParseBool does not trim: the raw value is parsed, not `get`'s.
    let raw = |k: &str| cm.and_then(|c| c.doc.str_at(&["data", k]));
    let bool_of = |k: &str, default: bool| raw(k).and_then(cm_bool_value).unwrap_or(default);
    let first_entry = report.entries.len();
    let (object, file) = cm.map_or(("defaults".to_owned(), String::new()), |c| (c.id(), c.source.file.clone()));
    let line = |k: &str| cm.map_or(0, |c| c.line_of(&["data", k]));
    let mut entry = |key: &str, status: Status, to: String, why: String| {
        let value = get(key).map_or_else(|| "(default)".to_owned(), str::to_owned);
        let (object, file, line) = if get(key).is_some() {
            (object.clone(), file.clone(), line(key))
        } else {
            ("defaults".into(), String::new(), 0)
        };
        // An ignored key names nothing emitted (review 31 M-3).
        let to = if status == Status::Ignored { String::new() } else { to };
        report.entries.push(Entry { object, file, line, key: key.to_owned(), value, status, to, why });
    };
    let use_fwd = bool_of("use-forwarded-headers", false);
    let real_ip = bool_of("enable-real-ip", false);
    let pp = bool_of("use-proxy-protocol", false);
    let fwd_header = get("forwarded-for-header").unwrap_or("X-Forwarded-For").to_owned();
    let reads_header = !pp && (use_fwd || real_ip);
    let header_off = header_not_read(&fwd_header, bool_of("enable-underscores-in-headers", false));
    let header = (reads_header && header_off.is_none()).then(|| fwd_header.clone());
    // ingress-nginx v1.13 (PR #12768) with both keys on: real_ip_header is
    // the intermediate forwarded-for-proxy-protocol-header, which holds the
    // forwarded-for header when the PROXY source ($proxy_protocol_addr) is
    // in proxy-real-ip-cidr, else the PROXY source; before v1.13 PROXY only.
    let version = controller_version(setup);
    let both = pp && use_fwd;
    let pp_header = (both && version.is_some_and(|v| v >= (1, 13))).then(|| fwd_header.clone());
    let pp_header_unknown = both && version.is_none();
    // Entries that are not CIDRs are left out: trusting nothing is safer than guessing.
    let (cidrs, bad): (Vec<String>, Vec<String>) = get("proxy-real-ip-cidr")
        .unwrap_or("0.0.0.0/0")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .partition(|c| realip_kube::ingress::cidr_list(c).is_ok());
    // ingress-nginx writes each entry into set_real_ip_from as given; nginx
    // clears host bits, and keeps an IPv4-mapped network (`::ffff:0:0/96`)
    // IPv6 while it unwraps a mapped peer to IPv4 before comparing same
    // families: such an entry never matches. realip-core and Envoy would
    // read it as the IPv4 range, so it is dropped (and reported).
    let mut mapped = Vec::new();
    let mut nets = Vec::new();
    for c in cidrs.iter().filter_map(|c| realip_kube::ingress::cidr_list(c).ok()).flatten() {
        let Some((addr, len)) = crate::ingress::split_cidr(&c) else { continue };
        match (addr, crate::ingress::go_ipnet(addr, len)) {
            (std::net::IpAddr::V6(_), (std::net::IpAddr::V4(_), _)) => mapped.push(c),
            (_, net) => nets.push(net),
        }
    }
    let (trusted, families) = if trust_override.is_empty() {
        // nginx's set_real_ip_from 0.0.0.0/0 matches IPv4 peers and
        // IPv4-mapped IPv6 ones (ngx_cidr_match unwraps those), never a native
        // IPv6 peer: emit only what nginx trusts. realip-core unwraps mapped
        // peers before matching, so 0.0.0.0/0 alone covers them too.
        (nets.iter().map(|(a, l)| format!("{a}/{l}")).collect::<Vec<_>>(), Families::of(&nets))
    } else {
        let nets: Vec<_> = trust_override
            .iter()
            .filter_map(|c| crate::ingress::split_cidr(c))
            .map(|(a, l)| crate::ingress::go_ipnet(a, l))
            .collect();
        (trust_override.to_vec(), Families::of(&nets))
    };
    let trust_all = families.v4 || families.v6;
    let used = pp || header.is_some();
    let mut ci = ClientIp {
        proxy_protocol: pp,
        header,
        trusted,
        trust_all,
        trust_all_v4: families.v4,
        trust_all_v6: families.v6,
        // nginx.tmpl: `if and UseForwardedHeaders ComputeFullForwardedFor`,
        // else X-Forwarded-For is $remote_addr (the resolved client) alone.
        full_xff: use_fwd && bool_of("compute-full-forwarded-for", false),
        ssl_redirect: bool_of("ssl-redirect", true),
        force_ssl_redirect: bool_of("force-ssl-redirect", false),
        // configmap.go: strconv.Atoi, then one of validRedirectCodes, else 308.
        redirect_code: raw("http-redirect-code")
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|c| matches!(c, 301 | 302 | 307 | 308))
            .unwrap_or(308),
        // template.go isLocationInLocationList: comma-separated, each
        // item trimmed of spaces, empty ones skipped.
        no_redirect: raw("no-tls-redirect-locations")
            .unwrap_or("/.well-known/acme-challenge")
            .split(',')
            .map(|i| i.trim_matches(' '))
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect(),
        pp_timeout: get("proxy-protocol-header-timeout").map(str::to_owned),
        // lua_ingress.lua `rewrite`: PROXY's destination port 443 wins,
        // else X-Forwarded-Proto with use-forwarded-headers, else the
        // connection's own scheme (http on the http port).
        tls_at_lb: tls_at_lb(setup).then_some(if pp {
            TlsAtLb::ProxyPort
        } else if use_fwd {
            TlsAtLb::ForwardedProto
        } else {
            TlsAtLb::Blind
        }),
        forwarded_proto: use_fwd,
        pp_header,
        pp_header_unknown,
    };
    let src = if pp { "ProxyProtocol" } else { ci.header.as_deref().unwrap_or("the TCP peer") };
    if get("use-forwarded-headers").is_some() || !pp && !real_ip {
        let (status, why) = match (use_fwd, pp) {
            (true, true) if ci.pp_header.is_some() => (Status::NotConverted, format!("with use-proxy-protocol, ingress-nginx v1.13 and later (the controller runs v{}) reads {fwd_header} when the PROXY header's source address is in proxy-real-ip-cidr (walked from the right past those CIDRs, real_ip_recursive on), else the PROXY source; and when the PROXY source is trusted but {fwd_header} is absent or its rightmost entry is not an address, the load balancer's own address (the TCP peer). {}", version_str(version), pp_header_gap(to))),
            (true, true) if ci.pp_header_unknown => (Status::NotConverted, format!("with use-proxy-protocol, ingress-nginx before v1.13 reads the client from the PROXY header only (real_ip_header proxy_protocol), v1.13 and later reads {fwd_header} when the PROXY header's source is in proxy-real-ip-cidr; the controller's version is not known (no ingress-nginx controller image with a version tag in the input), so neither can be assumed: the client address is not converted (the policy reads the PROXY source only) and Ingresses with allow/deny lists or rate limits are left out (deny-all); add the controller to the input")),
            (true, true) => (Status::Converted, "with use-proxy-protocol, ingress-nginx before v1.13 reads the client from the PROXY header only (real_ip_header proxy_protocol); the output does the same".to_owned()),
            (true, false) if header_off.is_some() => (Status::Converted, format!("on, but forwarded-for-header `{fwd_header}` is not read as a client address (see forwarded-for-header)")),
            (true, false) => (Status::Converted, format!("the client is read from {fwd_header}, believed only from the trusted proxies")),
            (false, _) if real_ip || pp => (Status::Converted, "off; the real-IP module is on through another key".into()),
            (false, _) => (Status::Converted, "off: the client is the TCP peer, nothing is trusted".into()),
        };
        let field = if used { format!("sources: {src}") } else { "trustedProxies: [] (no sources)".to_owned() };
        let field = if status == Status::NotConverted { String::new() } else { format!("{to} {field}") };
        entry("use-forwarded-headers", status, field, why);
    }
    if get("enable-real-ip").is_some() {
        entry(
            "enable-real-ip",
            Status::Converted,
            format!("{to} sources: {src}"),
            "the real-IP module on ingress-nginx's side; the sources of the policy on ours".into(),
        );
    }
    if get("forwarded-for-header").is_some() {
        let why = if ci.header.is_some() {
            format!("the header the client is read from: {fwd_header}")
        } else {
            "not read: neither use-forwarded-headers nor enable-real-ip is on (or PROXY replaces it)".into()
        };
        let status = if ci.header.is_some() { Status::Converted } else { Status::Ignored };
        let (status, why) = if ci.pp_header.is_some() || ci.pp_header_unknown {
            (Status::NotConverted, format!("with use-proxy-protocol and use-forwarded-headers, ingress-nginx v1.13 and later reads {fwd_header} (as a list, from the right) from PROXY sources in proxy-real-ip-cidr: not converted, see use-forwarded-headers"))
        } else {
            (status, why)
        };
        // nginx's realip module walks any real_ip_header as a list, right to
        // left over `,` and spaces, past trusted addresses
        // (real_ip_recursive on); realip's XRealIP / {header} sources take
        // one address and treat a list as invalid (the client is then the
        // peer). Same result only while the header holds one address.
        let (status, why) = if ci.header.as_deref().is_some_and(|h| !h.eq_ignore_ascii_case("x-forwarded-for"))
            && to.starts_with("ClientIPPolicy")
        {
            (Status::Changed, format!("{why}. ingress-nginx reads a list in it as in X-Forwarded-For (from the right, the first address not trusted); the output reads one address only: a request whose {fwd_header} holds several (a trusted hop appended one) gets the TCP peer as its client, where ingress-nginx took the rightmost untrusted entry. Check that every hop sets {fwd_header} to a single address, or switch to X-Forwarded-For"))
        } else {
            (status, why)
        };
        // nginx's real_ip_header takes the X-Forwarded-For type only for
        // that exact spelling (ngx_strcmp); any other is its generic header
        // type, which reads the FIRST field line of that name (a list, from
        // the right) and ignores later X-Forwarded-For lines. The output
        // (realip's XForwardedFor, Envoy's xForwardedFor) reads every line
        // as one list, as ingress-nginx does with `X-Forwarded-For`: the
        // same client unless a request carries several lines, and then the
        // output's reading is the one a trusted hop's own line decides
        // (migrate review 17 R17-1).
        let (status, why) = match ci.header.as_deref() {
            Some(h) if status == Status::Converted && h.eq_ignore_ascii_case("x-forwarded-for") && h != "X-Forwarded-For" => (
                Status::Changed,
                format!("{why}. nginx's real_ip_header reads X-Forwarded-For as such only when spelled exactly `X-Forwarded-For`; spelled `{h}` it is a generic header to nginx, so ingress-nginx read the client from the FIRST X-Forwarded-For line of a request only (as a list, from the right) and ignored any later line. The output reads every X-Forwarded-For line as one list, as ingress-nginx does with the exact spelling: the same client when a request has one X-Forwarded-For line; with several, the output walks the last line first, so a trusted hop that adds a line of its own decides, where ingress-nginx believed the first line, which the client sent. Kept as X-Forwarded-For because that is the safer reading of the client; the difference is only for requests with several lines"),
            ),
            _ => (status, why),
        };
        let (status, why) = match &header_off {
            Some((off_status, off_why)) if reads_header => (*off_status, off_why.clone()),
            _ => (status, why),
        };
        let field = if status == Status::NotConverted { String::new() } else { format!("{to} sources") };
        entry("forwarded-for-header", status, field, why);
    }
    if get("forwarded-for-proxy-protocol-header").is_some() {
        // nginx.tmpl (v1.13 on): `more_set_input_headers "<it>: $forwarded_for_proxy_protocol"`
        // and `real_ip_header <it>`, only with both keys on.
        let name = get("forwarded-for-proxy-protocol-header").unwrap_or_default();
        let (status, why) = if ci.pp_header.is_some() || ci.pp_header_unknown {
            (Status::NotConverted, format!("ingress-nginx v1.13 and later overwrites request header `{name}` with the PROXY source or {fwd_header} (whichever it believes) and reads the client from it; the app received it too. Not converted: the client-IP chain it carries is not (see use-forwarded-headers), and no policy sets an intermediate header; the app no longer receives `{name}`"))
        } else if pp && use_fwd {
            (Status::Ignored, "not a key before ingress-nginx v1.13, which reads the PROXY source only".to_owned())
        } else {
            (
                Status::Ignored,
                "read only with use-proxy-protocol and use-forwarded-headers both on (ingress-nginx v1.13 and later)"
                    .to_owned(),
            )
        };
        entry("forwarded-for-proxy-protocol-header", status, String::new(), why);
    }
    if get("use-proxy-protocol").is_some() {
        let (status, why) = if pp && ci.trusted.is_empty() {
            // (migrate review 17 R17-2)
            (Status::NotConverted, "ingress-nginx requires and strips a PROXY header on every connection (one without it is closed) but believes no sender (no usable proxy-real-ip-cidr entry), so its client is the TCP peer; a ClientIPPolicy cannot require PROXY while trusting no sender, and without it the Gateway would not read the load balancer's PROXY preamble and would serve connections ingress-nginx closed: give the load balancer's CIDRs with --trust (PROXY then required from them and believed)".to_owned())
        } else if pp {
            (Status::Converted, format!("PROXY required on every listener, accepted from {}", ci.trusted.join(", ")))
        } else {
            (Status::Converted, "off".into())
        };
        entry("use-proxy-protocol", status, format!("{to} proxyProtocol"), why);
    }
    if get("proxy-real-ip-cidr").is_some() || used {
        let dropped = if mapped.is_empty() || !trust_override.is_empty() {
            String::new()
        } else {
            format!(
                "{} dropped: an IPv4-mapped IPv6 CIDR never matches in nginx (set_real_ip_from keeps it IPv6, and nginx compares a mapped peer as IPv4), so ingress-nginx trusted nobody through it, while realip and Envoy would read it as the IPv4 range. ",
                mapped.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            )
        };
        let believed = if ci.trusted.is_empty() {
            "nothing is trusted, the client is the TCP peer".to_owned()
        } else {
            format!("believed: {}", ci.trusted.join(", "))
        };
        let all_why = |lead: &str| {
            format!(
                "{dropped}{lead}{}{} ({}): any client can forge its address by sending {}. The output keeps this explicitly so nothing breaks; replace it with your load balancer's CIDRs (`--trust CIDR`) before applying.",
                families.says(),
                if get("proxy-real-ip-cidr").is_none() && trust_override.is_empty() { " by default" } else { "" },
                ci.trusted.join(", "),
                match (pp, ci.pp_header.as_deref()) {
                    (true, Some(h)) => format!("a PROXY header of its own, when it can reach the ingress directly, and (ingress-nginx v1.13 and later, with use-forwarded-headers) any {h} through the load balancer, as every PROXY source is trusted"),
                    (true, None) => "a PROXY header of its own, when it can reach the ingress directly".to_owned(),
                    (false, _) => "the header".to_owned(),
                }
            )
        };
        let (status, why) = if !bad.is_empty() && trust_override.is_empty() {
            (
                Status::NotConverted,
                format!(
                    "{}{} not a CIDR: left out, so {} (nginx would refuse to load this configuration); give the load balancer's CIDRs with --trust",
                    dropped,
                    bad.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ") + if bad.len() == 1 { " is" } else { " are" },
                    if ci.trusted.is_empty() { "nothing is trusted and the client is the TCP peer".to_owned() } else { format!("only {} is trusted", ci.trusted.join(", ")) }
                ),
            )
        } else if !trust_override.is_empty() && ci.trust_all && used {
            (
                Status::Warning,
                all_why(&format!("replaced by --trust {}, so the output trusts ", trust_override.join(","))),
            )
        } else if !trust_override.is_empty() {
            (Status::Changed, format!("replaced by --trust {}", trust_override.join(",")))
        } else if !used {
            (Status::Ignored, "not used: the client is the TCP peer".into())
        } else if ci.trust_all {
            (Status::Warning, all_why("ingress-nginx trusts "))
        } else if !mapped.is_empty() {
            (Status::Changed, format!("{dropped}{believed}"))
        } else {
            (Status::Converted, believed)
        };
        let field = if pp { "proxyProtocol.trustedSenders" } else { "trustedProxies" };
        // The ClientIPPolicy CRD holds at most 64 trusted PROXY senders and
        // 256 trusted proxies: a longer list makes a policy the API server
        // refuses (review 33 H1). Nothing is trusted instead, and the key
        // is not converted (lists and limits are left out).
        let cap = if pp { 64 } else { 256 };
        let (status, why) = if to.starts_with("ClientIPPolicy") && ci.trusted.len() > cap {
            let n = ci.trusted.len();
            ci.trusted.clear();
            (
                Status::NotConverted,
                format!("{n} entries, over the {cap} the ClientIPPolicy's {field} may hold: merge them into fewer CIDRs (or give them with --trust); the policy trusts nothing meanwhile"),
            )
        } else {
            (status, why)
        };
        entry("proxy-real-ip-cidr", status, format!("{to} {field}"), why);
    }
    if get("compute-full-forwarded-for").is_some() || ci.header.is_some() {
        let why = if ci.full_xff {
            "X-Forwarded-For to the app: the received list plus the hop that connected (Append)"
        } else if bool_of("compute-full-forwarded-for", false) {
            "X-Forwarded-For to the app: only the client (Replace): ingress-nginx appends only when use-forwarded-headers is on too, else it sends $remote_addr"
        } else {
            "X-Forwarded-For to the app: only the client (Replace), as ingress-nginx sends $remote_addr"
        };
        entry("compute-full-forwarded-for", Status::Converted, format!("{to} forward.xForwardedFor"), why.into());
    }
    if let Some(t) = &ci.pp_timeout {
        // ReadConfig keeps the 5 s default for a value time.ParseDuration refuses.
        let same = crate::drops::go_duration_ns(t).is_none_or(|ns| ns == 5_000_000_000);
        let (status, why) = if !setup.ssl_passthrough {
            (
                Status::Ignored,
                "only ingress-nginx's --enable-ssl-passthrough listener (off here) reads it; nginx itself reads the PROXY header within client_header_timeout".to_owned(),
            )
        } else if same && to.starts_with("ClientIPPolicy") {
            (
                Status::Converted,
                "the same as realip's default PROXY header timeout (listener header_timeout, 5 s)".to_owned(),
            )
        } else {
            (Status::NotConverted, "no Gateway API or policy field holds it: set the proxy's listener header_timeout (realip.toml) or the data plane's equivalent by hand".to_owned())
        };
        entry("proxy-protocol-header-timeout", status, String::new(), why);
    }
    // client_max_body_size of every server: set explicitly or not, it
    // changes (the issue asks for it to be converted or reported).
    let body = get("proxy-body-size").unwrap_or("1m");
    entry("proxy-body-size", Status::Changed, String::new(), format!("ingress-nginx answered 413 to request bodies over {body} (client_max_body_size; the Ingress annotation overrides it); no Gateway API or policy field limits the body, so the data plane's own limit applies: realip's proxy `limits.max_body_bytes` in realip.toml (10 MiB by default), Envoy none unless configured; set it there"));
    if raw("no-tls-redirect-locations").is_some() {
        entry(
            "no-tls-redirect-locations",
            Status::Converted,
            String::new(),
            format!(
                "paths starting with {} are not redirected to HTTPS: their routes are served on the http listener too",
                if ci.no_redirect.is_empty() { "nothing".to_owned() } else { ci.no_redirect.join(", ") }
            ),
        );
    }
    if let Some(v) = raw("http-redirect-code") {
        let (status, why) = if v.parse::<u16>().ok() == Some(ci.redirect_code) {
            (Status::Converted, format!("the redirect of plain HTTP to HTTPS answers {}", ci.redirect_code))
        } else {
            (Status::Ignored, format!("`{v}` is not 301, 302, 307 or 308 to ingress-nginx (Go's Atoi, then its valid codes): it redirects with 308, so does the output"))
        };
        let to = if ci.ssl_redirect { "HTTPRoute …-https-redirect statusCode" } else { "" };
        entry("http-redirect-code", status, to.into(), why);
    }
    if get("force-ssl-redirect").is_some() {
        entry(
            "force-ssl-redirect",
            Status::Converted,
            if ci.force_ssl_redirect {
                "HTTPRoute …-https-redirect on the http listener".into()
            } else {
                String::new()
            },
            if ci.force_ssl_redirect {
                "the default of the force-ssl-redirect annotation: plain HTTP is redirected for every Ingress that does not set it (see each host's entries)".into()
            } else {
                "the default of the force-ssl-redirect annotation: no forced redirect".into()
            },
        );
    }
    if get("ssl-redirect").is_some() {
        entry(
            "ssl-redirect",
            Status::Converted,
            if ci.ssl_redirect { "HTTPRoute …-https-redirect on the http listener".into() } else { String::new() },
            if ci.ssl_redirect {
                format!("plain HTTP to hosts with TLS is redirected ({})", ci.redirect_code)
            } else {
                "no redirect by default".into()
            },
        );
    }
    for (k, _) in
        cm.map(|c| c.doc.at(&["data"]).map(realip_kube::Node::entries).unwrap_or_default()).unwrap_or_default()
    {
        if matches!(
            k.as_str(),
            "use-forwarded-headers"
                | "enable-real-ip"
                | "forwarded-for-header"
                | "forwarded-for-proxy-protocol-header"
                | "use-proxy-protocol"
                | "proxy-real-ip-cidr"
                | "compute-full-forwarded-for"
                | "proxy-protocol-header-timeout"
                | "ssl-redirect"
                | "force-ssl-redirect"
                | "http-redirect-code"
                | "no-tls-redirect-locations"
        ) {
            continue;
        }
        if GLOBAL_ACCESS_KEYS.contains(&k.as_str()) {
            let (status, why) = if get(k).is_none_or(|v| v.split(',').all(|c| c.trim().is_empty())) {
                (Status::Ignored, "empty: no restriction".to_owned())
            } else {
                (Status::NotConverted, "restricts who gets through on every server of the controller: not converted, so every Ingress it applies to is left out rather than emitted without it".to_owned())
            };
            entry(k, status, String::new(), why);
            continue;
        }
        if k == "proxy-body-size" {
            continue; // above
        }
        if k.starts_with("global-rate-limit-") {
            // The global rate limit's ConfigMap keys (memcached, status code), up to v1.11.
            let (status, why) = match controller_version(setup) {
                Some((major, minor)) if (major, minor) >= (1, 12) => (Status::Ignored, format!("removed in ingress-nginx v1.12 (the controller runs v{major}.{minor}) with the global-rate-limit annotations")),
                _ if k == "global-rate-limit-status-code" && get(k) == Some("429") => (Status::Converted, "limited requests get 429, as the policies answer".to_owned()),
                _ if k == "global-rate-limit-status-code" => (Status::Changed, format!("ingress-nginx answered {} to requests over global-rate-limit; the policies answer 429", get(k).unwrap_or_default())),
                _ => (Status::Changed, "the store ingress-nginx's global-rate-limit counted in (memcached): the output's global limits count in the data plane's own shared store instead (realip's proxy [rate_limit_store], Redis; Envoy Gateway's rate limit service): configure it there".to_owned()),
            };
            entry(k, status, String::new(), why);
            continue;
        }
        if matches!(k.as_str(), "enable-modsecurity" | "enable-owasp-modsecurity-crs" | "modsecurity-snippet") {
            let (status, why) = if modsecurity_on(setup) {
                (
                    Status::NotConverted,
                    if k == "enable-modsecurity" {
                        "ModSecurity on every location of every server (nginx.tmpl puts `modsecurity on` and its rules in http {}): a web application firewall that can refuse requests, which does not convert, so every Ingress it applies to is left out (deny-all) rather than emitted without it; an Ingress with `enable-modsecurity: \"false\"` turns it off for its locations and is converted. Whether the rules block (SecRuleEngine On) or only log is not read from the configuration, so it is taken to block".to_owned()
                    } else {
                        "read with enable-modsecurity, which is on: the ModSecurity rules of every location (see enable-modsecurity), not converted".to_owned()
                    },
                )
            } else if k == "enable-modsecurity" {
                (Status::Ignored, "off: no ModSecurity at http level".to_owned())
            } else {
                (Status::Ignored, "read only with enable-modsecurity, which is off (nginx.tmpl adds the http-level rules inside `if EnableModsecurity`)".to_owned())
            };
            entry(k, status, String::new(), why);
            continue;
        }
        if k == "annotations-risk-level" {
            entry(k, Status::Converted, String::new(), format!("applied as ingress-nginx applies it: ingress-nginx refuses every Ingress with an annotation (alias included) of a higher risk than {} (any value but critical, high or medium counts as Low, as it reads it); a running controller may still serve an older version of such an Ingress, so each is emitted deny-all with a not-converted entry naming the annotation", crate::drops::Risk::parse(get(k).unwrap_or_default()).name()));
            continue;
        }
        if k == "annotation-value-word-blocklist" {
            entry(k, Status::Converted, String::new(), "applied as ingress-nginx applies it: ingress-nginx's store refuses every Ingress with an annotation under the prefix whose value contains one of these words (case-sensitive substring, the list split on commas, the words as written; its admission webhook trims each word first, so it may refuse more); a running controller may still serve an older version of such an Ingress, so each is emitted deny-all with a not-converted entry naming the annotation and word".into());
            continue;
        }
        if k == "limit-conn-zone-variable" {
            let (status, why) = match limit_key_not_client(setup) {
                Some(v) => (Status::NotConverted, format!("ingress-nginx keys every limit-rps, limit-rpm and limit-connections zone on `{v}` (nginx.tmpl: `map $allowlist_ID $limit_ID {{ 0 {v}; … }}`), not on the client address: with `$server_name`, say, all clients of a host share one bucket. The policies key limits on the client only, so those limits are not converted (see each Ingress's entries)")),
                None => (Status::Converted, "the client address, as the policies key limits".to_owned()),
            };
            entry(k, status, String::new(), why);
            continue;
        }
        if let Some(why) =
            unloadable_status(raw(k).unwrap_or_default()).filter(|_| STATUS_CODE_KEYS.contains(&k.as_str()))
        {
            entry(k, Status::NotConverted, String::new(), why);
            continue;
        }
        if k == "limit-req-status-code" {
            let code = limit_req_status(setup);
            let read = raw(k).unwrap_or_default();
            let unparsed = if status_code(read).is_none() {
                format!(" (`{read}` is not an integer to ingress-nginx, which keeps its default)")
            } else {
                String::new()
            };
            let (status, why) = if code == 429 {
                (Status::Converted, "limited requests get 429, as the policies answer".to_owned())
            } else {
                (Status::Changed, format!("ingress-nginx answered {code}{unparsed} to limited requests (limit-rps/limit-rpm); the policies answer 429"))
            };
            entry(k, status, String::new(), why);
            continue;
        }
        if let Some((_, why)) = NO_EFFECT.iter().find(|(n, _)| n == k) {
            entry(k, Status::Ignored, String::new(), (*why).into());
        } else if k == "http-snippet" && get(k).is_some_and(crate::ingress::real_ip_directives) {
            // Read by lib.rs's client_ip_lost: the client address is not converted.
            entry(k, Status::NotConverted, String::new(), "raw nginx configuration is never converted, and this one holds real-IP directives (real_ip_header, set_real_ip_from or real_ip_recursive) at http level, which change who the client is on every server beside the ConfigMap's client-IP keys: the client address is not converted, so every Ingress with an allow/deny list or a rate limit is left out (deny-all); rewrite the chain with --trust or the policy by hand".into());
        } else if SNIPPET_KEYS.contains(&k.as_str()) {
            entry(k, Status::NotConverted, String::new(), "raw nginx configuration is never converted: rewrite what it does with Gateway API filters or policies by hand".into());
        } else {
            entry(
                k,
                Status::NotConverted,
                String::new(),
                "not handled by realip migrate: check whether the Gateway needs an equivalent".into(),
            );
        }
    }
    // A value nginx refuses fails every configuration: that, not the
    // key's own reading, is what its entry says.
    let location = unloadable_location(setup);
    let whys = [
        ("proxy-real-ip-cidr", unloadable_cidrs(setup)),
        (HEADER_KEYS[0], unloadable_header(setup, HEADER_KEYS[0])),
        (HEADER_KEYS[1], unloadable_header(setup, HEADER_KEYS[1])),
        (location.as_ref().map_or("", |l| l.0), location.as_ref().map(|l| l.1.clone())),
    ];
    for (key, why) in whys {
        let Some(why) = why else { continue };
        for e in report.entries[first_entry..].iter_mut().filter(|e| e.key == key && e.object != "defaults") {
            e.status = Status::NotConverted;
            e.to = String::new();
            e.why.clone_from(&why);
        }
    }
    for e in &mut report.entries[first_entry..] {
        let known_bool = matches!(
            e.key.as_str(),
            "use-forwarded-headers"
                | "enable-real-ip"
                | "use-proxy-protocol"
                | "compute-full-forwarded-for"
                | "ssl-redirect"
                | "force-ssl-redirect"
        );
        let value = raw(&e.key).unwrap_or(&e.value);
        if known_bool && e.object != "defaults" && cm_bool_value(value).is_none() {
            e.status = Status::NotConverted;
            e.why = format!(
                "{value:?} is not a boolean to ingress-nginx (Go's ParseBool takes 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False, with no surrounding spaces): it cannot parse it and keeps the default, and so does the output; fix the value"
            );
            e.value = value.to_owned();
        }
    }
    ci
}

/// The ConfigMap keys nginx.tmpl writes, as integers, into a status
/// directive of the http block of every configuration ingress-nginx
/// renders: `limit_req_status` and `limit_conn_status`.
pub const STATUS_CODE_KEYS: [&str; 2] = ["limit-req-status-code", "limit-conn-status-code"];

/// A [`STATUS_CODE_KEYS`] value as ingress-nginx decodes it (mapstructure's
/// weak typing: Go's `strconv.ParseInt(s, 0, 64)`, an empty string read as
/// 0), `None` when it cannot (the default, 503, stays).
pub fn status_code(raw: &str) -> Option<i64> {
    crate::drops::go_parse_int0(if raw.is_empty() { "0" } else { raw })
}

/// The status ingress-nginx answers limited requests with
/// (`limit-req-status-code`, default 503).
pub fn limit_req_status(setup: &Setup<'_>) -> i64 {
    setup.configmap.and_then(|c| c.doc.str_at(&["data", "limit-req-status-code"])).and_then(status_code).unwrap_or(503)
}

/// The ConfigMap keys whose value nginx refuses in every configuration
/// ingress-nginx renders ([`unloadable_status`], [`unloadable_cidrs`],
/// [`unloadable_header`]): with one, no configuration of ingress-nginx loads.
pub fn unloadable_keys(setup: &Setup<'_>) -> Vec<String> {
    let data = |k: &str| setup.configmap.and_then(|c| c.doc.str_at(&["data", k]));
    let mut keys: Vec<String> = STATUS_CODE_KEYS
        .iter()
        .filter(|k| data(k).and_then(unloadable_status).is_some())
        .map(|k| (*k).to_owned())
        .collect();
    if unloadable_cidrs(setup).is_some() {
        keys.push("proxy-real-ip-cidr".into());
    }
    for key in HEADER_KEYS {
        if unloadable_header(setup, key).is_some() {
            keys.push(key.into());
        }
    }
    if let Some((key, _)) = unloadable_location(setup) {
        keys.push(key.into());
    }
    keys
}

/// A boolean ConfigMap key as ingress-nginx reads it ([`cm_bool_value`];
/// anything else keeps `default`).
fn cm_bool(setup: &Setup<'_>, key: &str, default: bool) -> bool {
    setup.configmap.and_then(|c| c.doc.str_at(&["data", key])).and_then(cm_bool_value).unwrap_or(default)
}

/// nginx.tmpl writes the real-IP module's directives (`real_ip_header`,
/// `set_real_ip_from` per proxy-real-ip-cidr entry) only with
/// use-forwarded-headers, use-proxy-protocol or enable-real-ip on.
fn real_ip_written(setup: &Setup<'_>) -> bool {
    cm_bool(setup, "use-forwarded-headers", false)
        || cm_bool(setup, "use-proxy-protocol", false)
        || cm_bool(setup, "enable-real-ip", false)
}

/// The tail every whole-configuration refusal shares: what a running
/// controller and a restarted one serve, and what the output does.
pub const UNLOADABLE: &str = "so nginx refuses each configuration (`nginx -t` fails) and none with this ConfigMap ever loads; a running controller keeps the configuration it loaded before this value, and one started with it serves none of the Ingresses. What ingress-nginx serves is not known, so every Ingress is emitted deny-all";

/// Why the ConfigMap's proxy-real-ip-cidr makes every configuration fail
/// to load, or `None`. ingress-nginx splits it as `splitAndTrimSpace` does
/// (`strings.FieldsFunc` on commas, which drops empty fields, then each
/// field trimmed: a field of spaces stays, empty) and writes each entry,
/// unchecked, into `set_real_ip_from` when the real-IP module is on
/// ([`real_ip_written`]) and, v1.13 and later with PROXY and forwarded
/// headers both on, into a `geo` block too. `set_real_ip_from` takes an
/// address, a CIDR, `unix:` or a host name it resolves while loading (one
/// that does not resolve fails the load); `geo` takes an address or a CIDR
/// only; an empty entry leaves the directive without its argument.
pub fn unloadable_cidrs(setup: &Setup<'_>) -> Option<String> {
    if !real_ip_written(setup) {
        return None;
    }
    let v = setup.configmap?.doc.str_at(&["data", "proxy-real-ip-cidr"])?;
    let geo = cm_bool(setup, "use-proxy-protocol", false)
        && cm_bool(setup, "use-forwarded-headers", false)
        && controller_version(setup).is_none_or(|v| v >= (1, 13));
    let bad: Vec<String> = v
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::trim)
        .filter(|c| c.is_empty() || (geo || *c != "unix:") && realip_kube::ingress::cidr_list(c).is_err())
        .map(|c| {
            if c.is_empty() {
                "an empty entry (a field of spaces between commas)".to_owned()
            } else {
                format!("`{c}`")
            }
        })
        .collect();
    if bad.is_empty() {
        return None;
    }
    let geo_note = if geo {
        " (and, with use-proxy-protocol and use-forwarded-headers on, from ingress-nginx v1.13 into a `geo` block, which takes addresses and CIDRs only)"
    } else {
        ""
    };
    Some(format!(
        "{} not an address or CIDR: nginx.tmpl writes each entry into `set_real_ip_from` in the http block of every configuration{geo_note}, where nginx takes an address, a CIDR, `unix:` or a host name it must resolve while loading (this cannot be one, or depends on DNS at each reload), {UNLOADABLE}; fix the entries in the ConfigMap (ingress-nginx itself loads no configuration with them, so --trust cannot stand in for them) and run the migration again",
        bad.join(", ") + if bad.len() == 1 { " is" } else { " are" },
    ))
}

/// The ConfigMap's proxy buffer or protocol key whose value nginx
/// refuses in every location ([`crate::reload::configmap_fault`]), with why.
pub fn unloadable_location(setup: &Setup<'_>) -> Option<(&'static str, String)> {
    let (key, what) = crate::reload::configmap_fault(setup)?;
    Some((
        key,
        format!("{what}: nginx.tmpl writes it into every location (ingress-nginx does not check the ConfigMap's value), {UNLOADABLE}; fix the value and run the migration again"),
    ))
}

/// The ConfigMap's header-name keys nginx.tmpl writes unquoted into every
/// location, as `$http_<name>` (`X-Original-Forwarded-For`,
/// `X-Original-Forwarded-Host`).
pub const HEADER_KEYS: [&str; 2] = ["forwarded-for-header", "forwarded-host-header"];

/// Why the ConfigMap's header-name key `key` ([`HEADER_KEYS`]) makes every
/// configuration fail to load, or `None`. nginx.tmpl writes it into every
/// location (`proxy_set_header X-Original-Forwarded-… $http_<name>`):
/// whitespace, `;` or `{` inside the name split the directive, and a `$`
/// starts another variable, which nginx refuses unless it happens to be
/// one of its own. forwarded-for-header goes, with the real-IP module on
/// ([`real_ip_written`]) and PROXY off, into `real_ip_header` too, which
/// an empty name or one opening a quote leaves without its argument.
pub fn unloadable_header(setup: &Setup<'_>, key: &str) -> Option<String> {
    let raw = setup.configmap?.doc.str_at(&["data", key])?;
    let v = raw.trim();
    let splits = v.contains(|c: char| c.is_ascii_whitespace() || c == ';' || c == '{' || c == '$');
    let header_line =
        key == "forwarded-for-header" && real_ip_written(setup) && !cm_bool(setup, "use-proxy-protocol", false);
    let empty = header_line && (v.is_empty() || v.starts_with(['"', '\'']));
    if !splits && !empty {
        return None;
    }
    let what = if splits {
        "nginx.tmpl writes it unquoted into every location (`proxy_set_header X-Original-Forwarded-… $http_…`), where whitespace, `;` or `{` split the directive and a `$` starts a variable nginx must know"
    } else {
        "nginx.tmpl writes it unquoted into `real_ip_header` in the http block, which is then left without its header name"
    };
    Some(format!(
        "{raw:?} is not a header name nginx can take: {what}, {UNLOADABLE}; fix the value and run the migration again"
    ))
}

/// Why a [`STATUS_CODE_KEYS`] value `raw` (as written) makes every
/// configuration ingress-nginx renders fail to load, or `None` when nginx
/// takes it. ingress-nginx decodes it with mapstructure's weak typing (Go's
/// `strconv.ParseInt(s, 0, 64)`, an empty string read as 0; a value it
/// cannot parse leaves the default, 503); nginx's `limit_req_status` and
/// `limit_conn_status` take 400 to 599 only (`nginx -t`: "value must be
/// between 400 and 599", a negative number "invalid number").
pub fn unloadable_status(raw: &str) -> Option<String> {
    let code = status_code(raw)?;
    if (400..=599).contains(&code) {
        return None;
    }
    let read =
        if raw == code.to_string() { String::new() } else { format!(" (ingress-nginx reads `{raw}` as {code})") };
    Some(format!(
        "{code}{read} is not a status nginx accepts here (400 to 599): nginx.tmpl writes it into the http block of every configuration, {UNLOADABLE}; fix the value (400 to 599) and run the migration again"
    ))
}

/// Whether a Namespace with `labels` matches the label selector `sel`
/// (Kubernetes' `labels.Parse` syntax: requirements separated by commas
/// outside parentheses, all of which must hold: `key`, `!key`, `key=v`,
/// `key==v`, `key!=v`, `key in (a, b)`, `key notin (a, b)`, `key > n`,
/// `key < n`), or `None` when `sel` is not in a form this reads.
pub fn selector_matches(sel: &str, labels: &std::collections::BTreeMap<String, String>) -> Option<bool> {
    let mut reqs = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (i, c) in sel.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                reqs.push(&sel[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    reqs.push(&sel[start..]);
    let mut all = true;
    for req in reqs {
        all &= requirement(req.trim(), labels)?;
    }
    Some(all)
}

/// One requirement of [`selector_matches`].
fn requirement(req: &str, labels: &std::collections::BTreeMap<String, String>) -> Option<bool> {
    let key = |k: &str| {
        let k = k.trim();
        (!k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))).then(|| k.to_owned())
    };
    let int = |v: &str| v.trim().parse::<i64>().ok();
    if let Some(open) = req.find('(') {
        let values = req[open + 1..].strip_suffix(')')?;
        let values: Vec<&str> = values.split(',').map(str::trim).collect();
        let (k, op) = req[..open].trim().rsplit_once(char::is_whitespace)?;
        let k = key(k)?;
        let value = labels.get(&k).map(String::as_str);
        return match op {
            "in" => Some(value.is_some_and(|v| values.contains(&v))),
            "notin" => Some(value.is_none_or(|v| !values.contains(&v))),
            _ => None,
        };
    }
    if let Some(k) = req.strip_prefix('!') {
        return Some(!labels.contains_key(&key(k)?));
    }
    if let Some((k, v)) = req.split_once("!=") {
        return Some(labels.get(&key(k)?).map(String::as_str) != Some(v.trim()));
    }
    if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
        return Some(labels.get(&key(k)?).map(String::as_str) == Some(v.trim()));
    }
    if let Some((k, v)) = req.split_once('>') {
        let n = int(v)?;
        return Some(labels.get(&key(k)?).and_then(|l| int(l)).is_some_and(|l| l > n));
    }
    if let Some((k, v)) = req.split_once('<') {
        let n = int(v)?;
        return Some(labels.get(&key(k)?).and_then(|l| int(l)).is_some_and(|l| l < n));
    }
    Some(labels.contains_key(&key(req)?))
}

#[cfg(test)]
mod selector_tests {
    use super::selector_matches;

    #[test]
    fn equality_and_set_based_selectors() {
        let labels: std::collections::BTreeMap<String, String> =
            [("team", "web"), ("tier", "3")].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        for (sel, want) in [
            ("team=web", Some(true)),
            ("team == web", Some(true)),
            ("team!=web", Some(false)),
            ("other!=x", Some(true)),
            ("team in (web, shop)", Some(true)),
            ("team in (shop)", Some(false)),
            ("team notin (shop)", Some(true)),
            ("other notin (shop)", Some(true)),
            ("other in (shop)", Some(false)),
            ("team", Some(true)),
            ("!team", Some(false)),
            ("!other", Some(true)),
            ("team in (web), tier > 2", Some(true)),
            ("tier < 2", Some(false)),
            ("team in (web", None),
            ("team within (web)", None),
            ("team web", None),
        ] {
            assert_eq!(selector_matches(sel, &labels), want, "{sel}");
        }
    }
}
