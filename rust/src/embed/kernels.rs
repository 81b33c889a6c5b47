//! The numeric kernels of the encoder: linear layers on f16 weights with f32 arithmetic,
//! layer norm, GELU and softmax.
//!
//! Why f16 weights: a short sentence is a dozen rows, so a forward pass is bound by reading
//! the weights, not by arithmetic. f16 halves that traffic (the encoder's 21 MB then fit in
//! this machine's L3) while every product and sum stays f32; measured against
//! sentence-transformers' fp32 vectors, the cosine stays above 0.999999.

use half::f16;

/// Output columns per packed panel: two 16-lane AVX-512 registers.
pub const PANEL: usize = 32;

/// Rows of the input handled at once by the AVX-512 kernel (24 accumulator registers).
const ROWS: usize = 12;

/// `y = x·Wᵀ + b` with `W` an `n × k` matrix, packed for the kernels: the output columns
/// in panels of [`PANEL`], each panel stored k-major (`panel[k][j] = W[p·32 + j][k]`), so the
/// kernel reads one panel front to back.
pub struct Linear {
    n: usize,
    k: usize,
    packed: Vec<f16>,
    bias: Vec<f32>,
}

impl Linear {
    /// Packs a row-major `n × k` weight (PyTorch's `nn.Linear` layout) and its bias.
    pub fn new(weight: &[f32], bias: Vec<f32>, n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not {n} x {k}");
        assert_eq!(bias.len(), n, "bias is not {n} long");
        assert_eq!(n % PANEL, 0, "output size {n} is not a multiple of {PANEL}");
        let halves = to_f16(weight);
        let mut packed = Vec::with_capacity(n * k);
        for panel in halves.chunks_exact(PANEL * k) {
            for col in 0..k {
                packed.extend((0..PANEL).map(|j| panel[j * k + col]));
            }
        }
        Self { n, k, packed, bias }
    }

    /// `y[rows × n] = x[rows × k]·Wᵀ + b`, the panels split over the current rayon pool when
    /// the product is big enough to pay for the hand-off.
    pub fn forward(&self, x: &[f32], y: &mut [f32]) {
        let rows = x.len() / self.k;
        assert_eq!(x.len(), rows * self.k);
        assert_eq!(y.len(), rows * self.n);
        let panels = self.n / PANEL;
        let workers = rayon::current_num_threads().min(panels);
        let out = OutPtr(y.as_mut_ptr());
        if workers < 2 || rows * self.n * self.k < PARALLEL_MIN_MACS {
            // Safety: one caller writes every panel of `y`, which holds rows × n floats.
            unsafe { self.panels(x, rows, 0..panels, out) };
            return;
        }
        let per = panels.div_ceil(workers);
        rayon::scope(|scope| {
            for first in (0..panels).step_by(per) {
                let range = first..(first + per).min(panels);
                scope.spawn(move |_| {
                    let out = out;
                    // Safety: the ranges are disjoint, so no column of `y` is written twice.
                    unsafe { self.panels(x, rows, range, out) };
                });
            }
        });
    }

    /// Computes the output columns of `panels` for every row.
    ///
    /// Safety: `out` points at a `rows × n` buffer, and no one else writes these columns.
    unsafe fn panels(&self, x: &[f32], rows: usize, panels: std::ops::Range<usize>, out: OutPtr) {
        for panel in panels {
            let w = &self.packed[panel * self.k * PANEL..(panel + 1) * self.k * PANEL];
            let bias = &self.bias[panel * PANEL..(panel + 1) * PANEL];
            let mut row = 0;
            while row < rows {
                let take = (rows - row).min(ROWS);
                let x_rows = &x[row * self.k..(row + take) * self.k];
                let y = out.0.add(row * self.n + panel * PANEL);
                tile(x_rows, take, self.k, w, bias, y, self.n);
                row += take;
            }
        }
    }
}

/// f32 to f16 with the CPU's conversion instructions when it has them (loading converts 22M
/// weights; one at a time in software took a quarter of a second).
pub fn to_f16(values: &[f32]) -> Vec<f16> {
    use half::slice::HalfFloatSliceExt;
    let mut out = vec![f16::ZERO; values.len()];
    out.convert_from_f32_slice(values);
    out
}

