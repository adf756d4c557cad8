//! Fault injection for crash tests: named points in multi-step writes where a test can make
//! kith fail or die.
//!
//! `KITH_FAULT=fail:STEP` makes the step return an error (exit 5, like a full disk would);
//! `KITH_FAULT=crash:STEP` aborts the process on the spot, as a power cut would, skipping
//! every destructor. Unset, each point costs one comparison. The steps are listed where the
//! writes happen (`intake::vault`, `intake::identity` rotation); the docs of the crash tests
//! say which ones are exercised. Nothing here can weaken a guarantee: it only stops kith.

use std::sync::OnceLock;

use crate::error::{Error, Result};

fn plan() -> Option<&'static (bool, String)> {
    static PLAN: OnceLock<Option<(bool, String)>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let value = std::env::var("KITH_FAULT").ok()?;
        let (mode, step) = value.split_once(':')?;
        Some((mode == "crash", step.to_owned()))
    })
    .as_ref()
}

/// Fails or dies here if the test asked for it.
pub fn point(step: &'static str) -> Result<()> {
    match plan() {
        Some((crash, wanted)) if wanted == step => {
            if *crash {
                std::process::abort();
            }
            Err(Error::Io {
                action: "injected fault at",
                path: step.into(),
                source: std::io::Error::other("fault injected by KITH_FAULT"),
            })
        }
        _ => Ok(()),
    }
}
