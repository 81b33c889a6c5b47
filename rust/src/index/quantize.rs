//! Normalisation, and the two quantised copies of every vector that let a
//! search skip most exact dot products while staying exact.
//!
//! Every stored vector `x` is L2-normalised (so cosine similarity is a dot
//! product) and kept three ways:
//!
//! - `x` itself in f32: the exact score `q·x` is computed from it;
//! - int8 codes `c` with a scale `s8`: `x ≈ s8·c`, error `e8 = ‖x − s8·c‖`;
//! - 4-bit codes `u ∈ 0..=15` with a scale `s4`: `x ≈ s4·(u − 7.5)`, error
//!   `e4 = ‖x − s4·(u − 7.5)‖`.
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

/// Half the 4-bit code range: code `u` stands for `u − 7.5` steps.
const NIBBLE_CENTER: f32 = 7.5;

/// 4-bit scales tried per vector, as a fraction of the largest component. A
/// scale below the maximum clips a few components but rounds the many
/// small ones finer; the one with the least error is kept. For Gaussian-like
/// components 0.7–0.85 win (error about 0.105 against 0.122 for 1.0); the
/// ends cover vectors dominated by a few large components, or with none.
const NIBBLE_CLIP_RATIOS: [f32; 4] = [1.0, 0.85, 0.7, 0.55];

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
    /// int8 codes per row: `dim` rounded up to 64 (one AVX-512 register),
    /// zero-padded, so the kernels need no tail loop.
    pub stride8: usize,
    /// Groups of 8 dimensions in the 4-bit layout (the last one zero-padded).
    pub groups: usize,
    /// Bytes of one vector's 4-bit codes: two codes per byte.
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
            stride8: dim.div_ceil(64) * 64,
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

fn max_abs(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, &v| m.max(v.abs()))
}

/// A quantisation's scale and the norm of its error, rounded up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantized {
    pub scale: f32,
    pub err: f32,
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

/// Writes `x`'s int8 codes to `out` (length `stride8`, padding zeroed).
#[inline(always)]
pub fn encode_i8(x: &[f32], out: &mut [i8]) -> Quantized {
    out.fill(0);
    let max = max_abs(x);
    if max == 0.0 {
        return Quantized {
            scale: 0.0,
            err: 0.0,
        };
    }
    let scale = max / 127.0;
    let inverse = 1.0 / scale;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = i8_code(v, inverse) as i8;
    }
    Quantized {
        scale,
        err: round_up(error_sq(x, |v| scale * i8_code(v, inverse) as f32)),
    }
}

/// The code `u ∈ 0..=15` whose level `u − 7.5` is nearest `v · inverse`.
#[inline(always)]
fn nibble_code(v: f32, inverse: f32) -> i32 {
    clamped_round(v * inverse + NIBBLE_CENTER, 0.0, 15.0)
}

/// Writes `x`'s 4-bit codes to `lane` (length `lane_bytes`) in the layout
/// the block kernels read: for each group of 8 dimensions, 4 bytes whose
/// low nibbles hold dimensions 0..4 of the group and high nibbles 4..8.
#[inline(always)]
pub fn encode_nibbles(x: &[f32], lane: &mut [u8]) -> Quantized {
    lane.fill(0);
    let max = max_abs(x);
    if max == 0.0 {
        return Quantized {
            scale: 0.0,
            err: 0.0,
        };
    }
    // A plain loop, not an iterator chain: its closures would not be
    // inlined into the AVX2 build of the caller (see `Rows::encode`).
    let (mut scale, mut err_sq) = (0.0f32, f32::INFINITY);
    for ratio in NIBBLE_CLIP_RATIOS {
        let s = max * ratio / NIBBLE_CENTER;
        let inverse = 1.0 / s;
        let e = error_sq(x, |v| s * (nibble_code(v, inverse) as f32 - NIBBLE_CENTER));
        if e < err_sq {
            (scale, err_sq) = (s, e);
        }
    }
    let inverse = 1.0 / scale;
    for (bytes, group) in lane.chunks_exact_mut(4).zip(x.chunks(8)) {
        let mut codes = [0u8; 8];
        for (c, &v) in codes.iter_mut().zip(group) {
            *c = nibble_code(v, inverse) as u8;
        }
        for (t, byte) in bytes.iter_mut().enumerate() {
            *byte = codes[t] | (codes[t + 4] << 4);
        }
    }
    Quantized {
        scale,
        err: round_up(err_sq),
    }
}

