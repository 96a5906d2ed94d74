//! Network namespaces, the commands that configure them, threads that run
//! inside them, and processes started in them.
//!
//! Invariants: every namespace this module creates is named with
//! [`PREFIX`] and removed when its [`Netns`] guard drops (processes inside
//! are killed first), so a panic or an early return leaves nothing behind;
//! `realip lab --cleanup` ([`cleanup`]) removes what a killed run left.
//! Nothing here touches the caller's own namespace: links are created
//! directly inside the lab's namespaces.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Every lab namespace starts with this.
pub const PREFIX: &str = "rlab-";

/// Runs a command to completion; an error carries its stderr.
pub fn sh(args: &[&str]) -> Result<String> {
    sh_in(args, None)
}

/// Runs a command with `input` on stdin.
pub fn sh_in(args: &[&str], input: Option<&str>) -> Result<String> {
    let cmd = args.join(" ");
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("starting `{cmd}`"), e))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| Error::io(format!("writing to `{cmd}`"), e))?;
    }
    let out = child.wait_with_output().map_err(|e| Error::io(format!("running `{cmd}`"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command { cmd, stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
    }
}

/// The same as [`sh_in`], without blocking the async runtime.
pub async fn sh_async(args: Vec<String>, input: Option<String>) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        sh_in(&a, input.as_deref())
    })
    .await
    .map_err(|e| Error::Unavailable(format!("command task: {e}")))?
}

/// Why the lab cannot build namespaces here, if it cannot.
pub fn unavailable() -> Option<String> {
    if !nix_is_root() {
        return Some("not running as root: network namespaces and nftables need CAP_NET_ADMIN".into());
    }
    for tool in ["ip", "nft"] {
        if sh(&["sh", "-c", &format!("command -v {tool}")]).is_err() {
            return Some(format!("`{tool}` not found (Debian packages iproute2 and nftables)"));
        }
    }
    let probe = format!("{PREFIX}probe-{}", std::process::id());
    match Netns::create(&probe) {
        Ok(ns) => match ns.nft(
            "table ip rlab_probe {\n  chain c {\n    type nat hook prerouting priority -100; policy accept;\n  }\n}\n",
        ) {
            Ok(()) => None,
            Err(e) => Some(format!("nftables NAT does not work in a network namespace here: {e}")),
        },
        Err(e) => Some(format!("cannot create a network namespace: {e}")),
    }
}

fn nix_is_root() -> bool {
    // The effective uid, read without unsafe code.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        .unwrap_or(false)
}

/// A network namespace, deleted (with every process in it) on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `name` (which must start with [`PREFIX`]) with loopback up.
    pub fn create(name: &str) -> Result<Netns> {
        debug_assert!(name.starts_with(PREFIX));
        sh(&["ip", "netns", "add", name])?;
        let ns = Netns { name: name.to_owned() };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `args` inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["ip", "netns", "exec", &self.name];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["ip", "-n", &self.name];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Sets sysctls (`key=value`) inside the namespace.
    pub fn sysctl(&self, settings: &[&str]) -> Result<()> {
        let mut all = vec!["sysctl", "-q", "-w"];
        all.extend_from_slice(settings);
        self.exec(&all).map(drop)
    }

    /// Loads an nftables ruleset (one atomic transaction).
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        sh_in(&["ip", "netns", "exec", &self.name, "nft", "-f", "-"], Some(ruleset)).map(drop)
    }

    /// A command line that runs `args` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// A thread inside the namespace with its own async runtime.
    pub fn runtime(&self) -> Result<NsRuntime> {
        NsRuntime::enter(&self.name)
    }
}

fn kill_all_in(name: &str) {
    if let Ok(pids) = sh(&["ip", "netns", "pids", name]) {
        for pid in pids.split_whitespace() {
            let _ = sh(&["kill", "-9", pid]);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_all_in(&self.name);
        let _ = sh(&["ip", "netns", "del", &self.name]);
    }
}

/// Names of the lab's namespaces that exist now (`run` narrows to one run).
pub fn existing(prefix: &str) -> Vec<String> {
    sh(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Removes every namespace whose name starts with `prefix` (default
/// [`PREFIX`]), killing the processes inside; returns what was removed.
pub fn cleanup(prefix: &str) -> Vec<String> {
    let found = existing(prefix);
    for n in &found {
        kill_all_in(n);
        let _ = sh(&["ip", "netns", "del", n]);
    }
    found
}

/// A thread that has entered a network namespace and drives a
/// current-thread tokio runtime: sockets created by futures spawned here
/// belong to that namespace. Stopped (tasks dropped) on drop.
#[derive(Debug)]
pub struct NsRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsRuntime {
    fn enter(name: &str) -> Result<NsRuntime> {
        let path = format!("/run/netns/{name}");
        let file = File::open(&path).map_err(|e| Error::io(format!("opening {path}"), e))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn(move || {
                if let Err(e) = nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET) {
                    let _ = tx.send(Err(format!("setns: {e}")));
                    return;
                }
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(format!("runtime: {e}")));
                        return;
                    }
                };
                let (stop_tx, stop_rx) = oneshot::channel::<()>();
                let _ = tx.send(Ok((rt.handle().clone(), stop_tx)));
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
            })
            .map_err(|e| Error::io("starting a namespace thread", e))?;
        let (handle, stop) = rx
            .recv()
            .map_err(|_| Error::Unavailable(format!("namespace thread for {name} died")))?
            .map_err(|e| Error::Unavailable(format!("entering {name}: {e}")))?;
        Ok(NsRuntime { handle, stop: Some(stop), thread: Some(thread) })
    }

    /// A handle that spawns into this namespace.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.handle.clone()
    }

    /// Runs `f` inside the namespace; await the handle from anywhere.
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f)
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A process started by the lab: killed and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc> {
        let out = File::create(log).map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let err = out.try_clone().map_err(|e| Error::io("log file", e))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::io(format!("starting {name}"), e))?;
        Ok(Proc { name: name.to_owned(), child })
    }

    /// Sends SIGTERM (the start of a graceful shutdown).
    pub fn terminate(&self) {
        let _ = sh(&["kill", "-TERM", &self.child.id().to_string()]);
    }

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
