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
    let rt = tokio::runtime::Runtime::new().context("starting the runtime").map_err(Failure::usage)?;
    rt.block_on(realip_proxy::server::run(a.config.clone())).map_err(|e| Failure::rejected(anyhow!("{e}")))
}
