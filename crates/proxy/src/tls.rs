//! TLS termination with rustls: PEM certificates, several chosen by SNI
//! (the names in each certificate), ALPN `h2` then `http/1.1`.
//!
//! Invariant (Gateway API listener isolation): a certificate of a Gateway
//! listener is offered only for a server name that listener's hostname is
//! the most specific match of on the bind — never chosen by the names in
//! it for another listener's host, and never as the default for a name no
//! listener matches (a tenant's certificate naming another Gateway's host
//! must not be served for it).

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, ServerName};

use crate::config::{CertConfig, TlsConfig};
use crate::Error;

/// Picks the certificate for the SNI name: that of the Gateway listener
/// whose hostname is the most specific match (exact, then the longest
/// wildcard); else one of the file's valid for the name (exact or
/// wildcard, as webpki checks it); else that of a host-less Gateway
/// listener whose routes serve the name; else one of the Ingresses' valid
/// for it; else that of a host-less Gateway listener; else the default
/// one.
#[derive(Debug)]
struct BySni {
    /// Gateway listener hostnames with a `*.` wildcard or exact, and their
    /// certificates (at least one each).
    /// With the names under each that Ingresses serve on this bind (not
    /// offered for those), and the names its routes serve there (offered
    /// for those all the same).
    hosts: ByPattern,
    /// The hosts (exact or `*.` wildcard) the routes of host-less Gateway
    /// listeners serve, the hosts within each they leave out, and the
    /// listener's certificates.
    routed: ByPattern,
    /// Host-less Gateway listeners' certificates (any name).
    any: Vec<Arc<CertifiedKey>>,
    /// The file's certificates (its `cert` first).
    certs: Vec<Arc<CertifiedKey>>,
    /// The Ingresses' TLS Secrets, each with the hosts of the Ingresses
    /// naming it (the only names it is offered for).
    ingress: Vec<(Arc<CertifiedKey>, Vec<String>)>,
    /// The file's `cert`, else the first of `certs`. None when there is
    /// neither: the handshake of a name nothing matches fails (as Envoy
    /// does with no matching filter chain).
    default: Option<Arc<CertifiedKey>>,
    /// For a client that sends no server name: `default`, else the first
    /// Ingress Secret.
    nameless: Option<Arc<CertifiedKey>>,
}

fn valid_for(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    key.cert.first().is_some_and(|der| {
        webpki::EndEntityCert::try_from(der).is_ok_and(|c| c.verify_is_valid_for_subject_name(name).is_ok())
    })
}

/// How specifically listener hostname `pattern` matches `name` (both lower
/// case, no trailing dot): exact beats every wildcard, a longer wildcard
/// suffix beats a shorter one; `None`: no match. A Gateway API wildcard
/// `*.example.com` covers any name ending in `.example.com`, however many
/// labels precede it, but not `example.com` itself.
fn specificity(pattern: &str, name: &str) -> Option<usize> {
    match pattern.strip_prefix('*') {
        Some(suffix) => (name.len() > suffix.len() && name.ends_with(suffix)).then_some(suffix.len()),
        None => (pattern == name).then_some(usize::MAX),
    }
}

/// Host patterns (exact or `*.` wildcard), each with the names under it
/// it is not for, the names it is for all the same (each with the names
/// under it left out), and its certificates.
type ByPattern = Vec<(String, Vec<String>, Vec<(String, Vec<String>)>, Vec<Arc<CertifiedKey>>)>;

/// The certificates of the most specific pattern of `list` matching `h`
/// that does not leave `h` out.
fn most_specific<'a>(list: &'a ByPattern, h: &str) -> Option<&'a [Arc<CertifiedKey>]> {
    let under = |list: &[String]| list.iter().any(|e| specificity(e, h).is_some());
    list.iter()
        .filter(|(_, except, kept, _)| {
            !under(except) || kept.iter().any(|(k, out)| specificity(k, h).is_some() && !under(out))
        })
        .filter_map(|(p, _, _, keys)| specificity(p, h).map(|s| (s, keys.as_slice())))
        .max_by_key(|x| x.0)
        .map(|(_, keys)| keys)
}

/// The first of `keys` valid for `name`, else the first.
fn first_valid<'a>(keys: &'a [Arc<CertifiedKey>], name: Option<&ServerName<'_>>) -> Option<&'a Arc<CertifiedKey>> {
    name.and_then(|n| keys.iter().find(|k| valid_for(k, n))).or_else(|| keys.first())
}

