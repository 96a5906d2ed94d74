//! The fourteenth review's findings, each a table on both targets with the
//! reviewer's inputs (/tmp/mrev14-in): an http-snippet `server {}` on the
//! controller's own `--http-port` / `--https-port` (R14-3).

mod common;

use common::{controller_at, ing_at, routes, run};
use realip_migrate::Target;

const BOTH: [Target; 2] = [Target::Realip, Target::EnvoyGateway];

/// R14-3 (sp1, sp2): nginx's generated servers listen on `--http-port`
/// (default 80) and `--https-port` (443), or `--ssl-passthrough-proxy-port`
/// (442) under `--enable-ssl-passthrough`; an http-snippet server declaring
/// app.example.com on one of those ports takes the host (deny-all), one on
/// another port (80 when `--http-port=8080`) takes nothing. A port flag
/// that is not a port makes every port count.
#[test]
fn http_snippet_server_on_the_controllers_ports() {
    // (name, controller args, the snippet server's listen, the Service's targetPorts, app denied)
    #[rustfmt::skip]
    let rows: &[(&str, &[&str], &str, bool, bool)] = &[
        ("sp1", &["--http-port=8080", "--https-port=8443"], "8080", false, true),
        ("sp2 (targetPort 8080)", &["--http-port=8080", "--https-port=8443"], "8080", true, true),
        ("https port", &["--http-port=8080", "--https-port=8443"], "8443 ssl", false, true),
        ("flag and value apart", &["--http-port", "8080"], "0.0.0.0:8080", false, true),
        ("passthrough proxy port", &["--enable-ssl-passthrough", "--ssl-passthrough-proxy-port=4442"], "4442", false, true),
        ("passthrough default proxy port", &["--enable-ssl-passthrough"], "442", false, true),
        ("not a port", &["--http-port=http"], "9090", false, true),
        ("control: listen 80, --http-port=8080", &["--http-port=8080", "--https-port=8443"], "80", false, false),
        ("control: no flags, listen 8080", &[], "8080", false, false),
        ("control: proxy port without passthrough", &["--ssl-passthrough-proxy-port=4442"], "4442", false, false),
    ];
    for target in BOTH {
        for &(name, args, listen, target_port, denied) in rows {
            let snippet = format!("server {{\n  listen {listen};\n  server_name app.example.com;\n  return 403;\n}}");
            let mut ctl = controller_at("v1.15.1", args, &[("http-snippet", &snippet)]);
            if target_port {
                ctl = ctl.replacen(
                    "- {name: http, port: 80}",
                    "- {name: http, port: 80, targetPort: 8080}\n  - {name: https, port: 443, targetPort: 8443}",
                    1,
                );
            }
            let m = run(&[ctl, ing_at("web", "app", 2021, "/", &[])], target);
            let text = m.report.text();
            assert_eq!(routes(&m, true).iter().any(|r| r.starts_with("app")), denied, "{name} {target:?}:\n{text}");
            assert_eq!(routes(&m, false).iter().any(|r| r == "app"), !denied, "{name} {target:?}:\n{text}");
            if denied {
                assert!(text.contains("server_name app.example.com"), "{name} {target:?}:\n{text}");
            }
        }
    }
}
