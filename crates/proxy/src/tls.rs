//! TLS termination with rustls: PEM certificates, several chosen by SNI
//! (the names in each certificate), ALPN `h2` then `http/1.1`.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::TlsConfig;
use crate::Error;

/// Picks the certificate valid for the SNI name (exact or wildcard, as
/// webpki checks it); the default one otherwise.
#[derive(Debug)]
struct BySni {
    certs: Vec<Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
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
        Some(Arc::clone(chosen.unwrap_or(&self.default)))
    }
}

fn load(listener: &str, cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<CertifiedKey>, Error> {
    let err = |reason: String| Error::Tls { listener: listener.to_owned(), reason };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(err(format!("{}: no certificate in the file", cert.display())));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err(format!("{}: {e}", key.display())))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing =
        provider.key_provider.load_private_key(key_der).map_err(|e| err(format!("{}: {e}", key.display())))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// Builds the rustls server config of a listener.
pub fn server_config(listener: &str, cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut certs = Vec::new();
    let mut default = None;
    if let (Some(c), Some(k)) = (&cfg.cert, &cfg.key) {
        let loaded = load(listener, c, k)?;
        default = Some(Arc::clone(&loaded));
        certs.push(loaded);
    }
    for c in &cfg.certificates {
        certs.push(load(listener, &c.cert, &c.key)?);
    }
    let default = default
        .or_else(|| certs.first().map(Arc::clone))
        .ok_or_else(|| Error::Tls { listener: listener.to_owned(), reason: "no certificate".into() })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls { listener: listener.to_owned(), reason: e.to_string() })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { certs, default }));
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(sc))
}
