//! The privacy core: every noisy number, every privacy cost and every spend of the budget.
//!
//! [`mechanism`] holds the OpenDP measurements and their calibration; nothing else in kith
//! adds noise.

pub mod bounding;
pub mod ledger;
pub mod mechanism;
pub mod release;
