//! The bytes a connection sends: a per-connection pseudo-random stream (splitmix64), so an
//! echo that mixes up connections, drops, repeats or reorders bytes is caught.

/// An endless byte stream determined by its seed.
pub struct Pattern {
    state: u64,
}

impl Pattern {
    /// The stream of connection `id` (distinct ids give unrelated streams).
    pub fn new(id: u64) -> Pattern {
        Pattern { state: id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66_D1CE_4E5B }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Overwrites `buf` with the next `buf.len()` bytes of the stream.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let (mut a, mut b, mut c) = (Pattern::new(1), Pattern::new(1), Pattern::new(2));
        let (mut x, mut y, mut z) = ([0u8; 13], [0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        a.fill(&mut x);
        assert_ne!(x, y, "the stream moves on");
    }
}
