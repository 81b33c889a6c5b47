//! Errors of the pure-Rust router logic.
//!
//! This module knows nothing about Python; `lib.rs` maps each variant to a
//! Python exception (see `impl From<RouterError> for PyErr` there).

use std::fmt;

/// Something the caller asked of the router that it cannot do.
#[derive(Debug, Clone, PartialEq)]
pub enum RouterError {
    /// `coalesce` was given a frame budget below one character.
    InvalidMaxChars(i64),
    /// A router was asked for a capacity below one pending delta.
    InvalidCapacity(i64),
    /// A frame interval that is negative, infinite or not a number.
    InvalidFrameInterval(f64),
    /// A frame policy that would wait for fewer than one delta.
    InvalidFrameDeltas(i64),
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterError::InvalidMaxChars(n) => {
                write!(f, "max_chars must be at least 1, got {n}")
            }
            RouterError::InvalidCapacity(n) => {
                write!(f, "capacity must be at least 1 pending delta, got {n}")
            }
            RouterError::InvalidFrameInterval(s) => write!(
                f,
                "frame_s must be a finite number of seconds, 0 or more, got {s}"
            ),
            RouterError::InvalidFrameDeltas(n) => {
                write!(f, "frame_deltas must be at least 1, got {n}")
            }
        }
    }
}

impl std::error::Error for RouterError {}

/// Why the embedder could not load or run.
#[derive(Debug)]
pub enum EmbedError {
    /// A file the model needs is not there.
    MissingFile(std::path::PathBuf),
    /// A model file is there but could not be read as what it should be.
    BadModelFile(std::path::PathBuf, String),
    /// A thread count of zero was asked for.
    InvalidThreads,
    /// The tokenizer failed on an input.
    Tokenizer(String),
    /// The model failed while computing (a bug, not a user mistake).
    Compute(String),
}

impl fmt::Display for EmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbedError::MissingFile(path) => write!(f, "{} is missing", path.display()),
            EmbedError::BadModelFile(path, why) => {
                write!(f, "{} could not be read: {why}", path.display())
            }
            EmbedError::InvalidThreads => write!(f, "threads must be at least 1"),
            EmbedError::Tokenizer(why) => write!(f, "the tokenizer failed: {why}"),
            EmbedError::Compute(why) => write!(f, "the embedding model failed: {why}"),
        }
    }
}

impl std::error::Error for EmbedError {}
