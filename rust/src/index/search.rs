//! Exact top-k by cosine over some partitions, pruning with the error
//! bounds of [`super::quantize`]. Every code gives an interval `[lb, ub]`
//! sure to hold the exact score, and the k-th largest `lb` seen is a floor
//! under the k-th best exact score: a member whose `ub` is below the floor
//! (or below `min_similarity`) cannot be in the result.
//!
//! 1. The kernel bounds 16 members at once from their 4-bit codes (half a
//!    byte per dimension: the only pass over all the data) and skips the
//!    block if none reaches the floor. Otherwise it reads the other half of
//!    their int8 codes and hands over bounds ten times narrower; members
//!    still reaching the floor are candidates, and their lower bounds raise
//!    it. Once the scan has met a few good matches, the floor is within
//!    about 0.03 of the k-th best score and almost every block is skipped
//!    in the kernel.
//! 2. Compute exact f32 scores of the candidates in descending order of
//!    `ub`, and stop once the next `ub` is below the k-th best exact score.
//!
//! Every member skipped is provably outside the top k, so the result is the
//! exact top k of an exhaustive f32 scan, ties included (broken by a key the
//! caller supplies, ascending), only faster. The caller orders the work so
//! that the floor rises early: `seed` partitions (the lists nearest the
//! query) first, then the rest, in parallel when there is enough of it, the
//! threads sharing the highest floor any of them has found.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use rayon::prelude::*;

use super::kernels::{scan, Isa, Planes, BLOCK};
use super::partition::Partition;
use super::quantize::Query;
use super::vectors::Vectors;

/// Blocks scanned as one parallel task (16k vectors): small enough to
/// balance two cores, big enough that task overhead does not show.
const SPAN_BLOCKS: usize = 1024;

/// Below this many members, a scan stays on the calling thread: waking the
/// pool costs more than it saves, and its latency shows at p99 on a busy
/// machine (an approximate search of 1M entries scans about 60k).
const PARALLEL_MIN_MEMBERS: usize = 80 * 1024;

/// What to search for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub isa: Isa,
    pub query: &'a Query,
    /// At least 1.
    pub k: usize,
    pub min_similarity: f32,
    /// Only members of this namespace, if given.
    pub namespace: Option<u32>,
}

/// A run of blocks of one partition: the unit of parallel work.
#[derive(Debug, Clone)]
pub struct Span<'a> {
    part: &'a Partition,
    blocks: Range<usize>,
}

/// The spans covering `parts`, big partitions cut into several.
pub fn spans<'a>(parts: impl IntoIterator<Item = &'a Partition>) -> Vec<Span<'a>> {
    let mut spans = Vec::new();
    for part in parts {
        let blocks = part.blocks();
        let mut start = 0;
        while start < blocks {
            let end = blocks.min(start + SPAN_BLOCKS);
            spans.push(Span {
                part,
                blocks: start..end,
            });
            start = end;
        }
    }
    spans
}

/// How much work a search did (for tests and the benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Members whose 4-bit codes were scanned.
    pub scanned: usize,
    /// Members of blocks whose int8 bounds could not all be ruled out.
    pub estimated: usize,
    /// Exact scores computed.
    pub exact: usize,
}

/// f32 ordered by `total_cmp`, for heaps.
#[derive(Debug, Clone, Copy)]
struct Total(f32);

impl PartialEq for Total {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Total {}
impl PartialOrd for Total {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Total {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The k largest lower bounds seen (of distinct members): the k-th is a
/// floor under the k-th best exact score.
#[derive(Debug, Clone)]
struct Floor {
    k: usize,
    heap: BinaryHeap<Reverse<Total>>,
}

impl Floor {
    fn new(k: usize) -> Self {
        Floor {
            k,
            heap: BinaryHeap::new(),
        }
    }

    fn offer(&mut self, lb: f32) {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(Total(lb)));
        } else if let Some(mut smallest) = self.heap.peek_mut() {
            if lb > smallest.0 .0 {
                *smallest = Reverse(Total(lb));
            }
        }
    }

