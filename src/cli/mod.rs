//! The `kith` command line: argument definitions (clap derive; doc comments are the help
//! text) and the dispatch from a parsed command to the library.
//!
//! Commands print results to standard output through [`output::Output`] and diagnostics
//! through `tracing`; the binary maps the returned [`ExitStatus`] or error to the exit code.

mod audit;
mod check;
mod demo;
mod graph;
mod ingest;
pub mod output;
mod release;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::audit::{Audited, Caller, Done, Operation, Role};
use crate::error::{ExitStatus, Result};
use crate::intake;
use crate::logging::LogFormat;
use crate::progress::Progress;
use crate::synth::{self, SynthConfig};
use crate::workspace::Workspace;
use output::Output;

/// Differentially private community health insights from consented program data.
///
/// kith ingests a wellness program's export into a private workspace, builds the social
/// graph of friends, family, coworkers and neighbours, and publishes only differentially
/// private community-level statistics. Run `kith demo` for a tour on the bundled sample.
#[derive(Debug, Parser)]
#[command(name = "kith", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Exit codes: 0 success, 1 finished with quarantined rows, 2 usage \
                        error, 3 input refused, 4 refused by policy, 5 workspace or system \
                        problem, 6 audit log failed verification, 70 internal error.")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The workspace folder.
    ///
    /// Defaults to `KITH_WORKSPACE`, then to the current folder.
    #[arg(long, global = true, env = "KITH_WORKSPACE", value_name = "DIR")]
    pub workspace: Option<PathBuf>,

    /// Log more: `-v` for decisions, `-vv` for per-batch detail.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Log errors only and hide progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// How to write logs on standard error: `json` gives one object per line for schedulers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl GlobalArgs {
    /// Verbosity for [`crate::logging::init`].
    pub fn verbosity(&self) -> i8 {
        if self.quiet { -1 } else { self.verbose.min(3) as i8 }
    }

    fn workspace_dir(&self) -> PathBuf {
        self.workspace.clone().unwrap_or_else(|| PathBuf::from("."))
    }

    fn progress(&self) -> Progress {
        Progress::for_terminal(self.quiet)
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new workspace: policy, secret key and stage folders.
    ///
    /// Writes `kith.toml` (the privacy policy with documented defaults, the current
    /// operating-system user as steward), a 32-byte secret key readable by the owner only, and
    /// the folders for the vault, identity map, releases, quarantine, audit log and ledger.
    /// Refuses to touch a folder that already holds any of them.
    Init {
        /// Where to create it; defaults to `--workspace`, then the current folder.
        dir: Option<PathBuf>,
    },

    /// Generate a synthetic program export with planted, recorded truth.
    ///
    /// Writes `people.csv`, `ties.csv`, `consents.csv` and `decisions.csv` in the input data
    /// contract, plus `truth.json` (every planted parameter, measured shapes, and the expected
    /// quarantine reason of each injected defect) and `truth_people.csv` (hidden clusters).
    /// The same seed always gives the same bytes.
    Synth(SynthArgs),

    /// Check an export folder against the input data contract, storing nothing.
    ///
    /// Reads each table's header and rows and reports, per table, how many rows break the
    /// contract and why. Checks that need the whole export (duplicate people, unknown tie
    /// ends, consent, a birth date after the export date) belong to `kith ingest`.
    Check {
        /// The export folder (each table as `.csv`, `.csv.gz` or `.parquet`).
        dir: PathBuf,
    },

    /// Ingest an export into a new vault snapshot (steward).
    ///
    /// Validates every row, replaces identities by random person IDs, applies consent as of
    /// the export date, and writes a snapshot atomically with a manifest; rows that break the
    /// contract go to `quarantine/SNAPSHOT.csv`. Re-ingesting an identical export writes
    /// nothing. Exits 1 when rows were quarantined and 3 when the export is refused whole.
    Ingest(IngestArgs),

    /// Rotate the workspace's secret key (steward).
    ///
    /// Adds a new key generation and re-indexes the identity map under it; every person keeps
    /// their ID. Finishes a rotation that a crash interrupted.
    RotateKey,

    /// Build the social graph of the newest snapshot (steward; internal, nothing released).
    ///
    /// The multiplex graph of people with network consent, its degree-capped projection,
    /// per-person metrics, Leiden communities and weekly network exposure, stored inside the
    /// snapshot; rerunning with the same settings reuses them. `--summary` prints the
    /// steward's diagnostics: counts and distributions only, never a person.
    Graph {
        /// Print the internal diagnostics.
        #[arg(long)]
        summary: bool,

        /// Quality function of community detection (the default was chosen by recovery of
        /// planted clusters; see docs/graph.md).
        #[arg(long, value_enum, default_value_t = crate::graph::community::Quality::Cpm)]
        quality: crate::graph::community::Quality,

        /// Resolution γ, a positive number (CPM: the minimum tie weight per pair inside a
        /// community, default 0.01; modularity: default 1, Newman and Girvan's definition).
        #[arg(long, value_name = "G", value_parser = positive_resolution)]
        resolution: Option<f64>,

        /// Seed of community detection.
        #[arg(long, value_name = "S", default_value_t = 1)]
        seed: u64,

        /// Leiden iterations.
        #[arg(long, value_name = "N", default_value_t = 2)]
        iterations: usize,

        /// Which Leiden implementation runs.
        #[arg(long, value_enum, default_value_t = crate::graph::community::Detector::Kith)]
        detector: crate::graph::community::Detector,
    },

    /// Publish the community health release for a period (steward, analyst).
    ///
    /// Per declared community: people, decisions and the healthy-choice rate per domain, each
    /// with a 95% interval, under person-level differential privacy. The spend is recorded in
    /// the ledger before any noise is drawn; asking again for the same release returns the
    /// stored file and spends nothing. Refused (exit 4) when the budget would be exceeded.
    Release {
        #[command(flatten)]
        period: release::PeriodArgs,

        /// Privacy loss to spend, as ε at the policy's δ.
        #[arg(long, value_name = "E", default_value_t = 0.5)]
        epsilon: f64,
    },

    /// Show spent and remaining privacy budget (every role).
    ///
    /// One line per calendar month with spending (and per month asked for with `--period` or
    /// `--from`/`--to`), one for the last 365 days, and one per researcher and month.
    Budget {
        #[command(flatten)]
        period: release::PeriodArgs,
    },

    /// Check or list the workspace's audit log (steward).
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },

    /// Run every stage built so far on the bundled sample, in a throw-away workspace.
    Demo {
        /// The sample export to use.
        #[arg(long, default_value = "data-samples/program", value_name = "DIR")]
        sample: PathBuf,
    },
}

