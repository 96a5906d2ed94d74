//! Proxy buffer and protocol settings nginx.tmpl writes, unguarded, into
//! every location: a value nginx refuses there fails every configuration
//! ingress-nginx renders, so what it serves is not known (every Ingress is
//! then emitted deny-all, as for the ConfigMap's other unloadable keys).
//!
//! The directives (nginx.tmpl, v1.11 to v1.15): `proxy_buffering`,
//! `proxy_buffer_size`, `proxy_buffers N <buffer size>`,
//! `proxy_busy_buffers_size` (only when set), `proxy_request_buffering`,
//! `proxy_http_version`. Each location takes the Ingress's annotation,
//! else the ConfigMap's key, else ingress-nginx's default. What nginx
//! accepts was checked with `nginx -t`: `on`/`off` in any case; HTTP 1.0 or
//! 1.1; sizes as digits with an optional k or m (no `b`, no `g`); at least
//! 2 buffers; a busy size (by default twice the buffer size) no smaller
//! than one buffer and no larger than all buffers but one.

use realip_kube::Object;

use crate::setup::Setup;

/// The settings, in the order their faults are reported.
pub const KEYS: [&str; 6] = [
    "proxy-buffering",
    "proxy-request-buffering",
    "proxy-http-version",
    "proxy-buffers-number",
    "proxy-buffer-size",
    "proxy-busy-buffers-size",
];

/// ingress-nginx's defaults (`config.go`).
fn default(key: &str) -> &'static str {
    match key {
        "proxy-buffering" => "off",
        "proxy-request-buffering" => "on",
        "proxy-http-version" => "1.1",
        "proxy-buffers-number" => "4",
        "proxy-buffer-size" => "4k",
        _ => "",
    }
}

/// An nginx size (`4k`, `1m`, `512`) in bytes; `None` when nginx refuses it.
fn size(v: &str) -> Option<u64> {
    let (digits, unit) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1024),
        b'm' | b'M' => (&v[..v.len() - 1], 1024 * 1024),
        _ => (v, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// What nginx refuses among the settings `get` gives (the value a
/// location is rendered with, default applied), naming the key; `None`
/// when every directive loads.
pub fn fault<'v>(get: impl Fn(&str) -> &'v str) -> Option<(&'static str, String)> {
    for key in ["proxy-buffering", "proxy-request-buffering"] {
        let v = get(key);
        if !v.eq_ignore_ascii_case("on") && !v.eq_ignore_ascii_case("off") {
            return Some((key, format!("`{v}`: nginx takes on or off only")));
        }
    }
    let v = get("proxy-http-version");
    if !matches!(v, "1.0" | "1.1") {
        return Some(("proxy-http-version", format!("`{v}`: nginx's proxy_http_version takes 1.0 or 1.1")));
    }
    // ingress-nginx reads the number with Atoi; one it cannot read is the default.
    let n = get("proxy-buffers-number").parse::<i64>().unwrap_or(4);
    if n < 2 {
        return Some(("proxy-buffers-number", format!("{n}: nginx needs at least 2 proxy_buffers")));
    }
    let bs = get("proxy-buffer-size");
    let Some(buffer) = size(bs) else {
        return Some(("proxy-buffer-size", format!("`{bs}`: not a size nginx takes (digits with an optional k or m)")));
    };
    let all_but_one = u64::try_from(n - 1).unwrap_or(u64::MAX).saturating_mul(buffer);
    let busy = match get("proxy-busy-buffers-size") {
        "" => buffer.saturating_mul(2),
        b => {
            let Some(busy) = size(b) else {
                return Some((
                    "proxy-busy-buffers-size",
                    format!("`{b}`: not a size nginx takes (digits with an optional k or m)"),
                ));
            };
            if busy < buffer {
                return Some((
                    "proxy-busy-buffers-size",
                    format!("`{b}` is smaller than one buffer (`{bs}`), which nginx refuses"),
                ));
            }
            busy
        }
    };
    if busy > all_but_one {
        return Some((
            "proxy-buffers-number",
            format!("{n} buffers of `{bs}`: nginx needs the busy buffers ({busy} bytes; twice the buffer size unless proxy-busy-buffers-size says) to fit in all buffers but one ({all_but_one} bytes)"),
        ));
    }
    None
}

