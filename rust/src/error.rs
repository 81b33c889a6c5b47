//! Errors of the pure-Rust router logic.
//!
//! This module knows nothing about Python; `lib.rs` maps each variant to a
//! Python exception (see `impl From<RouterError> for PyErr` there).

use std::fmt;

/// Something the caller asked of the router that it cannot do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterError {
    /// `coalesce` was given a frame budget below one character.
    InvalidMaxChars(i64),
}

impl fmt::Display for RouterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouterError::InvalidMaxChars(n) => {
                write!(f, "max_chars must be at least 1, got {n}")
            }
        }
    }
}

impl std::error::Error for RouterError {}