    fn value(&self) -> f32 {
        match self.heap.peek() {
            Some(Reverse(Total(v))) if self.heap.len() == self.k => *v,
            _ => f32::NEG_INFINITY,
        }
    }

    fn merge(&mut self, other: Floor) {
        for Reverse(Total(v)) in other.heap {
            self.offer(v);
        }
    }
}

/// The highest floor any thread has found. Each thread's floor is a floor
/// for all of them (it is the k-th lower bound of k distinct members), so
/// every thread prunes with the highest; each keeps its own `Floor` of
/// lower bounds, so merging never counts a member twice.
struct SharedFloor(AtomicU32);

impl SharedFloor {
    fn new() -> Self {
        SharedFloor(AtomicU32::new(f32::NEG_INFINITY.to_bits()))
    }

    fn get(&self) -> f32 {
        f32::from_bits(self.0.load(AtomicOrdering::Relaxed))
    }

    fn raise(&self, value: f32) {
        let mut current = self.0.load(AtomicOrdering::Relaxed);
        while f32::from_bits(current) < value {
            match self.0.compare_exchange_weak(
                current,
                value.to_bits(),
                AtomicOrdering::Relaxed,
                AtomicOrdering::Relaxed,
            ) {
                Ok(_) => break,
                Err(seen) => current = seen,
            }
        }
    }
}

/// A member that may be in the top k, with bounds on its exact score.
/// Ordered by upper bound (then slot, for determinism), so a max-heap of
/// candidates yields the most promising first.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    ub: f32,
    slot: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.ub
            .total_cmp(&other.ub)
            .then(other.slot.cmp(&self.slot))
    }
}

/// What the scan found in some spans.
#[derive(Debug, Clone)]
struct Candidates {
    floor: Floor,
    list: Vec<Candidate>,
    scanned: usize,
    estimated: usize,
}

impl Candidates {
    fn new(k: usize) -> Self {
        Candidates {
            floor: Floor::new(k),
            list: Vec::new(),
            scanned: 0,
            estimated: 0,
        }
    }

    fn cut(&self, req: &Request<'_>, shared: &SharedFloor) -> f32 {
        req.min_similarity.max(self.floor.value()).max(shared.get())
    }

    fn scan(mut self, req: &Request<'_>, shared: &SharedFloor, span: &Span<'_>) -> Self {
        let part = span.part;
        let blocks = span.blocks.clone();
        self.scanned += part.len().min(blocks.end * BLOCK) - blocks.start * BLOCK;
        let mut cut = self.cut(req, shared);
        let Candidates {
            floor,
            list,
            estimated,
            ..
        } = &mut self;
        let (high, low) = part.planes(blocks.clone());
        let lanes = part.lanes(blocks.clone());
        let bounds = req.query.bounds(lanes.scales, lanes.errs4, lanes.errs8);
        let words = &req.query.words;
        scan(
            req.isa,
            Planes {
                high,
                low,
                groups: part.groups(),
            },
            words,
            bounds,
            cut,
            |b, ub, lb| {
                let (slots, namespaces) = part.block_members(blocks.start + b);
                *estimated += slots.len();
                for (j, (&slot, &namespace)) in slots.iter().zip(namespaces).enumerate() {
                    if ub[j] < cut || req.namespace.is_some_and(|ns| ns != namespace) {
                        continue;
                    }
                    floor.offer(lb[j]);
                    shared.raise(floor.value());
                    cut = req.min_similarity.max(floor.value()).max(shared.get());
                    list.push(Candidate { ub: ub[j], slot });
                }
                cut
            },
        );
        // Drop what the floor has since ruled out: the list stays short.
        let cut = self.cut(req, shared);
        self.list.retain(|c| c.ub >= cut);
        self
    }

    fn merge(mut self, other: Candidates) -> Self {
        self.floor.merge(other.floor);
        self.list.extend(other.list);
        self.scanned += other.scanned;
        self.estimated += other.estimated;
        self
    }
}

