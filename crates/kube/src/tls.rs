//! TLS key pairs as realip serves them: one loader for the proxy's files and
//! for Kubernetes Secrets, so a Secret the proxy would refuse is refused
//! where it is read (the Gateway listener's `ResolvedRefs`, the Ingress's
//! warning) instead of being reported programmed and then skipped.
//!
//! Invariant: a pair this accepts is one the proxy serves: a PEM chain of at
//! least one certificate, a PEM private key ring can sign with, and (where
//! the key type tells its public half) a key that belongs to the first
//! certificate.

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The certificate chain `cert_pem` with its private key `key_pem`, ready to
/// serve; `cert_name` and `key_name` say where each came from in errors.
///
/// # Errors
/// What is wrong, naming the part: no certificate, a PEM that does not
/// parse, a key type ring cannot sign with, a key that does not match.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8], cert_name: &str, key_name: &str) -> Result<CertifiedKey, String> {
    #[cfg(test)]
    LOADS.with(|n| n.set(n.get() + 1));
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().map_err(|e| format!("{cert_name}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{cert_name}: no certificate in it"));
    }
    let key_der = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("{key_name}: {e}"))?;
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| format!("{key_name}: {e}"))?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not belong to the certificate fails every handshake:
    // refuse it now (a key type that cannot tell its public half passes).
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) = certified.keys_match() {
        return Err(format!("{key_name}: the private key does not match the certificate {cert_name}"));
    }
    Ok(certified)
}

#[cfg(test)]
thread_local! {
    /// Pairs loaded by [`certified_key`] on this thread (what tests count).
    pub(crate) static LOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &[u8] = include_bytes!("../testdata/tls.crt");
    const KEY: &[u8] = include_bytes!("../testdata/tls.key");
    const OTHER_KEY: &[u8] = include_bytes!("../testdata/other.key");

    #[test]
    fn the_base64_pair_is_the_files() {
        use k8s_openapi::ByteString;
        let decode = |b64: &str| serde_json::from_value::<ByteString>(serde_json::Value::from(b64)).unwrap().0;
        assert_eq!(decode(testdata::CRT_B64), CERT);
        assert_eq!(decode(testdata::KEY_B64), KEY);
    }

    #[test]
    fn a_matching_pair_loads_and_each_fault_is_named() {
        assert!(certified_key(CERT, KEY, "c", "k").is_ok());
        let cases: [(&[u8], &[u8], &str); 5] = [
            (b"CERT", KEY, "c: no certificate in it"),
            (CERT, b"KEY", "k: "),
            (KEY, KEY, "c: no certificate in it"),
            (CERT, OTHER_KEY, "k: the private key does not match the certificate c"),
            (b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", KEY, "c: "),
        ];
        for (cert, key, want) in cases {
            let e = certified_key(cert, key, "c", "k").err().unwrap_or_else(|| panic!("accepted: {want}"));
            assert!(e.starts_with(want), "{want}: {e}");
        }
    }
}

/// A self-signed certificate for example.com and *.example.com with its
/// key (`testdata/`), base64 as a Secret's `data` holds them: for tests
/// of every crate that hand realip a Secret it must be able to serve.
#[doc(hidden)]
pub mod testdata {
    /// `testdata/tls.crt`, base64.
    pub const CRT_B64: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJxakNDQVZDZ0F3SUJBZ0lVWTZXMmpoUklvcm5Jb0pPYXYxM0ZjU3EvTndJd0NnWUlLb1pJemowRUF3SXcKRmpFVU1CSUdBMVVFQXd3TFpYaGhiWEJzWlM1amIyMHdJQmNOTWpZeE1qQXlNREExTkRRd1doZ1BNakV5TmpFeApNRGd3TURVME5EQmFNQll4RkRBU0JnTlZCQU1NQzJWNFlXMXdiR1V1WTI5dE1Ga3dFd1lIS29aSXpqMENBUVlJCktvWkl6ajBEQVFjRFFnQUVwdTRmeE5ld01OVGsvV2RzWmpsY2tKdTBtNHhnQUwxQXlNMTBlWlowQThoMndrbmgKNGNYbWRvZ0FQYllPWkIvYWdPc2lrcnk4Yno4UHJJcVBlOHRVcWFONk1IZ3dIUVlEVlIwT0JCWUVGRnBicS9uVgo1Y1FrTTRjaXJ4NDRVS2JaUlBKdE1COEdBMVVkSXdRWU1CYUFGRnBicS9uVjVjUWtNNGNpcng0NFVLYlpSUEp0Ck1BOEdBMVVkRXdFQi93UUZNQU1CQWY4d0pRWURWUjBSQkI0d0hJSUxaWGhoYlhCc1pTNWpiMjJDRFNvdVpYaGgKYlhCc1pTNWpiMjB3Q2dZSUtvWkl6ajBFQXdJRFNBQXdSUUlnRGZFZzdTOWxDN0s0SCsvampFMHpyandYNUVyMgpNNU1GcC93Y05velRNUWtDSVFDaGpsRTVlYVlqL3ZmUmNlemZsVjFCdWJZc1R2dEpoNE9VUDBISXlVMXVLQT09Ci0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";
    /// `testdata/tls.key`, base64.
    pub const KEY_B64: &str = "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JR0hBZ0VBTUJNR0J5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEJHMHdhd0lCQVFRZ2Vwa1kvRllCQkFpZU9SakQKSDRnS1VZNFNDdFFwVDYrVWhBS2lzN0NUTUtpaFJBTkNBQVNtN2gvRTE3QXcxT1Q5WjJ4bU9WeVFtN1NiakdBQQp2VURJelhSNWxuUUR5SGJDU2VIaHhlWjJpQUE5dGc1a0g5cUE2eUtTdkx4dlB3K3Npbzk3eTFTcAotLS0tLUVORCBQUklWQVRFIEtFWS0tLS0tCg==";
}
