//! Normalisation, and the quantised copy of every vector that lets a search
//! skip most exact dot products while staying exact.
//!
//! Every stored vector `x` is L2-normalised (so cosine similarity is a dot
//! product) and kept twice:
//!
//! - `x` itself in f32: the exact score `q·x` is computed from it;
//! - int8 codes `c = round(x / s)` (scale `s = max|x| / 127`), split into
//!   two 4-bit planes: `c = 16·h + l` with `h ∈ -8..=7`, `l ∈ 0..=15`.
//!
//! The high plane alone is a 4-bit code: `x ≈ s·(16·h + 7.5)`, error
//! `e4 = ‖x − s·(16·h + 7.5)‖`. Both planes give the int8 code: `x ≈ s·c`,
//! error `e8 = ‖x − s·c‖`, about ten times smaller. A search scans the high
//! plane of everything and the low plane only where the high one could not
//! rule a block out: half the bytes of int8 codes for most of the data, the
//! precision of int8 where it matters.
//!
//! The query `q` (also normalised) is quantised to int8: `q̂ = sq·q8`, error
//! `εq = ‖q − q̂‖`. For either code `x̃` of `x`, integer arithmetic gives
//! `q̂·x̃` exactly, and by Cauchy–Schwarz
//!
//! `|q·x − q̂·x̃| ≤ ‖q‖·‖x − x̃‖ + ‖q − q̂‖·‖x̃‖ ≤ e + εq·(1 + e)`
//!
//! (`‖q‖ = ‖x‖ = 1`). [`SLACK`] covers the f32 rounding of the scores
//! themselves. So each code gives an interval sure to hold the exact score.

use super::error::IndexError;
use super::kernels::{best_isa, Bounds, Isa};

/// Added to every error bound: covers rounding in the f32 exact score (at
/// most a few 1e-6 for unit vectors) and in computing the approximate
/// scores. Far below the quantisation errors, so it costs no pruning.
pub(crate) const SLACK: f32 = 1e-4;

/// The largest supported dimension: keeps every integer dot product within
/// i32 and stops a corrupt file from asking for absurd rows.
pub const MAX_DIM: usize = 1 << 16;

/// The high plane stores `u = h + 8 ∈ 0..=15`; the 4-bit code of `x` is
/// `s·(16·h + 7.5) = 16·s·(u − HIGH_CENTER)`.
const HIGH_CENTER: f32 = 8.0 - 7.5 / 16.0;

/// Why a vector cannot be stored or searched with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorProblem {
    Zero,
    NonFinite,
}

/// The sizes derived from the dimension, shared by every part of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dims {
    /// Components per vector.
    pub dim: usize,
    /// Groups of 8 dimensions in the 4-bit layout (the last one zero-padded).
    pub groups: usize,
    /// Bytes of one vector's codes in one plane: two codes per byte.
    pub lane_bytes: usize,
}

impl Dims {
    pub fn new(dim: i64) -> Result<Dims, IndexError> {
        let invalid = || IndexError::InvalidDim { dim, max: MAX_DIM };
        let dim = usize::try_from(dim).map_err(|_| invalid())?;
        if dim == 0 || dim > MAX_DIM {
            return Err(invalid());
        }
        let groups = dim.div_ceil(8);
        Ok(Dims {
            dim,
            groups,
            lane_bytes: groups * 4,
        })
    }
}

/// Scales `v` to unit length in place (the norm is summed in f64, so huge or
/// tiny but finite components are fine).
#[inline(always)]
pub fn normalize(v: &mut [f32]) -> Result<(), VectorProblem> {
    // Eight partial sums, so the loop vectorises. A NaN or infinite
    // component makes the sum non-finite; finite ones cannot (f32::MAX
    // squared is far from f64's limit).
    let mut acc = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f64::from(x) * f64::from(x);
    }
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f64::from(x) * f64::from(x);
        }
    }
    let sum: f64 = acc.iter().sum();
    if !sum.is_finite() {
        return Err(VectorProblem::NonFinite);
    }
    if sum == 0.0 {
        return Err(VectorProblem::Zero);
    }
    let norm = sum.sqrt();
    for x in v.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    Ok(())
}

#[inline(always)]
fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, &v| m.max(v.abs()))
}

/// A vector's int8 scale and the error norms of its 4-bit and int8 codes
/// (rounded up).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Code {
    pub scale: f32,
    pub err4: f32,
    pub err8: f32,
}

