//! `realip proxy`: check or run the proxy.

use anyhow::{anyhow, Context as _};

use crate::args::ProxyArgs;
use crate::failure::Failure;

pub fn run(a: &ProxyArgs) -> Result<(), Failure> {
    if a.check {
        realip_proxy::server::check(&a.config)
            .map_err(|e| Failure::rejected(anyhow!("{}: {e}", a.config.display())))?;
        println!("{}: configuration is valid", a.config.display());
        return Ok(());
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    match a.workers {
        Some(0) => return Err(Failure::usage(anyhow!("--workers: must be at least 1"))),
        Some(n) => {
            rt.worker_threads(n);
        }
        None => {}
    }
    let rt = rt.build().context("starting the runtime").map_err(Failure::usage)?;
    rt.block_on(realip_proxy::server::run(a.config.clone())).map_err(|e| Failure::rejected(anyhow!("{e}")))
}
