//! Diagnostics through `tracing`, written to standard error.
//!
//! Results go to standard output or to files; everything here is for the operator. The level
//! follows `-q`/`-v`/`-vv` unless `RUST_LOG` says otherwise, and `--log-format json` emits one
//! JSON object per event for schedulers that collect logs. By rule, no event carries a person's
//! identifier, a date of birth or a key: stages log counts, durations and decisions only.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log events are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event, for log collectors.
    Json,
}

/// Installs the global subscriber. Verbosity: -1 quiet (errors only), 0 warnings and stage
/// summaries, 1 debug, 2 and above trace.
///
/// Calling it twice is harmless: the second subscriber is ignored, which keeps tests that run
/// several commands in one process simple.
pub fn init(verbosity: i8, format: LogFormat) {
    let default_level = match verbosity {
        i8::MIN..=-1 => "error",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };

    // Dependencies stay at `warn` so that `-vv` shows kith's own decisions, not DataFusion's
    // optimizer passes; RUST_LOG can still open them up.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,kith={default_level}")));

    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);

    // A failure here means a subscriber is already installed, which is fine.
    let _ = match format {
        LogFormat::Text => {
            builder.with_ansi(std::io::stderr().is_terminal()).without_time().try_init()
        }
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
    };
}
