//! A vector index for lookups by cosine similarity, free of Python types.
//!
//! Vectors are L2-normalised when added, so a similarity is a dot product
//! and the caller may pass vectors of any length. Each entry has a string id
//! (adding an id again replaces its vector) and optionally a namespace that
//! searches can be restricted to.
//!
//! Searches are exact by default: [`search`] prunes with error bounds, never
//! by guessing. From [`LISTS_MIN`] entries on, the index also keeps the
//! entries in lists around k-means centroids ([`ivf`]). An exact search
//! scans the lists nearest the query first, so its pruning floor is high
//! before it scans the rest; an approximate search (above
//! [`AUTO_APPROXIMATE_MIN`] entries in auto mode, or when asked) scans only
//! the `nprobe` nearest lists, at a cost growing like √n instead of n.
//!
//! Module map: [`quantize`] (normalising; int8 codes split into two 4-bit
//! planes; their error bounds), [`kernels`] (SIMD scans of the planes, f32
//! dot products), [`vectors`] (unit vectors by slot), [`partition`] (one
//! list's codes, in blocks), [`search`] (exact top-k), [`ivf`] (k-means
//! lists), [`file`] (save and load).

mod error;
mod file;
mod ivf;
mod kernels;
mod partition;
mod quantize;
mod rng;
mod search;
mod vectors;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;

pub use error::{FileProblem, IndexError};
pub use quantize::MAX_DIM;
pub use search::Stats;

use ivf::Coarse;
use kernels::{best_isa, Isa};
use partition::{Member, Partition};
use quantize::{normalize, Batch, Dims, Query, VectorProblem};
use search::{spans, top_k, Request};
use vectors::Vectors;

/// In auto mode the index turns approximate at this many entries: about
/// where an exact search stops meeting a 2 ms budget on a 2-core machine
/// (`bench/index_search.py`, 384 dimensions, p50 warm/cold: 0.6/1.4 ms at
/// 100k, 1.7/2.5 ms at 200k, 9.5/10.5 ms at 1M; approximate at 1M: 0.6 ms,
/// p99 0.9 ms, recall@1 1.0).
pub const AUTO_APPROXIMATE_MIN: usize = 200_000;

/// Lists are kept from this many entries on (in every mode); below, one
/// scan of everything is as fast. Approximate mode needs them to be
/// approximate, so it searches exactly below this size.
pub const LISTS_MIN: usize = 1024;

/// Lists are dropped below half of [`LISTS_MIN`] (so adding and removing
/// around it does not retrain each time).
const HYSTERESIS: usize = 2;

/// Lists a search scans first, on the calling thread, to raise its floor
/// before scanning the rest in parallel.
const SEED_LISTS: usize = 8;

/// Lists an exact search scans, after the seed lists, before all others
/// (which go in storage order): nearest first, so that whichever thread
/// takes them raises the shared floor early.
const NEAR_LISTS: usize = 32;

/// The lists are retrained when the index has grown this much since.
const RETRAIN_GROWTH: usize = 4;

/// Seed of k-means: the same entries give the same lists.
const TRAIN_SEED: u64 = 0x5EED_F00D;

/// A search result: an entry's id and its similarity to the query.
pub type Hit = (Arc<str>, f32);

/// Entries are addressed by u32 slots.
pub const MAX_ENTRIES: usize = u32::MAX as usize;

/// When the index searches approximately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exact below [`AUTO_APPROXIMATE_MIN`] entries, approximate from there.
    Auto,
    /// Always exact.
    Exact,
    /// Approximate from [`LISTS_MIN`] entries on.
    Approximate,
}

impl Mode {
    pub fn parse(name: &str) -> Result<Mode, IndexError> {
        match name {
            "auto" => Ok(Mode::Auto),
            "exact" => Ok(Mode::Exact),
            "approximate" => Ok(Mode::Approximate),
            other => Err(IndexError::InvalidMode(other.to_owned())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Exact => "exact",
            Mode::Approximate => "approximate",
        }
    }

    fn code(self) -> u8 {
        match self {
            Mode::Auto => 0,
            Mode::Exact => 1,
            Mode::Approximate => 2,
        }
    }

    fn from_code(code: u8) -> Option<Mode> {
        [Mode::Auto, Mode::Exact, Mode::Approximate]
            .into_iter()
            .find(|m| m.code() == code)
    }
}

/// Namespace names, interned: entries store a number (0 for none).
#[derive(Debug, Clone, Default)]
struct Namespaces {
    names: Vec<String>,
    numbers: HashMap<String, u32>,
}

impl Namespaces {
    fn number(&self, name: &str) -> Option<u32> {
        self.numbers.get(name).copied()
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(n) = self.number(name) {
            return n;
        }
        self.names.push(name.to_owned());
        let n = self.names.len() as u32;
        self.numbers.insert(name.to_owned(), n);
        n
    }
}

/// Where a slot's 4-bit codes are: partition and position in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    part: u32,
    pos: u32,
}

