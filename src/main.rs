//! The `kith` binary: parse the command line, set up logging, run, map the outcome to an exit
//! code. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use kith::cli::{Cli, run};
use kith::logging;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.global.verbosity(), cli.global.log_format);

    let status = match run(cli) {
        Ok(status) => status,
        Err(error) => {
            report(&error);
            error.exit_status()
        }
    };
    ExitCode::from(status.code())
}

/// Prints an error chain the way the README documents: `error:`, `caused by:`, `hint:`.
#[expect(clippy::print_stderr, reason = "the binary's single place for user-facing errors")]
fn report(error: &kith::Error) {
    eprintln!("error: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    if let Some(hint) = error.hint() {
        eprintln!("hint: {hint}");
    }
}
