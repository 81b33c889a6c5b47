//! A set of stored vectors whose codes are scanned together: one list of
//! the index (or the whole index while it is small).
//!
//! Both planes of codes live in blocks of [`BLOCK`] vectors in the layout
//! of [`super::kernels::scan`]. What the scan needs per member besides
//! (int8 scale, 4-bit and int8 errors, namespace, slot) is kept in arrays
//! by position, padded to whole blocks, so the scan reads memory front to
//! back and the bounds of a block compute as one vector operation. Removing
//! a member moves the last one into its place, so blocks stay full.

use std::ops::Range;

use super::kernels::{BLOCK, GROUP_BYTES};
use super::quantize::{Code, Dims};

/// What the scan needs about one member besides its codes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Member {
    /// Where the vector is stored ([`super::vectors::Vectors`]).
    pub slot: u32,
    /// Its namespace (0: none).
    pub namespace: u32,
    pub code: Code,
}

/// The per-lane arrays of a range of blocks.
pub struct Lanes<'a> {
    pub scales: &'a [f32],
    pub errs4: &'a [f32],
    pub errs8: &'a [f32],
}

#[derive(Debug, Clone)]
pub struct Partition {
    groups: usize,
    len: usize,
    high: Vec<u8>,
    low: Vec<u8>,
    /// Per position, padded with zeros to whole blocks.
    scales: Vec<f32>,
    errs4: Vec<f32>,
    errs8: Vec<f32>,
    /// Per position, members in use only.
    namespaces: Vec<u32>,
    slots: Vec<u32>,
}

