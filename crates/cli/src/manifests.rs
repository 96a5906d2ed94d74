//! `realip manifests`: the Helm chart's objects as plain YAML.

use anyhow::anyhow;
use realip_kube::manifests::{self, Settings};

use crate::args::ManifestsArgs;
use crate::failure::Failure;

pub fn run(a: &ManifestsArgs) -> Result<(), Failure> {
    let dns_label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    };
    if !dns_label(&a.namespace) {
        return Err(Failure::usage(anyhow!(
            "--namespace: `{}` is not a DNS label (a-z, 0-9, '-', at most 63)",
            a.namespace
        )));
    }
    if a.replicas == 0 {
        return Err(Failure::usage(anyhow!("--replicas: must be at least 1")));
    }
    let mut s = Settings {
        namespace: a.namespace.clone(),
        daemonset: a.daemonset,
        replicas: a.replicas,
        proxy_protocol: a.proxy_protocol,
        gateway: a.gateway,
        redis_url: a.redis_url.clone(),
        redis_secret: a.redis_secret.clone(),
        ingress: !a.no_ingress,
        allowed_gateways: a.allowed_gateway.clone(),
        ..Settings::default()
    };
    if let Some(image) = &a.image {
        s.image.clone_from(image);
    }
    print!("{}", manifests::yaml(&s));
    Ok(())
}
