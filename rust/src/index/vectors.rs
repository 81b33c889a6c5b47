//! The stored vectors, by slot: each one's unit f32 form (for exact scores)
//! and its int8 codes (for the second, tighter estimate). Slots are dense:
//! removing one moves the last into its place, so memory follows the count.

use super::kernels::{f32_dot, i8_dot, Isa};
use super::quantize::{Batch, Dims, Quantized, Query};

#[derive(Debug, Clone)]
pub struct Vectors {
    dims: Dims,
    unit: Vec<f32>,
    codes8: Vec<i8>,
    int8: Vec<Quantized>,
}

impl Vectors {
    pub fn new(dims: Dims) -> Self {
        Vectors {
            dims,
            unit: Vec::new(),
            codes8: Vec::new(),
            int8: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.int8.len()
    }

    /// Appends row `i` of `batch`.
    pub fn push(&mut self, batch: &Batch, i: usize) {
        let Dims { dim, stride8, .. } = self.dims;
        self.unit
            .extend_from_slice(&batch.unit[i * dim..(i + 1) * dim]);
        self.codes8
            .extend_from_slice(&batch.codes8[i * stride8..(i + 1) * stride8]);
        self.int8.push(batch.int8[i]);
    }

    /// Removes `slot`; the last slot's vector takes its place.
    pub fn swap_remove(&mut self, slot: usize) {
        let Dims { dim, stride8, .. } = self.dims;
        let last = self.len() - 1;
        if slot != last {
            self.unit
                .copy_within(last * dim..(last + 1) * dim, slot * dim);
            self.codes8
                .copy_within(last * stride8..(last + 1) * stride8, slot * stride8);
        }
        self.unit.truncate(last * dim);
        self.codes8.truncate(last * stride8);
        self.int8.swap_remove(slot);
    }

    /// The unit vector in `slot`.
    pub fn unit(&self, slot: usize) -> &[f32] {
        &self.unit[slot * self.dims.dim..(slot + 1) * self.dims.dim]
    }

    /// All unit vectors, slot after slot.
    pub fn all_unit(&self) -> &[f32] {
        &self.unit
    }

    /// The exact score of `slot` for `query`.
    pub fn exact(&self, isa: Isa, slot: usize, query: &Query) -> f32 {
        f32_dot(isa, self.unit(slot), &query.unit)
    }

    /// The int8 estimate of `slot`'s score and its error bound.
    pub fn estimate8(&self, isa: Isa, slot: usize, query: &Query) -> (f32, f32) {
        let stride = self.dims.stride8;
        let codes = &self.codes8[slot * stride..(slot + 1) * stride];
        let dot = i8_dot(isa, codes, &query.q8, query.sum());
        let Quantized { scale, err } = self.int8[slot];
        query.i8_estimate(dot, scale, err)
    }

    /// Bytes held on the heap (capacity, not length: what the process pays).
    pub fn heap_bytes(&self) -> usize {
        self.unit.capacity() * 4
            + self.codes8.capacity()
            + self.int8.capacity() * std::mem::size_of::<Quantized>()
    }

    pub fn reserve(&mut self, additional: usize) {
        self.unit.reserve(additional * self.dims.dim);
        self.codes8.reserve(additional * self.dims.stride8);
        self.int8.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::kernels::best_isa;
    use crate::index::quantize::tests::random_unit;
    use crate::index::rng::SplitMix64;

    #[test]
    fn swap_remove_moves_the_last_vector_into_the_hole() {
        let dims = Dims::new(5).unwrap();
        let mut rng = SplitMix64::new(1);
        let rows: Vec<Vec<f32>> = (0..4).map(|_| random_unit(&mut rng, 5)).collect();
        let batch = Batch::encode(&dims, rows.concat());
        let mut v = Vectors::new(dims);
        for i in 0..4 {
            v.push(&batch, i);
        }
        let q = Query::from_unit(&dims, rows[3].clone());
        let before = v.estimate8(best_isa(), 3, &q);
        v.swap_remove(1);
        assert_eq!(v.len(), 3);
        assert_eq!(v.unit(1), rows[3].as_slice());
        assert_eq!(v.unit(0), rows[0].as_slice());
        assert_eq!(v.estimate8(best_isa(), 1, &q), before);
        v.swap_remove(2);
        assert_eq!(v.len(), 2);
        assert_eq!(v.all_unit(), [rows[0].clone(), rows[3].clone()].concat());
    }
}
