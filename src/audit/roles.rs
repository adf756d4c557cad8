//! Who may run what: roles from the workspace policy and the one permission table.
//!
//! A caller is an operating-system user; the policy lists which users hold which role, and a
//! user may hold several. [`Operation::allowed`] is the only place that decides whether a role
//! may run an operation: the CLI asks it before doing anything, so a refused command changes
//! no data (it only leaves its refusal in the audit log).

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::workspace::Roles;

/// A role of the workspace policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The trusted operator: holds the key, ingests, sets policy, audits.
    Steward,
    /// Runs and reads the periodic reports.
    Analyst,
    /// Asks DP queries within a personal quota and reads releases.
    Researcher,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 3] = [Role::Steward, Role::Analyst, Role::Researcher];

    /// The role's name in `kith.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Steward => "steward",
            Role::Analyst => "analyst",
            Role::Researcher => "researcher",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a caller can ask of a workspace, including operations whose commands land with
/// later stages: the table is complete now so that each new command only has to name its
/// operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// `kith init`: create the workspace (its creator becomes the steward).
    Init,
    /// Ingest an export into a vault snapshot.
    Ingest,
    /// Re-index the identity map under a new key.
    RotateKey,
    /// Build graph artifacts from a snapshot.
    Graph,
    /// Change the privacy policy or roles.
    Policy,
    /// Grant budget or quota.
    BudgetGrant,
    /// Show spent and remaining budget.
    BudgetShow,
    /// Run the periodic report (and its releases).
    Report,
    /// Ask a researcher's DP query.
    Query,
    /// Read published releases.
    ReadReleases,
    /// `kith audit verify`.
    AuditVerify,
    /// `kith audit show`.
    AuditShow,
}

impl Operation {
    /// Every operation, for the permission matrix.
    pub const ALL: [Operation; 12] = [
        Operation::Init,
        Operation::Ingest,
        Operation::RotateKey,
        Operation::Graph,
        Operation::Policy,
        Operation::BudgetGrant,
        Operation::BudgetShow,
        Operation::Report,
        Operation::Query,
        Operation::ReadReleases,
        Operation::AuditVerify,
        Operation::AuditShow,
    ];

    /// The operation's name as the audit log records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Init => "init",
            Operation::Ingest => "ingest",
            Operation::RotateKey => "rotate-key",
            Operation::Graph => "graph",
            Operation::Policy => "policy",
            Operation::BudgetGrant => "budget-grant",
            Operation::BudgetShow => "budget-show",
            Operation::Report => "report",
            Operation::Query => "query",
            Operation::ReadReleases => "read-releases",
            Operation::AuditVerify => "audit-verify",
            Operation::AuditShow => "audit-show",
        }
    }

    /// The permission table: which roles may run this operation. The docs' matrix
    /// (`docs/access.md`) is this function written out.
    pub fn allowed(self) -> &'static [Role] {
        use Role::{Analyst, Researcher, Steward};
        match self {
            Operation::Init
            | Operation::Ingest
            | Operation::RotateKey
            | Operation::Graph
            | Operation::Policy
            | Operation::BudgetGrant
            | Operation::AuditVerify
            | Operation::AuditShow => &[Steward],
            Operation::Report => &[Steward, Analyst],
            Operation::Query => &[Researcher],
            Operation::BudgetShow | Operation::ReadReleases => &[Steward, Analyst, Researcher],
        }
    }
}

/// The user running kith and the roles the policy gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Operating-system user name.
    pub user: String,
    /// Roles held, possibly none.
    pub roles: Vec<Role>,
}

impl Caller {
    /// Looks `user` up in the policy's roles.
    pub fn new(user: String, roles: &Roles) -> Caller {
        let lists = [(Role::Steward, &roles.steward), (Role::Analyst, &roles.analyst)];
        let held = lists
            .into_iter()
            .chain([(Role::Researcher, &roles.researcher)])
            .filter(|(_, users)| users.contains(&user))
            .map(|(role, _)| role)
            .collect();
        Caller { user, roles: held }
    }

    /// Allows `operation` or says which role it needs.
    ///
    /// # Errors
    ///
    /// A policy refusal naming the operation, the roles that may run it and the caller's own.
    pub fn authorize(&self, operation: Operation) -> Result<()> {
        let allowed = operation.allowed();
        if self.roles.iter().any(|role| allowed.contains(role)) {
            return Ok(());
        }
        let needed: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
        let held = if self.roles.is_empty() {
            "no role in this workspace".to_owned()
        } else {
            let names: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
            format!("the role(s) {}", names.join(", "))
        };
        Err(Error::Policy {
            message: format!(
                "`{}` needs the {} role; user `{}` holds {held} (the steward grants roles in \
                 kith.toml under [roles])",
                operation.as_str(),
                needed.join(" or "),
                self.user
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Roles {
        Roles {
            steward: vec!["sam".into()],
            analyst: vec!["ana".into(), "sam".into()],
            researcher: vec!["rae".into()],
            ..Roles::default()
        }
    }

    #[test]
    fn users_hold_every_role_they_are_listed_under() {
        assert_eq!(Caller::new("sam".into(), &roles()).roles, vec![Role::Steward, Role::Analyst]);
        assert_eq!(Caller::new("rae".into(), &roles()).roles, vec![Role::Researcher]);
        assert!(Caller::new("eve".into(), &roles()).roles.is_empty());
    }

    #[test]
    fn every_operation_has_at_least_one_role_and_steward_runs_every_stewardship_task() {
        for operation in Operation::ALL {
            assert!(!operation.allowed().is_empty(), "{operation:?}");
        }
        let steward = Caller::new("sam".into(), &roles());
        for operation in Operation::ALL.into_iter().filter(|o| *o != Operation::Query) {
            assert!(steward.authorize(operation).is_ok(), "{operation:?}");
        }
    }

    #[test]
    fn a_refusal_names_the_needed_role_and_the_callers_roles() {
        let error = Caller::new("ana".into(), &roles()).authorize(Operation::Ingest).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("`ingest` needs the steward role"), "{text}");
        assert!(text.contains("user `ana` holds the role(s) analyst"), "{text}");
        let error = Caller::new("eve".into(), &roles()).authorize(Operation::Query).unwrap_err();
        assert!(error.to_string().contains("no role in this workspace"));
    }
}
