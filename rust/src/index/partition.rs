//! A set of stored vectors whose 4-bit codes are scanned together: the whole
//! index in exact mode, one inverted list in approximate mode.
//!
//! Codes live in blocks of [`BLOCK`] vectors in the layout of
//! [`super::kernels::nibble_scan`]. What the scan needs per member besides
//! (4-bit scale and error, namespace, slot) is kept in arrays by position,
//! padded to whole blocks, so the scan reads memory front to back and the
//! bounds of a block compute as one vector operation. Removing a member
//! moves the last one into its place, so blocks stay full.

use std::ops::Range;

use super::kernels::{BLOCK, GROUP_BYTES};
use super::quantize::{Dims, Quantized};

/// What the scan needs about one member besides its codes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Member {
    /// Where the vector is stored ([`super::vectors::Vectors`]).
    pub slot: u32,
    /// Its namespace (0: none).
    pub namespace: u32,
    /// Its 4-bit scale and error.
    pub nibble: Quantized,
}

#[derive(Debug, Clone)]
pub struct Partition {
    groups: usize,
    len: usize,
    codes: Vec<u8>,
    /// 4-bit scale and error by position, padded with zeros to whole blocks.
    scales: Vec<f32>,
    errs: Vec<f32>,
    namespaces: Vec<u32>,
    slots: Vec<u32>,
}

/// The per-member arrays of one block.
pub struct BlockInfo<'a> {
    /// [`BLOCK`] long (padding included).
    pub errs: &'a [f32; BLOCK],
    /// Of the members in use only.
    pub namespaces: &'a [u32],
    pub slots: &'a [u32],
}

