//! One error type for the whole library, worded for the person at the terminal. A message
//! names a setting in backticks, as the library's configuration spells it (`min_zip_count`);
//! a front end shows it as its own spelling of the setting (the command line's `--min-zip-count`).

use std::path::PathBuf;

/// Everything that can go wrong in appraise. Each message says what went wrong and,
/// where it helps, what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user asked for something impossible (a flag out of range, too few houses).
    #[error("{0}")]
    Usage(String),

    /// A value in a text input file is malformed.
    #[error("{path}:{line}: field {field}: {message}")]
    Parse {
        /// The file being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Which field (name, and 1-based position where it has one).
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// A whole input file is unusable (missing, a directory, empty...).
    #[error("{}: {message}", path.display())]
    Input {
        /// The file or folder concerned.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// An operating-system error while reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Training went wrong (for example the loss became NaN).
    #[error("{0}")]
    Training(String),

    /// A field of a house given field by field (a server request) is missing or malformed.
    #[error("house {house}: field {field}: {message}")]
    Field {
        /// The house's position in the request, from 0.
        house: usize,
        /// The field's name.
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// Downloading the dataset failed, or what arrived is not the expected dataset.
    #[error("{0}")]
    Download(String),

    /// The user pressed Ctrl-C.
    #[error("interrupted; no output was written (files from earlier runs are untouched)")]
    Interrupted,
}

impl Error {
    /// The process exit code for this error: 2 for bad usage or bad input, 1 for a failure
    /// while running, 130 for Ctrl-C (as shells report a SIGINT).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Parse { .. } | Error::Input { .. } | Error::Field { .. } => 2,
            Error::Io { .. } | Error::Training(_) | Error::Download(_) => 1,
            Error::Interrupted => 130,
        }
    }

    /// An error reading `path`: a missing file is bad input, with `missing` as the message
    /// (say what to do); a folder where a file belongs too; anything else an I/O error.
    pub fn reading(path: &std::path::Path, source: std::io::Error, missing: &str) -> Self {
        let input = |message: &str| Error::Input {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        match source.kind() {
            std::io::ErrorKind::NotFound => input(missing),
            _ if path.is_dir() => input("is a folder, expected a file"),
            _ => Error::io(path, source),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Another library's message (serde's, a parser's) with its backticks made quotes, so that a
/// front end does not take the fields it names for settings of appraise.
pub fn quoted(message: impl std::fmt::Display) -> String {
    message.to_string().replace('`', "\"")
}
