//! The proxy's Kubernetes mode: routes and upstream pools made from the
//! Ingresses of our class ([`realip_kube::ingress::Desired`]) are added to
//! the routes of the configuration file, and the whole is validated and
//! swapped in like any reload — so a change never drops a request in
//! flight, and a bad result never replaces a good running configuration.
//! Upstream pools target ready pod IPs directly (no ClusterIP hop).

use realip_kube::ingress::Desired;
use serde_json::json;

use crate::config::{CertConfig, Config, RouteConfig, UpstreamConfig};

/// Routes and upstreams for `d`.
pub fn routes(d: &Desired) -> (Vec<RouteConfig>, Vec<UpstreamConfig>) {
    let upstreams = d
        .backends
        .iter()
        .filter_map(|b| {
            let v = json!({
                "name": format!("k8s:{}", b.name),
                "endpoints": b.endpoints.iter().map(ToString::to_string).collect::<Vec<_>>(),
            });
            let mut u: UpstreamConfig = serde_json::from_value(v).ok()?;
            if b.https {
                u.tls = crate::config::UpstreamTls::Insecure;
            }
            u.from_kubernetes = true;
            Some(u)
        })
        .collect();
    let routes = d
        .routes
        .iter()
        .filter_map(|r| {
            let name = format!("{}:{}{}", r.ingress, r.host.as_deref().unwrap_or("*"), r.path);
            let mut v = json!({"name": name, "path_prefix": r.path, "upstream": format!("k8s:{}", r.backend), "deny": r.deny, "https_redirect": r.ssl_redirect});
            if let Some(h) = &r.host {
                v["host"] = json!(h);
            }
            if let Some(a) = &r.allow {
                v["allow"] = json!(a);
            }
            if let Some(rps) = r.rps {
                v["rate"] = json!({"per_second": rps, "burst": r.burst.unwrap_or(rps)});
            }
            if let Some(b) = r.max_body {
                v["max_body_bytes"] = json!(b);
            }
            serde_json::from_value(v).ok()
        })
        .collect();
    (routes, upstreams)
}

/// The file's configuration plus the Kubernetes routes (file routes first)
/// and the Ingresses' TLS Secrets on listeners with `tls.kubernetes`.
pub fn compose(mut config: Config, d: Option<&Desired>) -> Config {
    if let Some(d) = d {
        let (routes, upstreams) = routes(d);
        // Two routes for one host and path would fail validation and with
        // it every Kubernetes change: the first one (file routes, then the
        // Ingresses in order) serves, the later one is reported.
        let key = |r: &RouteConfig| {
            (r.host.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase()), r.path_prefix.clone())
        };
        let mut seen: std::collections::HashMap<_, String> =
            config.routes.iter().map(|r| (key(r), crate::config::route_name(r))).collect();
        for r in routes {
            let name = crate::config::route_name(&r);
            match seen.entry(key(&r)) {
                std::collections::hash_map::Entry::Occupied(first) => crate::log::event(&json!({
                    "event": "kubernetes_route_shadowed", "route": name, "served_by": first.get(),
                })),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(name);
                    config.routes.push(r);
                }
            }
        }
        config.upstreams.extend(upstreams);
        for l in &mut config.listeners {
            let Some(tls) = l.tls.as_mut().filter(|t| t.kubernetes) else { continue };
            tls.certificates.extend(d.certs.iter().map(|c| CertConfig {
                cert: format!("secret {}", c.name).into(),
                key: format!("secret {}", c.name).into(),
                pem: Some(std::sync::Arc::new((c.cert_pem.clone(), c.key_pem.clone()))),
            }));
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use realip_kube::ingress::{Backend, Route};

    #[test]
    fn desired_routes_become_validated_config() {
        let d = Desired {
            routes: vec![Route {
                ingress: "web/site".into(),
                host: Some("app.example.com".into()),
                path: "/api".into(),
                backend: "web/app:80".into(),
                allow: Some(vec!["203.0.113.0/24".into()]),
                deny: vec![],
                rps: Some(10.0),
                burst: Some(50.0),
                max_body: Some(1024),
                ssl_redirect: true,
            }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: true }],
            ..Desired::default()
        };
        let base: Config = toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap();
        let c = compose(base, Some(&d));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.routes[0].upstream, "k8s:web/app:80");
        assert_eq!(c.routes[0].max_body_bytes, Some(1024));
        assert!(c.routes[0].https_redirect);
        assert!(c.upstreams[0].from_kubernetes && c.upstreams[0].endpoints.is_empty());
        assert_eq!(c.upstreams[0].tls, crate::config::UpstreamTls::Insecure);
        assert_eq!(crate::config::route_name(&c.routes[0]), "web/site:app.example.com/api");
        // A second Ingress claiming the same host and path is shadowed, not fatal.
        let mut twice = d.clone();
        let mut other = twice.routes[0].clone();
        other.ingress = "web/other".into();
        twice.routes.push(other);
        let base: Config = toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap();
        let c = compose(base, Some(&twice));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.routes.len(), 1);
    }

    #[test]
    fn an_endpoint_change_rebuilds_only_the_pool_it_touches() {
        use crate::snapshot::Snapshot;
        let backend =
            |name: &str, ip: &str| Backend { name: name.into(), endpoints: vec![ip.parse().unwrap()], https: false };
        let d = |a: &str| Desired {
            backends: vec![backend("web/a:80", a), backend("web/b:80", "10.0.0.9:80")],
            ..Desired::default()
        };
        let base = || -> Config { toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap() };
        let first = Snapshot::build(compose(base(), Some(&d("10.0.0.1:80")))).unwrap();
        let second = Snapshot::build_reusing(compose(base(), Some(&d("10.0.0.2:80"))), Some(&first)).unwrap();
        let same = |n: &str| std::sync::Arc::ptr_eq(&first.pools[n], &second.pools[n]);
        assert!(!same("k8s:web/a:80"), "its endpoints changed");
        assert!(same("k8s:web/b:80"), "untouched: idle connections and ejections survive");
    }
}
