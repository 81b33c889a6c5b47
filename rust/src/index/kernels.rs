//! The dot-product kernels, in three instruction sets chosen at run time:
//! AVX-512 VNNI (one instruction multiplies and sums 64 byte pairs), AVX2,
//! and portable Rust that the compiler vectorises for the baseline target.
//!
//! The integer kernels are exact, so every instruction set gives the same
//! results; the f32 dot product adds in the same order in every variant
//! (no fused multiply-add), so it gives bit-identical results too. The tests
//! check both against the portable code.
//!
//! The 4-bit codes are stored in blocks of [`BLOCK`] vectors: for each group
//! of 8 dimensions a 64-byte chunk holding 4 bytes per vector (see
//! [`super::quantize::encode_nibbles`]). One 32-bit lane then holds 8 codes
//! of one vector, and one AVX-512 multiply-add scores 4 dimensions of 16
//! vectors at once, with no horizontal sums.

use std::sync::OnceLock;

/// Vectors per block of 4-bit codes: the 32-bit lanes of a 512-bit register.
pub const BLOCK: usize = 16;

/// Bytes of one group of 8 dimensions in a block.
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

/// What turns a block's 4-bit dot products into upper bounds on exact
/// scores: for lane `j`,
/// `ub[j] = scale·scales[j]·(dot[j] − bias) + (errs[j]·err_scale + err_offset)`
/// (the formula of [`super::quantize::Query::nibble_estimate`], in the same
/// order of operations, so every instruction set gives the same bits).
#[derive(Debug, Clone, Copy)]
pub struct Bounds<'a> {
    /// Per lane, whole blocks (padding lanes included).
    pub scales: &'a [f32],
    pub errs: &'a [f32],
    pub scale: f32,
    pub bias: f32,
    pub err_scale: f32,
    pub err_offset: f32,
}