impl Partition {
    pub fn new(dims: &Dims) -> Self {
        Partition {
            groups: dims.groups,
            len: 0,
            high: Vec::new(),
            low: Vec::new(),
            scales: Vec::new(),
            errs4: Vec::new(),
            errs8: Vec::new(),
            namespaces: Vec::new(),
            slots: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn groups(&self) -> usize {
        self.groups
    }

    fn block_bytes(&self) -> usize {
        self.groups * GROUP_BYTES
    }

    /// Blocks in use (the last one possibly part full).
    pub fn blocks(&self) -> usize {
        self.len.div_ceil(BLOCK)
    }

    /// Both planes of a range of blocks.
    pub fn planes(&self, blocks: Range<usize>) -> (&[u8], &[u8]) {
        let bytes = blocks.start * self.block_bytes()..blocks.end * self.block_bytes();
        (&self.high[bytes.clone()], &self.low[bytes])
    }

    /// The per-lane arrays of a range of blocks.
    pub fn lanes(&self, blocks: Range<usize>) -> Lanes<'_> {
        let lanes = blocks.start * BLOCK..blocks.end * BLOCK;
        Lanes {
            scales: &self.scales[lanes.clone()],
            errs4: &self.errs4[lanes.clone()],
            errs8: &self.errs8[lanes],
        }
    }

    /// The slots and namespaces of the members of a block.
    pub fn block_members(&self, block: usize) -> (&[u32], &[u32]) {
        let members = block * BLOCK..self.len.min((block + 1) * BLOCK);
        (&self.slots[members.clone()], &self.namespaces[members])
    }

    pub fn member(&self, pos: usize) -> Member {
        Member {
            slot: self.slots[pos],
            namespace: self.namespaces[pos],
            code: Code {
                scale: self.scales[pos],
                err4: self.errs4[pos],
                err8: self.errs8[pos],
            },
        }
    }

    fn set_member(&mut self, pos: usize, m: Member) {
        self.slots[pos] = m.slot;
        self.namespaces[pos] = m.namespace;
        self.scales[pos] = m.code.scale;
        self.errs4[pos] = m.code.err4;
        self.errs8[pos] = m.code.err8;
    }

    /// Byte offsets of a member's 4 bytes in each group of a plane.
    fn lane_offsets(&self, pos: usize) -> impl Iterator<Item = usize> {
        let base = (pos / BLOCK) * self.block_bytes() + (pos % BLOCK) * 4;
        (0..self.groups).map(move |g| base + g * GROUP_BYTES)
    }

    fn write_lanes(&mut self, pos: usize, high: &[u8], low: &[u8]) {
        let base = (pos / BLOCK) * self.block_bytes() + (pos % BLOCK) * 4;
        for (g, (h, l)) in high.chunks_exact(4).zip(low.chunks_exact(4)).enumerate() {
            let off = base + g * GROUP_BYTES;
            self.high[off..off + 4].copy_from_slice(h);
            self.low[off..off + 4].copy_from_slice(l);
        }
    }

    /// The codes of the member at `pos`, one lane per plane (the layout of
    /// [`super::quantize::encode`]).
    pub fn lanes_of(&self, pos: usize) -> (Vec<u8>, Vec<u8>) {
        let mut high = Vec::with_capacity(self.groups * 4);
        let mut low = Vec::with_capacity(self.groups * 4);
        for off in self.lane_offsets(pos) {
            high.extend_from_slice(&self.high[off..off + 4]);
            low.extend_from_slice(&self.low[off..off + 4]);
        }
        (high, low)
    }

    /// Adds a member; returns its position.
    pub fn push(&mut self, member: Member, high: &[u8], low: &[u8]) -> usize {
        debug_assert_eq!(high.len(), self.groups * 4);
        let pos = self.len;
        if pos.is_multiple_of(BLOCK) {
            let bytes = self.high.len() + self.block_bytes();
            self.high.resize(bytes, 0);
            self.low.resize(bytes, 0);
            self.scales.resize(pos + BLOCK, 0.0);
            self.errs4.resize(pos + BLOCK, 0.0);
            self.errs8.resize(pos + BLOCK, 0.0);
        }
        self.len += 1;
        self.slots.push(0);
        self.namespaces.push(0);
        self.set_member(pos, member);
        self.write_lanes(pos, high, low);
        pos
    }

    /// Removes the member at `pos`. If another member moved into `pos` (the
    /// last one), returns its slot, whose recorded position must change.
    pub fn swap_remove(&mut self, pos: usize) -> Option<u32> {
        let last = self.len - 1;
        if pos != last {
            let (high, low) = self.lanes_of(last);
            self.write_lanes(pos, &high, &low);
            let moved = self.member(last);
            self.set_member(pos, moved);
        }
        // Zero the freed lane: a part-full block then scores its empty lanes
        // as 0, and a partition's bytes never depend on its history.
        let zeros = vec![0u8; self.groups * 4];
        self.write_lanes(last, &zeros, &zeros);
        self.scales[last] = 0.0;
        self.errs4[last] = 0.0;
        self.errs8[last] = 0.0;
        self.slots.pop();
        self.namespaces.pop();
        self.len = last;
        if last.is_multiple_of(BLOCK) {
            let bytes = self.high.len() - self.block_bytes();
            self.high.truncate(bytes);
            self.low.truncate(bytes);
            self.scales.truncate(last);
            self.errs4.truncate(last);
            self.errs8.truncate(last);
        }
        (pos != last).then(|| self.slots[pos])
    }

    /// Records that the member at `pos` is now stored in `slot`.
    pub fn set_slot(&mut self, pos: usize, slot: u32) {
        self.slots[pos] = slot;
    }

    pub fn heap_bytes(&self) -> usize {
        self.high.capacity()
            + self.low.capacity()
            + 4 * (self.scales.capacity()
                + self.errs4.capacity()
                + self.errs8.capacity()
                + self.namespaces.capacity()
                + self.slots.capacity())
    }

    pub fn shrink_to_fit(&mut self) {
        self.high.shrink_to_fit();
        self.low.shrink_to_fit();
        self.scales.shrink_to_fit();
        self.errs4.shrink_to_fit();
        self.errs8.shrink_to_fit();
        self.namespaces.shrink_to_fit();
        self.slots.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(slot: u32) -> Member {
        Member {
            slot,
            namespace: slot % 3,
            code: Code {
                scale: slot as f32,
                err4: 0.5,
                err8: 0.25,
            },
        }
    }

    fn lanes_for(slot: u32, groups: usize) -> (Vec<u8>, Vec<u8>) {
        let high = (0..groups * 4)
            .map(|i| (slot as usize * 7 + i) as u8)
            .collect();
        let low = (0..groups * 4)
            .map(|i| (slot as usize * 5 + 3 * i) as u8)
            .collect();
        (high, low)
    }

    #[test]
    fn push_and_swap_remove_keep_codes_with_their_members() {
        let dims = Dims::new(20).unwrap();
        let mut p = Partition::new(&dims);
        for slot in 0..40u32 {
            let (h, l) = lanes_for(slot, dims.groups);
            assert_eq!(p.push(member(slot), &h, &l), slot as usize);
        }
        assert_eq!(p.blocks(), 3);
        let (high, low) = p.planes(0..3);
        assert_eq!(
            (high.len(), low.len()),
            (3 * dims.groups * GROUP_BYTES, 3 * dims.groups * GROUP_BYTES)
        );
        assert_eq!(p.block_members(2).0.len(), 8);
        let lanes = p.lanes(2..3);
        assert_eq!((lanes.scales[7], lanes.scales[8]), (39.0, 0.0));
        assert_eq!((lanes.errs4[7], lanes.errs8[7]), (0.5, 0.25));

        // Removing from the middle moves the last member (slot 39) in.
        assert_eq!(p.swap_remove(5), Some(39));
        assert_eq!(p.member(5), member(39));
        assert_eq!(p.lanes_of(5), lanes_for(39, dims.groups));
        // Removing the last one moves nothing.
        assert_eq!(p.swap_remove(p.len() - 1), None);
        for _ in 0..6 {
            p.swap_remove(0);
        }
        assert_eq!(p.len(), 32);
        assert_eq!(p.blocks(), 2);
        assert_eq!(p.planes(0..2).0.len(), 2 * dims.groups * GROUP_BYTES);
        for pos in 0..p.len() {
            let m = p.member(pos);
            assert_eq!(m, member(m.slot));
            assert_eq!(p.lanes_of(pos), lanes_for(m.slot, dims.groups), "pos {pos}");
        }
        p.set_slot(3, 1000);
        assert_eq!(p.member(3).slot, 1000);
    }

    #[test]
    fn freed_lanes_are_zeroed() {
        let dims = Dims::new(8).unwrap();
        let mut p = Partition::new(&dims);
        for slot in 0..3 {
            p.push(member(slot), &[0xAB; 4], &[0xCD; 4]);
        }
        p.swap_remove(0);
        let (high, low) = p.planes(0..1);
        assert_eq!((&high[8..12], &low[8..12]), (&[0u8; 4][..], &[0u8; 4][..]));
        assert_eq!((&high[0..8], &low[0..8]), (&[0xAB; 8][..], &[0xCD; 8][..]));
        assert_eq!(p.lanes(0..1).scales[2], 0.0);
    }
}
