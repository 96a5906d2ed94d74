//! The one error type of realip-migrate.

/// What stops a migration (exit 2 in the CLI): input that cannot be read
/// or that does not describe one ingress-nginx setup. Keys and annotations
/// that do not convert are not errors: they are report entries.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when manifests cannot be loaded (unreadable file, bad YAML)
    /// or the live cluster cannot be listed.
    #[error(transparent)]
    Load(#[from] realip_kube::Error),
    /// Occurs when the input holds several ingress-nginx controllers: one
    /// run migrates one controller, with its ConfigMap and Ingresses.
    #[error("several ingress-nginx controllers in the input ({0}): give one controller's objects per run")]
    SeveralControllers(String),
    /// Occurs when the controller's flags make ingress-nginx refuse to
    /// start (`--watch-namespace` with `--watch-namespace-selector`): it
    /// served nothing, so there is nothing to migrate.
    #[error("{0}")]
    ControllerFlags(String),
    /// Occurs when `--gateway` is not `NAMESPACE/NAME` of DNS labels.
    #[error("--gateway `{0}`: expected NAMESPACE/NAME (a lowercase DNS label, then a lowercase DNS name)")]
    GatewayName(String),
    /// Occurs when `--gateway-class` is not a GatewayClass name (a
    /// lowercase DNS subdomain of at most 253 characters).
    #[error("--gateway-class `{0}`: expected a GatewayClass name (lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253)")]
    GatewayClassName(String),
    /// Occurs when an Ingress names a host the API server refuses (not a
    /// lowercase DNS name, optionally behind `*.`): such an Ingress cannot
    /// be in a cluster, so what ingress-nginx serves of it is not known.
    #[error("{object}: host `{host}` is not a lowercase DNS name (optionally `*.` then one): the API server refuses such an Ingress; fix the input")]
    IngressHost {
        /// `Ingress/NS/NAME`.
        object: String,
        /// The host as written.
        host: String,
    },
    /// Occurs when a `--trust` entry is not a CIDR or an IP address.
    #[error("--trust `{0}` is not a CIDR or an IP address")]
    Trust(String),
    /// Occurs when a CRD handed to the schema validator has no
    /// `openAPIV3Schema` or is not a CustomResourceDefinition.
    #[error("{origin}: {reason}")]
    Crd {
        /// File or CRD name.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Occurs when the `--out` directory holds files that an earlier run
    /// did not write (no `.realip-migrate` manifest lists them): they are
    /// never overwritten or removed.
    #[error("--out {0}: the directory is not empty and was not written by realip migrate (no .realip-migrate manifest): give an empty or new directory")]
    OutNotEmpty(std::path::PathBuf),
    /// Occurs when two objects of the output would be one file under
    /// `--out` (the same kind, namespace and name twice): nothing is written.
    #[error("--out: two objects would be written to {0} (the same kind, namespace and name): nothing was written")]
    DuplicateObject(String),
    /// Occurs when a file of `--out` or `--report` cannot be written.
    #[error("{path}")]
    Write {
        /// What was written.
        path: std::path::PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}
