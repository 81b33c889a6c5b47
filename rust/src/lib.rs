//! Python bindings of `facilitair_tui._native`.
//!
//! This file only converts between Python and Rust; the logic lives in
//! [`router`] (tested with a plain `cargo test`, no Python needed).

pub mod error;
pub mod index;
pub mod router;

use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyDict;

use crate::error::RouterError;
use crate::router::Router;

/// Lists of at least this many deltas are coalesced with the interpreter
/// detached, so other Python threads run meanwhile; shorter ones are not worth
/// the detach/re-attach round trip.
const DETACH_MIN_DELTAS: usize = 256;

impl From<RouterError> for PyErr {
    fn from(err: RouterError) -> PyErr {
        match err {
            RouterError::InvalidMaxChars(_) => PyValueError::new_err(err.to_string()),
        }
    }
}

/// Per-agent transcripts of the current chunk, safe to share between threads.
#[pyclass(frozen, name = "StreamRouter", module = "facilitair_tui._native")]
pub struct PyStreamRouter {
    inner: Mutex<Router>,
}

impl PyStreamRouter {
    /// Locks the router. While waiting for another thread this detaches from
    /// the interpreter, so it cannot deadlock with the GIL. The guard must not
    /// be held across anything that may run Python code (e.g. creating Python
    /// objects, which can trigger the GC and finalizers that use this router).
    fn lock(&self, py: Python<'_>) -> MutexGuard<'_, Router> {
        // Router's methods cannot leave it half-updated, so a poisoned lock
        // (a panic elsewhere while held) still guards a consistent router.
        self.inner
            .lock_py_attached(py)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyStreamRouter {
    #[new]
    fn new() -> Self {
        Self {
            inner: Mutex::new(Router::new()),
        }
    }

    /// Append a delta to the agent's transcript; return the agent's delta count.
    fn append(&self, py: Python<'_>, agent: &str, text: &str) -> usize {
        self.lock(py).append(agent, text)
    }

    /// The agent's transcript so far ("" for an agent never seen).
    fn text(&self, py: Python<'_>, agent: &str) -> String {
        // Copy out, then build the Python str after the lock is released.
        self.lock(py).text(agent).to_owned()
    }

    /// The agent's delta count so far (0 for an agent never seen).
    fn count(&self, py: Python<'_>, agent: &str) -> usize {
        self.lock(py).count(agent)
    }

    /// Deltas counted across all agents.
    fn total(&self, py: Python<'_>) -> usize {
        self.lock(py).total()
    }

    /// Agents in first-seen order.
    fn agents(&self, py: Python<'_>) -> Vec<String> {
        self.lock(py).agents().map(str::to_owned).collect()
    }

    /// Forget one agent's transcript and count (its generation restarts).
    fn reset(&self, py: Python<'_>, agent: &str) {
        self.lock(py).reset(agent);
    }

    /// Start a new chunk: forget every agent.
    fn clear(&self, py: Python<'_>) {
        self.lock(py).clear();
    }

    /// Every agent's transcript, in first-seen order.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pairs: Vec<(String, String)> = self
            .lock(py)
            .snapshot()
            .map(|(a, t)| (a.to_owned(), t.to_owned()))
            .collect();
        let dict = PyDict::new(py);
        for (agent, text) in pairs {
            dict.set_item(agent, text)?;
        }
        Ok(dict)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let guard = self.lock(py);
        format!(
            "StreamRouter(agents={}, total={})",
            guard.len(),
            guard.total()
        )
    }
}

/// Merge runs of consecutive same-agent deltas into frames, never reordering.
#[pyfunction]
#[pyo3(signature = (deltas, max_chars = 4096))]
fn coalesce(
    py: Python<'_>,
    deltas: Vec<(String, String)>,
    max_chars: i64,
) -> PyResult<Vec<(String, String)>> {
    let frames = if deltas.len() >= DETACH_MIN_DELTAS {
        py.detach(move || router::coalesce(deltas, max_chars))
    } else {
        router::coalesce(deltas, max_chars)
    };
    Ok(frames?)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStreamRouter>()?;
    m.add_function(wrap_pyfunction!(coalesce, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
