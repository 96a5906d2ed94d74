//! The proxy's life: bind, serve, reload, drain.
//!
//! - Serving ([`Serving`]): the data listeners are served either in the
//!   calling runtime, or on worker threads, each with its own
//!   `SO_REUSEPORT` socket per listener ([`crate::workers`]); in both cases
//!   the calling runtime runs signals, the reloader, the watchers and the
//!   admin listener, and the drain below covers every worker.
//! - Reload (SIGHUP, or the config file changing on disk, or a new desired
//!   state from the Kubernetes watcher): the new file is parsed, validated
//!   and compiled into a snapshot *before* anything changes; a bad one is
//!   logged and counted and the old one keeps serving. Listener addresses
//!   and the connection caps are set once; changing `bind` needs a restart
//!   (a reload that tries says so).
//! - One task, the reloader, owns the running snapshot: it is the only
//!   writer of `Shared::snapshot` after start. The file watcher and the
//!   Kubernetes watcher send it [`Trigger`]s over a channel and it applies
//!   them one at a time, so a slow file reload can never overwrite a
//!   snapshot built from a newer Kubernetes state.
//! - SIGTERM/SIGINT: `/readyz` turns 503 at once, traffic is still served
//!   for `drain_delay` (so load-balancer health checks notice), then the
//!   listeners close and in-flight requests get up to `drain_timeout`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use realip_kube::routes::RouteSet;
use realip_kube::watch::WatchConfig;

use crate::accept::Acceptor;
use crate::config::Config;
use crate::drain::Drain;
use crate::http::Shared;
use crate::kubernetes::{Conversions, Reported};
use crate::log::AccessLog;
use crate::metrics::ReloadResult;
use crate::snapshot::Snapshot;
use crate::Error;

use crate::log::event;

/// Why the reloader should build a new snapshot.
#[derive(Debug)]
pub enum Trigger {
    /// SIGHUP, or the file's modification time changed.
    File,
    /// The Kubernetes watcher has a new desired state: the route set of
    /// the Gateway API objects and Ingresses, merged, composed with the
    /// file from now on.
    Kubernetes(Option<RouteSet>),
    /// The Kubernetes state sent before this one is complete (both sides
    /// in): once it is composed, the proxy is ready.
    KubernetesSynced,
}

/// Loads, validates and compiles the file: what `--check` runs.
pub fn check(path: &Path) -> Result<Snapshot, Error> {
    check_with(path, None, None, &mut Reported::default(), &mut Conversions::default())
}

fn check_with(
    path: &Path,
    d: Option<&RouteSet>,
    previous: Option<&Snapshot>,
    reported: &mut Reported,
    conversions: &mut Conversions,
) -> Result<Snapshot, Error> {
    Snapshot::build_reusing(crate::kubernetes::compose_logged(Config::load(path)?, d, reported, conversions), previous)
}

/// Runs the proxy from `path` until a shutdown signal, then drains.
pub async fn run(path: PathBuf) -> Result<(), Error> {
    run_with(path, None).await
}

/// Where the data listeners are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serving {
    /// In the runtime that runs the server, one socket per listener (what
    /// `--runtime multi-thread` does).
    InRuntime,
    /// On this many worker threads, each a single-threaded runtime with
    /// its own `SO_REUSEPORT` socket per listener ([`crate::workers`]);
    /// the calling runtime keeps signals, reloads and the admin listener.
    Workers(usize),
}

/// As [`run`]; with `kubernetes`, routes also come from the Ingresses of
/// that class (reflectors on Ingresses, Services, EndpointSlices), applied
/// like reloads. Listeners are served in the calling runtime.
pub async fn run_with(path: PathBuf, kubernetes: Option<WatchConfig>) -> Result<(), Error> {
    run_serving(path, kubernetes, Serving::InRuntime).await
}

/// The sockets of one data listener: one, or one per worker.
enum Bound {
    One(TcpListener),
    PerWorker(Vec<std::net::TcpListener>),
}