/// Scans blocks of 4-bit codes: for each block computes the upper bounds
/// `ub` of its 16 lanes (see [`Bounds`]) from `Σ_d u[j][d] · q8[d]`, `u`
/// being lane `j`'s codes and `words` the query's int8 codes as 32-bit words
/// ([`super::quantize::Query::words`]). Calls `each(block, ub)` only for
/// blocks where some lane reaches `cut`; `each` returns the new cut.
///
/// # Panics
/// If `codes` is not whole blocks of `groups` groups, or `words` or the
/// per-lane arrays are short: callers guarantee all three, so this is a
/// bug check.
pub fn nibble_scan<F: FnMut(usize, &[f32; BLOCK]) -> f32>(
    isa: Isa,
    codes: &[u8],
    groups: usize,
    words: &[i32],
    bounds: Bounds<'_>,
    cut: f32,
    each: F,
) {
    let block_bytes = groups * GROUP_BYTES;
    assert!(groups > 0 && codes.len().is_multiple_of(block_bytes) && words.len() >= 2 * groups);
    let lanes = codes.len() / block_bytes * BLOCK;
    assert!(bounds.scales.len() >= lanes && bounds.errs.len() >= lanes);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa` came from `available_isas`, so the CPU has the features.
        Isa::Avx512Vnni => unsafe {
            x86::nibble_scan_vnni(codes, groups, words, bounds, cut, each)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::nibble_scan_avx2(codes, groups, words, bounds, cut, each) },
        _ => nibble_scan_portable(codes, groups, words, bounds, cut, each),
    }
}

/// `Σ a·b` of two int8 rows whose length is a multiple of 64; `b_sum` is
/// `Σ b` (the VNNI kernel needs it to undo an unsigned shift of `a`).
pub fn i8_dot(isa: Isa, a: &[i8], b: &[i8], b_sum: i32) -> i32 {
    assert!(a.len() == b.len() && a.len().is_multiple_of(64));
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the features (see `nibble_scan`).
        Isa::Avx512Vnni => unsafe { x86::i8_dot_vnni(a, b, b_sum) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::i8_dot_avx2(a, b) },
        _ => {
            let _ = b_sum;
            i8_dot_portable(a, b)
        }
    }
}

/// `Σ a·b` in f32, bit-identical on every instruction set.
pub fn f32_dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the features (see `nibble_scan`).
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

#[inline(always)]
fn i8_dot_portable(a: &[i8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

/// The upper bound of one lane (the scalar form of the kernels' bounds).
#[inline(always)]
fn lane_bound(bounds: &Bounds<'_>, lane: usize, dot: i32) -> f32 {
    let approx = bounds.scale * bounds.scales[lane] * (dot as f32 - bounds.bias);
    approx + (bounds.errs[lane] * bounds.err_scale + bounds.err_offset)
}

fn nibble_scan_portable<F: FnMut(usize, &[f32; BLOCK]) -> f32>(
    codes: &[u8],
    groups: usize,
    words: &[i32],
    bounds: Bounds<'_>,
    mut cut: f32,
    mut each: F,
) {
    for (b, block) in codes.chunks_exact(groups * GROUP_BYTES).enumerate() {
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
        let ub: [f32; BLOCK] = std::array::from_fn(|j| lane_bound(&bounds, b * BLOCK + j, dots[j]));
        if ub.iter().any(|&u| u >= cut) {
            cut = each(b, &ub);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{f32_dot_body, Bounds, BLOCK, GROUP_BYTES};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn nibble_scan_vnni<F: FnMut(usize, &[f32; BLOCK]) -> f32>(
        codes: &[u8],
        groups: usize,
        words: &[i32],
        bounds: Bounds<'_>,
        cut: f32,
        mut each: F,
    ) {
        // High nibbles are multiplied in place (16× their value) and the
        // sum divided by 16 at the end: one AND per 64 bytes instead of a
        // shift and an AND. 16 · 65536 · 15 · 127 / 2 still fits in i32.
        let low = _mm512_set1_epi8(0x0F);
        let high = _mm512_set1_epi8(0xF0u8 as i8);
        let scale = _mm512_set1_ps(bounds.scale);
        let bias = _mm512_set1_ps(bounds.bias);
        let err_scale = _mm512_set1_ps(bounds.err_scale);
        let err_offset = _mm512_set1_ps(bounds.err_offset);
        let mut cut = _mm512_set1_ps(cut);
        let mut ub = [0.0f32; BLOCK];
        let words = &words[..2 * groups];
        for (b, block) in codes.chunks_exact(groups * GROUP_BYTES).enumerate() {
            // Four accumulators: two groups per step, low and high nibbles
            // (even: low, odd: high), so consecutive multiply-adds do not
            // wait on each other.
            let mut acc = [_mm512_setzero_si512(); 4];
            let mut chunks = block.chunks_exact(2 * GROUP_BYTES);
            let mut pairs = words.chunks_exact(4);
            for (chunk, w) in (&mut chunks).zip(&mut pairs) {
                // SAFETY: `chunk` holds 128 bytes; unaligned loads are fine.
                let (v0, v1) = unsafe {
                    (
                        _mm512_loadu_si512(chunk.as_ptr().cast()),
                        _mm512_loadu_si512(chunk.as_ptr().add(GROUP_BYTES).cast()),
                    )
                };
                let lo0 = _mm512_and_si512(v0, low);
                let hi0 = _mm512_and_si512(v0, high);
                let lo1 = _mm512_and_si512(v1, low);
                let hi1 = _mm512_and_si512(v1, high);
                acc[0] = _mm512_dpbusd_epi32(acc[0], lo0, _mm512_set1_epi32(w[0]));
                acc[1] = _mm512_dpbusd_epi32(acc[1], hi0, _mm512_set1_epi32(w[1]));
                acc[2] = _mm512_dpbusd_epi32(acc[2], lo1, _mm512_set1_epi32(w[2]));
                acc[3] = _mm512_dpbusd_epi32(acc[3], hi1, _mm512_set1_epi32(w[3]));
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let w = &words[words.len() - 2..];
                // SAFETY: `rest` is one 64-byte group.
                let v = unsafe { _mm512_loadu_si512(rest.as_ptr().cast()) };
                let lo = _mm512_and_si512(v, low);
                let hi = _mm512_and_si512(v, high);
                acc[0] = _mm512_dpbusd_epi32(acc[0], lo, _mm512_set1_epi32(w[0]));
                acc[1] = _mm512_dpbusd_epi32(acc[1], hi, _mm512_set1_epi32(w[1]));
            }
            let dots = _mm512_add_epi32(
                _mm512_add_epi32(acc[0], acc[2]),
                _mm512_srai_epi32::<4>(_mm512_add_epi32(acc[1], acc[3])),
            );
            let lanes = b * BLOCK..(b + 1) * BLOCK;
            // SAFETY: `nibble_scan` checked both arrays cover every lane.
            let (scales, errs) = unsafe {
                (
                    _mm512_loadu_ps(bounds.scales[lanes.clone()].as_ptr()),
                    _mm512_loadu_ps(bounds.errs[lanes].as_ptr()),
                )
            };
            let approx = _mm512_mul_ps(
                _mm512_mul_ps(scale, scales),
                _mm512_sub_ps(_mm512_cvtepi32_ps(dots), bias),
            );
            let bound = _mm512_add_ps(_mm512_mul_ps(errs, err_scale), err_offset);
            let upper = _mm512_add_ps(approx, bound);
            if _mm512_cmp_ps_mask::<_CMP_GE_OQ>(upper, cut) != 0 {
                // SAFETY: `ub` holds 16 f32s.
                unsafe { _mm512_storeu_ps(ub.as_mut_ptr(), upper) };
                cut = _mm512_set1_ps(each(b, &ub));
            }
        }
    }

    /// Σ u·q over one 32-byte half-group (8 vectors), as 16-bit sums of 4
    /// products: at most 4·15·127 = 7620.
    #[target_feature(enable = "avx2")]
    fn nibble_half_avx2(v: __m256i, mask: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
        let l = _mm256_maddubs_epi16(_mm256_and_si256(v, mask), lo);
        let h = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16::<4>(v), mask), hi);
        _mm256_add_epi16(l, h)
    }

    /// The upper bounds of 8 lanes from their dot products (see `Bounds`).
    #[target_feature(enable = "avx2")]
    fn upper_avx2(dots: __m256i, scales: &[f32], errs: &[f32], b: &Bounds<'_>) -> __m256 {
        // SAFETY: callers pass 8-lane slices.
        let (scales, errs) = unsafe {
            (
                _mm256_loadu_ps(scales.as_ptr()),
                _mm256_loadu_ps(errs.as_ptr()),
            )
        };
        let approx = _mm256_mul_ps(
            _mm256_mul_ps(_mm256_set1_ps(b.scale), scales),
            _mm256_sub_ps(_mm256_cvtepi32_ps(dots), _mm256_set1_ps(b.bias)),
        );
        let bound = _mm256_add_ps(
            _mm256_mul_ps(errs, _mm256_set1_ps(b.err_scale)),
            _mm256_set1_ps(b.err_offset),
        );
        _mm256_add_ps(approx, bound)
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn nibble_scan_avx2<F: FnMut(usize, &[f32; BLOCK]) -> f32>(
        codes: &[u8],
        groups: usize,
        words: &[i32],
        bounds: Bounds<'_>,
        mut cut: f32,
        mut each: F,
    ) {
        // 16-bit sums of up to 4 groups stay below 4·7620 = 30480 < 2^15,
        // so they are widened to 32 bits only once per 4 groups.
        const GROUPS_PER_WIDEN: usize = 4;
        let mask = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut ub = [0.0f32; BLOCK];
        for (b, block) in codes.chunks_exact(groups * GROUP_BYTES).enumerate() {
            let (mut acc_a, mut acc_b) = (_mm256_setzero_si256(), _mm256_setzero_si256());
            for (run, w) in block
                .chunks(GROUPS_PER_WIDEN * GROUP_BYTES)
                .zip(words.chunks(2 * GROUPS_PER_WIDEN))
            {
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
                    sum_a = _mm256_add_epi16(sum_a, nibble_half_avx2(va, mask, lo, hi));
                    sum_b = _mm256_add_epi16(sum_b, nibble_half_avx2(vb, mask, lo, hi));
                }
                acc_a = _mm256_add_epi32(acc_a, _mm256_madd_epi16(sum_a, ones));
                acc_b = _mm256_add_epi32(acc_b, _mm256_madd_epi16(sum_b, ones));
            }
            let base = b * BLOCK;
            let ends = [base, base + 8, base + BLOCK];
            let upper_a = upper_avx2(
                acc_a,
                &bounds.scales[ends[0]..ends[1]],
                &bounds.errs[ends[0]..ends[1]],
                &bounds,
            );
            let upper_b = upper_avx2(
                acc_b,
                &bounds.scales[ends[1]..ends[2]],
                &bounds.errs[ends[1]..ends[2]],
                &bounds,
            );
            let cut_v = _mm256_set1_ps(cut);
            let reached = _mm256_or_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(upper_a, cut_v),
                _mm256_cmp_ps::<_CMP_GE_OQ>(upper_b, cut_v),
            );
            if _mm256_movemask_ps(reached) != 0 {
                // SAFETY: `ub` holds 16 f32s.
                unsafe {
                    _mm256_storeu_ps(ub.as_mut_ptr(), upper_a);
                    _mm256_storeu_ps(ub.as_mut_ptr().add(8), upper_b);
                }
                cut = each(b, &ub);
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn i8_dot_vnni(a: &[i8], b: &[i8], b_sum: i32) -> i32 {
        // VNNI multiplies unsigned by signed bytes: flipping the sign bit
        // turns `a` into `a + 128`, and `128 · Σb` is taken off at the end.
        let flip = _mm512_set1_epi8(i8::MIN);
        let mut acc = [_mm512_setzero_si512(); 2];
        for (i, (x, y)) in a.chunks_exact(64).zip(b.chunks_exact(64)).enumerate() {
            // SAFETY: both chunks hold 64 bytes.
            let (x, y) = unsafe {
                (
                    _mm512_loadu_si512(x.as_ptr().cast()),
                    _mm512_loadu_si512(y.as_ptr().cast()),
                )
            };
            acc[i % 2] = _mm512_dpbusd_epi32(acc[i % 2], _mm512_xor_si512(x, flip), y);
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(acc[0], acc[1])) - 128 * b_sum
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn i8_dot_avx2(a: &[i8], b: &[i8]) -> i32 {
        // maddubs wants one unsigned operand: |a| · (b with a's sign). Codes
        // are within ±127, so a pair of products stays below 2^15.
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_si256();
        for (x, y) in a.chunks_exact(32).zip(b.chunks_exact(32)) {
            // SAFETY: both chunks hold 32 bytes.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(x.as_ptr().cast()),
                    _mm256_loadu_si256(y.as_ptr().cast()),
                )
            };
            let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
        }
        let sum = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let sum = _mm_add_epi32(sum, _mm_shuffle_epi32::<0b01_00_11_10>(sum));
        let sum = _mm_add_epi32(sum, _mm_shuffle_epi32::<0b10_11_00_01>(sum));
        _mm_cvtsi128_si32(sum)
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

    fn nibble_reference(block: &[u8], groups: usize, q8: &[i8]) -> [i32; BLOCK] {
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

    #[test]
    fn portable_is_always_available() {
        assert_eq!(available_isas()[0], Isa::Portable);
        assert!(available_isas().contains(&best_isa()));
    }

    fn words_of(q8: &[i8]) -> Vec<i32> {
        q8.chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]))
            .collect()
    }

    /// Bounds that are the dot products themselves (`ones` and `zeros`
    /// one per lane).
    fn identity<'a>(ones: &'a [f32], zeros: &'a [f32]) -> Bounds<'a> {
        Bounds {
            scales: ones,
            errs: zeros,
            scale: 1.0,
            bias: 0.0,
            err_scale: 0.0,
            err_offset: 0.0,
        }
    }

    #[test]
    fn nibble_scan_dot_products_are_exact_on_every_isa() {
        let mut rng = SplitMix64::new(3);
        // Odd group counts exercise the VNNI kernel's single-group tail and
        // the AVX2 kernel's partial run of groups.
        for groups in [1, 2, 3, 5, 48] {
            let blocks = 3;
            let codes = random_bytes(&mut rng, blocks * groups * GROUP_BYTES);
            // Extremes too: -127 and 127 with every code 15.
            let mut q8 = random_i8(&mut rng, groups * 8);
            q8[0] = 127;
            q8[1] = -127;
            let words = words_of(&q8);
            let (ones, zeros) = ([1.0; 3 * BLOCK], [0.0; 3 * BLOCK]);
            let bounds = identity(&ones, &zeros);
            for isa in available_isas() {
                let mut seen = Vec::new();
                nibble_scan(
                    isa,
                    &codes,
                    groups,
                    &words,
                    bounds,
                    f32::NEG_INFINITY,
                    |b, ub| {
                        seen.push((b, *ub));
                        f32::NEG_INFINITY
                    },
                );
                assert_eq!(seen.len(), blocks);
                for (b, ub) in seen {
                    let block = &codes[b * groups * GROUP_BYTES..(b + 1) * groups * GROUP_BYTES];
                    let want = nibble_reference(block, groups, &q8).map(|d| d as f32);
                    assert_eq!(ub, want, "{isa:?}");
                }
            }
        }
        let all_max = vec![0xFFu8; 48 * GROUP_BYTES];
        let words = vec![i32::from_le_bytes([127; 4]); 96];
        let (ones, zeros) = ([1.0; BLOCK], [0.0; BLOCK]);
        let bounds = identity(&ones, &zeros);
        for isa in available_isas() {
            nibble_scan(isa, &all_max, 48, &words, bounds, 0.0, |_, ub| {
                assert!(ub.iter().all(|&d| d == (384 * 15 * 127) as f32), "{isa:?}");
                0.0
            });
        }
    }

    #[test]
    fn nibble_scan_bounds_and_cuts_agree_on_every_isa() {
        let mut rng = SplitMix64::new(8);
        let (groups, blocks) = (6, 40);
        let codes = random_bytes(&mut rng, blocks * groups * GROUP_BYTES);
        let words = words_of(&random_i8(&mut rng, groups * 8));
        let scales: Vec<f32> = (0..blocks * BLOCK).map(|_| rng.next_f32() * 1e-3).collect();
        let errs: Vec<f32> = (0..blocks * BLOCK).map(|_| rng.next_f32() * 0.2).collect();
        let bounds = Bounds {
            scales: &scales,
            errs: &errs,
            scale: 0.01,
            bias: 3.5,
            err_scale: 1.01,
            err_offset: 0.011,
        };
        let run = |isa: Isa| {
            // The cut rises to each reported block's best bound, so which
            // blocks are reported depends on the bounds being identical.
            let mut seen = Vec::new();
            nibble_scan(
                isa,
                &codes,
                groups,
                &words,
                bounds,
                f32::NEG_INFINITY,
                |b, ub| {
                    seen.push((b, *ub));
                    ub.iter().fold(f32::NEG_INFINITY, |m, &u| m.max(u))
                },
            );
            seen
        };
        let want = run(Isa::Portable);
        assert!(want.len() > 1 && want.len() < blocks, "{}", want.len());
        for (b, ub) in &want {
            let block = &codes[b * groups * GROUP_BYTES..(b + 1) * groups * GROUP_BYTES];
            let q8: Vec<i8> = words
                .iter()
                .flat_map(|w| w.to_le_bytes().map(|c| c as i8))
                .collect();
            let dots = nibble_reference(block, groups, &q8);
            for j in 0..BLOCK {
                assert_eq!(ub[j], lane_bound(&bounds, b * BLOCK + j, dots[j]));
            }
        }
        for isa in available_isas() {
            assert_eq!(run(isa), want, "{isa:?}");
        }
    }

    #[test]
    fn i8_dot_is_exact_on_every_isa() {
        let mut rng = SplitMix64::new(4);
        for len in [64, 128, 384, 448] {
            for _ in 0..20 {
                let a = random_i8(&mut rng, len);
                let b = random_i8(&mut rng, len);
                let sum: i32 = b.iter().map(|&x| i32::from(x)).sum();
                let want = i8_dot_portable(&a, &b);
                for isa in available_isas() {
                    assert_eq!(i8_dot(isa, &a, &b, sum), want, "{isa:?}");
                }
            }
            let extreme = vec![127i8; len];
            let neg = vec![-127i8; len];
            let sum = -127 * len as i32;
            for isa in available_isas() {
                assert_eq!(i8_dot(isa, &extreme, &neg, sum), -127 * 127 * len as i32);
            }
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
