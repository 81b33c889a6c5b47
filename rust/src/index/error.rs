//! Errors of the vector index.
//!
//! Kept apart from the router's [`crate::error::RouterError`] so the two
//! modules change independently. This module knows nothing about Python;
//! `lib.rs` maps each variant to a Python exception.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why an index file cannot be loaded. The file itself is at fault, not the
/// caller: whoever owns the entries can rebuild the index from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// Not an index file at all (no magic header).
    Foreign,
    /// An index file written by another format version.
    OtherVersion { found: u32, supported: u32 },
    /// Shorter than its header says: the write was cut off, or the file was
    /// truncated since.
    Truncated { expected: u64, actual: u64 },
    /// Damaged: checksum mismatch or inconsistent contents.
    Corrupt(String),
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileProblem::Foreign => write!(f, "not a vector index file (foreign file)"),
            FileProblem::OtherVersion { found, supported } => write!(
                f,
                "written by another version of the index format (file version {found}, \
                 this build reads version {supported})"
            ),
            FileProblem::Truncated { expected, actual } => write!(
                f,
                "corrupt: truncated ({actual} bytes, the header says {expected})"
            ),
            FileProblem::Corrupt(why) => write!(f, "corrupt: {why}"),
        }
    }
}

/// Something the index cannot do, with what the caller can do about it.
#[derive(Debug)]
pub enum IndexError {
    /// The index dimension is 0 or absurdly large.
    InvalidDim { dim: i64, max: usize },
    /// A vector or query has the wrong number of components.
    DimensionMismatch { expected: usize, got: usize },
    /// `add` got a different number of ids and vectors.
    LengthMismatch { ids: usize, vectors: usize },
    /// The same id appears twice in one `add` call.
    DuplicateId(String),
    /// A vector to add is all zeros: it has no direction.
    ZeroVector(String),
    /// A vector to add has a NaN or infinite component.
    NonFiniteVector(String),
    /// The query vector is all zeros or has a NaN or infinite component.
    InvalidQuery(&'static str),
    /// `k` below 1.
    InvalidK(i64),
    /// `min_similarity` is NaN.
    InvalidMinSimilarity,
    /// `nprobe` below 1.
    InvalidNprobe(i64),
    /// An unknown mode name.
    InvalidMode(String),
    /// More entries than the index can address.
    TooManyEntries { max: usize },
    /// Reading or writing the file failed.
    Io { path: PathBuf, source: io::Error },
    /// The file is not a loadable index.
    File { path: PathBuf, problem: FileProblem },
}

impl IndexError {
    pub(crate) fn io(path: &std::path::Path, source: io::Error) -> Self {
        IndexError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl fmt::Display for IndexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexError::InvalidDim { dim, max } => {
                write!(f, "dim must be between 1 and {max}, got {dim}")
            }
            IndexError::DimensionMismatch { expected, got } => write!(
                f,
                "vectors of this index have {expected} components, got {got}"
            ),
            IndexError::LengthMismatch { ids, vectors } => write!(
                f,
                "got {ids} ids but {vectors} vectors: pass one vector per id"
            ),
            IndexError::DuplicateId(id) => write!(
                f,
                "id {id:?} appears more than once in one add call: pass each id once \
                 (nothing was added)"
            ),
            IndexError::ZeroVector(id) => write!(
                f,
                "the vector for id {id:?} is all zeros and has no direction (nothing was added)"
            ),
            IndexError::NonFiniteVector(id) => write!(
                f,
                "the vector for id {id:?} has a NaN or infinite component (nothing was added)"
            ),
            IndexError::InvalidQuery(why) => write!(f, "the query vector {why}"),
            IndexError::InvalidK(k) => write!(f, "k must be at least 1, got {k}"),
            IndexError::InvalidMinSimilarity => write!(f, "min_similarity must not be NaN"),
            IndexError::InvalidNprobe(n) => write!(f, "nprobe must be at least 1, got {n}"),
            IndexError::InvalidMode(m) => write!(
                f,
                "mode must be \"auto\", \"exact\" or \"approximate\", got {m:?}"
            ),
            IndexError::TooManyEntries { max } => {
                write!(f, "an index holds at most {max} entries")
            }
            IndexError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            IndexError::File { path, problem } => write!(
                f,
                "{}: {problem}; the index cannot be loaded from it and can be rebuilt \
                 from its entries",
                path.display()
            ),
        }
    }
}

impl std::error::Error for IndexError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IndexError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_say_what_is_wrong_and_that_the_index_can_be_rebuilt() {
        let cases = [
            (FileProblem::Foreign, "foreign"),
            (
                FileProblem::OtherVersion {
                    found: 9,
                    supported: 1,
                },
                "another version",
            ),
            (
                FileProblem::Truncated {
                    expected: 10,
                    actual: 3,
                },
                "truncated",
            ),
            (FileProblem::Corrupt("checksum mismatch".into()), "corrupt"),
        ];
        for (problem, word) in cases {
            let err = IndexError::File {
                path: "/x/idx.bin".into(),
                problem,
            };
            let text = err.to_string();
            assert!(text.contains(word), "{text}");
            assert!(text.contains("rebuilt"), "{text}");
            assert!(text.starts_with("/x/idx.bin: "), "{text}");
        }
    }

    #[test]
    fn input_errors_name_the_offending_id() {
        let text = IndexError::NonFiniteVector("task-7".into()).to_string();
        assert!(text.contains("\"task-7\""), "{text}");
        assert!(text.contains("nothing was added"), "{text}");
    }
}
