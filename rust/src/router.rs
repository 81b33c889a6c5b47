//! The token router's logic, free of any Python types so it can be unit-tested
//! with a plain `cargo test`.
//!
//! [`Router`] keeps, for the current chunk, every agent's transcript (one
//! `String` per agent, appended in place) and how many non-empty deltas it has
//! produced, in the order the agents were first seen. [`coalesce`] merges a
//! stream of `(agent, text)` deltas into UI frames without reordering them.

use crate::error::RouterError;

/// One agent's state within the current chunk.
#[derive(Debug, Clone, Default)]
struct Transcript {
    agent: String,
    text: String,
    count: usize,
}

/// Per-agent transcripts of the current chunk.
///
/// Agents are looked up by a linear scan of a small `Vec`: a chunk has a
/// handful of agents, for which this beats hashing, and the `Vec` also keeps
/// the first-seen order for free.
#[derive(Debug, Clone, Default)]
pub struct Router {
    slots: Vec<Transcript>,
    total: usize,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    fn slot(&self, agent: &str) -> Option<&Transcript> {
        self.slots.iter().find(|s| s.agent == agent)
    }

    fn slot_mut(&mut self, agent: &str) -> Option<&mut Transcript> {
        self.slots.iter_mut().find(|s| s.agent == agent)
    }

    /// Appends `text` to `agent`'s transcript and returns that agent's delta
    /// count afterwards.
    ///
    /// An empty `text` is ignored: it is not counted and does not register an
    /// agent never seen before; the current count is returned.
    pub fn append(&mut self, agent: &str, text: &str) -> usize {
        if text.is_empty() {
            return self.count(agent);
        }
        self.total += 1;
        if let Some(slot) = self.slot_mut(agent) {
            slot.text.push_str(text);
            slot.count += 1;
            return slot.count;
        }
        self.slots.push(Transcript {
            agent: agent.to_owned(),
            text: text.to_owned(),
            count: 1,
        });
        1
    }

    /// The agent's transcript so far (`""` for an agent never seen).
    pub fn text(&self, agent: &str) -> &str {
        self.slot(agent).map_or("", |s| s.text.as_str())
    }

    /// The agent's delta count so far (0 for an agent never seen).
    pub fn count(&self, agent: &str) -> usize {
        self.slot(agent).map_or(0, |s| s.count)
    }

    /// Deltas counted across all agents.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Number of agents seen in this chunk.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no agent has been seen in this chunk.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Agents in first-seen order.
    pub fn agents(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.slots.iter().map(|s| s.agent.as_str())
    }

    /// Forgets `agent`'s transcript and count: its generation restarts.
    ///
    /// The agent keeps its place in the first-seen order (with an empty
    /// transcript), so a UI's columns do not jump around when an agent is
    /// retried. Returns false, and does nothing, for an agent never seen.
    pub fn reset(&mut self, agent: &str) -> bool {
        let Some(slot) = self.slot_mut(agent) else {
            return false;
        };
        let dropped = slot.count;
        slot.text.clear();
        slot.count = 0;
        self.total -= dropped;
        true
    }

    /// Starts a new chunk: forgets every agent.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.total = 0;
    }

    /// Every agent's `(agent, transcript)`, in first-seen order.
    pub fn snapshot(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.slots
            .iter()
            .map(|s| (s.agent.as_str(), s.text.as_str()))
    }
}

/// A frame being built by [`coalesce`].
struct Frame {
    agent: String,
    text: String,
    chars: usize,
}

