//! The proxy's life: bind, serve, reload, drain.
//!
//! - Reload (SIGHUP, or the config file changing on disk): the new file is
//!   parsed, validated and compiled into a snapshot *before* anything
//!   changes; a bad one is logged and counted and the old one keeps
//!   serving. Listener addresses are bound once; changing `bind` needs a
//!   restart (a reload that tries says so).
//! - SIGTERM/SIGINT: `/readyz` turns 503 at once, traffic is still served
//!   for `drain_delay` (so load-balancer health checks notice), then the
//!   listeners close and in-flight requests get up to `drain_timeout`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use realip_kube::ingress::Desired;
use realip_kube::watch::WatchConfig;

use crate::config::Config;
use crate::http::Shared;
use crate::log::AccessLog;
use crate::snapshot::Snapshot;
use crate::Error;

fn event(v: &serde_json::Value) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{v}");
}

/// Routes from Kubernetes (`--kubernetes`): the latest desired state,
/// composed with the file on every reload.
type Dynamic = Arc<std::sync::Mutex<Option<Desired>>>;

/// Loads, validates and compiles the file: what `--check` runs.
pub fn check(path: &Path) -> Result<Snapshot, Error> {
    check_with(path, None, None)
}

fn check_with(path: &Path, d: Option<&Desired>, previous: Option<&Snapshot>) -> Result<Snapshot, Error> {
    Snapshot::build_reusing(crate::kubernetes::compose(Config::load(path)?, d), previous)
}

/// Runs the proxy from `path` until a shutdown signal, then drains.
pub async fn run(path: PathBuf) -> Result<(), Error> {
    run_with(path, None).await
}

/// As [`run`]; with `kubernetes`, routes also come from the Ingresses of
/// that class (reflectors on Ingresses, Services, EndpointSlices), applied
/// like reloads.
pub async fn run_with(path: PathBuf, kubernetes: Option<WatchConfig>) -> Result<(), Error> {
    let dynamic: Dynamic = Arc::default();
    let snapshot = check(&path)?;
    // Reach the API before binding anything: a bad kubeconfig fails fast.
    let client = match &kubernetes {
        Some(_) => Some(realip_kube::watch::connect().await.map_err(|e| Error::Kubernetes(e.to_string()))?),
        None => None,
    };
    let log = AccessLog::open(&snapshot.config.log)
        .map_err(|e| Error::Io { context: "opening the access log".into(), source: e })?;
    let mut binds = Vec::new();
    for l in &snapshot.config.listeners {
        let tcp = TcpListener::bind(&l.bind)
            .await
            .map_err(|e| Error::Io { context: format!("listener `{}`: binding {}", l.name, l.bind), source: e })?;
        binds.push((Arc::<str>::from(l.name.as_str()), tcp));
    }
    let admin = match &snapshot.config.admin.bind {
        Some(b) => Some(
            TcpListener::bind(b).await.map_err(|e| Error::Io { context: format!("admin: binding {b}"), source: e })?,
        ),
        None => None,
    };
    let shared = Arc::new(Shared::new(snapshot, log));
    // Signal handlers first: a SIGHUP sent as soon as we say "listening"
    // must reload, not kill (SIGHUP's default action).
    #[cfg(unix)]
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let hup = None;
    let shutdown = shutdown_signal();
    let (stop_tx, stop_rx) = watch::channel(false);
    let graceful = Arc::new(GracefulShutdown::new());
    let mut tasks = Vec::new();
    for (name, tcp) in binds {
        let addr = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
        event(&serde_json::json!({"event": "listening", "listener": &*name, "addr": addr}));
        tasks.push(tokio::spawn(crate::listener::serve(
            name,
            tcp,
            Arc::clone(&shared),
            stop_rx.clone(),
            Arc::clone(&graceful),
        )));
    }
    if let Some(tcp) = admin {
        let addr = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
        event(&serde_json::json!({"event": "listening", "listener": "admin", "addr": addr}));
        // The admin endpoint outlives the drain so /readyz can say 503.
        tokio::spawn(crate::admin::serve(tcp, Arc::clone(&shared)));
    }
    if let (Some(cfg), Some(client)) = (kubernetes, client) {
        let (tx, mut rx) = watch::channel(None);
        event(
            &serde_json::json!({"event": "kubernetes_watch", "ingress_class": cfg.class, "namespace": cfg.namespace}),
        );
        tokio::spawn(async move {
            if let Err(e) = realip_kube::watch::run(client, cfg, tx).await {
                event(&serde_json::json!({"event": "kubernetes_watch_failed", "error": e.to_string()}));
            }
        });
        let (path, shared, dynamic) = (path.clone(), Arc::clone(&shared), Arc::clone(&dynamic));
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let d = rx.borrow_and_update().clone();
                *dynamic.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = d;
                reload(&path, &shared, &dynamic);
            }
        });
    }
    tokio::spawn(reloader(path, Arc::clone(&shared), hup, dynamic));

    shutdown.await;
    shared.draining.store(true, Ordering::SeqCst);
    let lifecycle = shared.snapshot.load().config.lifecycle.clone();
    event(&serde_json::json!({"event": "draining", "drain_delay_s": lifecycle.drain_delay.0.as_secs_f64()}));
    tokio::time::sleep(lifecycle.drain_delay.0).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
    match tokio::time::timeout(lifecycle.drain_timeout.0, graceful.shutdown()).await {
        Ok(()) => event(&serde_json::json!({"event": "drained"})),
        Err(_) => event(&serde_json::json!({"event": "drain_timeout", "note": "in-flight requests cut"})),
    }
    Ok(())
}

