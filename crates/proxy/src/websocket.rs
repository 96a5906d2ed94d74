//! The only upgrade the proxy tunnels: a WebSocket handshake (RFC 6455
//! §4) that the client asked for and the upstream completed. Any other
//! `Upgrade` (`h2c`, TLS, made-up protocols) is stripped from the request,
//! and any `101` that does not complete this handshake is refused (502),
//! so no request can be smuggled through a tunnel past routing, policy,
//! logging and header rewriting.

use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};

const KEY: &str = "sec-websocket-key";
const VERSION: &str = "sec-websocket-version";
const ACCEPT: &str = "sec-websocket-accept";
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn has_token(h: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The `Sec-WebSocket-Key` of a valid WebSocket upgrade request: GET over
/// HTTP/1.1, `Connection: upgrade`, `Upgrade: websocket`, version 13, and
/// a key that is the base64 of 16 bytes.
pub fn request_key<B>(req: &Request<B>) -> Option<HeaderValue> {
    let h = req.headers();
    let ok = req.method() == Method::GET
        && req.version() == Version::HTTP_11
        && has_token(h, CONNECTION, "upgrade")
        && has_token(h, UPGRADE, "websocket")
        && h.get(VERSION).is_some_and(|v| v.as_bytes() == b"13");
    // One key, and no body: a handshake carries nothing else.
    let single_key = h.get_all(KEY).iter().count() == 1;
    let no_body = !h.contains_key(http::header::TRANSFER_ENCODING)
        && h.get(http::header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0");
    let key = h.get(KEY).filter(|_| ok && single_key && no_body)?;
    let b = key.as_bytes();
    let well_formed = b.len() == 24
        && b.ends_with(b"==")
        && b.iter().take(22).all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/');
    well_formed.then(|| key.clone())
}

/// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key ‖ GUID)).
pub fn accept_for(key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key);
    ctx.update(GUID);
    base64(ctx.finish().as_ref())
}

/// Checks that a `101` completes the handshake started with `key`.
pub fn check_response<B>(key: Option<&HeaderValue>, resp: &Response<B>) -> Result<(), &'static str> {
    debug_assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    let Some(key) = key else { return Err("101 to a request that was not a WebSocket upgrade") };
    if !has_token(resp.headers(), UPGRADE, "websocket") {
        return Err("101 without Upgrade: websocket");
    }
    match resp.headers().get(ACCEPT) {
        Some(a) if a.as_bytes() == accept_for(key.as_bytes()).as_bytes() => Ok(()),
        Some(_) => Err("101 with a wrong Sec-WebSocket-Accept"),
        None => Err("101 without Sec-WebSocket-Accept"),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_example() {
        // RFC 6455 §1.3.
        assert_eq!(accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    fn ws(method: Method, upgrade: &str, key: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .header(CONNECTION, "keep-alive, Upgrade")
            .header(UPGRADE, upgrade)
            .header(VERSION, "13")
            .header(KEY, key)
            .body(())
            .unwrap()
    }

    #[test]
    fn only_websocket_upgrades_are_recognised() {
        assert!(request_key(&ws(Method::GET, "websocket", "dGhlIHNhbXBsZSBub25jZQ==")).is_some());
        assert!(request_key(&ws(Method::GET, "h2c", "dGhlIHNhbXBsZSBub25jZQ==")).is_none());
        assert!(request_key(&ws(Method::POST, "websocket", "dGhlIHNhbXBsZSBub25jZQ==")).is_none());
        assert!(request_key(&ws(Method::GET, "websocket", "short")).is_none());
        let mut two = ws(Method::GET, "websocket", "dGhlIHNhbXBsZSBub25jZQ==");
        two.headers_mut().append(KEY, HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAA=="));
        assert!(request_key(&two).is_none(), "two keys");
        let mut body = ws(Method::GET, "websocket", "dGhlIHNhbXBsZSBub25jZQ==");
        body.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        assert!(request_key(&body).is_none(), "a body");
        let mut no_conn = ws(Method::GET, "websocket", "dGhlIHNhbXBsZSBub25jZQ==");
        no_conn.headers_mut().remove(CONNECTION);
        assert!(request_key(&no_conn).is_none());
    }

    #[test]
    fn the_101_must_complete_the_handshake() {
        let key = HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==");
        let resp = |accept: Option<&str>| {
            let mut b = Response::builder().status(101).header(UPGRADE, "websocket");
            if let Some(a) = accept {
                b = b.header(ACCEPT, a);
            }
            b.body(()).unwrap()
        };
        assert_eq!(check_response(Some(&key), &resp(Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))), Ok(()));
        assert!(check_response(Some(&key), &resp(Some("AAAA"))).is_err());
        assert!(check_response(Some(&key), &resp(None)).is_err());
        assert!(check_response(None, &resp(Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))).is_err());
    }
}