/// As [`run_with`], serving the listeners as `serving` says.
pub async fn run_serving(path: PathBuf, kubernetes: Option<WatchConfig>, serving: Serving) -> Result<(), Error> {
    if let Serving::Workers(n) = serving {
        // Before the first pools are built: they keep a shard per worker.
        crate::workers::set_count(n);
    }
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
        let error = |e| Error::Io { context: format!("listener `{}`: binding {}", l.name, l.bind), source: e };
        let tcp = match serving {
            Serving::InRuntime => Bound::One(TcpListener::bind(&l.bind).await.map_err(error)?),
            Serving::Workers(n) => Bound::PerWorker(crate::workers::bind_group(&l.bind, n).map_err(error)?),
        };
        binds.push((Arc::<str>::from(l.name.as_str()), tcp));
    }
    let admin = match &snapshot.config.admin.bind {
        Some(b) => Some(
            TcpListener::bind(b).await.map_err(|e| Error::Io { context: format!("admin: binding {b}"), source: e })?,
        ),
        None => None,
    };
    // One cap for all data listeners together (the admin listener has its own).
    let slots = Arc::new(Semaphore::new(snapshot.config.limits.max_connections));
    // The controller's Gateway status says which listeners a bind serves:
    // it gets the file's binds now and after every reload.
    let (binds_tx, binds_rx) = watch::channel(crate::kubernetes::binds(&snapshot.config));
    // And what the proxy does not serve of the Gateway side, after every
    // composition that changes it (status only: it converges).
    let (feedback_tx, feedback_rx) = watch::channel(realip_kube::routes::Feedback::default());
    let shared = Arc::new(Shared::new(snapshot, log));
    // In Kubernetes mode not ready before the first complete composition.
    shared.synced.store(kubernetes.is_none(), Ordering::SeqCst);
    // Signal handlers first: a SIGHUP sent as soon as we say "listening"
    // must reload, not kill (SIGHUP's default action).
    #[cfg(unix)]
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    #[cfg(not(unix))]
    let hup = None;
    let shutdown = shutdown_signal();
    let (drain, watch) = Drain::new();
    let (tasks, workers) = serve_listeners(binds, &shared, &slots, &watch)?;
    // Only the accept loops and connections hold the drain's watch.
    drop(watch);
    if let Some(tcp) = admin {
        let addr = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
        event(&serde_json::json!({"event": "listening", "listener": "admin", "addr": addr}));
        // The admin endpoint outlives the drain so /readyz can say 503.
        tokio::spawn(crate::admin::serve(Acceptor::new(tcp, "admin".into()), Arc::clone(&shared)));
    }
    let (triggers, queue) = mpsc::channel(16);
    if let (Some(cfg), Some(client)) =
        (kubernetes.map(|c| WatchConfig { binds: Some(binds_rx), feedback: Some(feedback_rx), ..c }), client)
    {
        let (tx, rx) = watch::channel(realip_kube::watch::Published::default());
        event(
            &serde_json::json!({"event": "kubernetes_watch", "ingress_class": cfg.class, "namespace": cfg.namespace}),
        );
        tokio::spawn(realip_kube::watch::supervise(client, cfg, tx));
        tokio::spawn(forward_kubernetes(rx, triggers.clone()));
    }
    tokio::spawn(flush_access_log(Arc::clone(&shared)));
    if !tasks.is_empty() {
        // Listeners served here: so are their upstream connections.
        tokio::spawn(crate::workers::prune_idle_upstreams(Arc::clone(&shared)));
    }
    tokio::spawn(file_watch(path.clone(), Arc::clone(&shared), hup, triggers));
    tokio::spawn(reloader_with(path, Arc::clone(&shared), queue, Some((binds_tx, feedback_tx))));

    shutdown.await;
    shared.draining.store(true, Ordering::SeqCst);
    let lifecycle = shared.snapshot.load().config.lifecycle.clone();
    event(&serde_json::json!({"event": "draining", "drain_delay_s": lifecycle.drain_delay.0.as_secs_f64()}));
    tokio::time::sleep(lifecycle.drain_delay.0).await;
    // Listeners close (their accept loops return) and every connection is
    // asked to shut down gracefully; wait for them up to drain_timeout.
    let drained = drain.drain(lifecycle.drain_timeout.0);
    if drained.await {
        event(&serde_json::json!({"event": "drained"}));
    } else {
        event(&serde_json::json!({"event": "drain_timeout", "note": "in-flight requests cut"}));
    }
    for t in tasks {
        let _ = t.await;
    }
    // The workers' connections are done or cut: their runtimes end.
    workers.stop();
    shared.log.load().flush();
    Ok(())
}

