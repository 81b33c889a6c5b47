//! A set of stored vectors whose 4-bit codes are scanned together: the whole
//! index in exact mode, one inverted list in approximate mode.
//!
//! Codes live in blocks of [`BLOCK`] vectors in the layout of
//! [`super::kernels::nibble_scan`]; what the scan needs per member besides
//! (slot, namespace, 4-bit scale and error) sits next to it in `members`, so
//! a scan reads memory front to back. Removing a member moves the last one
//! into its place, so blocks stay full.

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
    codes: Vec<u8>,
    members: Vec<Member>,
}

impl Partition {
    pub fn new(dims: &Dims) -> Self {
        Partition {
            groups: dims.groups,
            codes: Vec::new(),
            members: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn groups(&self) -> usize {
        self.groups
    }

    fn block_bytes(&self) -> usize {
        self.groups * GROUP_BYTES
    }

    /// Blocks in use (the last one possibly part full).
    pub fn blocks(&self) -> usize {
        self.members.len().div_ceil(BLOCK)
    }

    /// The codes of a range of blocks.
    pub fn block_codes(&self, blocks: Range<usize>) -> &[u8] {
        &self.codes[blocks.start * self.block_bytes()..blocks.end * self.block_bytes()]
    }

    /// The members of a block (up to [`BLOCK`]).
    pub fn block_members(&self, block: usize) -> &[Member] {
        let start = block * BLOCK;
        &self.members[start..self.members.len().min(start + BLOCK)]
    }

    pub fn member(&self, pos: usize) -> &Member {
        &self.members[pos]
    }

    fn lane_offsets(&self, pos: usize) -> impl Iterator<Item = usize> {
        let base = (pos / BLOCK) * self.block_bytes() + (pos % BLOCK) * 4;
        (0..self.groups).map(move |g| base + g * GROUP_BYTES)
    }

    fn write_lane(&mut self, pos: usize, lane: &[u8]) {
        let offsets: Vec<usize> = self.lane_offsets(pos).collect();
        for (off, bytes) in offsets.into_iter().zip(lane.chunks_exact(4)) {
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
        let pos = self.members.len();
        if pos.is_multiple_of(BLOCK) {
            let new_len = self.codes.len() + self.block_bytes();
            self.codes.resize(new_len, 0);
        }
        self.members.push(member);
        self.write_lane(pos, lane);
        pos
    }

    /// Removes the member at `pos`. If another member moved into `pos` (the
    /// last one), returns its slot, whose recorded position must change.
    pub fn swap_remove(&mut self, pos: usize) -> Option<u32> {
        let last = self.members.len() - 1;
        if pos != last {
            let lane = self.lane(last);
            self.write_lane(pos, &lane);
        }
        // Zero the freed lane: a part-full block then scores its empty lanes
        // as 0, and a partition's bytes never depend on its history.
        let zeros = vec![0u8; self.groups * 4];
        self.write_lane(last, &zeros);
        self.members.swap_remove(pos);
        if last.is_multiple_of(BLOCK) {
            let new_len = self.codes.len() - self.block_bytes();
            self.codes.truncate(new_len);
        }
        (pos != last).then(|| self.members[pos].slot)
    }

    /// Records that the member at `pos` is now stored in `slot`.
    pub fn set_slot(&mut self, pos: usize, slot: u32) {
        self.members[pos].slot = slot;
    }

    pub fn heap_bytes(&self) -> usize {
        self.codes.capacity() + self.members.capacity() * std::mem::size_of::<Member>()
    }

    pub fn shrink_to_fit(&mut self) {
        self.codes.shrink_to_fit();
        self.members.shrink_to_fit();
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
        assert_eq!(p.block_members(2).len(), 8);

        // Removing from the middle moves the last member (slot 39) in.
        assert_eq!(p.swap_remove(5), Some(39));
        assert_eq!(p.member(5).slot, 39);
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