/// The ConfigMap's value of a setting, else ingress-nginx's default.
fn configmap<'s>(setup: &Setup<'s>, key: &str) -> &'s str {
    setup.configmap.and_then(|c| c.doc.str_at(&["data", key])).map_or(default(key), str::trim)
}

/// Whether the ConfigMap's settings fail every location ([`fault`]).
pub fn configmap_fault(setup: &Setup<'_>) -> Option<(&'static str, String)> {
    fault(|k| configmap(setup, k))
}

/// Whether the locations of `ing` fail to load ([`fault`]) with its
/// annotations over the ConfigMap's settings. With annotation validation
/// on (`validated`), an annotation its validator refuses (on/off and the
/// HTTP version as options, sizes by `^\d+[bkmg]?$`) is dropped and the
/// ConfigMap's value applies; off, it is written as it is (lines trimmed).
/// A fault the ConfigMap alone has is [`configmap_fault`]'s.
pub fn ingress_fault(ing: &Object, setup: &Setup<'_>, validated: bool) -> Option<(&'static str, String)> {
    let ann = |k: &str| ing.annotation(&format!("{}/{k}", setup.prefix)).map(str::trim);
    let passes = |k: &str, v: &str| {
        !validated
            || match k {
                "proxy-buffering" | "proxy-request-buffering" => {
                    v.eq_ignore_ascii_case("on") || v.eq_ignore_ascii_case("off")
                }
                "proxy-http-version" => matches!(v, "1.0" | "1.1"),
                "proxy-buffers-number" => v.parse::<i64>().is_ok(),
                _ => {
                    let (digits, unit) = v.split_at(v.len().saturating_sub(1));
                    let whole = v.bytes().all(|b| b.is_ascii_digit());
                    whole
                        || !digits.is_empty()
                            && digits.bytes().all(|b| b.is_ascii_digit())
                            && matches!(unit.to_ascii_lowercase().as_str(), "b" | "k" | "m" | "g")
                }
            }
    };
    if KEYS.iter().all(|k| ann(k).is_none()) {
        return None;
    }
    fault(|k| ann(k).filter(|v| passes(k, v)).unwrap_or_else(|| configmap(setup, k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings and the key nginx refuses (`None`: it loads).
    type Row<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

    /// Each row as `nginx -t` judged it on this machine's nginx.
    #[test]
    fn faults_are_those_nginx_refuses() {
        let with = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map_or(default(k), |(_, v)| *v)
        };
        let rows: &[Row] = &[
            (&[], None),
            (&[("proxy-buffering", "On")], None),
            (&[("proxy-buffering", "true")], Some("proxy-buffering")),
            (&[("proxy-request-buffering", "yes")], Some("proxy-request-buffering")),
            (&[("proxy-http-version", "2")], Some("proxy-http-version")),
            (&[("proxy-buffers-number", "3")], None),
            (&[("proxy-buffers-number", "2")], Some("proxy-buffers-number")),
            (&[("proxy-buffers-number", "1")], Some("proxy-buffers-number")),
            (&[("proxy-buffer-size", "8b")], Some("proxy-buffer-size")),
            (&[("proxy-buffer-size", "1g")], Some("proxy-buffer-size")),
            (&[("proxy-buffer-size", "04k")], None),
            (&[("proxy-buffer-size", "8k"), ("proxy-buffers-number", "5")], None),
            (&[("proxy-buffer-size", "1m")], None),
            (&[("proxy-buffer-size", "8k"), ("proxy-buffers-number", "3")], None),
            (&[("proxy-buffer-size", "8k"), ("proxy-busy-buffers-size", "24k")], None),
            (&[("proxy-buffer-size", "8k"), ("proxy-busy-buffers-size", "32k")], Some("proxy-buffers-number")),
            (&[("proxy-busy-buffers-size", "12k")], None),
            (&[("proxy-busy-buffers-size", "2k")], Some("proxy-busy-buffers-size")),
        ];
        for (pairs, want) in rows {
            let got = fault(with(pairs)).map(|(k, _)| k);
            assert_eq!(got, *want, "{pairs:?}");
        }
    }
}
