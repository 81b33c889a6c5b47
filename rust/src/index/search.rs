//! Exact top-k by cosine over some partitions, in three stages that each
//! prune with the error bounds of [`super::quantize`]:
//!
//! 1. Scan every member's 4-bit codes (the only pass over all the data:
//!    `dim / 2` bytes per vector). Each gives an interval `[lb, ub]` sure to
//!    hold the exact score. The k-th largest `lb` seen is a floor under the
//!    k-th best exact score, so a member whose `ub` is below it cannot be in
//!    the top k; nor can one whose `ub` is below `min_similarity`. The rest
//!    are candidates.
//! 2. In descending order of `ub`, estimate candidates from their int8
//!    codes (a tenfold tighter interval), raising the floor as it goes, and
//!    stop once the next `ub` is below it.
//! 3. Likewise compute exact f32 scores of the survivors, and stop once the
//!    next upper bound is below the k-th best exact score found.
//!
//! Every member skipped is provably outside the top k, so the result is the
//! exact top k of an exhaustive f32 scan, ties included (broken by a key the
//! caller supplies, ascending), only faster.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Range;

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

#[derive(Debug, Clone, Copy)]
struct Candidate {
    ub: f32,
    lb: f32,
    slot: u32,
}

/// Stage 1's output for some spans.
#[derive(Debug, Clone)]
struct Candidates {
    floor: Floor,
    list: Vec<Candidate>,
    scanned: usize,
}

impl Candidates {
    fn new(k: usize) -> Self {
        Candidates {
            floor: Floor::new(k),
            list: Vec::new(),
            scanned: 0,
        }
    }

    fn cut(&self, min_similarity: f32) -> f32 {
        min_similarity.max(self.floor.value())
    }

    fn scan(mut self, req: &Request<'_>, span: &Span<'_>) -> Self {
        let Candidates {
            floor,
            list,
            scanned,
        } = &mut self;
        let mut cut = req.min_similarity.max(floor.value());
        let part = span.part;
        let codes = part.block_codes(span.blocks.clone());
        nibble_scan(
            req.isa,
            codes,
            part.groups(),
            &req.query.words,
            |b, dots| {
                let members = part.block_members(span.blocks.start + b);
                *scanned += members.len();
                for (m, &dot) in members.iter().zip(dots) {
                    let (approx, bound) =
                        req.query.nibble_estimate(dot, m.nibble.scale, m.nibble.err);
                    let ub = approx + bound;
                    if ub < cut || req.namespace.is_some_and(|ns| ns != m.namespace) {
                        continue;
                    }
                    let lb = approx - bound;
                    floor.offer(lb);
                    cut = req.min_similarity.max(floor.value());
                    list.push(Candidate {
                        ub,
                        lb,
                        slot: m.slot,
                    });
                }
            },
        );
        self
    }

    fn merge(mut self, other: Candidates) -> Self {
        self.floor.merge(other.floor);
        self.list.extend(other.list);
        self.scanned += other.scanned;
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

fn by_ub_descending(a: &Candidate, b: &Candidate) -> Ordering {
    b.ub.total_cmp(&a.ub).then(a.slot.cmp(&b.slot))
}

/// The exact top `req.k` members of `spans` with a score of at least
/// `req.min_similarity`, best first, as (slot, score); equal scores in
/// ascending order of `key(slot)`.
pub fn top_k<K: Ord>(
    req: &Request<'_>,
    spans: &[Span<'_>],
    vectors: &Vectors,
    key: impl Fn(u32) -> K,
) -> (Vec<(u32, f32)>, Stats) {
    let k = req.k.max(1);
    let members: usize = spans.iter().map(|s| s.blocks.len() * BLOCK).sum();

    // Stage 1: the 4-bit scan.
    let found = if members >= PARALLEL_MIN_MEMBERS && spans.len() > 1 {
        spans
            .par_iter()
            .fold(|| Candidates::new(k), |c, span| c.scan(req, span))
            .reduce(|| Candidates::new(k), Candidates::merge)
    } else {
        spans
            .iter()
            .fold(Candidates::new(k), |c, span| c.scan(req, span))
    };
    let mut stats = Stats {
        scanned: found.scanned,
        ..Stats::default()
    };
    let cut = found.cut(req.min_similarity);
    let mut candidates = found.list;
    candidates.retain(|c| c.ub >= cut);
    candidates.sort_unstable_by(by_ub_descending);

    // Stage 2: int8 estimates, best upper bound first.
    let mut floor = Floor::new(k);
    let mut survivors = Vec::new();
    for c in candidates {
        if c.ub < req.min_similarity.max(floor.value()) {
            break;
        }
        stats.estimated += 1;
        let (approx, bound) = vectors.estimate8(req.isa, c.slot as usize, req.query);
        let (ub, lb) = ((approx + bound).min(c.ub), (approx - bound).max(c.lb));
        if ub < req.min_similarity {
            continue;
        }
        floor.offer(lb);
        survivors.push(Candidate {
            ub,
            lb,
            slot: c.slot,
        });
    }
    let cut = req.min_similarity.max(floor.value());
    survivors.retain(|c| c.ub >= cut);
    survivors.sort_unstable_by(by_ub_descending);

    // Stage 3: exact scores, until no upper bound can beat the k-th best.
    let mut best: BinaryHeap<Ranked<K>> = BinaryHeap::with_capacity(k + 1);
    for c in survivors {
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
                            let (got, _) = top_k(&req, &spans([&f.part]), &f.vectors, |s| s);
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
            let (got, _) = top_k(&req, &spans([&f.part]), &f.vectors, |s| s);
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
        let (got, _) = top_k(&req, &spans([&f.part]), &f.vectors, Reverse);
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
        let (got, stats) = top_k(&req, &spans([&f.part]), &f.vectors, |s| s);
        assert_eq!(got, brute_force(&f, Isa::Portable, &q, 10, 0.0, None, &[]));
        assert_eq!(got[0].0, 123);
        assert_eq!(stats.scanned, 5000);
        assert!(stats.estimated <= 150, "{stats:?}");
        assert!(stats.exact < stats.estimated, "{stats:?}");
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
