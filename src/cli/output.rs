//! The one writer of user-facing results on standard output.
//!
//! Results go here; diagnostics go through `tracing` to standard error. A closed pipe
//! (`kith ... | head`) ends output quietly instead of failing the command.

use std::io::{ErrorKind, Write};

use crate::error::{Error, Result};

/// Line-oriented writer for command results.
pub struct Output {
    sink: Box<dyn Write>,
    closed: bool,
}

impl Output {
    /// Writes to standard output.
    pub fn stdout() -> Output {
        Output { sink: Box::new(std::io::stdout().lock()), closed: false }
    }

    /// Writes into any sink; for tests.
    pub fn to(sink: Box<dyn Write>) -> Output {
        Output { sink, closed: false }
    }

    /// Writes one line.
    pub fn line(&mut self, text: impl AsRef<str>) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        match writeln!(self.sink, "{}", text.as_ref()) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(error) => Err(Error::io("writing", "standard output", error)),
        }
    }
}