/// A scored member, ordered worst first: lower score, then larger key.
#[derive(Debug)]
struct Ranked<K> {
    score: f32,
    key: K,
    slot: u32,
}

impl<K: Ord> PartialEq for Ranked<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<K: Ord> Eq for Ranked<K> {}
impl<K: Ord> PartialOrd for Ranked<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord> Ord for Ranked<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| self.key.cmp(&other.key))
    }
}

/// The exact top `req.k` members of `seed` and `rest` with a score of at
/// least `req.min_similarity`, best first, as (slot, score); equal scores
/// in ascending order of `key(slot)`.
///
/// `seed` spans are scanned first, on the calling thread: the ones most
/// likely to hold the result, so that the floor is high before the `rest`
/// are scanned, in parallel if they are many.
pub fn top_k<K: Ord>(
    req: &Request<'_>,
    seed: &[Span<'_>],
    rest: &[Span<'_>],
    vectors: &Vectors,
    key: impl Fn(u32) -> K,
) -> (Vec<(u32, f32)>, Stats) {
    let k = req.k.max(1);

    // Stage 1: the scan, seed spans first.
    let shared = SharedFloor::new();
    let scan = |c: Candidates, span| c.scan(req, &shared, span);
    let found = seed.iter().fold(Candidates::new(k), scan);
    let members: usize = rest.iter().map(|s| s.blocks.len() * BLOCK).sum();
    let found = if members >= PARALLEL_MIN_MEMBERS && rest.len() > 1 {
        rest.par_iter()
            .fold(|| Candidates::new(k), scan)
            .reduce(|| Candidates::new(k), Candidates::merge)
            .merge(found)
    } else {
        rest.iter().fold(found, scan)
    };
    let mut stats = Stats {
        scanned: found.scanned,
        estimated: found.estimated,
        exact: 0,
    };
    let cut = found.cut(req, &shared);
    let mut candidates = found.list;
    candidates.retain(|c| c.ub >= cut);

    // Stage 2: exact scores, best upper bound first (a heap, not a sort:
    // this usually stops after a few), until no upper bound can beat the
    // k-th best.
    let mut best: BinaryHeap<Ranked<K>> = BinaryHeap::with_capacity(k + 1);
    let mut pending = BinaryHeap::from(candidates);
    while let Some(c) = pending.pop() {
        if best.len() == k && best.peek().is_some_and(|worst| c.ub < worst.score) {
            break;
        }
        stats.exact += 1;
        let score = vectors.exact(req.isa, c.slot as usize, req.query);
        if score < req.min_similarity {
            continue;
        }
        let entry = Ranked {
            score,
            key: key(c.slot),
            slot: c.slot,
        };
        if best.len() < k {
            best.push(entry);
        } else if best.peek().is_some_and(|worst| entry < *worst) {
            best.pop();
            best.push(entry);
        }
    }
    let ranked = best
        .into_sorted_vec()
        .into_iter()
        .map(|r| (r.slot, r.score))
        .collect();
    (ranked, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kernels::available_isas;
    use crate::index::partition::Member;
    use crate::index::quantize::tests::random_unit;
    use crate::index::quantize::{Batch, Dims};
    use crate::index::rng::SplitMix64;

    struct Fixture {
        dims: Dims,
        vectors: Vectors,
        part: Partition,
    }

    fn fixture(rows: &[Vec<f32>], namespaces: &[u32]) -> Fixture {
        let dims = Dims::new(rows[0].len() as i64).unwrap();
        let batch = Batch::encode(&dims, rows.concat());
        let mut vectors = Vectors::new(dims.dim);
        let mut part = Partition::new(&dims);
        for (i, row) in rows.iter().enumerate() {
            vectors.push(row);
            let (high, low) = batch.lanes(i, dims.lane_bytes);
            let member = Member {
                slot: i as u32,
                namespace: namespaces.get(i).copied().unwrap_or(0),
                code: batch.codes[i],
            };
            part.push(member, high, low);
        }
        Fixture {
            dims,
            vectors,
            part,
        }
    }

    fn brute_force(
        f: &Fixture,
        isa: Isa,
        q: &Query,
        k: usize,
        min: f32,
        ns: Option<u32>,
        namespaces: &[u32],
    ) -> Vec<(u32, f32)> {
        let mut all: Vec<(u32, f32)> = (0..f.vectors.len())
            .filter(|&i| ns.is_none_or(|ns| namespaces.get(i).copied().unwrap_or(0) == ns))
            .map(|i| (i as u32, f.vectors.exact(isa, i, q)))
            .filter(|&(_, s)| s >= min)
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    #[test]
    fn equals_brute_force_on_random_data_with_ties() {
        let mut rng = SplitMix64::new(21);
        for (n, dim) in [(1, 3), (17, 8), (300, 384), (2000, 40)] {
            let mut rows: Vec<Vec<f32>> = (0..n).map(|_| random_unit(&mut rng, dim)).collect();
            // Exact ties: copies of earlier rows.
            for i in (0..n).step_by(7).skip(1) {
                rows[i] = rows[i / 2].clone();
            }
            let f = fixture(&rows, &[]);
            for isa in available_isas() {
                for trial in 0..30 {
                    let q = if trial % 3 == 0 {
                        Query::from_unit(&f.dims, rows[rng.below(n)].clone())
                    } else {
                        Query::new(&f.dims, &random_unit(&mut rng, dim)).unwrap()
                    };
                    for k in [1, 3, 10, n + 5] {
                        for min in [-1.0, 0.0, 0.1] {
                            let req = Request {
                                isa,
                                query: &q,
                                k,
                                min_similarity: min,
                                namespace: None,
                            };
                            // Seed or rest: both paths must agree.
                            let all = spans([&f.part]);
                            let (seed, rest) = if trial % 2 == 0 {
                                (&all[..], &[][..])
                            } else {
                                (&[][..], &all[..])
                            };
                            let (got, _) = top_k(&req, seed, rest, &f.vectors, |s| s);
                            let want = brute_force(&f, isa, &q, k, min, None, &[]);
                            assert_eq!(got, want, "n={n} dim={dim} k={k} min={min} {isa:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn namespace_filter_keeps_only_members_of_that_namespace() {
        let mut rng = SplitMix64::new(22);
        let rows: Vec<Vec<f32>> = (0..500).map(|_| random_unit(&mut rng, 24)).collect();
        let namespaces: Vec<u32> = (0..500).map(|i| (i % 3) as u32).collect();
        let f = fixture(&rows, &namespaces);
        let q = Query::from_unit(&f.dims, rows[4].clone());
        for ns in [0, 1, 2, 7] {
            let req = Request {
                isa: Isa::Portable,
                query: &q,
                k: 10,
                min_similarity: -1.0,
                namespace: Some(ns),
            };
            let (got, _) = top_k(&req, &[], &spans([&f.part]), &f.vectors, |s| s);
            let want = brute_force(&f, Isa::Portable, &q, 10, -1.0, Some(ns), &namespaces);
            assert_eq!(got, want);
            assert!(got.iter().all(|&(s, _)| namespaces[s as usize] == ns));
        }
    }

    #[test]
    fn ties_are_broken_by_key_ascending() {
        let row = vec![0.5f32; 16];
        let f = fixture(&vec![row.clone(); 40], &[]);
        let q = Query::new(&f.dims, &row).unwrap();
        let req = Request {
            isa: Isa::Portable,
            query: &q,
            k: 5,
            min_similarity: 0.0,
            namespace: None,
        };
        // Keys in reverse slot order: the highest slots win the ties.
        let (got, _) = top_k(&req, &[], &spans([&f.part]), &f.vectors, Reverse);
        let slots: Vec<u32> = got.iter().map(|&(s, _)| s).collect();
        assert_eq!(slots, vec![39, 38, 37, 36, 35]);
    }

    #[test]
    fn clustered_data_is_pruned_to_few_exact_scores() {
        // A query near one of 50 clusters of 100: the 4-bit bounds should
        // rule out most other clusters, the int8 bounds part of its own.
        let mut rng = SplitMix64::new(23);
        let centres: Vec<Vec<f32>> = (0..50).map(|_| random_unit(&mut rng, 384)).collect();
        let rows: Vec<Vec<f32>> = (0..5000)
            .map(|i| {
                let noise = random_unit(&mut rng, 384);
                let mut v: Vec<f32> = centres[i % 50]
                    .iter()
                    .zip(&noise)
                    .map(|(c, n)| c + 0.5 * n)
                    .collect();
                crate::index::quantize::normalize(&mut v).unwrap();
                v
            })
            .collect();
        let f = fixture(&rows, &[]);
        let q = Query::from_unit(&f.dims, rows[123].clone());
        let req = Request {
            isa: Isa::Portable,
            query: &q,
            k: 10,
            min_similarity: 0.0,
            namespace: None,
        };
        let (got, stats) = top_k(&req, &[], &spans([&f.part]), &f.vectors, |s| s);
        assert_eq!(got, brute_force(&f, Isa::Portable, &q, 10, 0.0, None, &[]));
        assert_eq!(got[0].0, 123);
        assert_eq!(stats.scanned, 5000);
        assert!(stats.estimated < 2500, "{stats:?}");
        assert!(stats.exact <= 50, "{stats:?}");
    }

    #[test]
    fn seeded_parallel_scan_matches_brute_force() {
        // Big enough for the parallel path; the seed partition holds the
        // query's neighbours, as the nearest lists would.
        let mut rng = SplitMix64::new(24);
        let dim = 8;
        let rows: Vec<Vec<f32>> = (0..PARALLEL_MIN_MEMBERS + 5000)
            .map(|_| random_unit(&mut rng, dim))
            .collect();
        let f = fixture(&rows, &[]);
        let dims = f.dims;
        let q = Query::new(&dims, &random_unit(&mut rng, dim)).unwrap();
        let mut by_score: Vec<u32> = (0..rows.len() as u32).collect();
        by_score.sort_by(|&a, &b| {
            let (sa, sb) = (
                f.vectors.exact(Isa::Portable, a as usize, &q),
                f.vectors.exact(Isa::Portable, b as usize, &q),
            );
            sb.total_cmp(&sa)
        });
        let (mut near, mut far) = (Partition::new(&dims), Partition::new(&dims));
        for (rank, &slot) in by_score.iter().enumerate() {
            // The fixture stores slot i at position i.
            let pos = slot as usize;
            let target = if rank % 50 == 0 { &mut near } else { &mut far };
            let (high, low) = f.part.lanes_of(pos);
            target.push(f.part.member(pos), &high, &low);
        }
        for k in [1, 10, 100] {
            let req = Request {
                isa: Isa::Portable,
                query: &q,
                k,
                min_similarity: -1.0,
                namespace: None,
            };
            let (got, stats) = top_k(&req, &spans([&near]), &spans([&far]), &f.vectors, |s| s);
            assert_eq!(got, brute_force(&f, Isa::Portable, &q, k, -1.0, None, &[]));
            assert_eq!(stats.scanned, rows.len());
        }
    }

    #[test]
    fn spans_cover_every_block_once() {
        let dims = Dims::new(8).unwrap();
        let mut part = Partition::new(&dims);
        let lane = vec![0u8; dims.lane_bytes];
        for slot in 0..(SPAN_BLOCKS * BLOCK * 2 + 5) as u32 {
            let member = Member {
                slot,
                namespace: 0,
                code: Default::default(),
            };
            part.push(member, &lane, &lane);
        }
        let empty = Partition::new(&dims);
        let s = spans([&part, &empty]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].blocks, 2 * SPAN_BLOCKS..2 * SPAN_BLOCKS + 1);
    }
}
