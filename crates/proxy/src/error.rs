//! The one error type of realip-proxy.

/// Everything that stops the proxy from starting or reloading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when the configuration does not parse or validate; holds
    /// every problem, each naming its key.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// Occurs when a certificate or key cannot be loaded or used.
    #[error("listener `{listener}`: TLS: {reason}")]
    Tls {
        /// The listener.
        listener: String,
        /// What failed.
        reason: String,
    },
    /// Occurs when the Kubernetes API cannot be reached (`--kubernetes`).
    #[error("kubernetes: {0}")]
    Kubernetes(String),
    /// Occurs when a socket cannot be bound or accepted on.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}
