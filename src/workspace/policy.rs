//! The privacy policy and roles of a workspace, stored as `kith.toml`.
//!
//! The steward owns this file. `kith init` writes it from [`POLICY_TEMPLATE`], whose comments
//! document every setting; the struct defaults here and the template must agree, which a test
//! checks. Unknown keys are refused so that a misspelt setting never falls back to a default
//! silently.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The whole policy file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Privacy-loss budget and per-person bounds.
    pub privacy: PrivacyPolicy,
    /// Declared clipping bounds for decision values, fixed before any data is seen.
    pub bounds: ValueBounds,
    /// Which operating-system users hold which role.
    pub roles: Roles,
}

/// Budget and contribution bounds; see `docs/privacy.md` for how each is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyPolicy {
    /// Privacy loss (epsilon) that all releases of one period may spend together.
    pub epsilon_per_period: f64,
    /// Privacy loss that all releases of a rolling year may spend together.
    pub epsilon_per_year: f64,
    /// The delta of (epsilon, delta)-DP for every release.
    pub delta: f64,
    /// Most ties per person kept in the graph that feeds releases (the degree cap D).
    pub degree_cap: u32,
    /// Most decisions per person per period that enter any release (k).
    pub decisions_per_person: u32,
    /// Most decisions per person per domain per period (`k_d`).
    pub decisions_per_person_domain: u32,
    /// Noisy counts below this are withheld, with everything computed from them.
    pub min_cell_size: u32,
    /// Whether releases may be grouped by workplace as well as by community.
    pub release_by_workplace: bool,
    /// Privacy loss each researcher may spend per period unless `researcher_quota` says more.
    pub researcher_epsilon_per_period: f64,
}

/// Clipping bounds for the numeric decision columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueBounds {
    /// Upper clip for `cost`, in the program's currency.
    pub cost_max: f64,
    /// Upper clip for `minutes`.
    pub minutes_max: f64,
}

/// Role membership by operating-system user name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Trusted operators: init, ingest, graph, policy, budget grants, audit.
    pub steward: Vec<String>,
    /// Run and read reports.
    pub analyst: Vec<String>,
    /// Ask DP queries within a quota; read releases.
    pub researcher: Vec<String>,
    /// Per-researcher epsilon per period, overriding `researcher_epsilon_per_period`.
    #[serde(default)]
    pub researcher_quota: BTreeMap<String, f64>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            privacy: PrivacyPolicy {
                epsilon_per_period: 2.0,
                epsilon_per_year: 12.0,
                delta: 1e-7,
                degree_cap: 20,
                decisions_per_person: 32,
                decisions_per_person_domain: 8,
                min_cell_size: 11,
                release_by_workplace: false,
                researcher_epsilon_per_period: 0.5,
            },
            bounds: ValueBounds { cost_max: 100.0, minutes_max: 240.0 },
            roles: Roles::default(),
        }
    }
}

/// The commented `kith.toml` that `kith init` writes; `{steward}` is replaced by the user.
pub const POLICY_TEMPLATE: &str = r#"# kith workspace policy.
# The steward edits this file; every command reads it.
# Changing a bound changes what later releases mean: note the change in the audit log.

[privacy]
# Privacy loss (epsilon) that all releases of one period may spend together.
epsilon_per_period = 2.0
# Privacy loss that all releases within any rolling year may spend together.
epsilon_per_year = 12.0
# Delta of (epsilon, delta)-DP; keep it far below 1 / (number of people).
delta = 1e-7
# Degree cap D: at most this many ties per person (in and out) feed any release.
degree_cap = 20
# Contribution bound k: at most this many decisions per person per period, chosen by keyed hash.
decisions_per_person = 32
# At most this many decisions per person per domain per period.
decisions_per_person_domain = 8
# Noisy counts under this size are withheld, with every statistic computed from them.
min_cell_size = 11
# Whether releases may be keyed by workplace in addition to community.
release_by_workplace = false
# Epsilon each researcher may spend per period (override per user in [roles.researcher_quota]).
researcher_epsilon_per_period = 0.5

