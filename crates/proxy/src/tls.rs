//! TLS termination with rustls: PEM certificates, several chosen by SNI
//! (the names in each certificate), ALPN `h2` then `http/1.1`.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::{CertConfig, TlsConfig};
use crate::Error;

/// Picks the certificate valid for the SNI name (exact or wildcard, as
/// webpki checks it); the default one otherwise.
#[derive(Debug)]
struct BySni {
    certs: Vec<Arc<CertifiedKey>>,
    /// None only for a Kubernetes listener before any Secret arrived: the
    /// handshake then fails (no certificate to offer).
    default: Option<Arc<CertifiedKey>>,
}

fn valid_for(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    key.cert.first().is_some_and(|der| {
        webpki::EndEntityCert::try_from(der).is_ok_and(|c| c.verify_is_valid_for_subject_name(name).is_ok())
    })
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().and_then(|n| ServerName::try_from(n.to_owned()).ok());
        let chosen = name.and_then(|n| self.certs.iter().find(|k| valid_for(k, &n)));
        chosen.or(self.default.as_ref()).map(Arc::clone)
    }
}

/// The largest PEM file read: certificate chains and keys are a few KiB;
/// a path to a device or a huge file must not stall a reload.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

fn read_pem(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{}: not a regular file", path.display()));
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_BYTES + 1).read_to_end(&mut buf))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("{}: larger than {MAX_PEM_BYTES} bytes", path.display()));
    }
    Ok(buf)
}

fn load(listener: &str, c: &CertConfig) -> Result<Arc<CertifiedKey>, Error> {
    let err = |reason: String| Error::Tls { listener: listener.to_owned(), reason };
    let (cert, key) = (&c.cert, &c.key);
    let (cert_pem, key_pem) = match &c.pem {
        Some(pem) => (pem.0.clone(), pem.1.clone()),
        None => (read_pem(cert).map_err(err)?, read_pem(key).map_err(err)?),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(err(format!("{}: no certificate in it", cert.display())));
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| err(format!("{}: {e}", key.display())))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing =
        provider.key_provider.load_private_key(key_der).map_err(|e| err(format!("{}: {e}", key.display())))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not belong to the certificate fails every handshake:
    // refuse it now (a key type that cannot tell its public half passes).
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) = certified.keys_match() {
        return Err(err(format!(
            "{}: the private key does not match the certificate {}",
            key.display(),
            cert.display()
        )));
    }
    Ok(Arc::new(certified))
}

/// Builds the rustls server config of a listener.
pub fn server_config(listener: &str, cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut certs = Vec::new();
    let mut default = None;
    if let (Some(c), Some(k)) = (&cfg.cert, &cfg.key) {
        let loaded = load(listener, &CertConfig { cert: c.clone(), key: k.clone(), pem: None })?;
        default = Some(Arc::clone(&loaded));
        certs.push(loaded);
    }
    for c in &cfg.certificates {
        match load(listener, c) {
            Ok(k) => certs.push(k),
            // A bad Secret must not take the listener (and every other
            // host) down: it is skipped and reported.
            Err(e) if c.pem.is_some() => {
                crate::log::event(
                    &serde_json::json!({"event": "tls_secret_rejected", "secret": c.cert.display().to_string(), "error": e.to_string()}),
                );
            }
            Err(e) => return Err(e),
        }
    }
    let default = default.or_else(|| certs.first().map(Arc::clone));
    if default.is_none() && !cfg.kubernetes {
        return Err(Error::Tls { listener: listener.to_owned(), reason: "no certificate".into() });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls { listener: listener.to_owned(), reason: e.to_string() })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { certs, default }));
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}

/// Accepts any server certificate but still checks the handshake
/// signatures: `tls = "insecure"` towards an upstream.
#[derive(Debug)]
struct NoCertCheck(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoCertCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS connector for an upstream, if it uses TLS (HTTP/1.1 by ALPN).
pub fn client(mode: crate::config::UpstreamTls) -> Option<tokio_rustls::TlsConnector> {
    use crate::config::UpstreamTls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .ok()?;
    let mut cfg = match mode {
        UpstreamTls::Off => return None,
        UpstreamTls::Verify => {
            let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        UpstreamTls::Insecure => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoCertCheck(provider))).with_no_client_auth()
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}