/// Reloads on SIGHUP and when the file's modification time changes.
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

async fn reloader(path: PathBuf, shared: Arc<Shared>, mut hup: Hangup, dynamic: Dynamic) {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen: Option<SystemTime> = mtime(&path);
    loop {
        let interval = shared.snapshot.load().config.lifecycle.watch_interval.0;
        let poll = async {
            if interval.is_zero() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(interval).await;
        };
        #[cfg(unix)]
        let hup_signal = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_signal = std::future::pending::<()>();
        let by_signal = tokio::select! {
            () = hup_signal => true,
            () = poll => false,
        };
        let now = mtime(&path);
        if !by_signal && now == seen {
            continue;
        }
        seen = now;
        reload(&path, &shared, &dynamic);
    }
}

/// One reload attempt; the old snapshot stays unless the new one is good.
fn reload(path: &Path, shared: &Shared, dynamic: &Dynamic) {
    let d = dynamic.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let old = shared.snapshot.load_full();
    match check_with(path, d.as_ref(), Some(&old)) {
        Ok(new) => {
            let binds =
                |s: &Snapshot| s.config.listeners.iter().map(|l| (l.name.clone(), l.bind.clone())).collect::<Vec<_>>();
            if binds(&new) != binds(&old) {
                event(
                    &serde_json::json!({"event": "reload_warning", "note": "listener names or bind addresses changed; they apply after a restart"}),
                );
            }
            match AccessLog::open(&new.config.log) {
                Ok(log) => shared.log.store(Arc::new(log)),
                Err(e) => {
                    shared.metrics.inc("realip_config_reloads_total", &[("result", "error")]);
                    event(&serde_json::json!({"event": "reload_failed", "error": format!("access log: {e}")}));
                    return;
                }
            }
            shared.snapshot.store(Arc::new(new));
            shared.metrics.inc("realip_config_reloads_total", &[("result", "ok")]);
            event(&serde_json::json!({"event": "reloaded"}));
        }
        Err(e) => {
            shared.metrics.inc("realip_config_reloads_total", &[("result", "error")]);
            event(&serde_json::json!({"event": "reload_failed", "error": e.to_string()}));
        }
    }
}

/// Registers SIGTERM/SIGINT handlers now; the future completes on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        async move {
            let (Ok(mut term), Ok(mut int)) = handlers else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