/// Sum of a slice in 16 independent lanes: a plain `sum()` adds one element after the other
/// (floating-point order is kept), which cannot use SIMD.
pub fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = values.chunks_exact(16);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Products smaller than this (multiply-adds) run on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 20;

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// Safety: the pointer is only used to write disjoint columns while the buffer is borrowed.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// `take` rows of `x` times one panel, plus bias, into `y` (row stride `ldy`).
///
/// Safety: `y` is valid for `take` rows of `PANEL` floats at stride `ldy`.
unsafe fn tile(x: &[f32], take: usize, k: usize, w: &[f16], bias: &[f32], y: *mut f32, ldy: usize) {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        return avx512::tile(x, take, k, w, bias, y, ldy);
    }
    portable_tile(x, take, k, w, bias, y, ldy)
}

unsafe fn portable_tile(
    x: &[f32],
    take: usize,
    k: usize,
    w: &[f16],
    bias: &[f32],
    y: *mut f32,
    ldy: usize,
) {
    for r in 0..take {
        let mut acc = [0f32; PANEL];
        acc.copy_from_slice(bias);
        let xr = &x[r * k..(r + 1) * k];
        for (xv, wk) in xr.iter().zip(w.chunks_exact(PANEL)) {
            for (a, wv) in acc.iter_mut().zip(wk) {
                *a += xv * wv.to_f32();
            }
        }
        std::ptr::copy_nonoverlapping(acc.as_ptr(), y.add(r * ldy), PANEL);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    use half::f16;

    use super::{PANEL, ROWS};

    pub fn available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| is_x86_feature_detected!("avx512f"))
    }

    /// Dispatches on the row count so that each kernel's accumulators are registers.
    pub unsafe fn tile(
        x: &[f32],
        take: usize,
        k: usize,
        w: &[f16],
        bias: &[f32],
        y: *mut f32,
        ldy: usize,
    ) {
        macro_rules! rows {
            ($($n:literal)*) => {
                match take {
                    $($n => kernel::<$n>(x, k, w, bias, y, ldy),)*
                    _ => unreachable!("a tile has 1..={ROWS} rows"),
                }
            };
        }
        rows!(1 2 3 4 5 6 7 8 9 10 11 12)
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const R: usize>(
        x: &[f32],
        k: usize,
        w: &[f16],
        bias: &[f32],
        y: *mut f32,
        ldy: usize,
    ) {
        debug_assert!(x.len() == R * k && w.len() == k * PANEL);
        let xp = x.as_ptr();
        let wp = w.as_ptr() as *const __m256i;
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for kk in 0..k {
            let w0 = _mm512_cvtph_ps(_mm256_loadu_si256(wp.add(2 * kk)));
            let w1 = _mm512_cvtph_ps(_mm256_loadu_si256(wp.add(2 * kk + 1)));
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xp.add(r * k + kk));
                a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
                a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
            }
        }
        let b0 = _mm512_loadu_ps(bias.as_ptr());
        let b1 = _mm512_loadu_ps(bias.as_ptr().add(16));
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(y.add(r * ldy), _mm512_add_ps(a[0], b0));
            _mm512_storeu_ps(y.add(r * ldy + 16), _mm512_add_ps(a[1], b1));
        }
    }
}

/// Normalises each row of `x` (width `gamma.len()`) in place: `(x − mean)/sqrt(var + eps)·γ + β`.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    let mut centred = vec![0f32; width];
    for row in x.chunks_exact_mut(width) {
        let mean = sum(row) / width as f32;
        for (c, v) in centred.iter_mut().zip(row.iter()) {
            *c = (v - mean) * (v - mean);
        }
        let var = sum(&centred) / width as f32;
        let scale = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * scale * g + b;
        }
    }
}

/// GELU with the exact (erf) form BERT uses, in place.
pub fn gelu(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf, branch-free so loops over it vectorise (Abramowitz & Stegun 7.1.28: |error| ≤ 3e-7 in
/// exact arithmetic, about 1e-6 in f32; GELU scales it by x/2, far below the f16 weights' own).
fn erf(x: f32) -> f32 {
    const A: [f32; 6] = [
        0.070_523_08,
        0.042_282_01,
        0.009_270_527,
        0.000_152_014_3,
        0.000_276_567_2,
        0.000_043_063_8,
    ];
    let t = x.abs();
    let p = 1.0 + t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * (A[4] + t * A[5])))));
    let p2 = p * p;
    let p4 = p2 * p2;
    let p8 = p4 * p4;
    let p16 = p8 * p8;
    (1.0 - 1.0 / p16).copysign(x)
}

