//! The crate's error type.
//!
//! Every failure a user can cause (a bad config value, a malformed data file, a corrupted
//! payload, a mismatch between ranks) becomes an [`Error`] whose message names the file, line,
//! key or value involved and what was expected. Nothing on user input panics.

use std::fmt;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a run.
#[derive(Debug)]
pub enum Error {
    /// An invalid configuration: `key` is the dotted TOML path, `msg` says what is allowed.
    Config {
        /// Dotted key, e.g. `compression.repetitions`.
        key: String,
        /// What was wrong and what is allowed.
        msg: String,
    },
    /// An I/O failure on a named path.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A data file that does not parse: file, 1-based line (0 when not line-oriented), message.
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line number, or 0 for binary formats.
        line: usize,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// A compressed payload that cannot be decoded (truncated, out-of-range index, ...).
    Payload(String),
    /// Ranks disagree (parameters, config hash, data shapes).
    Consistency(String),
    /// A non-finite loss or gradient.
    Numerical(String),
    /// An error every rank returns at the same step (after agreeing on it), so the job can
    /// end cleanly without aborting: the ranks are not left waiting for each other.
    Agreed(Box<Error>),
    /// A stop was requested (SIGTERM/SIGUSR1); a checkpoint was written at `step`.
    Preempted {
        /// The step of the checkpoint.
        step: u64,
        /// The checkpoint file.
        checkpoint: PathBuf,
    },
    /// Any other error with a message.
    Other(String),
}

impl Error {
    /// A configuration error for `key`.
    pub fn config(key: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Config {
            key: key.into(),
            msg: msg.into(),
        }
    }

    /// A data error at `path:line`.
    pub fn data(path: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            line,
            msg: msg.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A payload decoding error.
    pub fn payload(msg: impl Into<String>) -> Self {
        Error::Payload(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { key, msg } => write!(f, "config key `{key}`: {msg}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Data { path, line, msg } if *line > 0 => {
                write!(f, "{}:{line}: {msg}", path.display())
            }
            Error::Data { path, msg, .. } => write!(f, "{}: {msg}", path.display()),
            Error::Payload(m) => write!(f, "invalid payload: {m}"),
            Error::Consistency(m) => write!(f, "ranks disagree: {m}"),
            Error::Numerical(m) => write!(f, "numerical failure: {m}"),
            Error::Agreed(e) => e.fmt(f),
            Error::Preempted { step, checkpoint } => write!(
                f,
                "stopped by signal at step {step}; checkpoint {} (continue with --resume)",
                checkpoint.display()
            ),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