/// What to do with the audit log.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Check every line's MAC, the hash chain and the head; name the first bad line.
    ///
    /// Exits 6 when the log was altered, truncated, reordered or extended by anything but
    /// kith. Prints the last line's SHA-256: keep it elsewhere to detect a rollback.
    Verify,

    /// List entries, oldest first.
    Show {
        /// Only entries of this operating-system user.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,

        /// Only entries of this operation (`init`, `audit-show`, `ingest`, ...).
        #[arg(long, value_name = "NAME")]
        command: Option<String>,

        /// Only entries on or after this day (UTC, ISO date).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        since: Option<chrono::NaiveDate>,
    },
}

/// Options of `kith ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The export folder: `people`, `ties`, `consents` and `decisions`, each as `.csv`,
    /// `.csv.gz` or `.parquet`.
    pub dir: PathBuf,

    /// The day consent is judged on (ISO date); defaults to the newest date in the export.
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub as_of: Option<chrono::NaiveDate>,
}

/// Options of `kith synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of enrolled people.
    #[arg(long, value_name = "N")]
    pub people: usize,

    /// Seed of every random draw; the same seed gives byte-identical files.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,

    /// Folder to write the export into (created if missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Share of rows to corrupt, each with one defect recorded in `truth.json`.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub dirty: f64,

    /// First day of the decision period (ISO date).
    #[arg(long, value_name = "DATE", default_value = "2026-01-05", value_parser = parse_date)]
    pub start: chrono::NaiveDate,

    /// Number of weeks of decisions.
    #[arg(long, value_name = "W", default_value_t = 8)]
    pub weeks: u32,
}

