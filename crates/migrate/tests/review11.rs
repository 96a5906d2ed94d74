//! The eleventh review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/rev11-in): R11-1, ingress-nginx v1.13's
//! PROXY-then-X-Forwarded-For chain.

mod common;

use common::{controller_at, find, ing_at, open_policies, routes, run, run_with};
use realip_migrate::{Migration, Options, Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];
const W: (&str, &str) = ("whitelist-source-range", "10.0.0.0/8");
const D: (&str, &str) = ("denylist-source-range", "198.51.100.7/32");

/// The report entry of `key` on an object whose id starts with `object` (the first).
fn entry<'a>(m: &'a Migration, object: &str, key: &str) -> &'a realip_migrate::Entry {
    let e = m.report.entries.iter().find(|e| e.object.starts_with(object) && e.key == key);
    e.unwrap_or_else(|| panic!("no entry for {key}:\n{}", m.report.text()))
}

/// q1, q2, q3, q5: `use-proxy-protocol` with `use-forwarded-headers`. From
/// ingress-nginx v1.13 the client is X-Forwarded-For from a PROXY source
/// in proxy-real-ip-cidr, which no policy says exactly: the lists are
/// deny-all and the client-IP keys not converted. Before v1.13 it is the
/// PROXY source (converted on realip; Envoy Gateway has no trusted-sender
/// list, so deny-all there unless every peer is trusted). An unknown
/// version is not converted. `trust_all`: `--trust 0.0.0.0/0 --trust ::/0`.
#[test]
fn proxy_protocol_with_forwarded_headers_follows_the_version() {
    // (name, image tag, --trust all, the list is converted on realip, on Envoy Gateway)
    #[rustfmt::skip]
    let rows: &[(&str, &str, bool, bool, bool)] = &[
        ("q1 v1.13.0", "v1.13.0", false, false, false),
        ("q1 v1.15.1", "v1.15.1", false, false, false),
        ("q1 v1.13.0, every peer trusted", "v1.13.0", true, false, false),
        ("version unknown", "latest", false, false, false),
        ("version unknown, every peer trusted", "latest", true, false, false),
        ("q5 control: v1.12.8", "v1.12.8", false, true, false),
        ("q5 control: v1.12.8, every peer trusted", "v1.12.8", true, true, true),
    ];
    for target in BOTH {
        for &(name, tag, trust_all, on_realip, on_eg) in rows {
            for list in [W, D] {
                let docs = [
                    controller_at(tag, &[], &[("use-proxy-protocol", "true")]),
                    ing_at("web", "q-int", 2021, "/admin", &[list]),
                ];
                let trust = if trust_all { vec!["0.0.0.0/0".to_owned(), "::/0".to_owned()] } else { vec![] };
                let m = run_with(&docs, &Options { target, trust, ..Options::default() });
                let text = m.report.text();
                let converted = if target == Target::Realip { on_realip } else { on_eg };
                let ufh = entry(&m, "ConfigMap/", "use-forwarded-headers");
                if converted {
                    assert_eq!(routes(&m, false), ["q-int"], "{name} {target:?}:\n{text}");
                    assert_eq!(open_policies(&m).len(), 1, "{name} {target:?}:\n{text}");
                    assert_eq!(ufh.status, Status::Converted, "{name} {target:?}:\n{text}");
                    assert!(!m.report.incomplete(), "{name} {target:?}:\n{text}");
                } else {
                    assert_eq!(routes(&m, true), ["q-int-denied"], "{name} {target:?}:\n{text}");
                    assert!(open_policies(&m).is_empty(), "{name} {target:?}:\n{text}");
                    assert!(m.report.incomplete(), "{name} {target:?}:\n{text}");
                }
                let v13 = tag != "v1.12.8";
                if v13 {
                    assert_eq!(ufh.status, Status::NotConverted, "{name} {target:?}:\n{text}");
                    assert!(ufh.why.contains("v1.13"), "{name} {target:?}: {}", ufh.why);
                    assert!(!ufh.why.contains("the output does the same"), "{name} {target:?}: {}", ufh.why);
                } else {
                    assert!(ufh.why.contains("PROXY header only"), "{name} {target:?}: {}", ufh.why);
                }
                // The policy: on v1.13+ realip carries the closest chain; before, PROXY only.
                let policy = &find(&m, if target == Target::Realip { "ClientIPPolicy" } else { "ClientTrafficPolicy" })
                    [0]["spec"];
                match target {
                    Target::Realip if tag.starts_with("v1.1") && v13 => {
                        assert_eq!(policy["sources"], serde_json::json!(["XForwardedFor"]), "{name}: {policy}");
                        assert_eq!(
                            policy["trustedProxies"], policy["proxyProtocol"]["trustedSenders"],
                            "{name}: {policy}"
                        );
                    }
                    Target::Realip => {
                        assert_eq!(policy["sources"], serde_json::json!(["ProxyProtocol"]), "{name}: {policy}");
                    }
                    Target::EnvoyGateway => {
                        assert_eq!(policy["proxyProtocol"], serde_json::json!({"optional": false}), "{name}: {policy}");
                        assert!(policy.get("clientIPDetection").is_none(), "{name}: {policy}");
                    }
                }
            }
        }
    }
}