/// The 4-bit code of dimension `d` in a lane written by [`encode_nibbles`].
#[cfg(test)]
pub fn nibble_at(lane: &[u8], d: usize) -> u8 {
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
    /// int8 codes, `stride8` long (zero-padded).
    pub q8: Vec<i8>,
    /// The same codes as little-endian 32-bit words, 4 dimensions each:
    /// what the 4-bit kernel broadcasts to all 16 lanes.
    pub words: Vec<i32>,
    scale: f32,
    err: f32,
    sum: i32,
    /// `7.5 · Σ q8`: turns the 4-bit codes' `Σ u·q8` into `Σ (u − 7.5)·q8`.
    nibble_bias: f32,
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
        let mut q8 = vec![0i8; dims.stride8];
        let Quantized { scale, err } = encode_i8_fast(best_isa(), &unit, &mut q8);
        let words = q8[..dims.groups * 8]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))
            .collect();
        let sum: i32 = q8.iter().map(|&c| i32::from(c)).sum();
        Query {
            unit,
            q8,
            words,
            scale,
            err,
            sum,
            nibble_bias: NIBBLE_CENTER * sum as f32,
        }
    }

    pub fn sum(&self) -> i32 {
        self.sum
    }

    /// The error bound of a stored code with error `err`:
    /// `err + εq·(1 + err) + SLACK`, in the order the kernels compute it.
    #[inline(always)]
    pub fn bound(&self, err: f32) -> f32 {
        err * (1.0 + self.err) + (self.err + SLACK)
    }

    /// Score estimate and error bound from a 4-bit dot product `Σ u·q8`
    /// (the scalar form of [`Self::nibble_bounds`]).
    #[cfg(test)]
    pub fn nibble_estimate(&self, dot: i32, scale: f32, err: f32) -> (f32, f32) {
        let approx = self.scale * scale * (dot as f32 - self.nibble_bias);
        (approx, self.bound(err))
    }

    /// The same, as the 4-bit kernel computes it for whole blocks, given the
    /// members' 4-bit scales and errors.
    pub fn nibble_bounds<'a>(&self, scales: &'a [f32], errs: &'a [f32]) -> Bounds<'a> {
        Bounds {
            scales,
            errs,
            scale: self.scale,
            bias: self.nibble_bias,
            err_scale: 1.0 + self.err,
            err_offset: self.err + SLACK,
        }
    }

    /// Score estimate and error bound from an int8 dot product `Σ c·q8`.
    #[inline(always)]
    pub fn i8_estimate(&self, dot: i32, scale: f32, err: f32) -> (f32, f32) {
        let approx = self.scale * scale * dot as f32;
        (approx, self.bound(err))
    }
}

/// Many vectors encoded at once (in parallel for big batches), laid out as
/// the index stores them.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Unit vectors, `dim` each.
    pub unit: Vec<f32>,
    /// int8 codes, `stride8` each.
    pub codes8: Vec<i8>,
    pub int8: Vec<Quantized>,
    /// 4-bit codes, `lane_bytes` each.
    pub lanes: Vec<u8>,
    pub nibble: Vec<Quantized>,
}

