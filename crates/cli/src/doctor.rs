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
    let mut objects = realip_kube::load_paths(&a.paths).map_err(Failure::usage)?;
    let mut findings = Vec::new();
    if a.live {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::usage)?;
        let cluster = rt.block_on(realip_kube::live::load_cluster()).map_err(Failure::usage)?;
        findings.extend(rules::check_live(&cluster));
        objects.extend(cluster);
    }
    findings.splice(0..0, rules::check(&objects));
    for f in &a.helm_values {
        let text = std::fs::read_to_string(f).map_err(|e| Failure::usage(anyhow!("{}: {e}", f.display())))?;
        let name = f.display().to_string();
        for doc in realip_kube::yaml::parse(&text, &name).map_err(Failure::usage)? {
            findings.extend(helm::check(&doc, &name));
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
    }
    let out = match a.format.as_str() {
        "json" => report::json(&findings),
        "sarif" => report::sarif(&findings),
        _ => report::text(&findings, std::io::IsTerminal::is_terminal(&std::io::stdout())),
    };
    println!("{}", out.trim_end());
    let floor = if a.fail_on == "warning" { Severity::Warning } else { Severity::Error };
    if findings.iter().any(|f| f.severity >= floor) {
        return Err(Failure::Findings);
    }
    Ok(())
}