/// The error norm `sqrt(err_sq)` of a unit vector, rounded up past the f32
/// rounding in computing it: of the sum, a few 1e-6 relative for any
/// dimension up to [`MAX_DIM`]; of each difference, at most one ulp of a
/// component, so at most ~6e-8 for all of them together.
fn round_up(err_sq: f32) -> f32 {
    (err_sq.sqrt() * (1.0 + 1e-5) + 1e-7).next_up()
}

/// `Σ (x_i − reconstruct(x_i))²` with sixteen partial sums in f32, so the
/// loop vectorises.
#[inline(always)]
fn error_sq(x: &[f32], reconstruct: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 16];
    let chunks = x.chunks_exact(16);
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        let d = v - reconstruct(v);
        *a += d * d;
    }
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = v - reconstruct(v);
            *a += d * d;
        }
    }
    acc.iter().sum()
}

/// Adding 1.5·2^23 to a float below 2^22 in magnitude rounds it to the
/// nearest integer, which the low mantissa bits then hold.
const ROUNDER: f32 = 12_582_912.0;

/// `x` clamped to `lo..=hi` and rounded to the nearest integer. Written
/// with comparisons and the [`ROUNDER`] trick so that encoding loops
/// vectorise: `f32::round` is a library call on the baseline x86-64 target,
/// and `as` casts handle NaN one lane at a time. `x` is finite here. The
/// rounding rule does not matter: errors are measured from the codes.
#[inline(always)]
fn clamped_round(x: f32, lo: f32, hi: f32) -> i32 {
    let x = if x < lo { lo } else { x };
    let x = if x > hi { hi } else { x };
    (x + ROUNDER).to_bits() as i32 - ROUNDER.to_bits() as i32
}

/// The int8 code of `v`, within ±127 (so the AVX2 kernel's sign trick
/// cannot overflow).
#[inline(always)]
fn i8_code(v: f32, inverse: f32) -> i32 {
    clamped_round(v * inverse, -127.0, 127.0)
}

/// `x`'s int8 codes, `q8.len()` of them (zero past `x`'s end).
#[inline(always)]
fn encode_i8(x: &[f32], q8: &mut [i8]) -> (f32, f32) {
    q8.fill(0);
    let max = max_abs(x);
    if max == 0.0 {
        return (0.0, 0.0);
    }
    let scale = max / 127.0;
    let inverse = 1.0 / scale;
    for (o, &v) in q8.iter_mut().zip(x) {
        *o = i8_code(v, inverse) as i8;
    }
    let err = round_up(error_sq(x, |v| scale * i8_code(v, inverse) as f32));
    (scale, err)
}

/// Writes `x`'s two planes of codes to `high` and `low` (`lane_bytes` each)
/// in the layout the block kernels read: for each group of 8 dimensions, 4
/// bytes whose low nibbles hold dimensions 0..4 of the group and high
/// nibbles 4..8. Dimensions past the end get code 0 (the query's codes
/// there are 0 too).
#[inline(always)]
pub fn encode(x: &[f32], high: &mut [u8], low: &mut [u8]) -> Code {
    high.fill(0);
    low.fill(0);
    let max = max_abs(x);
    if max == 0.0 {
        return Code::default();
    }
    let scale = max / 127.0;
    let inverse = 1.0 / scale;
    // `>> 4` floors (arithmetic shift), so `c = 16·(c >> 4) + (c & 15)`.
    let err8 = error_sq(x, |v| scale * i8_code(v, inverse) as f32);
    let err4 = error_sq(x, |v| {
        scale * ((16 * (i8_code(v, inverse) >> 4)) as f32 + 7.5)
    });
    let lanes = high.chunks_exact_mut(4).zip(low.chunks_exact_mut(4));
    for ((hb, lb), group) in lanes.zip(x.chunks(8)) {
        let (mut hs, mut ls) = ([0u8; 8], [0u8; 8]);
        for (d, &v) in group.iter().enumerate() {
            let c = i8_code(v, inverse);
            hs[d] = ((c >> 4) + 8) as u8;
            ls[d] = (c & 15) as u8;
        }
        for t in 0..4 {
            hb[t] = hs[t] | (hs[t + 4] << 4);
            lb[t] = ls[t] | (ls[t + 4] << 4);
        }
    }
    Code {
        scale,
        err4: round_up(err4),
        err8: round_up(err8),
    }
}

/// The code of dimension `d` in a plane written by [`encode`].
#[cfg(test)]
pub fn plane_at(lane: &[u8], d: usize) -> u8 {
    let byte = lane[(d / 8) * 4 + (d % 8) % 4];
    if d % 8 < 4 {
        byte & 0x0F
    } else {
        byte >> 4
    }
}

