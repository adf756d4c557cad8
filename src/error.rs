//! The crate's error type, one variant per phase of the pipeline.
//!
//! Every message names what the user can act on: the file, line, column or flag, the bad value
//! (never an identifier), and where possible the next step as a hint. The binary maps each
//! variant to a documented exit code through [`Error::exit_code`]; nothing else decides them.

use std::path::PathBuf;

/// Exit status of a finished command. The numbers are part of kith's public contract and are
/// listed in the README; they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// The command did everything it was asked.
    Success = 0,
    /// The command finished, but set some input rows aside (quarantine).
    Partial = 1,
    /// The command line was malformed (clap uses the same number).
    Usage = 2,
    /// The input was refused as a whole: nothing of it was stored.
    BadInput = 3,
    /// The workspace policy refused the command: a role or a privacy budget.
    PolicyRefusal = 4,
    /// The workspace or the machine was not in a usable state: missing workspace, unsafe
    /// permissions, a full disk.
    Environment = 5,
    /// A tamper-evident file (the audit log) failed its check.
    Integrity = 6,
    /// A bug in kith.
    Internal = 70,
}

impl ExitStatus {
    /// The numeric exit code handed to the operating system.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The crate's error type; variants follow the phase that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The arguments were well-formed for the parser but make no sense together.
    #[error("{message}")]
    Usage {
        /// What is wrong, naming the flag.
        message: String,
    },

    /// The workspace is missing, already exists, or is unsafe to use.
    #[error("workspace `{}`: {problem}", path.display())]
    Workspace {
        /// The workspace folder or the file in it that is at fault.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What the user can do about it.
        hint: Option<String>,
    },

    /// An input file was refused as a whole.
    #[error("{}{}: {problem}", file.display(), location(*line, *column))]
    Input {
        /// The file that was refused.
        file: PathBuf,
        /// The physical line, counting the header as line 1, where known.
        line: Option<u64>,
        /// The column name, where known.
        column: Option<&'static str>,
        /// What is wrong, never quoting an identifier.
        problem: String,
    },

    /// The workspace policy forbids what was asked.
    #[error("refused by policy: {message}")]
    Policy {
        /// Which rule refused the command, and what would allow it.
        message: String,
    },

    /// A privacy computation could not be set up, for example an impossible noise scale.
    #[error("privacy: {message}")]
    Privacy {
        /// What failed, with the parameters involved.
        message: String,
    },

    /// A tamper-evident file failed verification: it was altered, truncated or forged.
    #[error("{}{}: {problem}", file.display(), location(*line, None))]
    Integrity {
        /// The file that failed.
        file: PathBuf,
        /// The first bad line, where one is to blame.
        line: Option<u64>,
        /// What is wrong.
        problem: String,
    },

    /// The request is valid but kith does not support it yet.
    #[error("not supported: {message}")]
    NotSupported {
        /// What is missing and what to do instead.
        message: String,
    },

    /// Reading or writing a file failed.
    #[error("{action} `{}` failed", path.display())]
    Io {
        /// What kith was doing, as a verb phrase ("writing", "creating folder").
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// An invariant of kith's own code was broken.
    #[error("internal error: {message} (this is a bug in kith; please report it)")]
    Internal {
        /// What invariant failed.
        message: String,
    },
}

fn location(line: Option<u64>, column: Option<&'static str>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(", line {line}, column `{column}`"),
        (Some(line), None) => format!(", line {line}"),
        (None, Some(column)) => format!(", column `{column}`"),
        (None, None) => String::new(),
    }
}

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The exit status this error ends a command with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage { .. } => ExitStatus::Usage,
            // The only unsupported requests are inputs beyond a format limit, refused whole.
            Error::Input { .. } | Error::NotSupported { .. } => ExitStatus::BadInput,
            Error::Policy { .. } => ExitStatus::PolicyRefusal,
            Error::Workspace { .. } | Error::Io { .. } => ExitStatus::Environment,
            Error::Integrity { .. } => ExitStatus::Integrity,
            Error::Privacy { .. } | Error::Internal { .. } => ExitStatus::Internal,
        }
    }

    /// A suggestion for the user, shown on its own `hint:` line.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Workspace { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// Wraps an I/O error with the action and path it concerns.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    /// A usage error with the given message.
    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage { message: message.into() }
    }

    /// An internal error: a broken invariant of kith's own code.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into() }
    }
}

/// Adds the action and path to I/O results, so every I/O error names its file.
pub trait IoContext<T> {
    /// Attaches `action` and `path` to an I/O error.
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::io(action, path, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_error_names_file_line_and_column() {
        let error = Error::Input {
            file: PathBuf::from("export/people.csv"),
            line: Some(7),
            column: Some("dob"),
            problem: "not a date in YYYY-MM-DD form".into(),
        };
        assert_eq!(
            error.to_string(),
            "export/people.csv, line 7, column `dob`: not a date in YYYY-MM-DD form"
        );
        assert_eq!(error.exit_status().code(), 3);
    }

    #[test]
    fn internal_error_asks_for_a_report() {
        let error = Error::internal("ledger went backwards");
        assert!(error.to_string().contains("please report it"));
        assert_eq!(error.exit_status(), ExitStatus::Internal);
    }
}
