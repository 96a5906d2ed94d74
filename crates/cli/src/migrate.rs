//! `realip migrate ingress-nginx`: load, migrate, write objects and the
//! report, exit 0 (all converted) / 1 (something not converted; output
//! still written) / 2 (usage or input error).

use anyhow::anyhow;
use realip_migrate::{Options, Target};

use crate::args::MigrateArgs;
use crate::failure::Failure;

pub fn run(a: &MigrateArgs) -> Result<(), Failure> {
    if a.paths.is_empty() && !a.live {
        return Err(Failure::usage(anyhow!("nothing to migrate: give manifest files, directories, `-` or --live")));
    }
    // With --format json, stdout holds only JSON and stderr only the JSON
    // report: the loader's notes go into the report, the summary lines are
    // left to its `complete` and `counts`.
    let json = a.format == "json";
    let loaded = realip_kube::load_paths_noted(&a.paths).map_err(Failure::usage)?;
    let notes: Vec<String> = loaded.notes.iter().map(|n| format!("{}:{}: {}", n.file, n.line, n.message)).collect();
    if !json {
        for n in &loaded.notes {
            eprintln!("realip migrate: note: {}", n.message);
        }
    }
    let mut objects = loaded.objects;
    if a.live {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(Failure::usage)?;
        objects.extend(rt.block_on(realip_migrate::live::load()).map_err(Failure::usage)?);
    }
    let opts = Options {
        target: a.to.parse::<Target>().map_err(|e| Failure::usage(anyhow!("--to {e}")))?,
        gateway_class: a.gateway_class.clone(),
        gateway: a.gateway.clone(),
        trust: a.trust.clone(),
    };
    let mut m = realip_migrate::migrate(&objects, &opts).map_err(Failure::usage)?;
    realip_migrate::warn_duplicates(&mut m.report, &objects, &loaded.duplicates);
    if json {
        m.report.notes.splice(0..0, notes);
    }
    let report = if json { format!("{:#}\n", m.report.json()) } else { m.report.text() };
    match &a.out {
        Some(dir) => {
            let files = realip_migrate::write_dir(&m.objects, dir).map_err(Failure::usage)?;
            if !json {
                eprintln!("realip migrate: wrote {} objects to {}", files.len(), dir.display());
            }
        }
        None if json => print!("{}", realip_migrate::to_json(&m.objects)),
        None => print!("{}", realip_migrate::to_yaml(&m.objects)),
    }
    match (&a.report, &a.out) {
        (Some(path), _) => std::fs::write(path, &report)
            .map_err(|e| Failure::usage(anyhow!(e).context(format!("writing the report {}", path.display()))))?,
        (None, Some(_)) => print!("{report}"),
        (None, None) => eprint!("{report}"),
    }
    let warnings = m.report.count(realip_migrate::Status::Warning);
    if warnings > 0 && a.report.is_some() && !json {
        eprintln!(
            "realip migrate: {warnings} WARNING(s): the output trusts what ingress-nginx trusted; read the report"
        );
    }
    if m.report.incomplete() {
        if !json {
            eprintln!(
                "realip migrate: {} key(s) or annotation(s) not converted (the report says why)",
                m.report.count(realip_migrate::Status::NotConverted)
            );
        }
        return Err(Failure::Findings);
    }
    Ok(())
}
