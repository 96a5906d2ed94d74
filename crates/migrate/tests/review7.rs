//! The seventh review's inputs (R7-1..R7-4): controller settings that make
//! ingress-nginx drop an Ingress or leave a ConfigMap value at its
//! default, each as a table on both targets.

mod common;

use common::{controller, ingress, open_policies, routes, run, status};
use realip_migrate::{Status, Target};

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// R7-4: ConfigMap booleans are parsed like Go's ParseBool, which does not
/// trim: `" true"` is invalid to ingress-nginx, so XFF stays untrusted.
#[test]
fn configmap_booleans_are_not_trimmed() {
    // (value, XFF trusted, report status of use-forwarded-headers)
    let table = [
        ("true", true, Status::Converted),
        (" true", false, Status::NotConverted),
        ("true ", false, Status::NotConverted),
        ("TRUE", true, Status::Converted),
        ("yes", false, Status::NotConverted),
    ];
    for target in BOTH {
        for (value, trusted, want) in table {
            let docs = [
                controller(&[("use-forwarded-headers", value), ("proxy-real-ip-cidr", "10.0.0.0/16")]),
                ingress("a", "/", &[("whitelist-source-range", "203.0.113.0/24")], ""),
            ];
            let m = run(&docs, target);
            assert_eq!(status(&m, "use-forwarded-headers"), want, "{value:?} {target:?}:\n{}", m.report.text());
            let out = realip_migrate::to_yaml(&m.objects);
            assert_eq!(out.contains("10.0.0.0/16"), trusted, "{value:?} {target:?}: 10.0.0.0/16 trusted?\n{out}");
            if !trusted {
                let e = m.report.entries.iter().find(|e| e.key == "use-forwarded-headers").unwrap();
                assert!(e.why.contains("not a boolean"), "{value:?}: {}", e.why);
                assert_eq!(e.value, value, "the report shows the value as written");
            }
            if want == Status::Converted {
                assert_eq!(routes(&m, false), ["a"], "{value:?} {target:?}");
                assert!(!open_policies(&m).is_empty(), "{value:?} {target:?}: the allow list is emitted");
            }
        }
    }
}
