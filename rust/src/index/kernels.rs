//! The SIMD kernels, in three instruction sets chosen at run time: AVX-512
//! VNNI (one instruction multiplies and sums 64 byte pairs), AVX2, and
//! portable Rust that the compiler vectorises for the baseline target.
//!
//! Codes are stored in blocks of [`BLOCK`] vectors, two 4-bit planes each
//! (see [`super::quantize`]): for each group of 8 dimensions a 64-byte
//! chunk holding 4 bytes per vector. One 32-bit lane then holds 8 codes of
//! one vector, and one AVX-512 multiply-add scores 4 dimensions of 16
//! vectors at once, with no horizontal sums.
//!
//! Integer dot products are exact, and the bounds are computed with the
//! same float operations in the same order everywhere (no fused
//! multiply-add), so every instruction set gives the same bits; so does the
//! f32 dot product. The tests check all of them against the portable code.

use std::sync::OnceLock;

/// Vectors per block: the 32-bit lanes of a 512-bit register.
pub const BLOCK: usize = 16;

/// Bytes of one group of 8 dimensions of one plane of a block.
pub const GROUP_BYTES: usize = 4 * BLOCK;

/// An instruction set the kernels can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Portable,
    Avx2,
    Avx512Vnni,
}

/// The fastest instruction set this CPU supports (detected once).
pub fn best_isa() -> Isa {
    static BEST: OnceLock<Isa> = OnceLock::new();
    *BEST.get_or_init(|| *available_isas().last().unwrap_or(&Isa::Portable))
}

/// Every instruction set this CPU supports, slowest first.
pub fn available_isas() -> Vec<Isa> {
    let mut isas = vec![Isa::Portable];
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") {
            isas.push(Isa::Avx2);
        }
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            isas.push(Isa::Avx512Vnni);
        }
    }
    isas
}

/// What turns a block's plane dot products into bounds on exact scores.
/// For lane `j` with `du = Σ u·q8` (high plane), `dl = Σ l·q8` (low plane)
/// and `s = scale · scales[j]`:
///
/// - 4-bit: `ub4 = (s·16)·(du − bias4) + d4`, `d4 = errs4[j]·err_scale + err_offset`;
/// - int8: `a8 = s·(16·du + dl − bias8)`, `d8 = errs8[j]·err_scale + err_offset`;
/// - `ub = min(ub4, a8 + d8)`, `lb = max(ub4 − (d4 + d4), a8 − d8)`.
///
/// (See [`super::quantize::Query::bounds`].)
#[derive(Debug, Clone, Copy)]
pub struct Bounds<'a> {
    /// Per lane, whole blocks (padding lanes included).
    pub scales: &'a [f32],
    pub errs4: &'a [f32],
    pub errs8: &'a [f32],
    pub scale: f32,
    pub bias4: f32,
    pub bias8: i32,
    pub err_scale: f32,
    pub err_offset: f32,
}

/// Both planes of some blocks of codes, `groups` groups of 8 dimensions
/// per vector.
#[derive(Debug, Clone, Copy)]
pub struct Planes<'a> {
    pub high: &'a [u8],
    pub low: &'a [u8],
    pub groups: usize,
}

