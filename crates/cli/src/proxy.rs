//! `realip proxy`: check or run the proxy.

use anyhow::{anyhow, Context as _};

use crate::args::{ProxyArgs, ProxyRuntime};
use crate::failure::Failure;

pub fn run(a: &ProxyArgs) -> Result<(), Failure> {
    if a.check {
        let snapshot = realip_proxy::server::check(&a.config)
            .map_err(|e| Failure::rejected(anyhow!("{}: {e}", a.config.display())))?;
        for w in snapshot.config.warnings() {
            eprintln!("{}: warning: {w}", a.config.display());
        }
        println!("{}: configuration is valid", a.config.display());
        return Ok(());
    }
    // Warnings do not stop the proxy; they are said once at start.
    if let Ok(config) = realip_proxy::Config::load(&a.config) {
        for w in config.warnings() {
            realip_proxy::log::event(&serde_json::json!({"event": "config_warning", "warning": w}));
        }
    }
    if a.workers == Some(0) {
        return Err(Failure::usage(anyhow!("--workers: must be at least 1")));
    }
    let workers = realip_proxy::workers::resolve(a.workers);
    // per-core: this thread's runtime keeps signals, reloads, watchers and
    // the admin listener; the listeners are served on `workers` threads.
    let (mut rt, serving) = match a.runtime {
        ProxyRuntime::PerCore => {
            (tokio::runtime::Builder::new_current_thread(), realip_proxy::server::Serving::Workers(workers))
        }
        ProxyRuntime::MultiThread => {
            let mut rt = tokio::runtime::Builder::new_multi_thread();
            rt.worker_threads(workers);
            (rt, realip_proxy::server::Serving::InRuntime)
        }
    };
    rt.enable_all();
    let kubernetes = if a.kubernetes {
        let publish_service = match &a.publish_service {
            Some(s) => Some(
                s.split_once('/')
                    .filter(|(n, m)| !n.is_empty() && !m.is_empty())
                    .map(|(n, m)| (n.to_owned(), m.to_owned()))
                    .ok_or_else(|| Failure::usage(anyhow!("--publish-service: `{s}` is not NAMESPACE/NAME")))?,
            ),
            None => None,
        };
        Some(realip_kube::watch::WatchConfig {
            class: a.ingress_class.clone(),
            ingress: !a.no_ingress,
            namespace: a.watch_namespace.clone(),
            publish_service,
            gateway_class: Some(a.gateway_class.clone()).filter(|c| !c.is_empty()),
            binds: None,    // the proxy sets them
            feedback: None, // the proxy sets it
            recheck: std::time::Duration::from_secs(a.kubernetes_recheck.max(1)),
            max_routes_per_namespace: a.kubernetes_max_routes_per_namespace,
        })
    } else {
        None
    };
    let rt = rt.build().context("starting the runtime").map_err(Failure::usage)?;
    rt.block_on(realip_proxy::server::run_serving(a.config.clone(), kubernetes, serving))
        .map_err(|e| Failure::rejected(anyhow!("{e}")))
}