fn parse_date(text: &str) -> std::result::Result<chrono::NaiveDate, String> {
    crate::intake::contract::parse_date(text)
        .ok_or_else(|| format!("`{text}` is not a YYYY-MM-DD date"))
}

/// A community resolution: finite and above zero, since γ ≤ 0 makes one community of every
/// component and NaN compares false with every gain.
fn positive_resolution(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("`{text}` is not a positive number")),
    }
}

/// Runs a parsed command.
#[expect(clippy::too_many_lines, reason = "one short arm per command, each a call")]
pub fn run(cli: Cli) -> Result<ExitStatus> {
    let mut out = Output::stdout();
    let global = &cli.global;
    match cli.command {
        Command::Init { dir } => {
            let root = dir.unwrap_or_else(|| global.workspace_dir());
            let steward = current_user()?;
            let workspace = init_workspace(&root, &steward)?;
            out.line(format!("created workspace {}", workspace.root().display()))?;
            out.line(format!("steward: {steward}; policy: {}", root.join("kith.toml").display()))?;
            Ok(ExitStatus::Success)
        }
        Command::Synth(args) => {
            let config = SynthConfig {
                people: args.people,
                seed: args.seed,
                dirty_rate: args.dirty,
                start: args.start,
                weeks: args.weeks,
            };
            let summary = synth::generate(&config, &args.out, &global.progress())?;
            out.line(format!(
                "wrote {} people, {} ties, {} consents, {} decisions ({} planted defects) to {}",
                summary.people,
                summary.ties,
                summary.consents,
                summary.decisions,
                summary.defects,
                args.out.display()
            ))?;
            Ok(ExitStatus::Success)
        }
        Command::Check { dir } => check::run(&dir, &mut out),
        Command::Ingest(args) => {
            let mut audit_args =
                BTreeMap::from([("dir".to_owned(), args.dir.display().to_string())]);
            if let Some(day) = args.as_of {
                audit_args.insert("as_of".to_owned(), day.to_string());
            }
            let options = intake::IngestOptions { export: args.dir, as_of: args.as_of };
            let progress = global.progress();
            in_workspace(global, Operation::Ingest, audit_args, |workspace| {
                ingest::run(workspace, &options, progress, &mut out)
            })
        }
        Command::Release { period, epsilon } => {
            let mut args = BTreeMap::from([("epsilon".to_owned(), epsilon.to_string())]);
            if let Ok((from, to)) = period.range() {
                args.insert("from".to_owned(), from.to_string());
                args.insert("to".to_owned(), to.to_string());
            }
            in_workspace(global, Operation::Report, args, |workspace| {
                let user = caller_name(workspace.root())?;
                release::run(workspace, &user, &period, epsilon, &mut out)
            })
        }
        Command::Graph { summary, quality, resolution, seed, iterations, detector } => {
            let resolution = resolution.unwrap_or_else(|| quality.default_resolution());
            let settings =
                crate::graph::community::Settings { quality, resolution, seed, iterations };
            let args = BTreeMap::from([
                ("quality".to_owned(), format!("{quality:?}").to_lowercase()),
                ("resolution".to_owned(), resolution.to_string()),
                ("seed".to_owned(), seed.to_string()),
                ("iterations".to_owned(), iterations.to_string()),
                ("detector".to_owned(), format!("{detector:?}").to_lowercase()),
            ]);
            let progress = global.progress();
            in_workspace(global, Operation::Graph, args, |workspace| {
                graph::run(workspace, detector, &settings, summary, progress, &mut out)
            })
        }
        Command::Budget { period } => {
            in_workspace(global, Operation::BudgetShow, BTreeMap::new(), |workspace| {
                let caller = Caller::new(caller_name(workspace.root())?, &workspace.policy().roles);
                let sees_all =
                    caller.roles.iter().any(|r| matches!(r, Role::Steward | Role::Analyst));
                let only = (!sees_all).then_some(caller.user.as_str());
                release::budget(workspace, &period, only, &mut out)
            })
        }
        Command::RotateKey => in_workspace(global, Operation::RotateKey, BTreeMap::new(), |ws| {
            ingest::rotate(ws, &mut out)
        }),
        Command::Demo { sample } => demo::run(&sample, &mut out),
        Command::Audit { action: AuditAction::Verify } => {
            in_workspace(global, Operation::AuditVerify, BTreeMap::new(), |workspace| {
                audit::verify(workspace, &mut out)
            })
        }
        Command::Audit { action: AuditAction::Show { user, command, since } } => {
            let mut args = BTreeMap::new();
            for (name, value) in [("user", &user), ("command", &command)] {
                if let Some(value) = value {
                    args.insert(name.to_owned(), value.clone());
                }
            }
            if let Some(since) = since {
                args.insert("since".to_owned(), since.to_string());
            }
            let filter = audit::ShowFilter { user, command, since };
            in_workspace(global, Operation::AuditShow, args, |workspace| {
                audit::show(workspace, &filter, &mut out)
            })
        }
    }
}