/// The worker threads of [`Serving::Workers`], and how to end them.
struct Workers {
    stop: watch::Sender<bool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Ends every worker's runtime (connections still open are cut) and
    /// waits for the threads.
    fn stop(self) {
        self.stop.send_replace(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Starts the accept loops: tasks of this runtime for [`Bound::One`],
/// worker threads for [`Bound::PerWorker`].
fn serve_listeners(
    binds: Vec<(Arc<str>, Bound)>,
    shared: &Arc<Shared>,
    slots: &Arc<Semaphore>,
    drain: &crate::drain::Watch,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, Workers), Error> {
    let mut tasks = Vec::new();
    let mut per_worker: Vec<Vec<(Arc<str>, std::net::TcpListener)>> = Vec::new();
    // Every worker's series exists (at 0) before anything says "listening".
    let workers = binds.iter().map(|(_, b)| if let Bound::PerWorker(s) = b { s.len() } else { 1 }).max();
    for i in 0..workers.unwrap_or(0) {
        shared.metrics.worker(i);
    }
    for (name, tcp) in binds {
        match tcp {
            Bound::One(tcp) => {
                let addr = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
                event(&serde_json::json!({"event": "listening", "listener": &*name, "addr": addr}));
                tasks.push(tokio::spawn(crate::listener::serve(
                    Arc::clone(&name),
                    Acceptor::new(tcp, name),
                    Arc::clone(shared),
                    Arc::clone(slots),
                    drain.clone(),
                    0,
                )));
            }
            Bound::PerWorker(sockets) => {
                let addr = sockets.first().and_then(|s| s.local_addr().ok()).map(|a| a.to_string());
                event(&serde_json::json!({"event": "listening", "listener": &*name, "addr": addr.unwrap_or_default(),
                    "workers": sockets.len()}));
                per_worker.resize_with(sockets.len(), Vec::new);
                for (w, s) in per_worker.iter_mut().zip(sockets) {
                    w.push((Arc::clone(&name), s));
                }
            }
        }
    }
    let (stop, stopped) = watch::channel(false);
    let mut threads = Vec::new();
    for (i, listeners) in per_worker.into_iter().enumerate() {
        let worker = crate::workers::Worker {
            index: i,
            listeners,
            shared: Arc::clone(shared),
            slots: Arc::clone(slots),
            drain: drain.clone(),
            stop: stopped.clone(),
        };
        threads.push(
            crate::workers::spawn(worker)
                .map_err(|e| Error::Io { context: format!("starting worker {i}"), source: e })?,
        );
    }
    Ok((tasks, Workers { stop, threads }))
}

/// Writes a buffered access log every `flush_interval` (of the log in
/// force: a reload may change it); idles while the log is unbuffered.
async fn flush_access_log(shared: Arc<Shared>) {
    loop {
        let every = shared.log.load().flush_interval();
        tokio::time::sleep(every.unwrap_or(std::time::Duration::from_secs(1))).await;
        if every.is_some() {
            shared.log.load().flush();
        }
    }
}

/// The SIGHUP stream, if it could be registered.
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

/// Sends [`Trigger::File`] on SIGHUP and when the file's modification
/// time changes (polled every `lifecycle.watch_interval`).
async fn file_watch(path: PathBuf, shared: Arc<Shared>, mut hup: Hangup, triggers: mpsc::Sender<Trigger>) {
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
        if triggers.send(Trigger::File).await.is_err() {
            return;
        }
    }
}

/// The only writer of the running snapshot: applies triggers in arrival
/// order, one at a time. Triggers that queued during a reload are folded
/// into the next one (the latest Kubernetes state wins; the file is read
/// afresh anyway).
pub async fn reloader(path: PathBuf, shared: Arc<Shared>, queue: mpsc::Receiver<Trigger>) {
    reloader_with(path, shared, queue, None).await;
}

/// The channels to the controller: the binds of every applied file, and
/// what the proxy does not serve of the Gateway side.
type ToController = (watch::Sender<Vec<realip_kube::routes::Bind>>, watch::Sender<realip_kube::routes::Feedback>);

/// [`reloader`], also sending the binds of every applied file and the
/// feedback of every applied composition on `to_controller` (for the
/// controller's Gateway status).
async fn reloader_with(
    path: PathBuf,
    shared: Arc<Shared>,
    mut queue: mpsc::Receiver<Trigger>,
    to_controller: Option<ToController>,
) {
    let mut dynamic: Option<RouteSet> = None;
    // Whether the running snapshot was built from the file as it is and
    // `dynamic`: then a Kubernetes change of endpoints only replaces the
    // pools it touches (`Snapshot::with_upstreams`) instead of composing
    // and compiling every route again.
    let mut in_force = false;
    // Unserved routes are logged when that changes, not on every reload.
    let mut reported = Reported::default();
    // Routes converted by the last reload, reused when they come again.
    let mut conversions = Conversions::default();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        let mut file = false;
        let mut synced = false;
        let mut latest: Option<Option<RouteSet>> = None;
        while let Some(t) = next {
            match t {
                Trigger::Kubernetes(d) => latest = Some(d),
                Trigger::KubernetesSynced => synced = true,
                Trigger::File => file = true,
            }
            next = queue.try_recv().ok();
        }
        let mut endpoints = None;
        if let Some(d) = latest {
            if in_force && !file {
                if let (Some(old), Some(new)) = (&dynamic, &d) {
                    endpoints = crate::kubernetes::endpoint_changes(old, new);
                }
            }
            dynamic = d;
        }
        in_force = match endpoints {
            Some(changes) => {
                apply_endpoints(&shared, &changes)
                    || reload(&path, &shared, dynamic.as_ref(), &mut reported, &mut conversions)
            }
            None => reload(&path, &shared, dynamic.as_ref(), &mut reported, &mut conversions),
        };
        // Composed (a composition the file refuses is logged; the proxy
        // serves what it had, and waiting longer would not change it).
        if synced && !shared.synced.swap(true, Ordering::SeqCst) {
            event(&serde_json::json!({"event": "kubernetes_synced"}));
        }
        // Endpoints alone never change the binds.
        if let Some((tx, feedback)) = &to_controller {
            let now = crate::kubernetes::binds(&shared.snapshot.load().config);
            tx.send_if_modified(|cur| {
                let changed = *cur != now;
                if changed {
                    *cur = now;
                }
                changed
            });
            // Only what is in force, and only a change: an unchanged
            // feedback costs the controller nothing.
            if in_force {
                feedback.send_if_modified(|cur| {
                    let changed = cur != reported.feedback();
                    if changed {
                        cur.clone_from(reported.feedback());
                    }
                    changed
                });
            }
        }
    }
}

/// Hands every state the Kubernetes watcher publishes to the reloader:
/// Ingresses and Gateway API objects arrive in one value (one update per
/// watcher batch); the reloader gets one merged set (Gateway routes first,
/// in their precedence order, then the Ingresses'), and once the state is
/// complete, [`Trigger::KubernetesSynced`].
async fn forward_kubernetes(mut rx: watch::Receiver<realip_kube::watch::Published>, triggers: mpsc::Sender<Trigger>) {
    let mut synced = false;
    while rx.changed().await.is_ok() {
        let (set, ready) = {
            let p = rx.borrow_and_update();
            let set = match (p.gateway.clone(), p.ingress.as_ref().map(RouteSet::from_ingress)) {
                (None, None) => None,
                (g, i) => Some(g.unwrap_or_default().merge(i.unwrap_or_default())),
            };
            (set, p.ready)
        };
        if triggers.send(Trigger::Kubernetes(set)).await.is_err() {
            return;
        }
        if ready && !synced {
            synced = true;
            if triggers.send(Trigger::KubernetesSynced).await.is_err() {
                return;
            }
        }
    }
}

/// Replaces the pools whose endpoints changed in the running snapshot;
/// false when it cannot (then the caller reloads in full).
fn apply_endpoints(shared: &Shared, changes: &[crate::config::UpstreamConfig]) -> bool {
    if changes.is_empty() {
        return true;
    }
    match shared.snapshot.load().with_upstreams(changes) {
        Ok(new) => {
            // Resolved while the old snapshot lives: what stays keeps its counters.
            shared.metrics.bind(&new);
            shared.snapshot.store(Arc::new(new));
            shared.metrics.reloads.inc(ReloadResult::Ok);
            event(&serde_json::json!({"event": "reloaded", "scope": "endpoints", "upstreams": changes.len()}));
            true
        }
        Err(e) => {
            event(&serde_json::json!({"event": "endpoints_update_failed", "error": e.to_string(),
                "note": "reloading in full"}));
            false
        }
    }
}

/// One reload attempt; the old snapshot stays unless the new one is good
/// (then true).
fn reload(
    path: &Path,
    shared: &Shared,
    dynamic: Option<&RouteSet>,
    reported: &mut Reported,
    conversions: &mut Conversions,
) -> bool {
    let old = shared.snapshot.load_full();
    match check_with(path, dynamic, Some(&old), reported, conversions) {
        Ok(new) => {
            // The sockets are bound once, at start: a reload that renames,
            // adds or removes a listener or moves its address is refused
            // as a whole (the connections of a renamed bind would find no
            // settings, and the controller would be told of binds nobody
            // listens on).
            let binds =
                |s: &Snapshot| s.config.listeners.iter().map(|l| (l.name.clone(), l.bind.clone())).collect::<Vec<_>>();
            let (now, then) = (binds(&new), binds(&old));
            if now != then {
                shared.metrics.reloads.inc(ReloadResult::Error);
                let show =
                    |b: &[(String, String)]| b.iter().map(|(n, a)| format!("{n}={a}")).collect::<Vec<_>>().join(", ");
                event(&serde_json::json!({"event": "reload_failed",
                    "error": format!("listener names or bind addresses changed (running: {}; file: {}): they take a restart; the running configuration stays", show(&then), show(&now))}));
                return false;
            }
            match AccessLog::open(&new.config.log) {
                Ok(log) => shared.log.store(Arc::new(log)),
                Err(e) => {
                    shared.metrics.reloads.inc(ReloadResult::Error);
                    event(&serde_json::json!({"event": "reload_failed", "error": format!("access log: {e}")}));
                    return false;
                }
            }
            // Resolved while the old snapshot lives: what stays keeps its counters.
            shared.metrics.bind(&new);
            shared.snapshot.store(Arc::new(new));
            shared.metrics.reloads.inc(ReloadResult::Ok);
            event(&serde_json::json!({"event": "reloaded"}));
            true
        }
        Err(e) => {
            shared.metrics.reloads.inc(ReloadResult::Error);
            event(&serde_json::json!({"event": "reload_failed", "error": e.to_string()}));
            false
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

#[cfg(test)]
mod tests {
    use super::*;
    use realip_kube::ingress::{Backend, Desired, Route};

    struct TempFile(PathBuf);
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Kubernetes routes to one backend named `name`.
    fn desired(name: &str) -> RouteSet {
        RouteSet::from_ingress(&Desired {
            routes: vec![Route {
                ingress: format!("web/{name}"),
                host: Some(format!("{name}.example.com")),
                path: "/".into(),
                backend: format!("web/{name}:80"),
                allow: None,
                deny: vec![],
                rps: None,
                burst: None,
                rate_global: false,
                max_body: None,
                ssl_redirect: false,
            }],
            backends: vec![Backend {
                name: format!("web/{name}:80"),
                endpoints: vec!["10.0.0.1:80".parse().unwrap()],
                https: false,
            }],
            ..Desired::default()
        })
    }

    fn pools(shared: &Shared) -> Vec<String> {
        let mut p: Vec<String> = shared.snapshot.load().pools.keys().cloned().collect();
        p.sort();
        p
    }

    /// File and Kubernetes triggers go through one owner, in order: the
    /// snapshot in force always composes the file with the *latest*
    /// Kubernetes state, whatever the interleaving.
    #[tokio::test]
    async fn one_reloader_applies_file_and_kubernetes_triggers_in_order() {
        let file = TempFile(std::env::temp_dir().join(format!("realip-reloader-{}.toml", std::process::id())));
        std::fs::write(
            &file.0,
            "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n[[route]]\nupstream = \"a\"\n[[upstream]]\nname = \"a\"\nendpoints = [\"127.0.0.1:9\"]\n",
        )
        .unwrap();
        let first = check(&file.0).unwrap();
        let log = AccessLog::open(&first.config.log).unwrap();
        let shared = Arc::new(Shared::new(first, log));
        for order in [
            vec![Trigger::Kubernetes(Some(desired("old"))), Trigger::File, Trigger::Kubernetes(Some(desired("new")))],
            vec![Trigger::Kubernetes(Some(desired("old"))), Trigger::Kubernetes(Some(desired("new"))), Trigger::File],
            vec![Trigger::File, Trigger::Kubernetes(Some(desired("new"))), Trigger::File, Trigger::File],
        ] {
            let (tx, rx) = mpsc::channel(16);
            let task = tokio::spawn(reloader(file.0.clone(), Arc::clone(&shared), rx));
            for t in order {
                tx.send(t).await.unwrap();
                tokio::task::yield_now().await;
            }
            drop(tx);
            task.await.unwrap();
            assert_eq!(pools(&shared), ["a", "k8s:web/new:80"]);
        }
        // A Kubernetes state that goes away takes its routes with it.
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(reloader(file.0.clone(), Arc::clone(&shared), rx));
        tx.send(Trigger::Kubernetes(Some(desired("new")))).await.unwrap();
        tx.send(Trigger::Kubernetes(None)).await.unwrap();
        tx.send(Trigger::File).await.unwrap();
        drop(tx);
        task.await.unwrap();
        assert_eq!(pools(&shared), ["a"]);
    }

    /// A reload keeps the counters of routes and upstreams that stay and
    /// drops the series of those that are gone.
    #[test]
    fn reload_keeps_counters_of_what_stays_and_drops_what_is_gone() {
        use std::fmt::Write as _;
        let file = TempFile(std::env::temp_dir().join(format!("realip-reload-metrics-{}.toml", std::process::id())));
        let config = |routes: &[&str]| {
            let mut c = String::from("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n");
            for r in routes {
                let _ = write!(
                    c,
                    "[[route]]\nname = \"{r}\"\nhost = \"{r}.example.com\"\nupstream = \"{r}\"\n[[upstream]]\nname = \"{r}\"\nendpoints = [\"127.0.0.1:9\"]\n"
                );
            }
            std::fs::write(&file.0, c).unwrap();
        };
        config(&["stays", "goes"]);
        let first = check(&file.0).unwrap();
        let log = AccessLog::open(&first.config.log).unwrap();
        let shared = Shared::new(first, log);
        let count = |shared: &Shared| {
            let snap = shared.snapshot.load_full();
            for r in snap.routes.all() {
                r.metrics(&shared.metrics).denied();
                r.upstream.metrics(&shared.metrics).error(crate::metrics::UpstreamKind::Connect);
            }
        };
        count(&shared);
        config(&["stays"]);
        reload(&file.0, &shared, None, &mut Reported::default(), &mut Conversions::default());
        let text = shared.metrics.render();
        assert!(text.contains("realip_config_reloads_total{result=\"ok\"} 1"), "{text}");
        assert!(!text.contains("goes"), "the series of a route that is gone go with it: {text}");
        count(&shared);
        let text = shared.metrics.render();
        assert!(text.contains("realip_denied_total{route=\"stays\"} 2"), "{text}");
        assert!(text.contains("realip_upstream_errors_total{upstream=\"stays\",kind=\"connect\"} 2"), "{text}");
    }
}
