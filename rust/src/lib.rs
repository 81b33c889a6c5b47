//! Python bindings of `facilitair_tui._native`.
//!
//! This file only converts between Python and Rust; the logic lives in
//! [`embed`], [`index`] and [`router`] (tested with a plain `cargo test`, no
//! Python needed).

pub mod embed;
pub mod error;
pub mod index;
pub mod router;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyByteArray, PyDict, PyString};

use crate::embed::Embedder;
use crate::error::{EmbedError, RouterError};
use crate::router::{FramePolicy, Router};

// ============================================================== token router
//
// Bindings of `router` (the StreamRouter class, the coalesce function). Other
// native components keep their bindings in sections of their own.

/// Lists of at least this many deltas are coalesced (and drains of at least
/// this many are merged) with the interpreter detached, so other Python threads
/// run meanwhile; shorter ones are not worth the detach/re-attach round trip.
const DETACH_MIN_DELTAS: usize = 256;

impl From<RouterError> for PyErr {
    fn from(err: RouterError) -> PyErr {
        match err {
            RouterError::InvalidMaxChars(_)
            | RouterError::InvalidCapacity(_)
            | RouterError::InvalidFrameInterval(_)
            | RouterError::InvalidFrameDeltas(_) => PyValueError::new_err(err.to_string()),
        }
    }
}

/// A frame as Python sees it: `(agent, text, seq, count, t)`.
type PyFrame = (Py<PyString>, Py<PyString>, u64, usize, f64);

/// The token router of a collaboration (see `router`), safe to share between
/// threads.
#[pyclass(frozen, name = "StreamRouter", module = "facilitair_tui._native")]
pub struct PyStreamRouter {
    inner: Mutex<Router>,
    /// Origin of the router's own clock, used when the caller gives no time.
    origin: Instant,
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

    /// Seconds since the router was made, on a monotonic clock.
    fn clock(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }
}

#[pymethods]
impl PyStreamRouter {
    #[new]
    #[pyo3(signature = (capacity = 4096, frame_s = 0.0, frame_deltas = 256))]
    fn new(capacity: i64, frame_s: f64, frame_deltas: i64) -> PyResult<Self> {
        let policy = FramePolicy::new(frame_s, frame_deltas)?;
        let capacity = Router::checked_capacity(capacity)?;
        Ok(Self {
            inner: Mutex::new(Router::new(capacity, policy)),
            origin: Instant::now(),
        })
    }

    /// Append a delta to the agent's transcript and to the fan-in log; return
    /// whether there is room for more (false: wait for a drain).
    #[pyo3(signature = (agent, text, t = None))]
    fn push(&self, py: Python<'_>, agent: &str, text: &str, t: Option<f64>) -> bool {
        let t = t.unwrap_or_else(|| self.clock());
        self.lock(py).push(agent, text, t)
    }

    /// Whether fewer deltas than the capacity are pending.
    fn has_room(&self, py: Python<'_>) -> bool {
        self.lock(py).has_room()
    }

    /// The capacity of pending deltas.
    #[getter]
    fn capacity(&self, py: Python<'_>) -> usize {
        self.lock(py).capacity()
    }

    /// The frame policy: `(frame_s, frame_deltas)`.
    #[getter]
    fn frame_policy(&self, py: Python<'_>) -> (f64, usize) {
        let policy = self.lock(py).policy();
        (policy.interval_s(), policy.max_deltas())
    }

    /// The agent's transcript in the current chunk ("" for an agent not seen).
    fn text(&self, py: Python<'_>, agent: &str) -> String {
        // Copy out, then build the Python str after the lock is released.
        self.lock(py).text(agent).to_owned()
    }

    /// The agent's transcript from its `start`-th character on.
    fn text_since(&self, py: Python<'_>, agent: &str, start: usize) -> String {
        self.lock(py).text_since(agent, start).to_owned()
    }

    /// The agent's delta count in the current chunk (0 for an agent not seen).
    fn count(&self, py: Python<'_>, agent: &str) -> usize {
        self.lock(py).count(agent)
    }

    /// Deltas counted across all agents in the current chunk.
    fn total(&self, py: Python<'_>) -> usize {
        self.lock(py).total()
    }

    /// Agents of the current chunk in first-seen order.
    fn agents(&self, py: Python<'_>) -> Vec<String> {
        self.lock(py).agents().map(str::to_owned).collect()
    }