/// A normalised query and its int8 codes, in the forms the kernels read.
#[derive(Debug, Clone)]
pub struct Query {
    /// The unit query in f32, for exact scores.
    pub unit: Vec<f32>,
    /// int8 codes (zero-padded to whole groups of 8) as little-endian
    /// 32-bit words, 4 dimensions each: what the block kernels broadcast to
    /// all 16 lanes.
    pub words: Vec<i32>,
    scale: f32,
    err: f32,
    sum: i32,
}

impl Query {
    /// Normalises `raw` and quantises it.
    pub fn new(dims: &Dims, raw: &[f32]) -> Result<Query, IndexError> {
        if raw.len() != dims.dim {
            return Err(IndexError::DimensionMismatch {
                expected: dims.dim,
                got: raw.len(),
            });
        }
        let mut unit = raw.to_vec();
        normalize(&mut unit).map_err(|p| {
            IndexError::InvalidQuery(match p {
                VectorProblem::Zero => "is all zeros and has no direction",
                VectorProblem::NonFinite => "has a NaN or infinite component",
            })
        })?;
        Ok(Query::from_unit(dims, unit))
    }

    /// Quantises an already normalised vector (a stored row or a centroid).
    pub fn from_unit(dims: &Dims, unit: Vec<f32>) -> Query {
        let mut q8 = vec![0i8; dims.groups * 8];
        let (scale, err) = encode_i8_fast(best_isa(), &unit, &mut q8);
        let words = q8
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))
            .collect();
        let sum: i32 = q8.iter().map(|&c| i32::from(c)).sum();
        Query {
            unit,
            words,
            scale,
            err,
            sum,
        }
    }

    /// The int8 codes.
    #[cfg(test)]
    pub fn q8(&self) -> Vec<i8> {
        self.words
            .iter()
            .flat_map(|w| w.to_le_bytes().map(|b| b as i8))
            .collect()
    }

    /// The error bound of a stored code with error `err`:
    /// `err + εq·(1 + err) + SLACK`, as the kernels compute it.
    #[cfg(test)]
    pub fn bound(&self, err: f32) -> f32 {
        err * (1.0 + self.err) + (self.err + SLACK)
    }

    /// What the block kernels need to turn plane dot products into bounds,
    /// given the members' scales and errors (see [`Bounds`]).
    pub fn bounds<'a>(&self, scales: &'a [f32], errs4: &'a [f32], errs8: &'a [f32]) -> Bounds<'a> {
        Bounds {
            scales,
            errs4,
            errs8,
            scale: self.scale,
            bias4: HIGH_CENTER * self.sum as f32,
            bias8: 128 * self.sum,
            err_scale: 1.0 + self.err,
            err_offset: self.err + SLACK,
        }
    }

    /// Score estimate and bound from the high plane's `Σ u·q8` (the scalar
    /// form of what the kernels compute, for tests).
    #[cfg(test)]
    pub fn estimate4(&self, dot_high: i32, code: &Code) -> (f32, f32) {
        let approx =
            16.0 * (self.scale * code.scale) * (dot_high as f32 - HIGH_CENTER * self.sum as f32);
        (approx, self.bound(code.err4))
    }

    /// Score estimate and bound from both planes' dot products.
    #[cfg(test)]
    pub fn estimate8(&self, dot_high: i32, dot_low: i32, code: &Code) -> (f32, f32) {
        let dot = 16 * dot_high + dot_low - 128 * self.sum;
        (
            (self.scale * code.scale) * dot as f32,
            self.bound(code.err8),
        )
    }
}