/// q3 and `forwarded-for-proxy-protocol-header`: the trust-all warning
/// names X-Forwarded-For on v1.13+, and the intermediate header is
/// reported (not converted with both keys on v1.13+, ignored otherwise).
#[test]
fn forwarded_for_proxy_protocol_header_is_reported() {
    for target in BOTH {
        for (tag, status) in [("v1.15.1", Status::NotConverted), ("v1.12.8", Status::Ignored)] {
            let data = [("use-proxy-protocol", "true"), ("forwarded-for-proxy-protocol-header", "X-PP-Client")];
            let docs = [controller_at(tag, &[], &data), ing_at("web", "q-open", 2021, "/", &[])];
            let m = run(&docs, target);
            let text = m.report.text();
            let e = entry(&m, "ConfigMap/", "forwarded-for-proxy-protocol-header");
            assert_eq!(e.status, status, "{tag} {target:?}:\n{text}");
            assert!(!e.why.contains("not handled by realip migrate"), "{tag} {target:?}: {}", e.why);
        }
        let docs = [
            controller_at("v1.15.1", &[], &[("use-proxy-protocol", "true")]).replace("10.0.0.0/16", "0.0.0.0/0"),
            ing_at("web", "q-open", 2021, "/", &[]),
        ];
        let m = run(&docs, target);
        let cidr = entry(&m, "ConfigMap/", "proxy-real-ip-cidr");
        assert_eq!(cidr.status, Status::Warning, "{target:?}:\n{}", m.report.text());
        assert!(cidr.why.contains("any X-Forwarded-For through the load balancer"), "{target:?}: {}", cidr.why);
    }
}