/// Rounds `x` up to the nearest f32, so comparing f32 scores with it is the
/// same as comparing them, widened, with `x`.
fn f32_at_least(x: f64) -> f32 {
    let f = x as f32;
    if f64::from(f) < x {
        f.next_up()
    } else {
        f
    }
}

/// The vector index. Not thread-safe by itself; the Python binding puts it
/// behind a lock.
#[derive(Debug, Clone)]
pub struct VectorIndex {
    dims: Dims,
    isa: Isa,
    mode: Mode,
    nprobe: Option<usize>,
    vectors: Vectors,
    ids: Vec<Arc<str>>,
    slots: HashMap<Arc<str>, u32>,
    locations: Vec<Location>,
    namespaces: Namespaces,
    /// One partition in exact mode, one per list in approximate mode.
    parts: Vec<Partition>,
    coarse: Option<Coarse>,
    /// Entries when the lists were last trained.
    trained_on: usize,
}

impl VectorIndex {
    /// An empty index of `dim`-component vectors.
    pub fn new(dim: i64, mode: Mode) -> Result<Self, IndexError> {
        let dims = Dims::new(dim)?;
        Ok(VectorIndex {
            dims,
            isa: best_isa(),
            mode,
            nprobe: None,
            vectors: Vectors::new(dims.dim),
            ids: Vec::new(),
            slots: HashMap::new(),
            locations: Vec::new(),
            namespaces: Namespaces::default(),
            parts: vec![Partition::new(&dims)],
            coarse: None,
            trained_on: 0,
        })
    }

