//! `realip echo`: serve the /debug/ip app until SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use realip_tower::echo::{self, EchoConfig, PodIdentity};
use realip_tower::{ProxyProtocolConfig, RealIpLayer};

use crate::args::EchoArgs;
use crate::failure::Failure;

pub fn run(a: &EchoArgs) -> Result<(), Failure> {
    let listen = a.listen.parse().map_err(|_| Failure::usage(anyhow!("--listen: `{}` is not IP:PORT", a.listen)))?;
    let layer = RealIpLayer::builder()
        .resolver(a.policy.resolver()?)
        .reject_untrusted_forwarding(a.reject_untrusted_forwarding)
        .build();
    let mode = a.proxy_protocol.parse().map_err(|e: String| Failure::usage(anyhow!("--proxy-protocol: {e}")))?;
    if !(a.header_timeout > 0.0 && a.header_timeout <= 3600.0) {
        return Err(Failure::usage(anyhow!("--header-timeout: must be between 0 and 3600 seconds")));
    }
    let proxy = ProxyProtocolConfig {
        mode,
        allowed_from: layer.resolver().trusted.clone(),
        header_timeout: Duration::from_secs_f64(a.header_timeout),
    };
    let cfg = EchoConfig { listen, layer, proxy, identity: PodIdentity::from_env() };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime").map_err(Failure::usage)?;
    rt.block_on(echo::serve(cfg, shutdown_signal())).context("realip echo").map_err(Failure::usage)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return ctrl_c.await.unwrap_or(());
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
