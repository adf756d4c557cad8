//! `kith demo`: every stage built so far, run on the bundled sample in a throw-away workspace.
//!
//! The demo is the README's first command. It grows as stages land; today it creates a
//! workspace, ingests the sample export into a vault snapshot, publishes the community health
//! release, runs the graph stage, and verifies the audit log.

use std::path::Path;

use std::collections::BTreeMap;

use super::output::Output;
use crate::audit::{Caller, Operation};
use crate::error::{ExitStatus, IoContext, Result};
use crate::intake::IngestOptions;
use crate::progress::Progress;

pub(super) fn run(sample: &Path, out: &mut Output) -> Result<ExitStatus> {
    // A fresh, randomly named folder: a predictable name in a shared temporary folder could
    // be planted in advance by another user. It holds a new key and nothing of value, and is
    // removed when the guard drops.
    let temp = tempfile::Builder::new()
        .prefix("kith-demo-")
        .tempdir()
        .at("creating demo folder", &std::env::temp_dir())?;
    run_in(&temp.path().join("workspace"), sample, out)
}

fn run_in(root: &Path, sample: &Path, out: &mut Output) -> Result<ExitStatus> {
    let workspace = super::init_workspace(root, &super::current_user()?)?;
    let policy = &workspace.policy().privacy;
    out.line(format!("1. workspace created at {} (removed afterwards)", root.display()))?;
    out.line(format!(
        "   policy: epsilon {} per period, degree cap {}, {} decisions per person, \
         minimum cell {}",
        policy.epsilon_per_period,
        policy.degree_cap,
        policy.decisions_per_person,
        policy.min_cell_size
    ))?;

    out.line(format!("2. ingest of {}", sample.display()))?;
    let options = IngestOptions { export: sample.to_owned(), as_of: None };
    let caller = Caller::new(super::current_user()?, &workspace.policy().roles);
    let args = BTreeMap::from([("dir".to_owned(), sample.display().to_string())]);
    let status = super::audited(&workspace, caller, Operation::Ingest, args, |workspace| {
        super::ingest::run(workspace, &options, Progress::hidden(), out)
    })?;

    out.line("3. community health release for 2026-02 (ε 0.5)")?;
    let period =
        super::release::PeriodArgs { period: Some("2026-02".into()), from: None, to: None };
    let user = super::current_user()?;
    let caller = Caller::new(user.clone(), &workspace.policy().roles);
    let args = BTreeMap::from([("period".to_owned(), "2026-02".to_owned())]);
    super::audited(&workspace, caller, Operation::Report, args, |workspace| {
        super::release::run(workspace, &user, &period, 0.5, out)
    })?;

    out.line("4. graph stage: degree cap, metrics, Leiden communities, exposure (internal)")?;
    let settings = crate::graph::community::Settings {
        quality: crate::graph::community::Quality::Cpm,
        resolution: crate::graph::community::DEFAULT_CPM_RESOLUTION,
        seed: 1,
        iterations: 2,
    };
    let caller = Caller::new(user, &workspace.policy().roles);
    super::audited(&workspace, caller, Operation::Graph, BTreeMap::new(), |workspace| {
        let detector = crate::graph::community::Detector::Kith;
        super::graph::run(workspace, detector, &settings, false, Progress::hidden(), out)
    })?;

    let verified = crate::audit::AuditLog::at(&workspace.folder("audit")).verify()?;
    out.line(format!("5. audit log: {} line(s), chain and MACs verified", verified.lines))?;

    out.line("stages still to come: model, report, query")?;
    Ok(status)
}