/// [`encode_i8`] compiled for the widest vectors the CPU has.
fn encode_i8_fast(isa: Isa, x: &[f32], out: &mut [i8]) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn avx2(x: &[f32], out: &mut [i8]) -> (f32, f32) {
        encode_i8(x, out)
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` came from `available_isas`: the CPU has AVX2.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { avx2(x, out) },
        _ => encode_i8(x, out),
    }
}

/// Many vectors encoded at once (in parallel for big batches), laid out as
/// the index stores them.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Unit vectors, `dim` each.
    pub unit: Vec<f32>,
    /// High and low planes, `lane_bytes` each per vector.
    pub high: Vec<u8>,
    pub low: Vec<u8>,
    pub codes: Vec<Code>,
}

/// A run of rows to encode, and where their codes go.
struct Rows<'a> {
    unit: &'a [f32],
    high: &'a mut [u8],
    low: &'a mut [u8],
    codes: &'a mut [Code],
}

impl Rows<'_> {
    fn encode(self, dims: &Dims, isa: Isa) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` came from `available_isas`: the CPU has AVX2.
            Isa::Avx2 | Isa::Avx512Vnni => unsafe { self.encode_avx2(dims) },
            _ => self.encode_portable(dims),
        }
    }

    /// The same code compiled for AVX2: the loops vectorise 8 wide. The
    /// codes are the same: float math is never reordered.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn encode_avx2(self, dims: &Dims) {
        self.encode_portable(dims);
    }

    #[inline(always)]
    fn encode_portable(self, dims: &Dims) {
        let n = dims.lane_bytes;
        for (i, x) in self.unit.chunks_exact(dims.dim).enumerate() {
            let (high, low) = (
                &mut self.high[i * n..(i + 1) * n],
                &mut self.low[i * n..(i + 1) * n],
            );
            self.codes[i] = encode(x, high, low);
        }
    }
}

/// Vectors encoded per parallel task: big enough to outweigh the task cost.
const ENCODE_CHUNK: usize = 1024;

