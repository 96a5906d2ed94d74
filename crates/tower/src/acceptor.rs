//! PROXY protocol in front of hyper or axum: read and check the header,
//! then hand over a stream that starts at the first application byte.
//!
//! Invariants:
//! - a header is accepted only from `allowed_from`; on a `required`
//!   listener any other peer is closed at once, on an `optional` one it
//!   may speak plain HTTP but a PROXY header from it closes the connection;
//! - the wait for the header is bounded by `header_timeout`, and bytes read
//!   past the header are replayed, never lost;
//! - headers are read in a task per connection, so a slow sender never
//!   delays other accepts.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use realip_core::proxy_protocol::{decode, Decoded};
use realip_core::TrustedProxies;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::{ConnectionInfo, Error, ProxyInfo};

/// Whether a listener expects PROXY headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProxyProtocolMode {
    /// Never read one (a PROXY header is then just bad HTTP).
    #[default]
    Off,
    /// Accept one from allowed senders; plain connections are fine too.
    Optional,
    /// Every connection must start with one from an allowed sender.
    Required,
}

impl std::str::FromStr for ProxyProtocolMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(ProxyProtocolMode::Off),
            "optional" => Ok(ProxyProtocolMode::Optional),
            "required" => Ok(ProxyProtocolMode::Required),
            _ => Err(format!("`{s}` is not a PROXY protocol mode (expected off, optional or required)")),
        }
    }
}

/// PROXY settings of a listener.
#[derive(Clone, Debug)]
pub struct ProxyProtocolConfig {
    /// Off, optional or required.
    pub mode: ProxyProtocolMode,
    /// Who may send a header.
    pub allowed_from: TrustedProxies,
    /// Longest wait for a complete header.
    pub header_timeout: Duration,
}

impl Default for ProxyProtocolConfig {
    fn default() -> Self {
        ProxyProtocolConfig {
            mode: ProxyProtocolMode::Off,
            allowed_from: TrustedProxies::none(),
            header_timeout: Duration::from_secs(5),
        }
    }
}

/// Reads the PROXY header (if the mode asks for one) from a fresh
/// connection. Returns the header and the bytes read after it.
pub async fn read_header<IO: AsyncRead + Unpin>(
    io: &mut IO,
    peer: SocketAddr,
    cfg: &ProxyProtocolConfig,
) -> Result<(Option<ProxyInfo>, Vec<u8>), Error> {
    let allowed = cfg.allowed_from.contains(peer.ip());
    match cfg.mode {
        ProxyProtocolMode::Off => return Ok((None, Vec::new())),
        ProxyProtocolMode::Required if !allowed => return Err(Error::UntrustedProxySender(peer)),
        _ => {}
    }
    let read = async {
        let mut buf = Vec::with_capacity(256);
        loop {
            match decode(&buf) {
                Ok(Decoded::Header { header, len }) => {
                    if !allowed {
                        return Err(Error::UntrustedProxySender(peer));
                    }
                    let info = ProxyInfo::from(&header);
                    return Ok((Some(info), buf.split_off(len)));
                }
                Ok(Decoded::NotProxy) if cfg.mode == ProxyProtocolMode::Optional => return Ok((None, buf)),
                Ok(Decoded::NotProxy) => return Err(Error::ProxyHeaderMissing(peer)),
                Ok(Decoded::Incomplete { needed }) => {
                    let start = buf.len();
                    buf.resize(start + needed.max(64), 0);
                    let n = io.read(buf.get_mut(start..).unwrap_or_default()).await?;
                    buf.truncate(start + n);
                    if n == 0 {
                        return Err(Error::Io(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "closed inside the PROXY header",
                        )));
                    }
                }
                Err(source) => return Err(Error::ProxyHeader { peer, source }),
            }
        }
    };
    tokio::time::timeout(cfg.header_timeout, read)
        .await
        .map_err(|_| Error::ProxyHeaderTimeout(peer, cfg.header_timeout))?
}

/// A stream whose first bytes were read ahead while looking for a header.
#[derive(Debug)]
pub struct ProxiedStream<IO> {
    inner: IO,
    prefix: Vec<u8>,
    pos: usize,
}

impl<IO> ProxiedStream<IO> {
    /// Wraps `inner`, replaying `prefix` first.
    pub fn new(inner: IO, prefix: Vec<u8>) -> Self {
        ProxiedStream { inner, prefix, pos: 0 }
    }

    /// The stream under the replayed bytes (to wait for readiness or peek
    /// without reading).
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }

    /// Bytes read ahead that the next reads will return first.
    pub fn buffered(&self) -> &[u8] {
        self.prefix.get(self.pos..).unwrap_or_default()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ProxiedStream<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.prefix.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(out.remaining());
            out.put_slice(rest.get(..n).unwrap_or_default());
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ProxiedStream<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

type Accepted = (ProxiedStream<TcpStream>, ConnectionInfo);

/// A TCP listener that reads PROXY headers; usable with `axum::serve`
/// (its connect info is [`ConnectionInfo`]) or by calling
/// [`accept`](ProxyProtocolListener::accept) and serving with hyper.
///
/// Rejected connections are closed and reported to the `on_reject`
/// callback (the echo app logs them).
#[derive(Debug)]
pub struct ProxyProtocolListener {
    rx: mpsc::Receiver<Accepted>,
    local: SocketAddr,
}

/// Called with every connection closed before it reached the app.
pub type OnReject = Arc<dyn Fn(&Error) + Send + Sync>;

impl ProxyProtocolListener {
    /// Starts accepting on `listener` in a background task.
    pub fn new(listener: TcpListener, cfg: ProxyProtocolConfig, on_reject: OnReject) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(1024);
        let cfg = Arc::new(cfg);
        tokio::spawn(async move {
            loop {
                let (mut tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        on_reject(&Error::Io(e));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return; // the listener was dropped
                }
                let (tx, cfg, on_reject) = (tx.clone(), Arc::clone(&cfg), Arc::clone(&on_reject));
                tokio::spawn(async move {
                    match read_header(&mut tcp, peer, &cfg).await {
                        Ok((proxy, rest)) => {
                            let info = ConnectionInfo { peer, proxy: proxy.map(Arc::new) };
                            let _ = tx.send((ProxiedStream::new(tcp, rest), info)).await;
                        }
                        Err(e) => on_reject(&e),
                    }
                });
            }
        });
        Ok(ProxyProtocolListener { rx, local })
    }

    /// The next connection that passed the PROXY checks.
    pub async fn accept(&mut self) -> io::Result<Accepted> {
        self.rx.recv().await.ok_or_else(|| io::Error::other("accept loop ended"))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

#[cfg(feature = "axum")]
impl axum::serve::Listener for ProxyProtocolListener {
    type Io = ProxiedStream<TcpStream>;
    type Addr = ConnectionInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(c) = ProxyProtocolListener::accept(self).await {
                return c;
            }
            // The accept task only ends with the runtime; wait for shutdown.
            std::future::pending::<()>().await;
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnectionInfo::new(self.local))
    }
}

#[cfg(feature = "axum")]
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, ProxyProtocolListener>> for ConnectionInfo {
    fn connect_info(stream: axum::serve::IncomingStream<'_, ProxyProtocolListener>) -> Self {
        stream.remote_addr().clone()
    }
}