/// R11-3 (sn-http-snippet, sn2): real-IP directives in the ConfigMap's
/// `http-snippet` change who the client is on every server: the client
/// address is not converted, so lists and limits are deny-all and the
/// snippet's entry says why. Other http-snippets leave the lists converted.
#[test]
fn real_ip_directives_in_http_snippet_leave_the_client_unconverted() {
    // (name, the http-snippet, with BASE (use-forwarded-headers, 10.0.0.0/16), the list is converted)
    #[rustfmt::skip]
    let rows: &[(&str, &str, bool, bool)] = &[
        ("sn-http-snippet", "real_ip_header X-Forwarded-For;\nset_real_ip_from 10.0.0.0/8;", false, false),
        ("sn2", "set_real_ip_from 192.0.2.0/24;", true, false),
        ("real_ip_recursive", "real_ip_recursive off;", true, false),
        ("control: gzip", "gzip on;", true, true),
        ("control: commented out", "# set_real_ip_from 192.0.2.0/24;\ngzip on;", true, true),
    ];
    for target in BOTH {
        for &(name, snippet, base, converted) in rows {
            let data = [("http-snippet", snippet)];
            let ctl = if base { controller_at("v1.15.1", &[], &data) } else { common::controller(&data) };
            let docs = [ctl, ing_at("web", "s-adm", 2021, "/admin", &[D])];
            let m = run(&docs, target);
            let text = m.report.text();
            let e = entry(&m, "ConfigMap/", "http-snippet");
            assert_eq!(e.status, Status::NotConverted, "{name} {target:?}:\n{text}");
            if converted {
                assert_eq!(routes(&m, false), ["s-adm"], "{name} {target:?}:\n{text}");
                assert!(!e.why.contains("real-IP directives"), "{name} {target:?}: {}", e.why);
            } else {
                assert_eq!(routes(&m, true), ["s-adm-denied"], "{name} {target:?}:\n{text}");
                assert!(open_policies(&m).is_empty(), "{name} {target:?}:\n{text}");
                assert!(e.why.contains("real-IP directives"), "{name} {target:?}: {}", e.why);
                let list = entry(&m, "Ingress/web/s-adm", D.0);
                assert_eq!(list.status, Status::NotConverted, "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// R11-2 (g1, g4, f5, f7, f6): `global-rate-limit-window` (up to v1.11)
/// and `fastcgi-params-configmap` deny the location in ingress-nginx (503
/// for everyone) on errors the migration does not check: the Ingress is
/// deny-all, reported not converted. f6 (another namespace while
/// cross-namespace resources are off) is served, and stays open.
#[test]
fn more_locations_ingress_nginx_may_deny_are_deny_all() {
    type Row = (
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
        Option<&'static str>,
    );
    const GLR: &[(&str, &str)] = &[("global-rate-limit", "100"), ("global-rate-limit-window", "1 minute")];
    const OFF: &[&str] = &["--enable-annotation-validation=false"];
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("g1 bad window, v1.11.3", "v1.11.3", &[], GLR, Some("global-rate-limit-window")),
        ("g4 bad window, v1.11.3, validation on", "v1.11.3", &["--enable-annotation-validation=true"], GLR, Some("global-rate-limit-window")),
        ("bad window, limit 0, validation on", "v1.11.3", &["--enable-annotation-validation=true"], &[("global-rate-limit-window", "1 minute")], Some("global-rate-limit-window")),
        ("bad window, version unknown", "latest", &[], GLR, Some("global-rate-limit-window")),
        ("control: bad window, limit 0, validation off", "v1.11.3", &[], &[("global-rate-limit-window", "1 minute")], None),
        ("control: bad window on v1.12 (feature removed)", "v1.12.8", &[], GLR, None),
        ("f5 fastcgi, v1.11.3", "v1.11.3", &[], &[("fastcgi-params-configmap", "nope")], Some("fastcgi-params-configmap")),
        ("f7 fastcgi, v1.15.1, validation off", "v1.15.1", OFF, &[("fastcgi-params-configmap", "nope")], Some("fastcgi-params-configmap")),
        ("fastcgi, own namespace named", "v1.15.1", OFF, &[("fastcgi-params-configmap", "web/nope")], Some("fastcgi-params-configmap")),
        ("fastcgi, two slashes", "v1.15.1", OFF, &[("fastcgi-params-configmap", "a/b/c")], Some("fastcgi-params-configmap")),
        ("fastcgi, another namespace, v1.11 (cross-namespace on)", "v1.11.3", &[], &[("fastcgi-params-configmap", "other/nope")], Some("fastcgi-params-configmap")),
        ("f6 control: another namespace, v1.15.1", "v1.15.1", OFF, &[("fastcgi-params-configmap", "other/nope")], None),
    ];
    for target in BOTH {
        for &(name, tag, args, anns, denied) in rows {
            let docs = [
                controller_at(tag, args, &[]),
                ing_at("web", "a-adm", 2020, "/", &[("whitelist-source-range", "203.0.113.0/24")]),
                ing_at("web", "g-open", 2021, "/api", anns),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            if let Some(key) = denied {
                assert_eq!(routes(&m, false), ["a-adm"], "{name} {target:?}:\n{text}");
                assert_eq!(routes(&m, true), ["g-open-denied"], "{name} {target:?}:\n{text}");
                let reported = m.report.entries.iter().any(|e| {
                    e.object == "Ingress/web/g-open"
                        && e.key == key
                        && e.status == Status::NotConverted
                        && e.why.contains("denies the location")
                });
                assert!(reported, "{name} {target:?}:\n{text}");
            } else {
                let mut open = routes(&m, false);
                open.sort();
                assert_eq!(open, ["a-adm", "g-open"], "{name} {target:?}:\n{text}");
            }
        }
    }
}

/// g2: the older a-glr (bad window, v1.11.3) and the newer y-adm (allow
/// list) share /admin. ingress-nginx serves /admin from a-glr, denied: the
/// migration must not open /admin to everyone.
#[test]
fn an_older_ingress_with_a_bad_window_does_not_open_the_path() {
    for target in BOTH {
        let docs = [
            controller_at("v1.11.3", &[], &[]),
            ing_at(
                "web",
                "a-glr",
                2020,
                "/admin",
                &[("global-rate-limit", "100"), ("global-rate-limit-window", "1 minute")],
            ),
            ing_at("web", "y-adm", 2021, "/admin", &[("whitelist-source-range", "203.0.113.0/24")]),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert!(routes(&m, false).is_empty(), "{target:?}: /admin is not open:\n{text}");
        assert_eq!(routes(&m, true), ["a-glr-denied"], "{target:?}:\n{text}");
    }
}

/// (name, image tag, ConfigMap lines, window, status, the emitted per-second rate).
type GlrRow = (&'static str, &'static str, &'static [(&'static str, &'static str)], &'static str, Status, Option<u32>);

/// R11-4 (g3): `global-rate-limit` is a limit only where ingress-nginx
/// applied it: up to v1.11, with memcached, and a window of 1 s or more
/// (truncated to whole seconds). Elsewhere it is ignored and no limit is
/// emitted; an unknown version keeps the limit, reported changed.
#[test]
fn global_rate_limit_only_where_ingress_nginx_applied_it() {
    const MC: (&str, &str) = ("global-rate-limit-memcached-host", "memcached.ingress-nginx");
    #[rustfmt::skip]
    let rows: &[GlrRow] = &[
        ("g3 v1.15.1", "v1.15.1", &[MC], "1m", Status::Ignored, None),
        ("v1.12.0", "v1.12.0", &[MC], "1m", Status::Ignored, None),
        ("v1.11.3 without memcached", "v1.11.3", &[], "1m", Status::Ignored, None),
        ("v1.11.3, memcached port 0", "v1.11.3", &[MC, ("global-rate-limit-memcached-port", "0")], "1m", Status::Ignored, None),
        ("v1.11.3, window under 1 s", "v1.11.3", &[MC], "500ms", Status::Ignored, None),
        ("version unknown without memcached", "latest", &[], "1m", Status::Ignored, None),
        ("version unknown with memcached", "latest", &[MC], "1s", Status::Changed, Some(100)),
        ("v1.11.3, window 1.5 s truncated to 1 s", "v1.11.3", &[MC], "1.5s", Status::Converted, Some(100)),
        ("control: v1.11.3 with memcached", "v1.11.3", &[MC], "1s", Status::Converted, Some(100)),
    ];
    for target in BOTH {
        for &(name, tag, data, window, want, rate) in rows {
            let anns = [("global-rate-limit", "100"), ("global-rate-limit-window", window)];
            let docs = [controller_at(tag, &[], data), ing_at("web", "g-lim", 2021, "/", &anns)];
            let m = run(&docs, target);
            let text = m.report.text();
            assert_eq!(entry(&m, "Ingress/web/g-lim", "global-rate-limit").status, want, "{name} {target:?}:\n{text}");
            let window_status = entry(&m, "Ingress/web/g-lim", "global-rate-limit-window").status;
            assert_eq!(window_status, want, "{name} {target:?}:\n{text}");
            assert_eq!(routes(&m, false), ["g-lim"], "{name} {target:?}:\n{text}");
            let policies = open_policies(&m);
            match (rate, target) {
                (None, _) => {
                    assert!(policies.is_empty(), "{name} {target:?}: no limit:\n{text}");
                    assert!(!m.report.incomplete(), "{name} {target:?}:\n{text}");
                }
                (Some(r), Target::Realip) => {
                    assert_eq!(
                        policies[0]["spec"]["rateLimit"]["perSecond"].as_f64(),
                        Some(f64::from(r)),
                        "{name}:\n{text}"
                    );
                }
                (Some(r), Target::EnvoyGateway) => {
                    let limit = &policies[0]["spec"]["rateLimit"]["global"]["rules"][0]["limit"];
                    assert_eq!(limit, &serde_json::json!({"requests": r, "unit": "Second"}), "{name}:\n{text}");
                }
            }
        }
    }
}

/// An annotation (without the prefix) and its value.
type Ann = (&'static str, &'static str);

/// R11-5 (h1, h3): a location ingress-nginx may deny has ONE not-converted
/// entry for its annotation, saying ingress-nginx answers 503 there (not
/// that it dropped or served the Ingress).
#[test]
fn a_denied_location_has_one_entry_saying_503() {
    #[rustfmt::skip]
    let rows: &[(&str, &str, &[&str], Ann)] = &[
        ("h1 custom-headers", "v1.15.1", &[], ("custom-headers", "hdrs")),
        ("h3 proxy-ssl-secret", "v1.15.1", &["--enable-annotation-validation=false"], ("proxy-ssl-secret", "other/ca")),
        ("f7 fastcgi-params-configmap", "v1.15.1", &["--enable-annotation-validation=false"], ("fastcgi-params-configmap", "nope")),
    ];
    for target in BOTH {
        for &(name, tag, args, ann) in rows {
            let docs = [controller_at(tag, args, &[]), ing_at("web", "h-open", 2021, "/admin", &[ann])];
            let m = run(&docs, target);
            let text = m.report.text();
            let mine: Vec<_> =
                m.report.entries.iter().filter(|e| e.object == "Ingress/web/h-open" && e.key == ann.0).collect();
            assert_eq!(mine.len(), 1, "{name} {target:?}: one entry for {}:\n{text}", ann.0);
            assert_eq!(mine[0].status, Status::NotConverted, "{name} {target:?}:\n{text}");
            assert!(mine[0].why.contains("503"), "{name} {target:?}: {}", mine[0].why);
            assert!(!text.contains("dropped it or served it"), "{name} {target:?}:\n{text}");
            assert_eq!(routes(&m, true), ["h-open-denied"], "{name} {target:?}:\n{text}");
        }
    }
}

/// R11-5 (c5): ingress-nginx builds no location from a canary, so a
/// canary's custom-headers never denies anything: the canary is folded
/// into its main Ingress's route (50 %), and no note says a canary was
/// emitted deny-all.
#[test]
fn a_canary_s_denied_location_does_not_apply() {
    for target in BOTH {
        let docs = [
            controller_at("v1.15.1", &[], &[]),
            ing_at("web", "m-main", 2020, "/admin", &[]),
            ing_at(
                "web",
                "c-can",
                2021,
                "/admin",
                &[("canary", "true"), ("canary-weight", "50"), ("custom-headers", "hdrs")],
            ),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert_eq!(routes(&m, false), ["m-main"], "{target:?}:\n{text}");
        assert!(routes(&m, true).is_empty(), "{target:?}:\n{text}");
        let backends: Vec<_> = find(&m, "HTTPRoute")[0]["spec"]["rules"][0]["backendRefs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| (b["name"].as_str().unwrap().to_owned(), b["weight"].as_u64()))
            .collect();
        assert_eq!(
            backends,
            [("m-main-svc".to_owned(), Some(50)), ("c-can-svc".to_owned(), Some(50))],
            "{target:?}:\n{text}"
        );
        let custom = m.report.entries.iter().filter(|e| e.key == "custom-headers").collect::<Vec<_>>();
        assert_eq!(custom.len(), 1, "{target:?}:\n{text}");
        assert_eq!(custom[0].status, Status::Ignored, "{target:?}:\n{text}");
        assert!(!m.report.incomplete(), "{target:?}:\n{text}");
        assert!(
            !m.report.notes.iter().any(|n| n.contains("c-can") && n.contains("emitted as deny-all")),
            "{target:?}:\n{text}"
        );
    }
    // A canary left out for another reason (a High-risk annotation, the
    // version unknown): no route of its own, and the note says so.
    for target in BOTH {
        let docs = [
            controller_at("latest", &[], &[]),
            ing_at("web", "m-main", 2020, "/admin", &[]),
            ing_at(
                "web",
                "c-can",
                2021,
                "/admin",
                &[("canary", "true"), ("canary-weight", "50"), ("server-alias", "x.example")],
            ),
        ];
        let m = run(&docs, target);
        let text = m.report.text();
        assert_eq!(routes(&m, false), ["m-main"], "{target:?}:\n{text}");
        let note = m.report.notes.iter().find(|n| n.starts_with("Ingress/web/c-can") && n.contains("left out"));
        let note = note.unwrap_or_else(|| panic!("{target:?}: no note for c-can:\n{text}"));
        assert!(
            !note.contains("emitted as deny-all") && note.contains("nothing of it is in the output"),
            "{target:?}: {note}"
        );
    }
}

/// R11-2, fastcgi across namespaces: ingress-nginx reads the ConfigMap in
/// the Ingress's own namespace unless cross-namespace resources are off
/// (`allow-cross-namespace-resources`, true by default before v1.12), when
/// another namespace is only an error and the location is served.
#[test]
fn fastcgi_in_another_namespace_follows_allow_cross_namespace_resources() {
    // (image tag, allow-cross-namespace-resources, denied)
    let rows: &[(&str, Option<&str>, bool)] = &[
        ("v1.11.3", None, true),
        ("v1.11.3", Some("false"), false),
        ("v1.15.1", Some("true"), true),
        ("v1.15.1", None, false),
    ];
    for target in BOTH {
        for &(tag, allow, denied) in rows {
            let data: Vec<(&str, &str)> = allow.map(|a| ("allow-cross-namespace-resources", a)).into_iter().collect();
            let docs = [
                controller_at(tag, &["--enable-annotation-validation=false"], &data),
                ing_at("web", "f-open", 2021, "/api", &[("fastcgi-params-configmap", "other/nope")]),
            ];
            let m = run(&docs, target);
            let text = m.report.text();
            let want: &[&str] = if denied { &["f-open-denied"] } else { &[] };
            assert_eq!(routes(&m, true), want, "{tag} {allow:?} {target:?}:\n{text}");
        }
    }
}