/// Softmax of one row, in place.
pub fn softmax(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// e^x for x ≤ 0 (softmax's range), branch-free, relative error about 1e-7 (Cephes' expf
/// polynomial after reducing x by multiples of ln 2).
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 0.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    p = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], w: &[f32], b: &[f32], n: usize, k: usize) -> Vec<f32> {
        let rows = x.len() / k;
        let mut y = vec![0f32; rows * n];
        for r in 0..rows {
            for o in 0..n {
                let mut acc = b[o] as f64;
                for i in 0..k {
                    acc += x[r * k + i] as f64 * f16::from_f32(w[o * k + i]).to_f64();
                }
                y[r * n + o] = acc as f32;
            }
        }
        y
    }

    fn noise(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn linear_matches_a_plain_product_for_every_row_count() {
        let (n, k) = (64, 48);
        let w = noise(n * k, 1);
        let b = noise(n, 2);
        let layer = Linear::new(&w, b.clone(), n, k);
        for rows in [1, 5, 12, 13, 30] {
            let x = noise(rows * k, rows as u32 + 3);
            let mut y = vec![0f32; rows * n];
            layer.forward(&x, &mut y);
            for (got, want) in y.iter().zip(reference(&x, &w, &b, n, k)) {
                assert!((got - want).abs() < 1e-4, "{rows} rows: {got} vs {want}");
            }
        }
    }

    #[test]
    fn linear_splits_panels_over_threads_without_changing_the_result() {
        let (n, k) = (256, 384);
        let w = noise(n * k, 7);
        let b = noise(n, 8);
        let layer = Linear::new(&w, b.clone(), n, k);
        let x = noise(40 * k, 9);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let mut y = vec![0f32; 40 * n];
        pool.install(|| layer.forward(&x, &mut y));
        for (got, want) in y.iter().zip(reference(&x, &w, &b, n, k)) {
            assert!((got - want).abs() < 1e-4);
        }
    }

    #[test]
    fn the_portable_kernel_agrees_with_the_dispatched_one() {
        let (n, k) = (32, 40);
        let w = noise(n * k, 11);
        let layer = Linear::new(&w, vec![0.5; n], n, k);
        let x = noise(7 * k, 12);
        let (mut fast, mut slow) = (vec![0f32; 7 * n], vec![0f32; 7 * n]);
        layer.forward(&x, &mut fast);
        unsafe { portable_tile(&x, 7, k, &layer.packed, &layer.bias, slow.as_mut_ptr(), n) };
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() < 1e-5);
        }
    }

    #[test]
    fn erf_and_exp_are_accurate() {
        for i in -400..=400 {
            let x = i as f32 / 50.0;
            let want = libm_erf(x as f64);
            // The formula's 3e-7 plus f32 rounding in (·)^16 and 1 − 1/(·).
            assert!((erf(x) as f64 - want).abs() < 1.5e-6, "erf({x})");
        }
        for i in 0..=870 {
            let x = -(i as f32) / 10.0;
            let want = (x as f64).exp();
            assert!(
                ((exp(x) as f64) - want).abs() <= want * 3e-7 + 1e-38,
                "exp({x})"
            );
        }
    }

    /// erf by its series/continued fraction in f64, as a reference.
    fn libm_erf(x: f64) -> f64 {
        // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)): exact enough in f64 for |x| ≤ 4
        // (the largest term is about e^16); beyond, erf is ±1 within 2e-8.
        if x.abs() > 4.0 {
            return x.signum();
        }
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 || n < 5.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut row = [1.0, 3.0, -2.0, 3.0, -200.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[1] > row[0] && row[0] > row[2] && row[4] >= 0.0);
        assert_eq!(row[1], row[3]);
    }

    #[test]
    fn layer_norm_gives_zero_mean_unit_variance() {
        let mut x = noise(384 * 2, 5);
        layer_norm(&mut x, &[1.0; 384], &[0.0; 384], 1e-12);
        for row in x.chunks_exact(384) {
            let mean = row.iter().sum::<f32>() / 384.0;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 384.0;
            assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3);
        }
    }
}
