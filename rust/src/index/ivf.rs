//! The coarse quantiser of approximate mode (an inverted file, IVF).
//!
//! Spherical k-means, trained on a sample, splits the unit sphere into
//! `nlist` cells around unit centroids; every stored vector goes to the list
//! of its nearest centroid, and a search scans only the lists of the
//! `nprobe` centroids nearest the query.
//!
//! Finding the nearest centroids need not be exact (a near-tie between two
//! lists is harmless either way), so it is done as cheaply as possible: an
//! int8 scan of all centroids, then exact scores for a short list of the
//! best estimates. This is most of the cost of building the lists (every
//! vector is assigned once, every training point once per round).

use rayon::prelude::*;

use super::kernels::{scan, Isa, Planes};
use super::partition::{Member, Partition};
use super::quantize::{normalize, Batch, Dims, Query};
use super::rng::SplitMix64;
use super::vectors::Vectors;

/// Training points per centroid: enough for stable centroids, few enough
/// that training stays a small part of building.
const SAMPLE_PER_LIST: usize = 48;

/// k-means rounds. IVF needs a reasonable partition, not a converged one.
const ITERATIONS: usize = 8;

/// Centroids scored exactly beyond twice the number wanted: enough that
/// int8 estimation errors (about 0.002) rarely change the result.
const SHORTLIST_MARGIN: usize = 8;

/// The most lists: each search scans every centroid, so more lists cost
/// more per query.
pub const MAX_LISTS: usize = 4096;

/// Lists for `n` vectors: about √n, so a list holds about √n vectors and
/// scanning centroids and lists are balanced.
pub fn choose_nlist(n: usize) -> usize {
    ((n as f64).sqrt().round() as usize).clamp(1, MAX_LISTS)
}

/// Lists probed per search by default: 1/16 of them, at least 16.
/// Measured (`bench/index_search.py`, 3000 topics): recall@1 0.99 at 200k
/// entries with 22 of 447 lists, 1.0 at 1M with 50 of 1000; each list
/// probed costs about 10 µs.
pub fn default_nprobe(nlist: usize) -> usize {
    (nlist / 16).max(16).min(nlist)
}

/// The centroids, searchable exactly.
#[derive(Debug, Clone)]
pub struct Coarse {
    dims: Dims,
    vectors: Vectors,
    part: Partition,
}

impl Coarse {
    /// A coarse quantiser over `centroids` (rows of unit vectors).
    pub fn from_centroids(dims: Dims, centroids: Vec<f32>) -> Coarse {
        let batch = Batch::encode(&dims, centroids);
        let mut vectors = Vectors::new(dims.dim);
        let mut part = Partition::new(&dims);
        for (i, row) in batch.unit.chunks_exact(dims.dim).enumerate() {
            vectors.push(row);
            let member = Member {
                slot: i as u32,
                namespace: 0,
                code: batch.codes[i],
            };
            let (high, low) = batch.lanes(i, dims.lane_bytes);
            part.push(member, high, low);
        }
        Coarse {
            dims,
            vectors,
            part,
        }
    }

    /// Number of lists.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// The centroids, row after row.
    pub fn centroids(&self) -> &[f32] {
        self.vectors.all_unit()
    }

    /// The `n` lists whose centroids are nearest `query`, nearest first:
    /// the `2n + 8` best by int8 estimate, ranked by exact score (ties by
    /// list number).
    pub fn nearest(&self, isa: Isa, query: &Query, n: usize) -> Vec<u32> {
        self.ranked(isa, query, n, true)
    }

    /// The `n` lists whose centroids have the best int8 estimates, best
    /// first: cheaper than [`Self::nearest`], for when the order is only a
    /// hint (an exact search scans every list anyway).
    pub fn likely(&self, isa: Isa, query: &Query, n: usize) -> Vec<u32> {
        self.ranked(isa, query, n, false)
    }

    fn ranked(&self, isa: Isa, query: &Query, n: usize, rescore: bool) -> Vec<u32> {
        let by_score = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        let shortlist = if rescore { 2 * n + SHORTLIST_MARGIN } else { n };
        // The best `shortlist` estimates, kept sorted; most centroids fail
        // the first comparison with the worst of them.
        let mut estimates: Vec<(f32, u32)> = Vec::with_capacity(shortlist + 1);
        let blocks = 0..self.part.blocks();
        let (high, low) = self.part.planes(blocks.clone());
        let lanes = self.part.lanes(blocks);
        let bounds = query.bounds(lanes.scales, lanes.errs4, lanes.errs8);
        let all = f32::NEG_INFINITY;
        let groups = self.part.groups();
        scan(
            isa,
            Planes { high, low, groups },
            &query.words,
            bounds,
            all,
            |b, ub, lb| {
                let (lists, _) = self.part.block_members(b);
                for (j, &list) in lists.iter().enumerate() {
                    // The middle of the int8 interval: the int8 estimate.
                    let approx = 0.5 * (ub[j] + lb[j]);
                    if estimates.len() == shortlist && estimates[shortlist - 1].0 >= approx {
                        continue;
                    }
                    let at = estimates.partition_point(|e| by_score(e, &(approx, list)).is_lt());
                    estimates.insert(at, (approx, list));
                    estimates.truncate(shortlist);
                }
                all
            },
        );
        if rescore {
            for e in &mut estimates {
                e.0 = self.vectors.exact(isa, e.1 as usize, query);
            }
            estimates.sort_unstable_by(by_score);
        }
        estimates.iter().take(n).map(|&(_, list)| list).collect()
    }