/// Merges runs of consecutive deltas of the same agent into `(agent, text)`
/// frames, never reordering anything.
///
/// A frame holds at most `max_chars` characters (Unicode scalar values, which
/// is what Python's `len` counts), unless a single delta is longer than that:
/// such a delta becomes a frame of its own, neither split nor merged. Empty
/// deltas carry nothing and are dropped (so they do not break a run).
///
/// Errors when `max_chars` is below 1.
pub fn coalesce<I>(deltas: I, max_chars: i64) -> Result<Vec<(String, String)>, RouterError>
where
    I: IntoIterator<Item = (String, String)>,
{
    let max = match usize::try_from(max_chars) {
        Ok(n) if n >= 1 => n,
        _ => return Err(RouterError::InvalidMaxChars(max_chars)),
    };
    let mut frames = Vec::new();
    let mut current: Option<Frame> = None;
    for (agent, text) in deltas {
        if text.is_empty() {
            continue;
        }
        let chars = text.chars().count();
        if let Some(frame) = current.as_mut() {
            if frame.agent == agent && frame.chars + chars <= max {
                frame.text.push_str(&text);
                frame.chars += chars;
                continue;
            }
        }
        if let Some(done) = current.replace(Frame { agent, text, chars }) {
            frames.push((done.agent, done.text));
        }
    }
    if let Some(done) = current {
        frames.push((done.agent, done.text));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(agent: &str, text: &str) -> (String, String) {
        (agent.to_owned(), text.to_owned())
    }

    // ---- Router -------------------------------------------------------------

    #[test]
    fn new_router_is_empty() {
        let r = Router::new();
        assert!(r.is_empty());
        assert_eq!(r.len(), 0);
        assert_eq!(r.total(), 0);
        assert_eq!(r.text("architect"), "");
        assert_eq!(r.count("architect"), 0);
        assert_eq!(r.agents().count(), 0);
        assert_eq!(r.snapshot().count(), 0);
    }

    #[test]
    fn append_counts_per_agent_and_total() {
        let mut r = Router::new();
        assert_eq!(r.append("architect", "Plan"), 1);
        assert_eq!(r.append("architect", ": "), 2);
        assert_eq!(r.append("coder", "fn"), 1);
        assert_eq!(r.append("architect", "go"), 3);
        assert_eq!(r.count("architect"), 3);
        assert_eq!(r.count("coder"), 1);
        assert_eq!(r.count("reviewer"), 0);
        assert_eq!(r.total(), 4);
        assert_eq!(r.text("architect"), "Plan: go");
        assert_eq!(r.text("coder"), "fn");
    }

    #[test]
    fn empty_delta_is_ignored() {
        let mut r = Router::new();
        assert_eq!(r.append("architect", ""), 0);
        assert!(r.is_empty(), "an empty delta must not register an agent");
        assert_eq!(r.total(), 0);
        r.append("architect", "a");
        assert_eq!(r.append("architect", ""), 1);
        assert_eq!(r.count("architect"), 1);
        assert_eq!(r.total(), 1);
        assert_eq!(r.text("architect"), "a");
    }

    #[test]
    fn multibyte_utf8_is_preserved_exactly() {
        let mut r = Router::new();
        let parts = ["日本語", "🦀", "👩‍💻", "e\u{301}", " ok ", "Ω≈ç√"];
        for p in parts {
            r.append("coder", p);
        }
        assert_eq!(r.text("coder"), parts.concat());
        assert_eq!(r.count("coder"), parts.len());
        r.append("日本", "語");
        assert_eq!(r.text("日本"), "語");
        assert_eq!(r.agents().collect::<Vec<_>>(), ["coder", "日本"]);
    }

    #[test]
    fn agents_in_first_seen_order() {
        let mut r = Router::new();
        for agent in ["reviewer", "architect", "reviewer", "coder", "architect"] {
            r.append(agent, "x");
        }
        assert_eq!(
            r.agents().collect::<Vec<_>>(),
            ["reviewer", "architect", "coder"]
        );
        assert_eq!(
            r.snapshot().collect::<Vec<_>>(),
            [("reviewer", "xx"), ("architect", "xx"), ("coder", "x")]
        );
    }

    #[test]
    fn reset_forgets_one_agent() {
        let mut r = Router::new();
        r.append("architect", "a1");
        r.append("coder", "c1");
        r.append("coder", "c2");
        r.append("reviewer", "r1");
        assert!(r.reset("coder"));
        assert_eq!(r.text("coder"), "");
        assert_eq!(r.count("coder"), 0);
        assert_eq!(r.total(), 2);
        // Others untouched, order kept.
        assert_eq!(r.text("architect"), "a1");
        assert_eq!(r.text("reviewer"), "r1");
        assert_eq!(
            r.agents().collect::<Vec<_>>(),
            ["architect", "coder", "reviewer"]
        );
        // Generation restarts from 1.
        assert_eq!(r.append("coder", "new"), 1);
        assert_eq!(r.text("coder"), "new");
        assert_eq!(r.total(), 3);
        // Unknown agent: no-op.
        assert!(!r.reset("nobody"));
        assert_eq!(r.total(), 3);
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn clear_forgets_everything() {
        let mut r = Router::new();
        r.append("architect", "a");
        r.append("coder", "c");
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.total(), 0);
        assert_eq!(r.text("architect"), "");
        assert_eq!(r.count("coder"), 0);
        // A new chunk sees a new first-seen order.
        r.append("coder", "c");
        r.append("architect", "a");
        assert_eq!(r.agents().collect::<Vec<_>>(), ["coder", "architect"]);
        assert_eq!(r.total(), 2);
    }

    #[test]
    fn large_transcript_appended_in_place() {
        let mut r = Router::new();
        for i in 0..10_000 {
            assert_eq!(r.append("coder", "ab"), i + 1);
        }
        assert_eq!(r.text("coder").len(), 20_000);
        assert_eq!(r.total(), 10_000);
    }

    // ---- coalesce -----------------------------------------------------------

    #[test]
    fn coalesce_empty_list() {
        assert_eq!(coalesce(Vec::new(), 4096).unwrap(), Vec::new());
        assert_eq!(coalesce(Vec::new(), 1).unwrap(), Vec::new());
    }

    #[test]
    fn coalesce_merges_runs_without_reordering() {
        let deltas = vec![
            d("a", "1"),
            d("a", "2"),
            d("b", "3"),
            d("a", "4"),
            d("a", "5"),
            d("a", "6"),
            d("c", "7"),
            d("b", "8"),
        ];
        assert_eq!(
            coalesce(deltas, 4096).unwrap(),
            vec![
                d("a", "12"),
                d("b", "3"),
                d("a", "456"),
                d("c", "7"),
                d("b", "8"),
            ]
        );
    }

    #[test]
    fn coalesce_respects_max_chars() {
        let deltas = vec![
            d("a", "ab"),
            d("a", "cd"),
            d("a", "e"),
            d("a", "fg"),
            d("b", "x"),
        ];
        assert_eq!(
            coalesce(deltas, 3).unwrap(),
            vec![d("a", "ab"), d("a", "cde"), d("a", "fg"), d("b", "x")]
        );
        let ones = vec![d("a", "x"), d("a", "y"), d("a", "z")];
        assert_eq!(
            coalesce(ones, 1).unwrap(),
            vec![d("a", "x"), d("a", "y"), d("a", "z")]
        );
    }

    #[test]
    fn coalesce_counts_characters_not_bytes() {
        // 3 characters, 9 bytes each.
        let deltas = vec![d("a", "日本語"), d("a", "日本語"), d("a", "🦀")];
        assert_eq!(
            coalesce(deltas, 6).unwrap(),
            vec![d("a", "日本語日本語"), d("a", "🦀")]
        );
    }

    #[test]
    fn coalesce_oversized_delta_is_its_own_frame() {
        let deltas = vec![d("a", "x"), d("a", "0123456789"), d("a", "y"), d("a", "z")];
        assert_eq!(
            coalesce(deltas, 4).unwrap(),
            vec![d("a", "x"), d("a", "0123456789"), d("a", "yz")]
        );
        let alone = vec![d("a", "0123456789")];
        assert_eq!(coalesce(alone, 4).unwrap(), vec![d("a", "0123456789")]);
    }

    #[test]
    fn coalesce_drops_empty_deltas() {
        let deltas = vec![d("a", "1"), d("b", ""), d("a", "2"), d("c", "")];
        assert_eq!(coalesce(deltas, 10).unwrap(), vec![d("a", "12")]);
    }

    #[test]
    fn coalesce_rejects_max_chars_below_one() {
        for bad in [0, -1, i64::MIN] {
            assert_eq!(
                coalesce(vec![d("a", "x")], bad),
                Err(RouterError::InvalidMaxChars(bad))
            );
        }
        assert_eq!(
            RouterError::InvalidMaxChars(0).to_string(),
            "max_chars must be at least 1, got 0"
        );
    }

    /// Tiny deterministic PRNG (xorshift64*) so the property test needs no crates.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> usize {
            usize::try_from(self.next() % n).unwrap()
        }
    }

    #[test]
    fn coalesce_properties_on_random_streams() {
        const AGENTS: [&str; 3] = ["architect", "coder", "reviewer"];
        const PIECES: [&str; 7] = ["", "a", "bc", "日本語", "🦀", "four", "longer piece"];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..500 {
            let max = rng.below(12) + 1;
            let n = rng.below(40);
            let deltas: Vec<(String, String)> = (0..n)
                .map(|_| d(AGENTS[rng.below(3)], PIECES[rng.below(7)]))
                .collect();
            let frames = coalesce(deltas.clone(), i64::try_from(max).unwrap()).unwrap();

            // Walk deltas and frames together: each frame must be exactly the
            // concatenation of the next run of same-agent non-empty deltas.
            let mut it = deltas.iter().filter(|(_, t)| !t.is_empty()).peekable();
            for (i, (agent, text)) in frames.iter().enumerate() {
                let mut built = String::new();
                let mut used = 0;
                while built.len() < text.len() {
                    let (a, t) = it.next().expect("frame has more text than deltas");
                    assert_eq!(a, agent, "frame mixes agents");
                    built.push_str(t);
                    used += 1;
                }
                assert_eq!(&built, text, "frame is not its deltas in order");
                let chars = text.chars().count();
                assert!(
                    chars <= max || used == 1,
                    "frame of {chars} chars > {max} from {used} deltas"
                );
                // Greedy: the next frame of the same agent could not have fit.
                if let Some((next_agent, _)) = frames.get(i + 1) {
                    if next_agent == agent {
                        let first_next = it.peek().expect("next frame has deltas").1.chars();
                        assert!(chars + first_next.count() > max, "frames not maximal");
                    }
                }
                assert!(!text.is_empty());
            }
            assert!(it.next().is_none(), "deltas left over after the last frame");
        }
    }
}
