//! The stored vectors by slot, in their unit f32 form: what exact scores
//! are computed from. Slots are dense: removing one moves the last into its
//! place, so memory follows the count.

use super::kernels::{f32_dot, Isa};
use super::quantize::Query;

#[derive(Debug, Clone)]
pub struct Vectors {
    dim: usize,
    unit: Vec<f32>,
}

impl Vectors {
    pub fn new(dim: usize) -> Self {
        Vectors {
            dim,
            unit: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.unit.len() / self.dim
    }

    /// Appends a unit vector.
    pub fn push(&mut self, unit: &[f32]) {
        debug_assert_eq!(unit.len(), self.dim);
        self.unit.extend_from_slice(unit);
    }

    /// Removes `slot`; the last slot's vector takes its place.
    pub fn swap_remove(&mut self, slot: usize) {
        let dim = self.dim;
        let last = self.len() - 1;
        if slot != last {
            self.unit
                .copy_within(last * dim..(last + 1) * dim, slot * dim);
        }
        self.unit.truncate(last * dim);
    }

    /// The unit vector in `slot`.
    pub fn unit(&self, slot: usize) -> &[f32] {
        &self.unit[slot * self.dim..(slot + 1) * self.dim]
    }

    /// All unit vectors, slot after slot.
    pub fn all_unit(&self) -> &[f32] {
        &self.unit
    }

    /// The exact score of `slot` for `query`.
    pub fn exact(&self, isa: Isa, slot: usize, query: &Query) -> f32 {
        f32_dot(isa, self.unit(slot), &query.unit)
    }

    /// Bytes held on the heap (capacity, not length: what the process pays).
    pub fn heap_bytes(&self) -> usize {
        self.unit.capacity() * 4
    }

    pub fn reserve(&mut self, additional: usize) {
        self.unit.reserve(additional * self.dim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_remove_moves_the_last_vector_into_the_hole() {
        let rows: Vec<Vec<f32>> = (0..4).map(|i| vec![i as f32; 5]).collect();
        let mut v = Vectors::new(5);
        for row in &rows {
            v.push(row);
        }
        v.swap_remove(1);
        assert_eq!(v.len(), 3);
        assert_eq!(v.unit(1), rows[3].as_slice());
        assert_eq!(v.unit(0), rows[0].as_slice());
        v.swap_remove(2);
        assert_eq!(v.len(), 2);
        assert_eq!(v.all_unit(), [rows[0].clone(), rows[3].clone()].concat());
    }
}