/// Creates a workspace and records its creation as the first audit line.
fn init_workspace(root: &Path, steward: &str) -> Result<Workspace> {
    let workspace = Workspace::init(root, steward)?;
    let caller = Caller::new(steward.to_owned(), &workspace.policy().roles);
    let args = BTreeMap::from([("dir".to_owned(), root.display().to_string())]);
    let done = Done { outputs: vec![root.join("kith.toml")], ..Done::ok() };
    Audited::new(caller, Operation::Init, args).finish(&workspace, Ok(done))?;
    Ok(workspace)
}

/// Opens the workspace, checks the caller's role, runs `body` and records the outcome in the
/// audit log. A refused command runs nothing; its refusal is still recorded.
fn in_workspace(
    global: &GlobalArgs,
    operation: Operation,
    args: BTreeMap<String, String>,
    body: impl FnOnce(&Workspace) -> Result<Done>,
) -> Result<ExitStatus> {
    let workspace = Workspace::open(&global.workspace_dir())?;
    let caller = Caller::new(caller_name(workspace.root())?, &workspace.policy().roles);
    audited(&workspace, caller, operation, args, body)
}

/// Checks `caller`'s role, runs `body` and records the outcome in the audit log.
fn audited(
    workspace: &Workspace,
    caller: Caller,
    operation: Operation,
    args: BTreeMap<String, String>,
    body: impl FnOnce(&Workspace) -> Result<Done>,
) -> Result<ExitStatus> {
    let audited = Audited::new(caller, operation, args);
    let outcome = audited.authorize().and_then(|()| body(workspace));
    audited.finish(workspace, outcome)
}

/// The user a workspace command runs for.
///
/// Normally the process's real user. When the workspace owner's account runs kith through
/// `sudo` on behalf of another user (the way analysts and researchers reach an owner-only
/// workspace), `SUDO_UID` names that user. It is honoured only when the process runs as the
/// workspace's owner, who could read everything anyway, so setting it gains nobody access.
pub fn caller_name(root: &Path) -> Result<String> {
    use std::os::unix::fs::MetadataExt;

    let uid = nix::unistd::getuid();
    let owner = std::fs::metadata(root).map_err(|e| crate::Error::io("reading", root, e))?.uid();
    let delegated = std::env::var("SUDO_UID").ok().and_then(|v| v.parse::<u32>().ok());
    match delegated {
        Some(other) if uid.as_raw() == owner && other != owner => {
            user_name(nix::unistd::Uid::from_raw(other))
        }
        _ => user_name(uid),
    }
}

/// The operating-system user running kith, from the process's real user ID (not `$USER`,
/// which anyone can set).
pub fn current_user() -> Result<String> {
    user_name(nix::unistd::getuid())
}

fn user_name(uid: nix::unistd::Uid) -> Result<String> {
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        Ok(None) => Ok(format!("uid-{uid}")),
        Err(error) => Err(crate::Error::internal(format!("looking up user {uid}: {error}"))),
    }
}
