//! Progress bars for long stages, drawn on standard error only when it is a terminal.
//!
//! Schedulers and CI capture standard error; a bar there is noise, so it is hidden unless a
//! person is watching, and always under `-q`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether and where long stages show progress.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Shows bars when standard error is a terminal and the user did not ask for quiet.
    pub fn for_terminal(quiet: bool) -> Progress {
        Progress { visible: !quiet && std::io::stderr().is_terminal() }
    }

    /// Never shows anything; for tests and library callers.
    pub fn hidden() -> Progress {
        Progress { visible: false }
    }

    /// A bar of `steps` steps labelled `stage`.
    pub fn bar(&self, stage: &'static str, steps: u64) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {elapsed}")
            .map_or_else(|_| ProgressStyle::default_bar(), |s| s.progress_chars("=> "));
        bar.set_style(style);
        bar.set_prefix(stage);
        bar
    }

    /// A bar over `total` bytes of input labelled `stage`, with throughput.
    pub fn bytes(&self, stage: &'static str, total: u64) -> ProgressBar {
        if !self.visible {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {elapsed}";
        let style = ProgressStyle::with_template(template)
            .map_or_else(|_| ProgressStyle::default_bar(), |s| s.progress_chars("=> "));
        bar.set_style(style);
        bar.set_prefix(stage);
        bar
    }
}
