//! `kith release` and `kith budget`: the first DP release and the budget it draws on.

use chrono::NaiveDate;

use super::output::Output;
use crate::audit::Done;
use crate::error::{Error, Result};
use crate::privacy::ledger::{Caps, Ledger, months_between};
use crate::privacy::release::{self, Request};
use crate::workspace::Workspace;

/// The period options every releasing command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct PeriodArgs {
    /// A calendar month, `YYYY-MM`: shorthand for its first and last day.
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"])]
    pub period: Option<String>,

    /// First day of the data to release (inclusive, ISO date).
    #[arg(long, value_name = "DATE", requires = "to", value_parser = super::parse_date)]
    pub from: Option<NaiveDate>,

    /// Last day of the data to release (inclusive, ISO date).
    #[arg(long, value_name = "DATE", requires = "from", value_parser = super::parse_date)]
    pub to: Option<NaiveDate>,
}

impl PeriodArgs {
    /// The inclusive date range asked for.
    pub fn range(&self) -> Result<(NaiveDate, NaiveDate)> {
        if let Some(period) = &self.period {
            return month_range(period);
        }
        match (self.from, self.to) {
            (Some(from), Some(to)) if from <= to => Ok((from, to)),
            (Some(from), Some(to)) => {
                Err(Error::usage(format!("--from {from} is after --to {to}")))
            }
            _ => Err(Error::usage("give --period YYYY-MM, or --from DATE and --to DATE")),
        }
    }
}

fn month_range(period: &str) -> Result<(NaiveDate, NaiveDate)> {
    let bad = || Error::usage(format!("--period `{period}` is not a YYYY-MM month"));
    let (year, month) = period.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let (year, month): (i32, u32) =
        (year.parse().map_err(|_| bad())?, month.parse().map_err(|_| bad())?);
    let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    Ok((first, next.ok_or_else(bad)?.pred_opt().ok_or_else(bad)?))
}

/// Publishes (or re-serves) the community health release.
pub(super) fn run(
    workspace: &Workspace,
    user: &str,
    period: &PeriodArgs,
    epsilon: f64,
    out: &mut Output,
) -> Result<Done> {
    let (from, to) = period.range()?;
    let published = release::publish(workspace, user, &Request { from, to, epsilon })?;
    if published.cached {
        out.line(format!(
            "identical release already published; nothing spent: {}",
            published.path.display()
        ))?;
    } else {
        out.line(format!(
            "published {} (ε {:.4} at δ {}, ρ {:.6})",
            published.path.display(),
            published.epsilon_spent,
            workspace.policy().privacy.delta,
            published.spent.rho
        ))?;
    }
    if let Ok(text) = std::fs::read_to_string(&published.path)
        && let Ok(release) = serde_json::from_str::<serde_json::Value>(&text)
    {
        let shown = release["communities"].as_array().map_or(0, Vec::len);
        out.line(format!("{shown} communities released (smaller ones are left out)"))?;
    }
    Ok(Done {
        outputs: vec![published.path],
        epsilon_spent: published.epsilon_spent,
        snapshot: Some(published.snapshot),
        ..Done::ok()
    })
}

/// Prints spent and remaining budget per month, over the last year, and per researcher. With
/// `only`, a researcher's view: the researcher lines of that user alone.
pub(super) fn budget(
    workspace: &Workspace,
    period: &PeriodArgs,
    only: Option<&str>,
    out: &mut Output,
) -> Result<Done> {
    let caps = Caps::from_policy(workspace.policy())?;
    let months = if period.period.is_none() && period.from.is_none() {
        Vec::new()
    } else {
        let (from, to) = period.range()?;
        months_between(from, to)
    };
    let standings = Ledger::at(&workspace.folder("ledger")).standings(&caps, &months)?;
    out.line(format!(
        "{:<32} {:>12} {:>12} {:>12}   (ε at δ {})",
        "budget", "ε spent", "ε left", "ρ spent", caps.delta
    ))?;
    for standing in standings {
        let researcher_line = standing.scope.contains(" researcher ");
        if researcher_line
            && only.is_some_and(|user| !standing.scope.ends_with(&format!(" {user}")))
        {
            continue;
        }
        out.line(format!(
            "{:<32} {:>12.4} {:>12.4} {:>12.6}",
            standing.scope, standing.epsilon_spent, standing.epsilon_left, standing.rho_spent
        ))?;
    }
    Ok(Done::ok())
}
