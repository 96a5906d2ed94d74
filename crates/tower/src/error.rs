//! The one error type of realip-tower.

use std::net::SocketAddr;

/// Everything realip-tower can reject.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when a trust set, source list or strategy is invalid.
    #[error(transparent)]
    Config(#[from] realip_core::Error),
    /// Occurs when a connection's PROXY header is malformed.
    #[error("{peer}: {source}")]
    ProxyHeader {
        /// The TCP peer.
        peer: SocketAddr,
        /// The decoding error.
        source: realip_core::Error,
    },
    /// Occurs when a listener requires a PROXY header and the peer sent none.
    #[error("{0}: PROXY header required, connection did not start with one")]
    ProxyHeaderMissing(SocketAddr),
    /// Occurs when a peer not allowed to send PROXY headers sends one (or,
    /// on a `required` listener, connects at all).
    #[error("{0}: not allowed to send a PROXY header")]
    UntrustedProxySender(SocketAddr),
    /// Occurs when the PROXY header is not complete within the header timeout.
    #[error("{0}: PROXY header not received within {1:?}")]
    ProxyHeaderTimeout(SocketAddr, std::time::Duration),
    /// Occurs on socket errors.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
