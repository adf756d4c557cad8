//! Access and audit: who may run what, and a tamper-evident record of everything run.
//!
//! [`roles`] holds the one permission table; [`log`] the hash-chained, MAC'd audit log. The
//! CLI wraps every command that opens a workspace in [`Audited::finish`], so each one — allowed,
//! refused or failed — leaves exactly one line. Lines name the operating-system user, never a
//! program participant, and hold only non-identifying arguments and digests of outputs.

pub mod log;
pub mod roles;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use log::{AuditLog, Entry, OutputDigest, Verified};
pub use roles::{Caller, Operation, Role};

use crate::error::{Error, ExitStatus, Result};
use crate::workspace::Workspace;

/// What a command that ran reports for its audit line.
#[derive(Debug, Clone)]
pub struct Done {
    /// How it ended.
    pub status: ExitStatus,
    /// Files it wrote inside the workspace.
    pub outputs: Vec<PathBuf>,
    /// Privacy loss it charged.
    pub epsilon_spent: f64,
    /// The snapshot it worked on.
    pub snapshot: Option<String>,
}

impl Done {
    /// A command that succeeded, wrote nothing and spent nothing.
    pub fn ok() -> Done {
        Done {
            status: ExitStatus::Success,
            outputs: Vec::new(),
            epsilon_spent: 0.0,
            snapshot: None,
        }
    }
}

/// A command in progress: its caller, operation and arguments, waiting for its outcome.
#[derive(Debug)]
pub struct Audited {
    /// Who runs it.
    pub caller: Caller,
    operation: Operation,
    args: BTreeMap<String, String>,
}

impl Audited {
    /// Starts the record of `operation` run by `caller` with `args`, which must not identify
    /// any program participant.
    pub fn new(caller: Caller, operation: Operation, args: BTreeMap<String, String>) -> Audited {
        Audited { caller, operation, args }
    }

    /// Checks the caller's role.
    pub fn authorize(&self) -> Result<()> {
        self.caller.authorize(self.operation)
    }

    /// Appends the audit line for `outcome` and hands the outcome back.
    ///
    /// When appending fails after the command itself failed, the command's own error wins
    /// (and the audit failure is logged); after a success, the audit failure is the error,
    /// since a command that cannot be recorded must not look clean.
    pub fn finish(self, workspace: &Workspace, outcome: Result<Done>) -> Result<ExitStatus> {
        let entry = self.entry(workspace, &outcome)?;
        let appended = AuditLog::at(&workspace.folder("audit")).append(entry);
        match (outcome, appended) {
            (Ok(done), Ok(())) => Ok(done.status),
            (Ok(_), Err(error)) | (Err(error), Ok(())) => Err(error),
            (Err(error), Err(audit_error)) => {
                tracing::error!(%audit_error, "the failure could not be written to the audit log");
                Err(error)
            }
        }
    }

    fn entry(&self, workspace: &Workspace, outcome: &Result<Done>) -> Result<Entry> {
        let (label, code, outputs, epsilon, snapshot) = match outcome {
            Ok(done) => {
                let label = if done.status == ExitStatus::Success { "ok" } else { "partial" };
                let mut digests = Vec::with_capacity(done.outputs.len());
                for path in &done.outputs {
                    let relative = path.strip_prefix(workspace.root()).unwrap_or(path);
                    digests.push(OutputDigest {
                        path: relative.display().to_string(),
                        sha256: log::file_digest(path)?,
                    });
                }
                (label, done.status.code(), digests, done.epsilon_spent, done.snapshot.clone())
            }
            Err(error @ Error::Policy { .. }) => {
                ("refused", error.exit_status().code(), vec![], 0.0, None)
            }
            Err(error) => ("failed", error.exit_status().code(), vec![], 0.0, None),
        };
        Ok(Entry {
            seq: 0,
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            user: self.caller.user.clone(),
            roles: self.caller.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            command: self.operation.as_str().to_owned(),
            args: self.args.clone(),
            snapshot,
            epsilon_spent: epsilon,
            outputs,
            outcome: label.to_owned(),
            exit_code: code,
            prev: String::new(),
        })
    }
}