[bounds]
# Decision values are clipped to [0, max] before any statistic; fixed here, never from data.
cost_max = 100.0
minutes_max = 240.0

[roles]
# Operating-system user names. A user may hold several roles.
steward = ["{steward}"]
analyst = []
researcher = []

[roles.researcher_quota]
# alice = 1.0
"#;

impl Policy {
    /// Renders the commented policy file with `steward` as the only steward.
    pub fn render_template(steward: &str) -> String {
        // A user name is written inside a TOML string; serde quoting keeps odd names valid.
        let quoted = toml::Value::String(steward.to_owned()).to_string();
        POLICY_TEMPLATE.replace("\"{steward}\"", &quoted)
    }

    /// Reads and checks `kith.toml`.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).at("reading", path)?;
        let policy: Policy = toml::from_str(&text).map_err(|error| Error::Workspace {
            path: path.to_owned(),
            problem: format!("the policy does not parse: {}", error.message()),
            hint: Some("compare it with the settings documented in docs/workspace.md".into()),
        })?;
        policy.check().map_err(|problem| Error::Workspace {
            path: path.to_owned(),
            problem,
            hint: None,
        })?;
        Ok(policy)
    }

    /// Checks that every setting is in its valid range.
    pub fn check(&self) -> std::result::Result<(), String> {
        let p = &self.privacy;
        let positive = [
            ("privacy.epsilon_per_period", p.epsilon_per_period),
            ("privacy.epsilon_per_year", p.epsilon_per_year),
            ("privacy.researcher_epsilon_per_period", p.researcher_epsilon_per_period),
            ("bounds.cost_max", self.bounds.cost_max),
            ("bounds.minutes_max", self.bounds.minutes_max),
        ];
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("`{name}` must be a positive number, found {value}"));
            }
        }
        if !(p.delta > 0.0 && p.delta < 1e-3) {
            return Err(format!("`privacy.delta` must lie in (0, 0.001), found {}", p.delta));
        }
        if p.epsilon_per_period > p.epsilon_per_year {
            return Err("`privacy.epsilon_per_period` exceeds `privacy.epsilon_per_year`".into());
        }
        let counts = [
            ("privacy.degree_cap", p.degree_cap),
            ("privacy.decisions_per_person", p.decisions_per_person),
            ("privacy.decisions_per_person_domain", p.decisions_per_person_domain),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(format!("`{name}` must be at least 1"));
            }
        }
        if p.decisions_per_person_domain > p.decisions_per_person {
            return Err("`privacy.decisions_per_person_domain` exceeds \
                        `privacy.decisions_per_person`"
                .into());
        }
        if let Some((user, quota)) =
            self.roles.researcher_quota.iter().find(|(_, q)| !(q.is_finite() && **q > 0.0))
        {
            return Err(format!("researcher quota for `{user}` must be positive, found {quota}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_the_defaults() {
        let policy: Policy = toml::from_str(&Policy::render_template("ana")).unwrap();
        let mut expected = Policy::default();
        expected.roles.steward = vec!["ana".into()];
        assert_eq!(policy, expected);
    }

    #[test]
    fn odd_user_names_stay_valid_toml() {
        let policy: Policy = toml::from_str(&Policy::render_template("d\"o\\e")).unwrap();
        assert_eq!(policy.roles.steward, vec!["d\"o\\e".to_string()]);
    }

    #[test]
    fn misspelt_settings_are_refused() {
        let text = Policy::render_template("ana").replace("degree_cap", "degre_cap");
        assert!(toml::from_str::<Policy>(&text).is_err());
    }

    #[test]
    fn out_of_range_settings_are_named() {
        let mut policy = Policy::default();
        policy.privacy.delta = 0.5;
        assert!(policy.check().unwrap_err().contains("privacy.delta"));
        policy = Policy::default();
        policy.privacy.decisions_per_person_domain = 40;
        assert!(policy.check().unwrap_err().contains("decisions_per_person_domain"));
    }
}
