//! `realip doctor`: load, check, report, exit 0/1/2.

use anyhow::anyhow;
use realip_doctor::{helm, probe, report, rules, Severity};

use crate::args::DoctorArgs;
use crate::failure::Failure;

pub fn run(a: &DoctorArgs) -> Result<(), Failure> {
    if a.paths.is_empty() && a.helm_values.is_empty() && a.probe.is_none() && !a.live {
        return Err(Failure::usage(anyhow!(
            "nothing to audit: give manifest files, directories, `-`, --helm-values, --live or --probe"
        )));
    }
    let loaded = realip_kube::load_paths_noted(&a.paths).map_err(Failure::usage)?;
    for n in &loaded.notes {
        eprintln!("realip doctor: note: {}", n.message);
    }
    let mut objects = loaded.objects;
    let mut findings = Vec::new();
    if a.live {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::usage)?;
        let cluster = rt.block_on(realip_kube::live::load_cluster()).map_err(Failure::usage)?;
        findings.extend(rules::check_live(&cluster));
        objects.extend(cluster);
    }
    let audit = rules::audit(&objects, &loaded.duplicates);
    let mut controllers = audit.controllers;
    findings.splice(0..0, audit.findings);
    for f in &a.helm_values {
        let text =
            std::fs::read_to_string(f).map_err(|e| Failure::usage(anyhow!(e).context(f.display().to_string())))?;
        let name = f.display().to_string();
        for doc in realip_kube::yaml::parse(&text, &name).map_err(Failure::usage)? {
            match helm::audit(&doc, &name) {
                (Some(chart), found) => {
                    eprintln!("realip doctor: note: {name}: {chart} chart values");
                    controllers.push(format!("{chart} chart values {name}"));
                    findings.extend(found);
                }
                (None, _) => eprintln!(
                    "realip doctor: note: {name}: not recognised as ingress-nginx, Traefik or realip chart values: not audited"
                ),
            }
        }
    }
    if let Some(url) = &a.probe {
        let p = probe::Probe {
            url: url.clone(),
            expect_client: a.expect_client,
            proxy_protocol: a.probe_proxy_protocol,
            field: a.probe_field.clone(),
        };
        findings.extend(probe::run(&p).map_err(Failure::usage)?);
        controllers.push(format!("probe {url}"));
    }
    let out = match a.format.as_str() {
        "json" => report::json(&findings, &controllers),
        "sarif" => report::sarif(&findings, &std::env::current_dir().unwrap_or_default()),
        _ => report::text(&findings, &controllers, std::io::IsTerminal::is_terminal(&std::io::stdout())),
    };
    println!("{}", out.trim_end());
    let floor = if a.fail_on == "warning" { Severity::Warning } else { Severity::Error };
    if findings.iter().any(|f| f.severity >= floor) {
        return Err(Failure::Findings);
    }
    Ok(())
}