impl BySni {
    fn pick(&self, sni: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let host = sni.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        let name = host.as_deref().and_then(|h| ServerName::try_from(h.to_owned()).ok());
        if let Some(h) = host.as_deref() {
            // Not for a name an Ingress serves on this bind (the older
            // side keeps a host, and so its certificate: review 15 N1;
            // whichever side is the wildcard, review 16 N1w), unless the
            // listener's own routes serve it there.
            if let Some(keys) = most_specific(&self.hosts, h) {
                // The listener's own certificates only: one naming the host
                // is preferred, else its first (a client then sees a name
                // mismatch rather than another listener's certificate).
                return first_valid(keys, name.as_ref());
            }
        }
        if let Some(k) = name.as_ref().and_then(|n| self.certs.iter().find(|k| valid_for(k, n))) {
            return Some(k);
        }
        if let Some(h) = host.as_deref() {
            // A host-less listener serves the names its routes serve: its
            // certificate, not an Ingress's that names one of them (a
            // tenant's Secret naming the victim's host, review 14 F6).
            if let Some(keys) = most_specific(&self.routed, h) {
                return first_valid(keys, name.as_ref());
            }
        }
        if let (Some(h), Some(n)) = (host.as_deref(), name.as_ref()) {
            // An Ingress's Secret for its own Ingresses' hosts only (a
            // tenant's Secret naming another's host is not offered for it,
            // review 14 F6b).
            let own = |hosts: &[String]| hosts.iter().any(|p| specificity(p, h).is_some());
            if let Some((k, _)) = self.ingress.iter().find(|(k, hosts)| own(hosts) && valid_for(k, n)) {
                return Some(k);
            }
        }
        if !self.any.is_empty() {
            return first_valid(&self.any, name.as_ref());
        }
        if host.is_none() {
            return self.nameless.as_ref();
        }
        self.default.as_ref()
    }
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name()).map(Arc::clone)
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
    realip_kube::tls::certified_key(&cert_pem, &key_pem, &cert.display().to_string(), &key.display().to_string())
        .map(Arc::new)
        .map_err(err)
}

/// Builds the rustls server config of a listener.
pub fn server_config(listener: &str, cfg: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, Error> {
    let mut certs = Vec::new();
    let mut default = None;
    if let (Some(c), Some(k)) = (&cfg.cert, &cfg.key) {
        let loaded = load(listener, &CertConfig { cert: c.clone(), key: k.clone(), pem: None, hosts: Vec::new() })?;
        default = Some(Arc::clone(&loaded));
        certs.push(loaded);
    }
    let mut ingress = Vec::new();
    for c in &cfg.certificates {
        match load(listener, c) {
            // A Kubernetes Secret (`pem`) comes from an Ingress.
            Ok(k) if c.pem.is_some() => ingress.push((k, c.hosts.clone())),
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
    // Gateway listeners' certificates: a bad Secret is skipped and
    // reported, as above; a hostname left with none offers nothing.
    let mut hosts: ByPattern = Vec::new();
    let mut any = Vec::new();
    let mut routed = Vec::new();
    // A Secret many listeners name (a shared wildcard) is loaded once.
    let mut loaded: std::collections::HashMap<&std::path::Path, Option<Arc<CertifiedKey>>> =
        std::collections::HashMap::new();
    for h in &cfg.gateway {
        let mut keys = Vec::new();
        for c in &h.certs {
            let key = loaded.entry(c.cert.as_path()).or_insert_with(|| match load(listener, c) {
                Ok(k) => Some(k),
                Err(e) => {
                    crate::log::event(
                        &serde_json::json!({"event": "tls_secret_rejected", "secret": c.cert.display().to_string(), "error": e.to_string()}),
                    );
                    None
                }
            });
            keys.extend(key.clone());
        }
        match &h.hostname {
            _ if keys.is_empty() => {}
            Some(p) => match hosts.iter_mut().find(|(q, _, _, _)| q == p) {
                Some((_, except, kept, have)) => {
                    except.extend(h.ingress_hosts.iter().cloned());
                    kept.extend(h.routed.iter().cloned());
                    have.extend(keys);
                }
                None => hosts.push((p.clone(), h.ingress_hosts.clone(), h.routed.clone(), keys)),
            },
            None => {
                for (p, except) in &h.routed {
                    routed.push((p.clone(), except.clone(), Vec::new(), keys.clone()));
                }
                any.extend(keys);
            }
        }
    }
    // With no file certificate, a client that sends no server name gets
    // the first Ingress Secret; a name nothing here owns gets none (an
    // Ingress's Secret is never a fallback for a name: it may be a tenant's
    // naming another's host).
    let default = default.or_else(|| certs.first().map(Arc::clone));
    let nameless = default.clone().or_else(|| ingress.first().map(|(k, _)| Arc::clone(k)));
    if default.is_none() && !cfg.kubernetes {
        return Err(Error::Tls { listener: listener.to_owned(), reason: "no certificate".into() });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut sc = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls { listener: listener.to_owned(), reason: e.to_string() })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(BySni { hosts, routed, any, certs, ingress, default, nameless }));
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

#[cfg(test)]
mod tests {
    use super::specificity;

    /// Exact beats every wildcard, a longer wildcard suffix a shorter one;
    /// a wildcard covers any number of labels but not its own suffix.
    #[test]
    fn the_most_specific_listener_hostname_wins() {
        assert_eq!(specificity("a.example.com", "a.example.com"), Some(usize::MAX));
        assert_eq!(specificity("a.example.com", "b.example.com"), None);
        assert_eq!(specificity("*.example.com", "x.y.example.com"), Some(".example.com".len()));
        assert_eq!(specificity("*.example.com", "example.com"), None);
        assert_eq!(specificity("*.example.com", "xexample.com"), None);
        assert!(specificity("*.a.example.com", "x.a.example.com") > specificity("*.example.com", "x.a.example.com"));
    }
}
