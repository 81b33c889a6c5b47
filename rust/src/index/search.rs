//! Exact top-k by cosine over some partitions, pruning with the error
//! bounds of [`super::quantize`]. Every code gives an interval `[lb, ub]`
//! sure to hold the exact score, and the k-th largest `lb` seen is a floor
//! under the k-th best exact score: a member whose `ub` is below the floor
//! (or below `min_similarity`) cannot be in the result.
//!
//! 1. Scan every member's 4-bit codes (the only pass over all the data:
//!    `dim / 2` bytes per vector). The kernel computes the bounds of 16
//!    members at once and skips blocks where none reaches the floor; the
//!    members that do are candidates. Every so often the k best candidates
//!    are refined as in stage 2, which lifts the floor close to the k-th
//!    best score once the scan has met a few good matches.
//! 2. In descending order of `ub`, estimate candidates from their int8
//!    codes (an interval ten times narrower), raising a new floor as it
//!    goes, and stop once the next `ub` is below it.
//! 3. Likewise compute exact f32 scores of the survivors, and stop once the
//!    next upper bound is below the k-th best exact score found.
//!
//! Every member skipped is provably outside the top k, so the result is the
//! exact top k of an exhaustive f32 scan, ties included (broken by a key the
//! caller supplies, ascending), only faster.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use rayon::prelude::*;

use super::kernels::{nibble_scan, Isa, BLOCK};
use super::partition::Partition;
use super::quantize::Query;
use super::vectors::Vectors;

/// Blocks scanned as one parallel task (16k vectors): small enough to
/// balance two cores, big enough that task overhead does not show.
const SPAN_BLOCKS: usize = 1024;

/// Below this many members, a scan stays on the calling thread: waking the
/// pool costs more than it saves.
const PARALLEL_MIN_MEMBERS: usize = 48 * 1024;

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

/// How much work the stages did (for tests and the benchmark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Members whose 4-bit codes were scanned.
    pub scanned: usize,
    /// Candidates estimated from int8 codes.
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

/// The k largest lower bounds seen: the k-th is a floor under the k-th best
/// exact score.
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

/// A member that may be in the top k, with bounds on its exact score.
/// Ordered by upper bound (then slot, for determinism), so a max-heap of
/// candidates yields the most promising first.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    ub: f32,
    lb: f32,
    slot: u32,
    /// Whether the bounds are already those of the int8 estimate.
    refined: bool,
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

/// Candidates in descending order of upper bound. A heap, not a sort:
/// the stages usually stop after a few, and heapifying is linear.
fn best_first(list: Vec<Candidate>) -> impl Iterator<Item = Candidate> {
    let mut heap = BinaryHeap::from(list);
    std::iter::from_fn(move || heap.pop())
}

/// Blocks scanned before candidates are first refined; after that, each
/// time the blocks scanned have doubled (so refining stays a small share).
const FIRST_REFINE_BLOCKS: usize = 64;

/// Stage 1's output for some spans.
#[derive(Debug, Clone)]
struct Candidates {
    floor: Floor,
    list: Vec<Candidate>,
    scanned: usize,
    blocks: usize,
    next_refine: usize,
    estimated: usize,
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

impl Candidates {
    fn new(k: usize) -> Self {
        Candidates {
            floor: Floor::new(k),
            list: Vec::new(),
            scanned: 0,
            blocks: 0,
            next_refine: FIRST_REFINE_BLOCKS,
            estimated: 0,
        }
    }

    fn cut(&self, req: &Request<'_>, shared: &SharedFloor) -> f32 {
        req.min_similarity.max(self.floor.value()).max(shared.get())
    }

    /// Scans a span, and refines if the blocks scanned have doubled.
    fn scan(
        mut self,
        req: &Request<'_>,
        vectors: &Vectors,
        shared: &SharedFloor,
        span: &Span<'_>,
    ) -> Self {
        self.scan_blocks(req, shared, span.part, span.blocks.clone());
        self.blocks += span.blocks.len();
        if self.blocks >= self.next_refine {
            self.refine(req, vectors, shared);
            self.next_refine = 2 * self.blocks;
        }
        self
    }

    fn scan_blocks(
        &mut self,
        req: &Request<'_>,
        shared: &SharedFloor,
        part: &Partition,
        blocks: Range<usize>,
    ) {
        self.scanned += part.len().min(blocks.end * BLOCK) - blocks.start * BLOCK;
        let Candidates { floor, list, .. } = self;
        let mut cut = req.min_similarity.max(floor.value()).max(shared.get());
        let codes = part.block_codes(blocks.clone());
        let (scales, errs) = part.lane_bounds(blocks.clone());
        let bounds = req.query.nibble_bounds(scales, errs);
        let words = &req.query.words;
        // The kernel computes the upper bounds of whole blocks and calls
        // back only for blocks where some lane reaches the cut.
        nibble_scan(
            req.isa,
            codes,
            part.groups(),
            words,
            bounds,
            cut,
            |b, ub| {
                let info = part.block_info(blocks.start + b);
                let lanes = info.slots.iter().zip(info.namespaces).enumerate();
                for (j, (&slot, &namespace)) in lanes {
                    if ub[j] < cut || req.namespace.is_some_and(|ns| ns != namespace) {
                        continue;
                    }
                    let lb = ub[j] - 2.0 * req.query.bound(info.errs[j]);
                    floor.offer(lb);
                    shared.raise(floor.value());
                    cut = req.min_similarity.max(floor.value()).max(shared.get());
                    let refined = false;
                    list.push(Candidate {
                        ub: ub[j],
                        lb,
                        slot,
                        refined,
                    });
                }
                cut
            },
        );
    }