    pub fn dim(&self) -> usize {
        self.dims.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.slots.contains_key(id)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether searches currently probe only some lists (and so may miss).
    pub fn is_approximate(&self) -> bool {
        self.coarse.is_some()
            && match self.mode {
                Mode::Exact => false,
                Mode::Auto => self.len() >= AUTO_APPROXIMATE_MIN,
                Mode::Approximate => true,
            }
    }

    /// Lists currently kept (0 while exact).
    pub fn nlist(&self) -> usize {
        self.coarse.as_ref().map_or(0, Coarse::len)
    }

    /// Lists probed per approximate search.
    pub fn nprobe(&self) -> usize {
        let nlist = self.nlist();
        match self.nprobe {
            Some(n) => n.min(nlist.max(1)),
            None => ivf::default_nprobe(nlist),
        }
    }

    /// Sets the lists probed per approximate search (`None`: the default
    /// for the current number of lists). More lists: better recall, slower.
    pub fn set_nprobe(&mut self, nprobe: Option<i64>) -> Result<(), IndexError> {
        self.nprobe = match nprobe {
            None => None,
            Some(n) if n >= 1 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Some(n) => return Err(IndexError::InvalidNprobe(n)),
        };
        Ok(())
    }

    /// Adds one entry per id, `vectors` holding their vectors row after row.
    /// Each vector is L2-normalised. An id already present is replaced
    /// (with its namespace). All or nothing: on any error (wrong length, a
    /// zero or non-finite vector, an id twice in `ids`) nothing is added.
    pub fn add(
        &mut self,
        ids: Vec<String>,
        mut vectors: Vec<f32>,
        namespace: Option<&str>,
    ) -> Result<(), IndexError> {
        let dim = self.dims.dim;
        if vectors.len() != ids.len() * dim {
            return Err(if ids.is_empty() || !vectors.len().is_multiple_of(dim) {
                IndexError::DimensionMismatch {
                    expected: dim,
                    got: if ids.is_empty() {
                        vectors.len()
                    } else {
                        vectors.len() / ids.len()
                    },
                }
            } else {
                IndexError::LengthMismatch {
                    ids: ids.len(),
                    vectors: vectors.len() / dim,
                }
            });
        }
        let mut seen = HashSet::with_capacity(ids.len());
        let mut replaced = 0;
        for id in &ids {
            if !seen.insert(id.as_str()) {
                return Err(IndexError::DuplicateId(id.clone()));
            }
            replaced += usize::from(self.contains(id));
        }
        if self.len() - replaced + ids.len() > MAX_ENTRIES {
            return Err(IndexError::TooManyEntries { max: MAX_ENTRIES });
        }
        let problem = vectors
            .par_chunks_mut(dim)
            .enumerate()
            .filter_map(|(i, row)| normalize(row).err().map(|p| (i, p)))
            .min_by_key(|&(i, _)| i);
        if let Some((i, problem)) = problem {
            let id = ids[i].clone();
            return Err(match problem {
                VectorProblem::Zero => IndexError::ZeroVector(id),
                VectorProblem::NonFinite => IndexError::NonFiniteVector(id),
            });
        }

        // Everything that can fail has been checked: from here on the index
        // changes.
        let batch = Batch::encode(&self.dims, vectors);
        let lists = self
            .coarse
            .as_ref()
            .map(|c| c.assign(self.isa, &batch.unit));
        let namespace = namespace.map_or(0, |n| self.namespaces.intern(n));
        self.vectors.reserve(ids.len() - replaced);
        for (i, id) in ids.into_iter().enumerate() {
            if let Some(&slot) = self.slots.get(id.as_str()) {
                self.remove_slot(slot as usize);
            }
            let part = lists.as_ref().map_or(0, |l| l[i]);
            self.push_entry(id.into(), &batch, i, namespace, part);
        }
        self.reorganize();
        Ok(())
    }

    /// Appends row `i` of `batch` as entry `id`, in partition `part`.
    fn push_entry(&mut self, id: Arc<str>, batch: &Batch, i: usize, namespace: u32, part: u32) {
        let slot = self.vectors.len() as u32;
        let dim = self.dims.dim;
        self.vectors.push(&batch.unit[i * dim..(i + 1) * dim]);
        self.ids.push(id.clone());
        self.slots.insert(id, slot);
        let member = Member {
            slot,
            namespace,
            code: batch.codes[i],
        };
        let (high, low) = batch.lanes(i, self.dims.lane_bytes);
        let pos = self.parts[part as usize].push(member, high, low);
        self.locations.push(Location {
            part,
            pos: pos as u32,
        });
    }

    /// Removes the entries with these ids; returns how many were present.
    pub fn remove<S: AsRef<str>>(&mut self, ids: &[S]) -> usize {
        let mut removed = 0;
        for id in ids {
            if let Some(&slot) = self.slots.get(id.as_ref()) {
                self.remove_slot(slot as usize);
                removed += 1;
            }
        }
        if removed > 0 {
            self.reorganize();
        }
        removed
    }

    /// Removes `slot`; the last slot's entry moves into it.
    fn remove_slot(&mut self, slot: usize) {
        let loc = self.locations[slot];
        if let Some(moved) = self.parts[loc.part as usize].swap_remove(loc.pos as usize) {
            self.locations[moved as usize].pos = loc.pos;
        }
        let last = self.len() - 1;
        self.vectors.swap_remove(slot);
        self.locations.swap_remove(slot);
        let gone = self.ids.swap_remove(slot);
        self.slots.remove(&gone);
        if slot != last {
            let loc = self.locations[slot];
            self.parts[loc.part as usize].set_slot(loc.pos as usize, slot as u32);
            if let Some(s) = self.slots.get_mut(&self.ids[slot]) {
                *s = slot as u32;
            }
        }
    }

    /// Trains, retrains or drops the lists as the size and mode require.
    fn reorganize(&mut self) {
        let n = self.len();
        match self.coarse {
            None if n >= LISTS_MIN => self.train(),
            Some(_) if n >= self.trained_on.saturating_mul(RETRAIN_GROWTH) => self.train(),
            Some(_) if n < LISTS_MIN / HYSTERESIS => {
                self.coarse = None;
                self.trained_on = 0;
                self.repartition(1, &vec![0; n]);
            }
            _ => {}
        }
    }

    fn train(&mut self) {
        let n = self.len();
        let nlist = ivf::choose_nlist(n);
        let coarse = Coarse::train(
            self.isa,
            self.dims,
            self.vectors.all_unit(),
            nlist,
            TRAIN_SEED,
        );
        let lists = coarse.assign(self.isa, self.vectors.all_unit());
        self.repartition(coarse.len(), &lists);
        self.coarse = Some(coarse);
        self.trained_on = n;
    }

    /// Moves every entry's 4-bit codes into partition `lists[slot]`.
    fn repartition(&mut self, nparts: usize, lists: &[u32]) {
        let mut parts = vec![Partition::new(&self.dims); nparts];
        let locations = self
            .locations
            .iter()
            .zip(lists)
            .map(|(loc, &list)| {
                let old = &self.parts[loc.part as usize];
                let (high, low) = old.lanes_of(loc.pos as usize);
                let pos = parts[list as usize].push(old.member(loc.pos as usize), &high, &low);
                Location {
                    part: list,
                    pos: pos as u32,
                }
            })
            .collect();
        parts.iter_mut().for_each(Partition::shrink_to_fit);
        self.parts = parts;
        self.locations = locations;
    }

    /// The `k` entries most similar to `query` (cosine), best first, with
    /// their similarity; only those of at least `min_similarity`, only in
    /// `namespace` if given. Equal similarities come in ascending id order.
    /// Exact unless the index is approximate and `exact` is false.
    pub fn search(
        &self,
        query: &[f32],
        k: i64,
        min_similarity: f64,
        namespace: Option<&str>,
        exact: bool,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_with_stats(query, k, min_similarity, namespace, exact)
            .map(|(hits, _)| hits)
    }

    /// [`Self::search`], with how much work each stage did.
    pub fn search_with_stats(
        &self,
        query: &[f32],
        k: i64,
        min_similarity: f64,
        namespace: Option<&str>,
        exact: bool,
    ) -> Result<(Vec<Hit>, Stats), IndexError> {
        if k < 1 {
            return Err(IndexError::InvalidK(k));
        }
        if min_similarity.is_nan() {
            return Err(IndexError::InvalidMinSimilarity);
        }
        let query = Query::new(&self.dims, query)?;
        let namespace = match namespace {
            None => None,
            Some(name) => match self.namespaces.number(name) {
                Some(n) => Some(n),
                None => return Ok((Vec::new(), Stats::default())),
            },
        };
        let k = usize::try_from(k).unwrap_or(usize::MAX).min(self.len());
        if k == 0 {
            return Ok((Vec::new(), Stats::default()));
        }
        let approximate = self.is_approximate() && !exact;
        let (seed, rest): (Vec<&Partition>, Vec<&Partition>) = match &self.coarse {
            None => (Vec::new(), self.parts.iter().collect()),
            Some(coarse) => {
                let nearest = if approximate {
                    coarse.nearest(self.isa, &query, self.nprobe())
                } else {
                    coarse.likely(self.isa, &query, NEAR_LISTS)
                };
                let (first, others) = nearest.split_at(SEED_LISTS.min(nearest.len()));
                let part = |list: &u32| &self.parts[*list as usize];
                let mut rest: Vec<&Partition> = others.iter().map(part).collect();
                if !approximate {
                    let mut near = vec![false; self.parts.len()];
                    nearest.iter().for_each(|&l| near[l as usize] = true);
                    let far = self.parts.iter().zip(near).filter(|(_, near)| !near);
                    rest.extend(far.map(|(p, _)| p));
                }
                (first.iter().map(part).collect(), rest)
            }
        };
        let req = Request {
            isa: self.isa,
            query: &query,
            k,
            min_similarity: f32_at_least(min_similarity),
            namespace,
        };
        let (seed, rest) = (spans(seed), spans(rest));
        let (ranked, stats) = top_k(&req, &seed, &rest, &self.vectors, |slot| {
            &*self.ids[slot as usize]
        });
        let hits = ranked
            .into_iter()
            .map(|(slot, score)| (self.ids[slot as usize].clone(), score))
            .collect();
        Ok((hits, stats))
    }

    /// Heap bytes held by the index (allocated capacity; ids counted once
    /// plus their table).
    pub fn heap_bytes(&self) -> usize {
        let ids: usize = self.ids.iter().map(|id| id.len() + 16).sum();
        let id_tables = self.ids.capacity() * std::mem::size_of::<Arc<str>>()
            + self.slots.capacity() * (std::mem::size_of::<(Arc<str>, u32)>() + 1);
        self.vectors.heap_bytes()
            + self.parts.iter().map(Partition::heap_bytes).sum::<usize>()
            + self.locations.capacity() * std::mem::size_of::<Location>()
            + self.coarse.as_ref().map_or(0, Coarse::heap_bytes)
            + ids
            + id_tables
    }
}

#[cfg(test)]
mod tests;