impl Partition {
    pub fn new(dims: &Dims) -> Self {
        Partition {
            groups: dims.groups,
            len: 0,
            codes: Vec::new(),
            scales: Vec::new(),
            errs: Vec::new(),
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

    /// The codes of a range of blocks.
    pub fn block_codes(&self, blocks: Range<usize>) -> &[u8] {
        &self.codes[blocks.start * self.block_bytes()..blocks.end * self.block_bytes()]
    }

    /// The 4-bit scales and errors of a range of blocks, one per lane.
    pub fn lane_bounds(&self, blocks: Range<usize>) -> (&[f32], &[f32]) {
        let lanes = blocks.start * BLOCK..blocks.end * BLOCK;
        (&self.scales[lanes.clone()], &self.errs[lanes])
    }

    /// The per-member arrays of a block.
    pub fn block_info(&self, block: usize) -> BlockInfo<'_> {
        let start = block * BLOCK;
        let end = self.len.min(start + BLOCK);
        BlockInfo {
            errs: self.errs[start..start + BLOCK]
                .try_into()
                .expect("blocks are whole"),
            namespaces: &self.namespaces[start..end],
            slots: &self.slots[start..end],
        }
    }

    pub fn member(&self, pos: usize) -> Member {
        Member {
            slot: self.slots[pos],
            namespace: self.namespaces[pos],
            nibble: Quantized {
                scale: self.scales[pos],
                err: self.errs[pos],
            },
        }
    }

    fn set_member(&mut self, pos: usize, m: Member) {
        self.slots[pos] = m.slot;
        self.namespaces[pos] = m.namespace;
        self.scales[pos] = m.nibble.scale;
        self.errs[pos] = m.nibble.err;
    }

    fn lane_offsets(&self, pos: usize) -> impl Iterator<Item = usize> {
        let base = (pos / BLOCK) * self.block_bytes() + (pos % BLOCK) * 4;
        (0..self.groups).map(move |g| base + g * GROUP_BYTES)
    }

    fn write_lane(&mut self, pos: usize, lane: &[u8]) {
        let base = (pos / BLOCK) * self.block_bytes() + (pos % BLOCK) * 4;
        for (g, bytes) in lane.chunks_exact(4).enumerate() {
            let off = base + g * GROUP_BYTES;
            self.codes[off..off + 4].copy_from_slice(bytes);
        }
    }

    /// The 4-bit codes of the member at `pos`, as one lane
    /// ([`super::quantize::encode_nibbles`] layout).
    pub fn lane(&self, pos: usize) -> Vec<u8> {
        let mut lane = Vec::with_capacity(self.groups * 4);
        for off in self.lane_offsets(pos) {
            lane.extend_from_slice(&self.codes[off..off + 4]);
        }
        lane
    }

    /// Adds a member; returns its position.
    pub fn push(&mut self, member: Member, lane: &[u8]) -> usize {
        debug_assert_eq!(lane.len(), self.groups * 4);
        let pos = self.len;
        if pos.is_multiple_of(BLOCK) {
            let new_len = self.codes.len() + self.block_bytes();
            self.codes.resize(new_len, 0);
            self.scales.resize(pos + BLOCK, 0.0);
            self.errs.resize(pos + BLOCK, 0.0);
        }
        self.len += 1;
        self.slots.push(0);
        self.namespaces.push(0);
        self.set_member(pos, member);
        self.write_lane(pos, lane);
        pos
    }

    /// Removes the member at `pos`. If another member moved into `pos` (the
    /// last one), returns its slot, whose recorded position must change.
    pub fn swap_remove(&mut self, pos: usize) -> Option<u32> {
        let last = self.len - 1;
        if pos != last {
            let lane = self.lane(last);
            self.write_lane(pos, &lane);
            let moved = self.member(last);
            self.set_member(pos, moved);
        }
        // Zero the freed lane: a part-full block then scores its empty lanes
        // as 0, and a partition's bytes never depend on its history.
        let zeros = vec![0u8; self.groups * 4];
        self.write_lane(last, &zeros);
        self.scales[last] = 0.0;
        self.errs[last] = 0.0;
        self.slots.pop();
        self.namespaces.pop();
        self.len = last;
        if last.is_multiple_of(BLOCK) {
            let new_len = self.codes.len() - self.block_bytes();
            self.codes.truncate(new_len);
            self.scales.truncate(last);
            self.errs.truncate(last);
        }
        (pos != last).then(|| self.slots[pos])
    }

    /// Records that the member at `pos` is now stored in `slot`.
    pub fn set_slot(&mut self, pos: usize, slot: u32) {
        self.slots[pos] = slot;
    }

    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity()
            + 4 * (self.scales.capacity()
                + self.errs.capacity()
                + self.namespaces.capacity()
                + self.slots.capacity())
    }

    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.scales.shrink_to_fit();
        self.errs.shrink_to_fit();
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
            namespace: 0,
            nibble: Quantized {
                scale: slot as f32,
                err: 0.0,
            },
        }
    }

    fn lane_of(slot: u32, groups: usize) -> Vec<u8> {
        (0..groups * 4)
            .map(|i| (slot as usize * 7 + i) as u8)
            .collect()
    }

    #[test]
    fn push_and_swap_remove_keep_lanes_with_their_members() {
        let dims = Dims::new(20).unwrap();
        let mut p = Partition::new(&dims);
        for slot in 0..40u32 {
            assert_eq!(
                p.push(member(slot), &lane_of(slot, dims.groups)),
                slot as usize
            );
        }
        assert_eq!(p.blocks(), 3);
        assert_eq!(p.block_codes(0..3).len(), 3 * dims.groups * GROUP_BYTES);
        assert_eq!(p.block_info(2).slots.len(), 8);
        let (scales, _) = p.lane_bounds(2..3);
        assert_eq!((scales[7], scales[8]), (39.0, 0.0));

        // Removing from the middle moves the last member (slot 39) in.
        assert_eq!(p.swap_remove(5), Some(39));
        assert_eq!(p.member(5), member(39));
        assert_eq!(p.lane(5), lane_of(39, dims.groups));
        // Removing the last one moves nothing.
        assert_eq!(p.swap_remove(p.len() - 1), None);
        for _ in 0..6 {
            p.swap_remove(0);
        }
        assert_eq!(p.len(), 32);
        assert_eq!(p.blocks(), 2);
        assert_eq!(p.block_codes(0..2).len(), 2 * dims.groups * GROUP_BYTES);
        for pos in 0..p.len() {
            let slot = p.member(pos).slot;
            assert_eq!(p.lane(pos), lane_of(slot, dims.groups), "pos {pos}");
        }
        p.set_slot(3, 1000);
        assert_eq!(p.member(3).slot, 1000);
    }

    #[test]
    fn freed_lanes_are_zeroed() {
        let dims = Dims::new(8).unwrap();
        let mut p = Partition::new(&dims);
        for slot in 0..3 {
            p.push(member(slot), &[0xAB; 4]);
        }
        p.swap_remove(0);
        let block = p.block_codes(0..1);
        assert_eq!(&block[8..12], &[0, 0, 0, 0]);
        assert_eq!(&block[0..8], &[0xAB; 8]);
    }
}