    /// Raises the floor: estimates the k most promising candidates from
    /// their int8 codes (as stage 2 does), then drops those now below the
    /// floor. With 4-bit bounds alone the floor stays about 0.2 below the
    /// k-th best score, and the scan calls back for most blocks. Only k at
    /// a time: refining everything above the floor would estimate members
    /// in storage order, before the floor is high (measured: 20% of all).
    fn refine(&mut self, req: &Request<'_>, vectors: &Vectors, shared: &SharedFloor) {
        let k = self.floor.k;
        let mut refined = Floor::new(k);
        let mut pending = BinaryHeap::new();
        for (i, c) in self.list.iter().enumerate() {
            if c.refined {
                refined.offer(c.lb);
            } else {
                pending.push((Total(c.ub), Reverse(i)));
            }
        }
        for _ in 0..k {
            let Some((Total(ub), Reverse(i))) = pending.pop() else {
                break;
            };
            if ub < self.cut(req, shared).max(refined.value()) {
                break;
            }
            let c = &mut self.list[i];
            let (approx, bound) = vectors.estimate8(req.isa, c.slot as usize, req.query);
            c.ub = c.ub.min(approx + bound);
            c.lb = c.lb.max(approx - bound);
            c.refined = true;
            self.estimated += 1;
            refined.offer(c.lb);
        }
        // Each candidate's best lower bound, once: the k-th largest is the
        // new floor.
        let mut floor = Floor::new(self.floor.k);
        for c in &self.list {
            floor.offer(c.lb);
        }
        self.floor = floor;
        shared.raise(self.floor.value());
        let cut = self.cut(req, shared);
        self.list.retain(|c| c.ub >= cut);
    }

    fn merge(mut self, other: Candidates) -> Self {
        self.floor.merge(other.floor);
        self.list.extend(other.list);
        self.scanned += other.scanned;
        self.blocks += other.blocks;
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

/// The exact top `req.k` members of `spans` with a score of at least
/// `req.min_similarity`, best first, as (slot, score); equal scores in
/// ascending order of `key(slot)`.
///
/// `seed` spans are scanned first, on the calling thread: the ones most
/// likely to hold the result (the lists nearest the query), so that the
/// floor is high before the `rest` are scanned, in parallel if they are many.
pub fn top_k<K: Ord>(
    req: &Request<'_>,
    seed: &[Span<'_>],
    rest: &[Span<'_>],
    vectors: &Vectors,
    key: impl Fn(u32) -> K,
) -> (Vec<(u32, f32)>, Stats) {
    let k = req.k.max(1);

    // Stage 1: the 4-bit scan, seed spans first.
    let shared = SharedFloor::new();
    let scan = |c: Candidates, span| c.scan(req, vectors, &shared, span);
    let mut found = seed.iter().fold(Candidates::new(k), scan);
    if !seed.is_empty() {
        found.refine(req, vectors, &shared);
    }
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

    // Stage 2: int8 estimates, best upper bound first.
    let mut floor = Floor::new(k);
    let mut survivors = Vec::new();
    for c in best_first(candidates) {
        if c.ub < req.min_similarity.max(floor.value()) {
            break;
        }
        let (ub, lb) = if c.refined {
            (c.ub, c.lb)
        } else {
            stats.estimated += 1;
            let (approx, bound) = vectors.estimate8(req.isa, c.slot as usize, req.query);
            ((approx + bound).min(c.ub), (approx - bound).max(c.lb))
        };
        if ub < req.min_similarity {
            continue;
        }
        floor.offer(lb);
        survivors.push(Candidate {
            ub,
            lb,
            refined: true,
            ..c
        });
    }
    let cut = req.min_similarity.max(floor.value());
    survivors.retain(|c| c.ub >= cut);

    // Stage 3: exact scores, until no upper bound can beat the k-th best.
    let mut best: BinaryHeap<Ranked<K>> = BinaryHeap::with_capacity(k + 1);
    for c in best_first(survivors) {
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
        let mut vectors = Vectors::new(dims);
        let mut part = Partition::new(&dims);
        for i in 0..rows.len() {
            vectors.push(&batch, i);
            let lane = &batch.lanes[i * dims.lane_bytes..(i + 1) * dims.lane_bytes];
            let member = Member {
                slot: i as u32,
                namespace: namespaces.get(i).copied().unwrap_or(0),
                nibble: batch.nibble[i],
            };
            part.push(member, lane);
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
        // rule out the other clusters, the int8 bounds part of its own.
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
        assert!(stats.estimated <= 150, "{stats:?}");
        assert!(stats.exact < stats.estimated, "{stats:?}");
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
            target.push(f.part.member(pos), &f.part.lane(pos));
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
            part.push(
                Member {
                    slot,
                    namespace: 0,
                    nibble: crate::index::quantize::Quantized {
                        scale: 0.0,
                        err: 0.0,
                    },
                },
                &lane,
            );
        }
        let empty = Partition::new(&dims);
        let s = spans([&part, &empty]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[2].blocks, 2 * SPAN_BLOCKS..2 * SPAN_BLOCKS + 1);
    }
}