/// [`encode_i8`] compiled for the widest vectors the CPU has.
fn encode_i8_fast(isa: Isa, x: &[f32], out: &mut [i8]) -> Quantized {
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn avx2(x: &[f32], out: &mut [i8]) -> Quantized {
        encode_i8(x, out)
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` came from `available_isas`: the CPU has AVX2.
        Isa::Avx2 | Isa::Avx512Vnni => unsafe { avx2(x, out) },
        _ => encode_i8(x, out),
    }
}

/// A run of rows to encode, and where their codes go.
struct Rows<'a> {
    unit: &'a [f32],
    codes8: &'a mut [i8],
    lanes: &'a mut [u8],
    int8: &'a mut [Quantized],
    nibble: &'a mut [Quantized],
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
        for (i, x) in self.unit.chunks_exact(dims.dim).enumerate() {
            let codes = &mut self.codes8[i * dims.stride8..(i + 1) * dims.stride8];
            self.int8[i] = encode_i8(x, codes);
            let lane = &mut self.lanes[i * dims.lane_bytes..(i + 1) * dims.lane_bytes];
            self.nibble[i] = encode_nibbles(x, lane);
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
        let mut codes8 = vec![0i8; n * dims.stride8];
        let mut lanes = vec![0u8; n * dims.lane_bytes];
        let mut int8 = vec![
            Quantized {
                scale: 0.0,
                err: 0.0
            };
            n
        ];
        let mut nibble = int8.clone();
        let rows = ENCODE_CHUNK * dims.dim;
        unit.par_chunks(rows)
            .zip(codes8.par_chunks_mut(ENCODE_CHUNK * dims.stride8))
            .zip(lanes.par_chunks_mut(ENCODE_CHUNK * dims.lane_bytes))
            .zip(int8.par_chunks_mut(ENCODE_CHUNK))
            .zip(nibble.par_chunks_mut(ENCODE_CHUNK))
            .for_each(|((((unit, codes8), lanes), int8), nibble)| {
                let rows = Rows {
                    unit,
                    codes8,
                    lanes,
                    int8,
                    nibble,
                };
                rows.encode(dims, best_isa());
            });
        Batch {
            unit,
            codes8,
            int8,
            lanes,
            nibble,
        }
    }

    pub fn len(&self) -> usize {
        self.int8.len()
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
        assert_eq!((d.stride8, d.groups, d.lane_bytes), (384, 48, 192));
        let d = Dims::new(5).unwrap();
        assert_eq!((d.stride8, d.groups, d.lane_bytes), (64, 1, 4));
        assert!(Dims::new(0).is_err());
        assert!(Dims::new(-3).is_err());
        assert!(Dims::new(MAX_DIM as i64 + 1).is_err());
    }

    #[test]
    fn recorded_errors_are_the_true_reconstruction_errors() {
        let mut rng = SplitMix64::new(7);
        for dim in [1, 3, 8, 13, 384] {
            let dims = Dims::new(dim as i64).unwrap();
            for _ in 0..20 {
                let x = random_unit(&mut rng, dim);
                let mut c = vec![0i8; dims.stride8];
                let q8 = encode_i8(&x, &mut c);
                let e8: f64 = x
                    .iter()
                    .zip(&c)
                    .map(|(&v, &c)| (f64::from(v) - f64::from(q8.scale) * f64::from(c)).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(f64::from(q8.err) >= e8 && f64::from(q8.err) <= e8 * (1.0 + 2e-5) + 1e-6);
                assert!(c[dim..].iter().all(|&c| c == 0));

                let mut lane = vec![0u8; dims.lane_bytes];
                let q4 = encode_nibbles(&x, &mut lane);
                let e4: f64 = (0..dim)
                    .map(|d| {
                        let level = f64::from(nibble_at(&lane, d)) - 7.5;
                        (f64::from(x[d]) - f64::from(q4.scale) * level).powi(2)
                    })
                    .sum::<f64>()
                    .sqrt();
                assert!(f64::from(q4.err) >= e4 && f64::from(q4.err) <= e4 * (1.0 + 2e-5) + 1e-6);
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

            let mut c = vec![0i8; dims.stride8];
            let q8 = encode_i8(&x, &mut c);
            let dot: i32 = c
                .iter()
                .zip(&q.q8)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
            let (a, bound) = q.i8_estimate(dot, q8.scale, q8.err);
            assert!((exact - f64::from(a)).abs() <= f64::from(bound) - 1e-5);

            let mut lane = vec![0u8; dims.lane_bytes];
            let q4 = encode_nibbles(&x, &mut lane);
            let dot: i32 = (0..384)
                .map(|d| i32::from(nibble_at(&lane, d)) * i32::from(q.q8[d]))
                .sum();
            let (a, bound) = q.nibble_estimate(dot, q4.scale, q4.err);
            assert!((exact - f64::from(a)).abs() <= f64::from(bound) - 1e-5);
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
}