/// Scans blocks of codes. For each block, bounds every lane from the high
/// plane; where some lane's upper bound reaches `cut`, reads the low plane
/// too, and if some lane's int8 upper bound still reaches it, calls
/// `each(block, ub, lb)` with the int8 bounds of all 16 lanes (see
/// [`Bounds`]). `each` returns the new cut. `words` are the query's
/// int8 codes as 32-bit words ([`super::quantize::Query::words`]).
///
/// # Panics
/// If the planes are not whole blocks of `groups` groups, or `words` or the
/// per-lane arrays are short: callers guarantee all of it, so this is a bug
/// check.
pub fn scan<F: FnMut(usize, &[f32; BLOCK], &[f32; BLOCK]) -> f32>(
    isa: Isa,
    planes: Planes<'_>,
    words: &[i32],
    bounds: Bounds<'_>,
    cut: f32,
    each: F,
) {
    let Planes { high, low, groups } = planes;
    let block_bytes = groups * GROUP_BYTES;
    assert!(groups > 0 && high.len().is_multiple_of(block_bytes) && low.len() == high.len());
    assert!(words.len() >= 2 * groups);
    let lanes = high.len() / block_bytes * BLOCK;
    assert!(
        bounds.scales.len() >= lanes && bounds.errs4.len() >= lanes && bounds.errs8.len() >= lanes
    );
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` came from `available_isas`, so the CPU has the features.
        Isa::Avx512Vnni => unsafe { x86::scan_vnni(high, low, groups, words, bounds, cut, each) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::scan_avx2(high, low, groups, words, bounds, cut, each) },
        _ => scan_portable(high, low, groups, words, bounds, cut, each),
    }
}

/// `Σ a·b` in f32, bit-identical on every instruction set.
pub fn f32_dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the features (see `scan`).
        Isa::Avx512Vnni => unsafe { x86::f32_dot_avx512(a, b) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::f32_dot_avx2(a, b) },
        _ => f32_dot_body(a, b),
    }
}

/// Sixteen running sums added pairwise at the end: the compiler keeps them
/// in vector registers, and the order of additions never depends on the
/// instruction set.
#[inline(always)]
fn f32_dot_body(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    for (i, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[i] += x * y;
    }
    let mut width = 8;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// `Σ code·q8` for the 16 lanes of one block of one plane.
fn plane_dots_portable(block: &[u8], words: &[i32]) -> [i32; BLOCK] {
    let mut dots = [0i32; BLOCK];
    for (g, chunk) in block.chunks_exact(GROUP_BYTES).enumerate() {
        let lo = words[2 * g].to_le_bytes().map(|c| i32::from(c as i8));
        let hi = words[2 * g + 1].to_le_bytes().map(|c| i32::from(c as i8));
        for (dot, lane) in dots.iter_mut().zip(chunk.chunks_exact(4)) {
            for t in 0..4 {
                let byte = lane[t];
                *dot += i32::from(byte & 0x0F) * lo[t] + i32::from(byte >> 4) * hi[t];
            }
        }
    }
    dots
}

/// The bounds of one lane: the scalar form of what the kernels compute.
fn lane_bounds(b: &Bounds<'_>, lane: usize, du: i32, dl: i32) -> (f32, f32, f32) {
    let s = b.scale * b.scales[lane];
    let d4 = b.errs4[lane] * b.err_scale + b.err_offset;
    let ub4 = (s * 16.0) * (du as f32 - b.bias4) + d4;
    let a8 = s * (16 * du + dl - b.bias8) as f32;
    let d8 = b.errs8[lane] * b.err_scale + b.err_offset;
    (ub4, (a8 + d8).min(ub4), (ub4 - (d4 + d4)).max(a8 - d8))
}

fn scan_portable<F: FnMut(usize, &[f32; BLOCK], &[f32; BLOCK]) -> f32>(
    high: &[u8],
    low: &[u8],
    groups: usize,
    words: &[i32],
    bounds: Bounds<'_>,
    mut cut: f32,
    mut each: F,
) {
    let block_bytes = groups * GROUP_BYTES;
    let blocks = high
        .chunks_exact(block_bytes)
        .zip(low.chunks_exact(block_bytes));
    for (b, (hb, lb)) in blocks.enumerate() {
        let du = plane_dots_portable(hb, words);
        let reached = (0..BLOCK).any(|j| lane_bounds(&bounds, b * BLOCK + j, du[j], 0).0 >= cut);
        if reached {
            let dl = plane_dots_portable(lb, words);
            let (mut ub, mut lower) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
            for j in 0..BLOCK {
                (_, ub[j], lower[j]) = lane_bounds(&bounds, b * BLOCK + j, du[j], dl[j]);
            }
            if ub.iter().any(|&u| u >= cut) {
                cut = each(b, &ub, &lower);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{f32_dot_body, Bounds, BLOCK, GROUP_BYTES};
    use std::arch::x86_64::*;

    /// `Σ code·q8` for the 16 lanes of one block of one plane. High nibbles
    /// are multiplied in place (16× their value) and that sum divided by 16
    /// at the end: one AND per 64 bytes instead of a shift and an AND
    /// (16 · 15 · 127 · 65536 / 2 still fits in i32).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn plane_dots_vnni(block: &[u8], words: &[i32]) -> __m512i {
        let low = _mm512_set1_epi8(0x0F);
        let high = _mm512_set1_epi8(0xF0u8 as i8);
        // Four accumulators (even: low nibbles, odd: high), two groups per
        // step, so consecutive multiply-adds do not wait on each other.
        let mut acc = [_mm512_setzero_si512(); 4];
        let mut chunks = block.chunks_exact(2 * GROUP_BYTES);
        for (chunk, w) in (&mut chunks).zip(words.chunks_exact(4)) {
            // SAFETY: `chunk` holds 128 bytes; unaligned loads are fine.
            let (v0, v1) = unsafe {
                (
                    _mm512_loadu_si512(chunk.as_ptr().cast()),
                    _mm512_loadu_si512(chunk.as_ptr().add(GROUP_BYTES).cast()),
                )
            };
            let q = |i: usize| _mm512_set1_epi32(w[i]);
            acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_and_si512(v0, low), q(0));
            acc[1] = _mm512_dpbusd_epi32(acc[1], _mm512_and_si512(v0, high), q(1));
            acc[2] = _mm512_dpbusd_epi32(acc[2], _mm512_and_si512(v1, low), q(2));
            acc[3] = _mm512_dpbusd_epi32(acc[3], _mm512_and_si512(v1, high), q(3));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let groups = block.len() / GROUP_BYTES;
            let w = &words[2 * groups - 2..2 * groups];
            // SAFETY: `rest` is one 64-byte group.
            let v = unsafe { _mm512_loadu_si512(rest.as_ptr().cast()) };
            acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_and_si512(v, low), _mm512_set1_epi32(w[0]));
            acc[1] =
                _mm512_dpbusd_epi32(acc[1], _mm512_and_si512(v, high), _mm512_set1_epi32(w[1]));
        }
        _mm512_add_epi32(
            _mm512_add_epi32(acc[0], acc[2]),
            _mm512_srai_epi32::<4>(_mm512_add_epi32(acc[1], acc[3])),
        )
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn scan_vnni<F: FnMut(usize, &[f32; BLOCK], &[f32; BLOCK]) -> f32>(
        high: &[u8],
        low: &[u8],
        groups: usize,
        words: &[i32],
        bounds: Bounds<'_>,
        cut: f32,
        mut each: F,
    ) {
        let scale = _mm512_set1_ps(bounds.scale);
        let sixteen = _mm512_set1_ps(16.0);
        let bias4 = _mm512_set1_ps(bounds.bias4);
        let bias8 = _mm512_set1_epi32(bounds.bias8);
        let err_scale = _mm512_set1_ps(bounds.err_scale);
        let err_offset = _mm512_set1_ps(bounds.err_offset);
        let mut cut = _mm512_set1_ps(cut);
        let (mut ub, mut lb) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        let words = &words[..2 * groups];
        let block_bytes = groups * GROUP_BYTES;
        let blocks = high
            .chunks_exact(block_bytes)
            .zip(low.chunks_exact(block_bytes));
        for (b, (hb, lo)) in blocks.enumerate() {
            let du = plane_dots_vnni(hb, words);
            let lanes = b * BLOCK..(b + 1) * BLOCK;
            // SAFETY: `scan` checked the arrays cover every lane.
            let (scales, errs4) = unsafe {
                (
                    _mm512_loadu_ps(bounds.scales[lanes.clone()].as_ptr()),
                    _mm512_loadu_ps(bounds.errs4[lanes.clone()].as_ptr()),
                )
            };
            let s = _mm512_mul_ps(scale, scales);
            let d4 = _mm512_add_ps(_mm512_mul_ps(errs4, err_scale), err_offset);
            let approx4 = _mm512_mul_ps(
                _mm512_mul_ps(s, sixteen),
                _mm512_sub_ps(_mm512_cvtepi32_ps(du), bias4),
            );
            let ub4 = _mm512_add_ps(approx4, d4);
            if _mm512_cmp_ps_mask::<_CMP_GE_OQ>(ub4, cut) == 0 {
                continue;
            }
            let dl = plane_dots_vnni(lo, words);
            let dot8 = _mm512_sub_epi32(_mm512_add_epi32(_mm512_slli_epi32::<4>(du), dl), bias8);
            let a8 = _mm512_mul_ps(s, _mm512_cvtepi32_ps(dot8));
            // SAFETY: as above.
            let errs8 = unsafe { _mm512_loadu_ps(bounds.errs8[lanes].as_ptr()) };
            let d8 = _mm512_add_ps(_mm512_mul_ps(errs8, err_scale), err_offset);
            let upper = _mm512_min_ps(_mm512_add_ps(a8, d8), ub4);
            if _mm512_cmp_ps_mask::<_CMP_GE_OQ>(upper, cut) == 0 {
                continue;
            }
            let lower = _mm512_max_ps(
                _mm512_sub_ps(ub4, _mm512_add_ps(d4, d4)),
                _mm512_sub_ps(a8, d8),
            );
            // SAFETY: `ub` and `lb` hold 16 f32s each.
            unsafe {
                _mm512_storeu_ps(ub.as_mut_ptr(), upper);
                _mm512_storeu_ps(lb.as_mut_ptr(), lower);
            }
            cut = _mm512_set1_ps(each(b, &ub, &lb));
        }
    }

    /// `Σ code·q8` for one block of one plane, as two halves of 8 lanes.
    /// maddubs gives 16-bit sums of 2 products (at most 2·15·127 = 3810);
    /// low and high nibbles of up to 4 groups stay below 4·7620 < 2^15, so
    /// they are widened to 32 bits once per 4 groups.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn plane_dots_avx2(block: &[u8], words: &[i32]) -> (__m256i, __m256i) {
        const GROUPS_PER_WIDEN: usize = 4;
        let mask = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let half = |v: __m256i, lo: __m256i, hi: __m256i| {
            let l = _mm256_maddubs_epi16(_mm256_and_si256(v, mask), lo);
            let h = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16::<4>(v), mask), hi);
            _mm256_add_epi16(l, h)
        };
        let (mut acc_a, mut acc_b) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let runs = block
            .chunks(GROUPS_PER_WIDEN * GROUP_BYTES)
            .zip(words.chunks(2 * GROUPS_PER_WIDEN));
        for (run, w) in runs {
            let (mut sum_a, mut sum_b) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for (chunk, w) in run.chunks_exact(GROUP_BYTES).zip(w.chunks_exact(2)) {
                let (lo, hi) = (_mm256_set1_epi32(w[0]), _mm256_set1_epi32(w[1]));
                // SAFETY: `chunk` holds 64 bytes.
                let (va, vb) = unsafe {
                    (
                        _mm256_loadu_si256(chunk.as_ptr().cast()),
                        _mm256_loadu_si256(chunk.as_ptr().add(32).cast()),
                    )
                };
                sum_a = _mm256_add_epi16(sum_a, half(va, lo, hi));
                sum_b = _mm256_add_epi16(sum_b, half(vb, lo, hi));
            }
            acc_a = _mm256_add_epi32(acc_a, _mm256_madd_epi16(sum_a, ones));
            acc_b = _mm256_add_epi32(acc_b, _mm256_madd_epi16(sum_b, ones));
        }
        (acc_a, acc_b)
    }

    /// The bounds of 8 lanes (see `Bounds`): `(ub4, ub, lb)`, the last two
    /// only meaningful when `dl` is given.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn half_bounds_avx2(
        b: &Bounds<'_>,
        first: usize,
        du: __m256i,
        dl: Option<__m256i>,
    ) -> (__m256, __m256, __m256) {
        let lanes = first..first + 8;
        // SAFETY: `scan` checked the arrays cover every lane.
        let (scales, errs4, errs8) = unsafe {
            (
                _mm256_loadu_ps(b.scales[lanes.clone()].as_ptr()),
                _mm256_loadu_ps(b.errs4[lanes.clone()].as_ptr()),
                _mm256_loadu_ps(b.errs8[lanes].as_ptr()),
            )
        };
        let (err_scale, err_offset) = (_mm256_set1_ps(b.err_scale), _mm256_set1_ps(b.err_offset));
        let s = _mm256_mul_ps(_mm256_set1_ps(b.scale), scales);
        let d4 = _mm256_add_ps(_mm256_mul_ps(errs4, err_scale), err_offset);
        let approx4 = _mm256_mul_ps(
            _mm256_mul_ps(s, _mm256_set1_ps(16.0)),
            _mm256_sub_ps(_mm256_cvtepi32_ps(du), _mm256_set1_ps(b.bias4)),
        );
        let ub4 = _mm256_add_ps(approx4, d4);
        let Some(dl) = dl else {
            return (ub4, ub4, ub4);
        };
        let dot8 = _mm256_sub_epi32(
            _mm256_add_epi32(_mm256_slli_epi32::<4>(du), dl),
            _mm256_set1_epi32(b.bias8),
        );
        let a8 = _mm256_mul_ps(s, _mm256_cvtepi32_ps(dot8));
        let d8 = _mm256_add_ps(_mm256_mul_ps(errs8, err_scale), err_offset);
        let upper = _mm256_min_ps(_mm256_add_ps(a8, d8), ub4);
        let lower = _mm256_max_ps(
            _mm256_sub_ps(ub4, _mm256_add_ps(d4, d4)),
            _mm256_sub_ps(a8, d8),
        );
        (ub4, upper, lower)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn scan_avx2<F: FnMut(usize, &[f32; BLOCK], &[f32; BLOCK]) -> f32>(
        high: &[u8],
        low: &[u8],
        groups: usize,
        words: &[i32],
        bounds: Bounds<'_>,
        mut cut: f32,
        mut each: F,
    ) {
        let (mut ub, mut lb) = ([0.0f32; BLOCK], [0.0f32; BLOCK]);
        let block_bytes = groups * GROUP_BYTES;
        let blocks = high
            .chunks_exact(block_bytes)
            .zip(low.chunks_exact(block_bytes));
        for (b, (hb, lo)) in blocks.enumerate() {
            let (du_a, du_b) = plane_dots_avx2(hb, words);
            let first = b * BLOCK;
            let (ub4_a, _, _) = half_bounds_avx2(&bounds, first, du_a, None);
            let (ub4_b, _, _) = half_bounds_avx2(&bounds, first + 8, du_b, None);
            let cut_v = _mm256_set1_ps(cut);
            let reached = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(ub4_a, cut_v),
                _mm256_cmp_ps::<_CMP_GE_OQ>(ub4_b, cut_v),
            );
            if _mm256_movemask_ps(reached) == 0 {
                continue;
            }
            let (dl_a, dl_b) = plane_dots_avx2(lo, words);
            let (_, ub_a, lb_a) = half_bounds_avx2(&bounds, first, du_a, Some(dl_a));
            let (_, ub_b, lb_b) = half_bounds_avx2(&bounds, first + 8, du_b, Some(dl_b));
            let still = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(ub_a, cut_v),
                _mm256_cmp_ps::<_CMP_GE_OQ>(ub_b, cut_v),
            );
            if _mm256_movemask_ps(still) == 0 {
                continue;
            }
            // SAFETY: `ub` and `lb` hold 16 f32s each.
            unsafe {
                _mm256_storeu_ps(ub.as_mut_ptr(), ub_a);
                _mm256_storeu_ps(ub.as_mut_ptr().add(8), ub_b);
                _mm256_storeu_ps(lb.as_mut_ptr(), lb_a);
                _mm256_storeu_ps(lb.as_mut_ptr().add(8), lb_b);
            }
            cut = each(b, &ub, &lb);
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn f32_dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        f32_dot_body(a, b)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn f32_dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        f32_dot_body(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::rng::SplitMix64;

    fn random_bytes(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.next_u64() as u8).collect()
    }

    fn random_i8(rng: &mut SplitMix64, n: usize) -> Vec<i8> {
        (0..n)
            .map(|_| (rng.below(255) as i32 - 127) as i8)
            .collect()
    }

    fn words_of(q8: &[i8]) -> Vec<i32> {
        q8.chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))
            .collect()
    }

    /// `Σ code·q8` per lane, the slow and obvious way.
    fn plane_reference(block: &[u8], groups: usize, q8: &[i8]) -> [i32; BLOCK] {
        let mut dots = [0i32; BLOCK];
        for (j, dot) in dots.iter_mut().enumerate() {
            for g in 0..groups {
                for t in 0..4 {
                    let byte = block[g * GROUP_BYTES + j * 4 + t];
                    *dot += i32::from(byte & 0x0F) * i32::from(q8[g * 8 + t]);
                    *dot += i32::from(byte >> 4) * i32::from(q8[g * 8 + 4 + t]);
                }
            }
        }
        dots
    }

    /// Bounds that are the dot products themselves: `ub4 = du`, and
    /// `ub = min(du, 16·du + dl)`, `lb = max(du, 16·du + dl)` (zero errors).
    fn identity<'a>(ones: &'a [f32], zeros: &'a [f32]) -> Bounds<'a> {
        Bounds {
            scales: ones,
            errs4: zeros,
            errs8: zeros,
            scale: 1.0 / 16.0,
            bias4: 0.0,
            bias8: 0,
            err_scale: 0.0,
            err_offset: 0.0,
        }
    }

    #[test]
    fn portable_is_always_available() {
        assert_eq!(available_isas()[0], Isa::Portable);
        assert!(available_isas().contains(&best_isa()));
    }

    #[test]
    fn plane_dot_products_are_exact_on_every_isa() {
        let mut rng = SplitMix64::new(3);
        // Odd group counts exercise the VNNI kernel's single-group tail and
        // the AVX2 kernel's partial run of groups.
        for groups in [1, 2, 3, 5, 48] {
            let blocks = 3;
            let high = random_bytes(&mut rng, blocks * groups * GROUP_BYTES);
            let low = random_bytes(&mut rng, blocks * groups * GROUP_BYTES);
            // Extremes too: -127 and 127.
            let mut q8 = random_i8(&mut rng, groups * 8);
            q8[0] = 127;
            q8[1] = -127;
            let words = words_of(&q8);
            let (ones, zeros) = ([1.0; 3 * BLOCK], [0.0; 3 * BLOCK]);
            for isa in available_isas() {
                let mut seen = Vec::new();
                let bounds = identity(&ones, &zeros);
                scan(
                    isa,
                    Planes {
                        high: &high,
                        low: &low,
                        groups,
                    },
                    &words,
                    bounds,
                    f32::NEG_INFINITY,
                    |b, ub, lb| {
                        seen.push((b, *ub, *lb));
                        f32::NEG_INFINITY
                    },
                );
                assert_eq!(seen.len(), blocks);
                for (b, ub, lb) in seen {
                    let range = b * groups * GROUP_BYTES..(b + 1) * groups * GROUP_BYTES;
                    let du = plane_reference(&high[range.clone()], groups, &q8);
                    let dl = plane_reference(&low[range], groups, &q8);
                    for j in 0..BLOCK {
                        let (d4, d8) = (du[j] as f32, (16 * du[j] + dl[j]) as f32 / 16.0);
                        assert_eq!((ub[j], lb[j]), (d4.min(d8), d4.max(d8)), "{isa:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn bounds_and_cuts_agree_on_every_isa() {
        let mut rng = SplitMix64::new(8);
        let (groups, blocks) = (6, 40);
        let high = random_bytes(&mut rng, blocks * groups * GROUP_BYTES);
        let low = random_bytes(&mut rng, blocks * groups * GROUP_BYTES);
        let q8 = random_i8(&mut rng, groups * 8);
        let words = words_of(&q8);
        let scales: Vec<f32> = (0..blocks * BLOCK).map(|_| rng.next_f32() * 1e-3).collect();
        let errs4: Vec<f32> = (0..blocks * BLOCK).map(|_| rng.next_f32() * 0.2).collect();
        let errs8: Vec<f32> = errs4.iter().map(|e| e / 10.0).collect();
        let bounds = Bounds {
            scales: &scales,
            errs4: &errs4,
            errs8: &errs8,
            scale: 0.01,
            bias4: 3.5,
            bias8: 57,
            err_scale: 1.01,
            err_offset: 0.011,
        };
        let run = |isa: Isa| {
            // The cut rises to each reported block's best lower bound, so
            // which blocks are reported depends on the bounds being identical.
            let mut seen = Vec::new();
            scan(
                isa,
                Planes {
                    high: &high,
                    low: &low,
                    groups,
                },
                &words,
                bounds,
                f32::NEG_INFINITY,
                |b, ub, lb| {
                    seen.push((b, *ub, *lb));
                    lb.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l))
                },
            );
            seen
        };
        let want = run(Isa::Portable);
        assert!(want.len() > 1 && want.len() < blocks, "{}", want.len());
        for (b, ub, lb) in &want {
            let range = b * groups * GROUP_BYTES..(b + 1) * groups * GROUP_BYTES;
            let du = plane_reference(&high[range.clone()], groups, &q8);
            let dl = plane_reference(&low[range], groups, &q8);
            for j in 0..BLOCK {
                let (_, u, l) = lane_bounds(&bounds, b * BLOCK + j, du[j], dl[j]);
                assert_eq!((ub[j], lb[j]), (u, l));
            }
        }
        for isa in available_isas() {
            assert_eq!(run(isa), want, "{isa:?}");
        }
    }

    #[test]
    fn f32_dot_is_bit_identical_on_every_isa_and_close_to_f64() {
        let mut rng = SplitMix64::new(5);
        for len in [1, 15, 16, 17, 100, 384] {
            let a: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..len).map(|_| rng.normal()).collect();
            let want = f32_dot_body(&a, &b);
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!((f64::from(want) - exact).abs() < 1e-4 * len as f64);
            for isa in available_isas() {
                assert_eq!(f32_dot(isa, &a, &b).to_bits(), want.to_bits(), "{isa:?}");
            }
        }
    }
}