    /// Forget one agent's transcript and count (its generation restarts).
    fn reset(&self, py: Python<'_>, agent: &str) {
        self.lock(py).reset(agent);
    }

    /// Start a new chunk: forget every transcript (pending deltas stay).
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

    /// The sequence number the next delta will get.
    fn next_seq(&self, py: Python<'_>) -> u64 {
        self.lock(py).next_seq()
    }

    /// Deltas pushed and not drained yet, held ones included.
    fn pending(&self, py: Python<'_>) -> usize {
        self.lock(py).pending()
    }

    /// Pending deltas a drain would take now (not held).
    fn available(&self, py: Python<'_>) -> usize {
        self.lock(py).available()
    }

    /// Take the pending deltas before `before` (all when None) and before the
    /// hold point, merged into `(agent, text, seq, count, t)` frames.
    #[pyo3(signature = (before = None, now = None))]
    fn drain(&self, py: Python<'_>, before: Option<u64>, now: Option<f64>) -> Vec<PyFrame> {
        let now = now.unwrap_or_else(|| self.clock());
        let frames = {
            let mut guard = self.lock(py);
            if guard.available() < DETACH_MIN_DELTAS {
                guard.drain(before, now)
            } else {
                drop(guard);
                py.detach(|| {
                    self.inner
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .drain(before, now)
                })
            }
        };
        frames
            .into_iter()
            .map(|f| {
                (
                    PyString::new(py, &f.agent).unbind(),
                    PyString::new(py, &f.text).unbind(),
                    f.seq,
                    f.count,
                    f.t,
                )
            })
            .collect()
    }

    /// Hold every delta pushed from now on (nothing is lost) until `release`.
    fn hold(&self, py: Python<'_>) {
        self.lock(py).hold();
    }

    /// End the hold: the held deltas drain as usual, in order.
    fn release(&self, py: Python<'_>) {
        self.lock(py).release();
    }

    /// Whether deltas are held.
    fn held(&self, py: Python<'_>) -> bool {
        self.lock(py).held()
    }

