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