    /// The nearest list of each row of unit vectors (in parallel).
    pub fn assign(&self, isa: Isa, rows: &[f32]) -> Vec<u32> {
        rows.par_chunks(self.dims.dim)
            .map(|row| {
                let query = Query::from_unit(&self.dims, row.to_vec());
                self.nearest(isa, &query, 1).first().copied().unwrap_or(0)
            })
            .collect()
    }

    /// Spherical k-means with `nlist` centroids on a sample of `rows` (unit
    /// vectors). Deterministic for a given `seed`.
    pub fn train(isa: Isa, dims: Dims, rows: &[f32], nlist: usize, seed: u64) -> Coarse {
        let dim = dims.dim;
        let n = rows.len() / dim;
        let nlist = nlist.clamp(1, n.max(1));
        let mut rng = SplitMix64::new(seed);

        // A sample of distinct rows (a partial Fisher–Yates shuffle); its
        // first `nlist` rows are the initial centroids.
        let m = n.min(nlist * SAMPLE_PER_LIST);
        let mut order: Vec<u32> = (0..n as u32).collect();
        for i in 0..m {
            let j = i + rng.below(n - i);
            order.swap(i, j);
        }
        let mut sample = Vec::with_capacity(m * dim);
        for &i in &order[..m] {
            let i = i as usize;
            sample.extend_from_slice(&rows[i * dim..(i + 1) * dim]);
        }
        drop(order);
        let mut centroids = sample[..nlist * dim].to_vec();

        for _ in 0..ITERATIONS {
            let coarse = Coarse::from_centroids(dims, centroids.clone());
            let lists = coarse.assign(isa, &sample);
            let mut sums = vec![0.0f64; nlist * dim];
            let mut counts = vec![0usize; nlist];
            for (row, &list) in sample.chunks_exact(dim).zip(&lists) {
                let list = list as usize;
                counts[list] += 1;
                for (s, &x) in sums[list * dim..(list + 1) * dim].iter_mut().zip(row) {
                    *s += f64::from(x);
                }
            }
            for (list, centroid) in centroids.chunks_exact_mut(dim).enumerate() {
                let sum = &sums[list * dim..(list + 1) * dim];
                for (c, &s) in centroid.iter_mut().zip(sum) {
                    *c = s as f32;
                }
                // An empty cell (or members cancelling out) restarts from a
                // random sample point.
                if counts[list] == 0 || normalize(centroid).is_err() {
                    let i = rng.below(m);
                    centroid.copy_from_slice(&sample[i * dim..(i + 1) * dim]);
                }
            }
        }
        Coarse::from_centroids(dims, centroids)
    }

    pub fn heap_bytes(&self) -> usize {
        self.vectors.heap_bytes() + self.part.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kernels::best_isa;
    use crate::index::quantize::tests::random_unit;

    #[test]
    fn nlist_and_nprobe_follow_the_size() {
        assert_eq!(choose_nlist(1), 1);
        assert_eq!(choose_nlist(1_000_000), 1000);
        assert_eq!(choose_nlist(usize::MAX / 2), MAX_LISTS);
        assert_eq!(default_nprobe(1000), 62);
        assert_eq!(default_nprobe(20), 16);
        assert_eq!(default_nprobe(3), 3);
    }

    #[test]
    fn training_finds_well_separated_clusters() {
        // 8 tight clusters: each trained centroid should sit on one of them,
        // and every point go to the centroid of its own cluster.
        let dims = Dims::new(32).unwrap();
        let mut rng = SplitMix64::new(5);
        let centres: Vec<Vec<f32>> = (0..8).map(|_| random_unit(&mut rng, 32)).collect();
        let mut rows = Vec::new();
        let mut truth = Vec::new();
        for i in 0..800 {
            let noise = random_unit(&mut rng, 32);
            let mut v: Vec<f32> = centres[i % 8]
                .iter()
                .zip(&noise)
                .map(|(c, n)| c + 0.1 * n)
                .collect();
            normalize(&mut v).unwrap();
            rows.extend_from_slice(&v);
            truth.push(i % 8);
        }
        let coarse = Coarse::train(best_isa(), dims, &rows, 8, 42);
        assert_eq!(coarse.len(), 8);
        let lists = coarse.assign(best_isa(), &rows);
        let mut list_of_cluster = [None; 8];
        for (&list, &cluster) in lists.iter().zip(&truth) {
            let seen = list_of_cluster[cluster].get_or_insert(list);
            assert_eq!(*seen, list, "cluster {cluster} split over lists");
        }
        // Deterministic for a seed.
        let again = Coarse::train(best_isa(), dims, &rows, 8, 42);
        assert_eq!(again.centroids(), coarse.centroids());
    }

    #[test]
    fn nearest_lists_are_ranked_by_similarity() {
        let dims = Dims::new(16).unwrap();
        let mut rng = SplitMix64::new(6);
        for lists in [1, 10, 300] {
            let centroids: Vec<f32> = (0..lists).flat_map(|_| random_unit(&mut rng, 16)).collect();
            let coarse = Coarse::from_centroids(dims, centroids.clone());
            for _ in 0..20 {
                let q = Query::new(&dims, &random_unit(&mut rng, 16)).unwrap();
                let got = coarse.nearest(best_isa(), &q, 4);
                let mut want: Vec<(u32, f32)> = (0..lists)
                    .map(|i| (i as u32, coarse.vectors.exact(best_isa(), i, &q)))
                    .collect();
                want.sort_by(|a, b| b.1.total_cmp(&a.1));
                let want: Vec<u32> = want.iter().take(4).map(|&(i, _)| i).collect();
                assert_eq!(got, want);
            }
        }
    }
}