    /// Seconds until the next drain is due under the frame policy (0: now;
    /// None: nothing to drain).
    #[pyo3(signature = (now = None))]
    fn due_in(&self, py: Python<'_>, now: Option<f64>) -> Option<f64> {
        let now = now.unwrap_or_else(|| self.clock());
        self.lock(py).due_in(now)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let guard = self.lock(py);
        format!(
            "StreamRouter(agents={}, total={}, pending={}, held={})",
            guard.len(),
            guard.total(),
            guard.pending(),
            if guard.held() { "True" } else { "False" },
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

// ============================================================== embedder
//
// Bindings of `embed` (the MiniLmEmbedder class, its ModelFileError).

create_exception!(
    _native,
    ModelFileError,
    PyOSError,
    "A model file is there but could not be read (corrupt, truncated or of another model)."
);

impl From<EmbedError> for PyErr {
    fn from(err: EmbedError) -> PyErr {
        let message = err.to_string();
        match err {
            EmbedError::MissingFile(_) => PyFileNotFoundError::new_err(message),
            EmbedError::BadModelFile(..) => ModelFileError::new_err(message),
            EmbedError::InvalidThreads | EmbedError::Tokenizer(_) => PyValueError::new_err(message),
            EmbedError::Compute(_) => PyRuntimeError::new_err(message),
        }
    }
}

/// all-MiniLM-L6-v2 sentence embeddings; see `embed.rs`.
#[pyclass(frozen, name = "MiniLmEmbedder", module = "facilitair_tui._native")]
pub struct PyEmbedder {
    inner: Embedder,
}

#[pymethods]
impl PyEmbedder {
    #[new]
    #[pyo3(signature = (folder, threads = 1))]
    fn new(py: Python<'_>, folder: PathBuf, threads: usize) -> PyResult<Self> {
        let inner = py.detach(move || Embedder::load(&folder, threads))?;
        Ok(Self { inner })
    }

    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// The texts' vectors as `len(texts) * dim` float32s (native byte order), row-major.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
    ) -> PyResult<Bound<'py, PyByteArray>> {
        let vectors = py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.inner.encode(&refs)
        })?;
        let bytes: Vec<u8> = vectors.iter().flat_map(|x| x.to_ne_bytes()).collect();
        Ok(PyByteArray::new(py, &bytes))
    }

    /// Tokens each text is encoded from (special tokens included, after truncation).
    fn token_counts(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<Vec<usize>> {
        Ok(py.detach(|| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            self.inner.token_counts(&refs)
        })?)
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEmbedder>()?;
    m.add("ModelFileError", m.py().get_type::<ModelFileError>())?;
    m.add("MAX_TOKENS", embed::MAX_TOKENS)?;
    m.add_class::<PyStreamRouter>()?;
    m.add_function(wrap_pyfunction!(coalesce, m)?)?;
    vector_index::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

// ---- Vector index -----------------------------------------------------------
//
// Kept in its own module so the router's bindings above and these change
// independently.

mod vector_index {
    use std::path::PathBuf;
    use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

    use pyo3::buffer::PyBuffer;
    use pyo3::create_exception;
    use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
    use pyo3::prelude::*;
    use pyo3::sync::RwLockExt;

    use crate::index::{IndexError, Mode, VectorIndex};

    create_exception!(
        facilitair_tui._native,
        IndexFileError,
        PyValueError,
        "An index file that cannot be loaded: corrupt, truncated, foreign or of another format version. \
         The index can be rebuilt from its entries."
    );

    /// Batches of at least this many vectors (or ids) are processed with
    /// the interpreter detached; smaller ones are not worth the round trip.
    const DETACH_MIN_ROWS: usize = 256;

    impl From<IndexError> for PyErr {
        fn from(err: IndexError) -> PyErr {
            match err {
                IndexError::Io { path, source } => match source.raw_os_error() {
                    // OSError(errno, strerror, filename) picks the subclass
                    // (FileNotFoundError, PermissionError, ...) itself.
                    Some(code) => {
                        let text = source.to_string();
                        let suffix = format!(" (os error {code})");
                        let strerror = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
                        PyOSError::new_err((code, strerror, path.to_string_lossy().into_owned()))
                    }
                    None => PyOSError::new_err(format!("{}: {source}", path.display())),
                },
                IndexError::File { .. } => IndexFileError::new_err(err.to_string()),
                IndexError::InvalidDim { .. }
                | IndexError::DimensionMismatch { .. }
                | IndexError::LengthMismatch { .. }
                | IndexError::DuplicateId(_)
                | IndexError::ZeroVector(_)
                | IndexError::NonFiniteVector(_)
                | IndexError::InvalidQuery(_)
                | IndexError::InvalidK(_)
                | IndexError::InvalidMinSimilarity
                | IndexError::InvalidNprobe(_)
                | IndexError::InvalidMode(_)
                | IndexError::TooManyEntries { .. } => PyValueError::new_err(err.to_string()),
            }
        }
    }

    fn poisoned<T>(_: PoisonError<T>) -> PyErr {
        PyRuntimeError::new_err(
            "the vector index was left inconsistent by an internal error; rebuild it from its entries",
        )
    }

    /// The float32 buffer `obj` exposes, copied out (so the interpreter can
    /// be detached while the copy is used), with its shape.
    fn float32_rows(
        obj: &Bound<'_, PyAny>,
        ndim: usize,
        what: &str,
    ) -> PyResult<(Vec<f32>, Vec<usize>)> {
        let buffer = PyBuffer::<f32>::get(obj)?;
        if buffer.dimensions() != ndim {
            return Err(PyValueError::new_err(format!(
                "{what} must be a {ndim}-dimensional float32 array, got shape {:?}",
                buffer.shape()
            )));
        }
        let shape = buffer.shape().to_vec();
        let values = buffer.to_vec(obj.py())?;
        Ok((values, shape))
    }

    /// A vector index for lookups by cosine similarity, safe to share
    /// between threads: searches run side by side, changes one at a time.
    #[pyclass(frozen, name = "VectorIndex", module = "facilitair_tui._native")]
    pub struct PyVectorIndex {
        inner: RwLock<VectorIndex>,
    }

    impl PyVectorIndex {
        /// For quick reads: waits for the lock detached, so it cannot
        /// deadlock with a thread that holds the lock and wants the GIL.
        fn read(&self, py: Python<'_>) -> PyResult<RwLockReadGuard<'_, VectorIndex>> {
            self.inner.read_py_attached(py).map_err(poisoned)
        }

        fn write(&self, py: Python<'_>) -> PyResult<RwLockWriteGuard<'_, VectorIndex>> {
            self.inner.write_py_attached(py).map_err(poisoned)
        }

        /// Runs `f` on the index for writing, detached from the interpreter
        /// when `big`.
        fn change<T: Send>(
            &self,
            py: Python<'_>,
            big: bool,
            f: impl FnOnce(&mut VectorIndex) -> Result<T, IndexError> + Send,
        ) -> PyResult<T> {
            if big {
                py.detach(|| {
                    let mut index = self.inner.write().map_err(poisoned)?;
                    Ok(f(&mut index)?)
                })
            } else {
                Ok(f(&mut *self.write(py)?)?)
            }
        }
    }

    #[pymethods]
    impl PyVectorIndex {
        #[new]
        #[pyo3(signature = (dim, *, mode = "auto"))]
        fn new(dim: i64, mode: &str) -> PyResult<Self> {
            let index = VectorIndex::new(dim, Mode::parse(mode)?)?;
            Ok(Self {
                inner: RwLock::new(index),
            })
        }

        /// Components per vector.
        #[getter]
        fn dim(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.read(py)?.dim())
        }

        /// "auto", "exact" or "approximate".
        #[getter]
        fn mode(&self, py: Python<'_>) -> PyResult<&'static str> {
            Ok(self.read(py)?.mode().name())
        }

        /// Whether searches currently probe inverted lists (and may miss).
        #[getter]
        fn approximate(&self, py: Python<'_>) -> PyResult<bool> {
            Ok(self.read(py)?.is_approximate())
        }

        /// Inverted lists kept (0 while exact).
        #[getter]
        fn nlist(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.read(py)?.nlist())
        }

        /// Lists probed per approximate search.
        #[getter]
        fn nprobe(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.read(py)?.nprobe())
        }

        #[setter]
        fn set_nprobe(&self, py: Python<'_>, nprobe: Option<i64>) -> PyResult<()> {
            Ok(self.write(py)?.set_nprobe(nprobe)?)
        }

        /// Heap bytes held by the index.
        #[getter]
        fn memory_bytes(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.read(py)?.heap_bytes())
        }

        #[pyo3(signature = (ids, vectors, *, namespace = None))]
        fn add(
            &self,
            py: Python<'_>,
            ids: Vec<String>,
            vectors: &Bound<'_, PyAny>,
            namespace: Option<String>,
        ) -> PyResult<()> {
            let (rows, shape) = float32_rows(vectors, 2, "vectors")?;
            let big = ids.len() >= DETACH_MIN_ROWS;
            self.change(py, big, move |index| {
                if shape[1] != index.dim() {
                    return Err(IndexError::DimensionMismatch {
                        expected: index.dim(),
                        got: shape[1],
                    });
                }
                if shape[0] != ids.len() {
                    return Err(IndexError::LengthMismatch {
                        ids: ids.len(),
                        vectors: shape[0],
                    });
                }
                index.add(ids, rows, namespace.as_deref())
            })
        }

        fn remove(&self, py: Python<'_>, ids: Vec<String>) -> PyResult<usize> {
            let big = ids.len() >= DETACH_MIN_ROWS;
            self.change(py, big, move |index| Ok(index.remove(&ids)))
        }

        #[pyo3(signature = (query, k = 5, min_similarity = 0.0, *, namespace = None, exact = false))]
        fn search(
            &self,
            py: Python<'_>,
            query: &Bound<'_, PyAny>,
            k: i64,
            min_similarity: f64,
            namespace: Option<String>,
            exact: bool,
        ) -> PyResult<Vec<(String, f32)>> {
            let (query, _) = float32_rows(query, 1, "the query")?;
            py.detach(|| {
                let index = self.inner.read().map_err(poisoned)?;
                let hits = index.search(&query, k, min_similarity, namespace.as_deref(), exact)?;
                Ok(hits
                    .into_iter()
                    .map(|(id, score)| (id.to_string(), score))
                    .collect())
            })
        }

        fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
            py.detach(|| {
                let index = self.inner.read().map_err(poisoned)?;
                Ok(index.save(&path)?)
            })
        }

        #[staticmethod]
        fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
            let index = py.detach(|| VectorIndex::load(&path))?;
            Ok(Self {
                inner: RwLock::new(index),
            })
        }

        fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
            Ok(self.read(py)?.len())
        }

        fn __contains__(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
            Ok(self.read(py)?.contains(id))
        }

        fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
            let index = self.read(py)?;
            Ok(format!(
                "VectorIndex(dim={}, mode={:?}, entries={}, approximate={})",
                index.dim(),
                index.mode().name(),
                index.len(),
                index.is_approximate()
            ))
        }
    }

    pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add_class::<PyVectorIndex>()?;
        m.add("IndexFileError", m.py().get_type::<IndexFileError>())?;
        Ok(())
    }
}