impl Batch {
    /// Encodes `unit` (rows of `dim` unit vectors).
    pub fn encode(dims: &Dims, unit: Vec<f32>) -> Batch {
        use rayon::prelude::*;
        let n = unit.len() / dims.dim;
        let mut high = vec![0u8; n * dims.lane_bytes];
        let mut low = vec![0u8; n * dims.lane_bytes];
        let mut codes = vec![Code::default(); n];
        let lanes = ENCODE_CHUNK * dims.lane_bytes;
        unit.par_chunks(ENCODE_CHUNK * dims.dim)
            .zip(high.par_chunks_mut(lanes))
            .zip(low.par_chunks_mut(lanes))
            .zip(codes.par_chunks_mut(ENCODE_CHUNK))
            .for_each(|(((unit, high), low), codes)| {
                let rows = Rows {
                    unit,
                    high,
                    low,
                    codes,
                };
                rows.encode(dims, best_isa());
            });
        Batch {
            unit,
            high,
            low,
            codes,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Row `i`'s planes.
    pub fn lanes(&self, i: usize, lane_bytes: usize) -> (&[u8], &[u8]) {
        let range = i * lane_bytes..(i + 1) * lane_bytes;
        (&self.high[range.clone()], &self.low[range])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::index::rng::SplitMix64;

    pub(crate) fn random_unit(rng: &mut SplitMix64, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        normalize(&mut v).unwrap();
        v
    }

    fn exact_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    /// `x`'s int8 codes as the two planes hold them.
    fn codes_of(high: &[u8], low: &[u8], dim: usize) -> Vec<i32> {
        (0..dim)
            .map(|d| 16 * (i32::from(plane_at(high, d)) - 8) + i32::from(plane_at(low, d)))
            .collect()
    }

    #[test]
    fn normalize_gives_unit_length_and_rejects_zero_and_non_finite() {
        let mut v = vec![3.0f32, 4.0];
        normalize(&mut v).unwrap();
        assert_eq!(v, vec![0.6, 0.8]);
        let mut huge = vec![f32::MAX, f32::MAX];
        normalize(&mut huge).unwrap();
        assert!((huge[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        let mut tiny = vec![1e-40f32, 0.0];
        normalize(&mut tiny).unwrap();
        assert_eq!(tiny, vec![1.0, 0.0]);
        assert_eq!(normalize(&mut [0.0, 0.0]), Err(VectorProblem::Zero));
        assert_eq!(
            normalize(&mut [1.0, f32::NAN]),
            Err(VectorProblem::NonFinite)
        );
        assert_eq!(
            normalize(&mut [f32::INFINITY, 1.0]),
            Err(VectorProblem::NonFinite)
        );
    }

    #[test]
    fn dims_pad_to_kernel_widths_and_reject_bad_sizes() {
        let d = Dims::new(384).unwrap();
        assert_eq!((d.groups, d.lane_bytes), (48, 192));
        let d = Dims::new(5).unwrap();
        assert_eq!((d.groups, d.lane_bytes), (1, 4));
        assert!(Dims::new(0).is_err());
        assert!(Dims::new(-3).is_err());
        assert!(Dims::new(MAX_DIM as i64 + 1).is_err());
    }

    #[test]
    fn planes_hold_the_int8_codes_and_errors_are_the_true_ones() {
        let mut rng = SplitMix64::new(7);
        for dim in [1, 3, 8, 13, 384] {
            let dims = Dims::new(dim as i64).unwrap();
            for _ in 0..20 {
                let x = random_unit(&mut rng, dim);
                let (mut high, mut low) = (vec![0u8; dims.lane_bytes], vec![0u8; dims.lane_bytes]);
                let code = encode(&x, &mut high, &mut low);
                let c = codes_of(&high, &low, dim);
                assert!(c.iter().all(|c| (-127..=127).contains(c)));
                let s = f64::from(code.scale);
                let e8: f64 = x
                    .iter()
                    .zip(&c)
                    .map(|(&v, &c)| (f64::from(v) - s * f64::from(c)).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let e4: f64 = x
                    .iter()
                    .zip(&c)
                    .map(|(&v, &c)| (f64::from(v) - s * (16.0 * f64::from(c >> 4) + 7.5)).powi(2))
                    .sum::<f64>()
                    .sqrt();
                for (recorded, truth) in [(code.err8, e8), (code.err4, e4)] {
                    let recorded = f64::from(recorded);
                    assert!(recorded >= truth && recorded <= truth * (1.0 + 2e-5) + 1e-6);
                }
                assert!(e8 < 0.02 && e4 < 0.2, "{e8} {e4}");
                // Padding dimensions hold code 0 in both planes.
                for d in dim..dims.groups * 8 {
                    assert_eq!((plane_at(&high, d), plane_at(&low, d)), (0, 0));
                }
            }
        }
    }

    #[test]
    fn estimates_bound_the_exact_score() {
        let mut rng = SplitMix64::new(11);
        let dims = Dims::new(384).unwrap();
        for _ in 0..500 {
            let q = Query::new(&dims, &random_unit(&mut rng, 384)).unwrap();
            // Mix near-duplicates (high scores) and random vectors.
            let mut x = q.unit.clone();
            let noise = random_unit(&mut rng, 384);
            let mix = rng.next_f32();
            for (a, n) in x.iter_mut().zip(&noise) {
                *a = *a * mix + n * (1.0 - mix);
            }
            normalize(&mut x).unwrap();
            let exact = exact_dot(&q.unit, &x);

            let (mut high, mut low) = (vec![0u8; dims.lane_bytes], vec![0u8; dims.lane_bytes]);
            let code = encode(&x, &mut high, &mut low);
            let q8 = q.q8();
            let plane_dot = |plane: &[u8]| -> i32 {
                (0..384)
                    .map(|d| i32::from(plane_at(plane, d)) * i32::from(q8[d]))
                    .sum()
            };
            let (dh, dl) = (plane_dot(&high), plane_dot(&low));
            let (a4, b4) = q.estimate4(dh, &code);
            assert!((exact - f64::from(a4)).abs() <= f64::from(b4) - 1e-5);
            let (a8, b8) = q.estimate8(dh, dl, &code);
            assert!((exact - f64::from(a8)).abs() <= f64::from(b8) - 1e-5);
            assert!(b8 < b4 / 4.0);
        }
    }

    #[test]
    fn query_rejects_bad_vectors() {
        let dims = Dims::new(3).unwrap();
        assert!(matches!(
            Query::new(&dims, &[1.0, 2.0]),
            Err(IndexError::DimensionMismatch {
                expected: 3,
                got: 2
            })
        ));
        assert!(matches!(
            Query::new(&dims, &[0.0; 3]),
            Err(IndexError::InvalidQuery(_))
        ));
        assert!(matches!(
            Query::new(&dims, &[0.0, f32::NAN, 1.0]),
            Err(IndexError::InvalidQuery(_))
        ));
    }

    #[test]
    fn batch_encoding_matches_one_at_a_time() {
        let mut rng = SplitMix64::new(12);
        let dims = Dims::new(40).unwrap();
        let rows: Vec<f32> = (0..2500).flat_map(|_| random_unit(&mut rng, 40)).collect();
        let batch = Batch::encode(&dims, rows.clone());
        assert_eq!(batch.len(), 2500);
        for (i, x) in rows.chunks_exact(40).enumerate().step_by(97) {
            let (mut high, mut low) = (vec![0u8; dims.lane_bytes], vec![0u8; dims.lane_bytes]);
            let code = encode(x, &mut high, &mut low);
            assert_eq!(batch.codes[i], code);
            assert_eq!(batch.lanes(i, dims.lane_bytes), (&high[..], &low[..]));
        }
    }
}
