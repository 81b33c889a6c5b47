//! The token router's logic, free of any Python types so it can be unit-tested
//! with a plain `cargo test`.
//!
//! [`Router`] does three things for the agents of a collaboration:
//!
//! * **Transcripts (fan-out).** For the current chunk, every agent's text so
//!   far (one `String` per agent, appended in place) and how many non-empty
//!   deltas it has produced, in the order the agents were first seen. Agents
//!   that read another one take its partial text from here.
//! * **Fan-in log.** Every delta pushed, from any agent, joins one ordered log
//!   with a sequence number (0, 1, 2, ... in push order) and a timestamp that
//!   never decreases along the log. A consumer drains the log as frames: runs
//!   of consecutive deltas of one agent merged, never reordered. A drain can
//!   stop before a given sequence number (a *barrier*), which is how a caller
//!   keeps other events in their place between the deltas.
//! * **Flow control.** A hold point (while held, nothing pushed after it is
//!   drained, and nothing is lost), a capacity of pending deltas past which
//!   producers are told to wait (backpressure), and a frame policy that says
//!   when the next drain is due (an interval, or enough deltas waiting).
//!
//! Times are plain `f64` seconds on whatever monotonic clock the caller uses;
//! this module never reads a clock itself, so its tests need no sleeping.
//!
//! [`coalesce`] merges a list of `(agent, text)` deltas into frames the same
//! way, for callers that keep their own list.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::RouterError;

/// Index of an agent in the router's registry of names (stable for the
/// router's lifetime, across chunks).
type AgentId = usize;

/// One agent's state within the current chunk.
#[derive(Debug, Clone)]
struct Transcript {
    agent: AgentId,
    text: String,
    count: usize,
}

/// One pending delta of the fan-in log. Its text is the next `len` bytes of
/// the router's `pending_text`, after the deltas before it.
#[derive(Debug, Clone, Copy)]
struct Delta {
    seq: u64,
    t: f64,
    agent: AgentId,
    len: usize,
}

/// When a drain of the fan-in log is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FramePolicy {
    interval_s: f64,
    max_deltas: usize,
}

impl FramePolicy {
    /// At most one drain per `interval_s` seconds, unless `max_deltas` deltas
    /// are waiting: then at once. An interval of 0 makes every drain due as
    /// soon as anything is waiting.
    ///
    /// Errors when the interval is negative or not finite, or `max_deltas` is
    /// below 1.
    pub fn new(interval_s: f64, max_deltas: i64) -> Result<Self, RouterError> {
        if !(interval_s.is_finite() && interval_s >= 0.0) {
            return Err(RouterError::InvalidFrameInterval(interval_s));
        }
        let max_deltas = match usize::try_from(max_deltas) {
            Ok(n) if n >= 1 => n,
            _ => return Err(RouterError::InvalidFrameDeltas(max_deltas)),
        };
        Ok(Self {
            interval_s,
            max_deltas,
        })
    }

    /// Seconds between two drains.
    pub fn interval_s(&self) -> f64 {
        self.interval_s
    }

    /// Waiting deltas that make a drain due before the interval has passed.
    pub fn max_deltas(&self) -> usize {
        self.max_deltas
    }
}

impl Default for FramePolicy {
    /// Every drain due as soon as anything is waiting.
    fn default() -> Self {
        Self {
            interval_s: 0.0,
            max_deltas: 1,
        }
    }
}

/// A run of consecutive deltas of one agent, merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The agent that wrote it.
    pub agent: Arc<str>,
    /// Its deltas' text, concatenated in order.
    pub text: String,
    /// Sequence number of its first delta; the others follow without a gap.
    pub seq: u64,
    /// How many deltas it merges.
    pub count: usize,
    /// Timestamp of its first delta.
    pub t: f64,
}

/// Transcripts, fan-in log and flow control of one collaboration (see the
/// module's documentation).
///
/// Agents are looked up by a linear scan of a small `Vec`: a collaboration
/// has a handful of agents, for which this beats hashing, and the `Vec` also
/// keeps the first-seen order for free.
#[derive(Debug, Clone)]
pub struct Router {
    /// Every agent ever pushed, by id; never shrinks, so the pending deltas'
    /// ids stay valid across `clear`.
    names: Vec<Arc<str>>,
    /// Index into `transcripts` of each agent id, for the current chunk.
    slot_of: Vec<Option<usize>>,
    transcripts: Vec<Transcript>,
    total: usize,

    log: VecDeque<Delta>,
    /// The text of the pending deltas back to back, from byte `text_start` on
    /// (what is before was drained and is dropped lazily, see `consume`).
    pending_text: String,
    text_start: usize,
    next_seq: u64,
    last_t: f64,

    /// Deltas from this sequence number on are held.
    held_from: Option<u64>,
    capacity: usize,
    policy: FramePolicy,
    /// When the last non-empty drain happened (for the frame interval).
    last_drain: Option<f64>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new(usize::MAX, FramePolicy::default())
    }
}

impl Router {
    /// An empty router telling producers to wait once `capacity` deltas are
    /// pending (see [`Router::push`]), with the given frame policy.
    pub fn new(capacity: usize, policy: FramePolicy) -> Self {
        Self {
            names: Vec::new(),
            slot_of: Vec::new(),
            transcripts: Vec::new(),
            total: 0,
            log: VecDeque::new(),
            pending_text: String::new(),
            text_start: 0,
            next_seq: 0,
            last_t: f64::NEG_INFINITY,
            held_from: None,
            capacity: capacity.max(1),
            policy,
            last_drain: None,
        }
    }

    /// Checks a capacity given by a caller (at least 1).
    pub fn checked_capacity(capacity: i64) -> Result<usize, RouterError> {
        match usize::try_from(capacity) {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(RouterError::InvalidCapacity(capacity)),
        }
    }

    fn id_of(&self, agent: &str) -> Option<AgentId> {
        self.names.iter().position(|n| &**n == agent)
    }

    fn intern(&mut self, agent: &str) -> AgentId {
        if let Some(id) = self.id_of(agent) {
            return id;
        }
        self.names.push(Arc::from(agent));
        self.slot_of.push(None);
        self.names.len() - 1
    }

    fn slot(&self, agent: &str) -> Option<&Transcript> {
        let id = self.id_of(agent)?;
        self.slot_of[id].map(|i| &self.transcripts[i])
    }

    // ---- producers --------------------------------------------------------

    /// Appends `text` to `agent`'s transcript and to the fan-in log, stamped
    /// `t` (raised to the previous delta's timestamp if it is earlier, so
    /// timestamps never decrease along the log).
    ///
    /// Returns whether there is room for more: false once the pending deltas
    /// (held ones included) reach the capacity, when the producer should wait
    /// for a drain before pushing again. A delta is never refused, so with `P`
    /// producers that each push once before they wait, at most
    /// `capacity + P - 1` deltas are pending.
    ///
    /// An empty `text` is ignored: it is not counted, not logged and does not
    /// register an agent never seen before.
    pub fn push(&mut self, agent: &str, text: &str, t: f64) -> bool {
        if text.is_empty() {
            return self.has_room();
        }
        let id = self.intern(agent);
        match self.slot_of[id] {
            Some(i) => {
                let slot = &mut self.transcripts[i];
                slot.text.push_str(text);
                slot.count += 1;
            }
            None => {
                self.slot_of[id] = Some(self.transcripts.len());
                self.transcripts.push(Transcript {
                    agent: id,
                    text: text.to_owned(),
                    count: 1,
                });
            }
        }
        self.total += 1;
        // `max` also replaces a NaN with the previous timestamp.
        let t = t.max(self.last_t);
        self.last_t = t;
        self.log.push_back(Delta {
            seq: self.next_seq,
            t,
            agent: id,
            len: text.len(),
        });
        self.pending_text.push_str(text);
        self.next_seq += 1;
        self.has_room()
    }

    /// Whether fewer deltas than the capacity are pending.
    pub fn has_room(&self) -> bool {
        self.log.len() < self.capacity
    }

    /// The capacity of pending deltas.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    // ---- transcripts (fan-out) --------------------------------------------

    /// The agent's transcript in the current chunk (`""` for an agent not seen
    /// in it).
    pub fn text(&self, agent: &str) -> &str {
        self.slot(agent).map_or("", |s| s.text.as_str())
    }

    /// The agent's transcript from its `start`-th character on (characters
    /// are Unicode scalar values, what Python's `len` counts): what a reader
    /// that has seen `start` characters has not seen yet. `""` when `start` is
    /// at or past the end.
    pub fn text_since(&self, agent: &str, start: usize) -> &str {
        let text = self.text(agent);
        if start == 0 {
            return text;
        }
        if text.is_ascii() {
            return text.get(start..).unwrap_or("");
        }
        text.char_indices()
            .nth(start)
            .map_or("", |(byte, _)| &text[byte..])
    }

    /// The agent's delta count in the current chunk (0 for an agent not seen
    /// in it).
    pub fn count(&self, agent: &str) -> usize {
        self.slot(agent).map_or(0, |s| s.count)
    }

    /// Deltas counted across all agents in the current chunk.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Number of agents seen in the current chunk.
    pub fn len(&self) -> usize {
        self.transcripts.len()
    }

    /// True when no agent has been seen in the current chunk.
    pub fn is_empty(&self) -> bool {
        self.transcripts.is_empty()
    }

    /// Agents of the current chunk in first-seen order.
    pub fn agents(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.transcripts.iter().map(|s| &*self.names[s.agent])
    }

    /// Every agent's `(agent, transcript)` in the current chunk, in first-seen
    /// order.
    pub fn snapshot(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.transcripts
            .iter()
            .map(|s| (&*self.names[s.agent], s.text.as_str()))
    }

    /// Forgets `agent`'s transcript and count: its generation restarts.
    ///
    /// The agent keeps its place in the first-seen order (with an empty
    /// transcript), so a UI's columns do not jump around when an agent is
    /// retried. Its pending deltas stay in the log: they were written and are
    /// still delivered. Returns false, and does nothing, for an agent not seen
    /// in the current chunk.
    pub fn reset(&mut self, agent: &str) -> bool {
        let Some(slot) = self
            .id_of(agent)
            .and_then(|id| self.slot_of[id])
            .map(|i| &mut self.transcripts[i])
        else {
            return false;
        };
        let dropped = slot.count;
        slot.text.clear();
        slot.count = 0;
        self.total -= dropped;
        true
    }

    /// Starts a new chunk: forgets every transcript. Pending deltas stay in
    /// the log, to be drained as usual.
    pub fn clear(&mut self) {
        self.transcripts.clear();
        self.slot_of.iter_mut().for_each(|s| *s = None);
        self.total = 0;
    }

    // ---- fan-in log (consumers) --------------------------------------------

    /// The sequence number the next delta will get: a barrier that keeps
    /// everything pushed so far before whatever the caller puts there.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Deltas pushed and not drained yet, held ones included.
    pub fn pending(&self) -> usize {
        self.log.len()
    }

    /// How many pending deltas come before `limit` (the hold point, and the
    /// barrier `before` if given): the ones a drain would take.
    fn drainable(&self, before: Option<u64>) -> usize {
        let Some(front) = self.log.front() else {
            return 0;
        };
        let limit = match (before, self.held_from) {
            (Some(b), Some(h)) => b.min(h),
            (Some(b), None) => b,
            (None, Some(h)) => h,
            (None, None) => return self.log.len(),
        };
        // Sequence numbers are consecutive along the log.
        usize::try_from(limit.saturating_sub(front.seq))
            .map_or(self.log.len(), |n| n.min(self.log.len()))
    }

    /// Pending deltas a drain would take now (not held).
    pub fn available(&self) -> usize {
        self.drainable(None)
    }

    /// Takes the pending deltas before the barrier `before` (all of them when
    /// `None`) and before the hold point, merged into frames: each frame is a
    /// run of consecutive deltas of one agent; nothing is reordered. `now` is
    /// when the drain happens (for the frame interval, see [`Router::due_in`]).
    pub fn drain(&mut self, before: Option<u64>, now: f64) -> Vec<Frame> {
        let n = self.drainable(before);
        if n == 0 {
            return Vec::new();
        }
        self.last_drain = Some(now);
        let mut frames: Vec<Frame> = Vec::new();
        let mut at = self.text_start;
        for delta in self.log.drain(..n) {
            let text = &self.pending_text[at..at + delta.len];
            at += delta.len;
            match frames.last_mut() {
                Some(frame) if Arc::ptr_eq(&frame.agent, &self.names[delta.agent]) => {
                    frame.text.push_str(text);
                    frame.count += 1;
                }
                _ => frames.push(Frame {
                    agent: Arc::clone(&self.names[delta.agent]),
                    text: text.to_owned(),
                    seq: delta.seq,
                    count: 1,
                    t: delta.t,
                }),
            }
        }
        self.consume(at);
        frames
    }

    /// Drops the drained text before byte `end` of `pending_text`. Cheap: the
    /// buffer is emptied when nothing is pending, and only compacted when the
    /// drained part is the larger one (so each byte is moved at most once on
    /// average).
    fn consume(&mut self, end: usize) {
        if self.log.is_empty() {
            self.pending_text.clear();
            self.text_start = 0;
        } else if end > self.pending_text.len() / 2 {
            self.pending_text.drain(..end);
            self.text_start = 0;
        } else {
            self.text_start = end;
        }
    }

    // ---- flow control ------------------------------------------------------

    /// Holds every delta pushed from now on: drains stop before it until
    /// [`Router::release`]. Deltas pushed before still drain. Holding again
    /// while held keeps the first hold point.
    pub fn hold(&mut self) {
        self.held_from.get_or_insert(self.next_seq);
    }

    /// Ends the hold: the held deltas drain as usual, in order.
    pub fn release(&mut self) {
        self.held_from = None;
    }

    /// Whether deltas are held.
    pub fn held(&self) -> bool {
        self.held_from.is_some()
    }

    /// The frame policy.
    pub fn policy(&self) -> FramePolicy {
        self.policy
    }

    /// Seconds from `now` until the next drain is due under the frame policy:
    /// `None` when nothing is available, `Some(0.0)` when due now (the
    /// interval has passed since the last drain, or enough deltas wait).
    pub fn due_in(&self, now: f64) -> Option<f64> {
        let available = self.available();
        if available == 0 {
            return None;
        }
        if available >= self.policy.max_deltas {
            return Some(0.0);
        }
        let Some(last) = self.last_drain else {
            return Some(0.0);
        };
        Some((last + self.policy.interval_s - now).max(0.0))
    }
}

/// A frame being built by [`coalesce`].
struct Run {
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
    let mut current: Option<Run> = None;
    for (agent, text) in deltas {
        if text.is_empty() {
            continue;
        }
        let chars = text.chars().count();
        if let Some(run) = current.as_mut() {
            if run.agent == agent && run.chars + chars <= max {
                run.text.push_str(&text);
                run.chars += chars;
                continue;
            }
        }
        if let Some(done) = current.replace(Run { agent, text, chars }) {
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

    /// A router with room for everything and every drain due at once.
    fn router() -> Router {
        Router::default()
    }

    /// Pushes at time 0.
    fn push(r: &mut Router, agent: &str, text: &str) -> bool {
        r.push(agent, text, 0.0)
    }

    /// `(agent, text)` of each frame.
    fn texts(frames: &[Frame]) -> Vec<(String, String)> {
        frames
            .iter()
            .map(|f| (f.agent.to_string(), f.text.clone()))
            .collect()
    }

    // ---- transcripts --------------------------------------------------------

    #[test]
    fn new_router_is_empty() {
        let r = router();
        assert!(r.is_empty());
        assert_eq!(r.len(), 0);
        assert_eq!(r.total(), 0);
        assert_eq!(r.text("architect"), "");
        assert_eq!(r.count("architect"), 0);
        assert_eq!(r.agents().count(), 0);
        assert_eq!(r.snapshot().count(), 0);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.next_seq(), 0);
        assert!(r.has_room());
        assert!(!r.held());
    }

    #[test]
    fn push_counts_per_agent_and_total() {
        let mut r = router();
        push(&mut r, "architect", "Plan");
        push(&mut r, "architect", ": ");
        push(&mut r, "coder", "fn");
        push(&mut r, "architect", "go");
        assert_eq!(r.count("architect"), 3);
        assert_eq!(r.count("coder"), 1);
        assert_eq!(r.count("reviewer"), 0);
        assert_eq!(r.total(), 4);
        assert_eq!(r.text("architect"), "Plan: go");
        assert_eq!(r.text("coder"), "fn");
    }

    #[test]
    fn empty_delta_is_ignored() {
        let mut r = router();
        assert!(push(&mut r, "architect", ""));
        assert!(r.is_empty(), "an empty delta must not register an agent");
        assert_eq!(r.total(), 0);
        assert_eq!(r.pending(), 0);
        assert_eq!(r.next_seq(), 0, "an empty delta takes no sequence number");
        push(&mut r, "architect", "a");
        push(&mut r, "architect", "");
        assert_eq!(r.count("architect"), 1);
        assert_eq!(r.total(), 1);
        assert_eq!(r.text("architect"), "a");
        assert_eq!(r.pending(), 1);
    }

    #[test]
    fn multibyte_utf8_is_preserved_exactly() {
        let mut r = router();
        let parts = ["日本語", "🦀", "👩‍💻", "e\u{301}", " ok ", "Ω≈ç√"];
        for p in parts {
            push(&mut r, "coder", p);
        }
        assert_eq!(r.text("coder"), parts.concat());
        assert_eq!(r.count("coder"), parts.len());
        push(&mut r, "日本", "語");
        assert_eq!(r.text("日本"), "語");
        assert_eq!(r.agents().collect::<Vec<_>>(), ["coder", "日本"]);
        let frames = r.drain(None, 0.0);
        assert_eq!(
            texts(&frames),
            [d("coder", &parts.concat()), d("日本", "語")]
        );
    }

    #[test]
    fn text_since_is_what_a_reader_has_not_seen() {
        let mut r = router();
        push(&mut r, "architect", "The ");
        push(&mut r, "architect", "plan");
        assert_eq!(r.text_since("architect", 0), "The plan");
        assert_eq!(r.text_since("architect", 4), "plan");
        assert_eq!(r.text_since("architect", 8), "");
        assert_eq!(r.text_since("architect", 99), "");
        assert_eq!(r.text_since("nobody", 0), "");
        // Offsets count characters, as Python's len does, not UTF-8 bytes.
        push(&mut r, "coder", "日本語");
        push(&mut r, "coder", "🦀!");
        assert_eq!(r.text_since("coder", 2), "語🦀!");
        assert_eq!(r.text_since("coder", 3), "🦀!");
        assert_eq!(r.text_since("coder", 4), "!");
        assert_eq!(r.text_since("coder", 5), "");
        assert_eq!(r.text_since("coder", 6), "");
    }

    #[test]
    fn agents_in_first_seen_order() {
        let mut r = router();
        for agent in ["reviewer", "architect", "reviewer", "coder", "architect"] {
            push(&mut r, agent, "x");
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
    fn reset_forgets_one_agent_but_not_its_pending_deltas() {
        let mut r = router();
        push(&mut r, "architect", "a1");
        push(&mut r, "coder", "c1");
        push(&mut r, "coder", "c2");
        push(&mut r, "reviewer", "r1");
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
        push(&mut r, "coder", "new");
        assert_eq!(r.count("coder"), 1);
        assert_eq!(r.text("coder"), "new");
        assert_eq!(r.total(), 3);
        // Unknown agent: no-op.
        assert!(!r.reset("nobody"));
        assert_eq!(r.total(), 3);
        assert_eq!(r.len(), 3);
        // What was written before the reset is still delivered, in order.
        assert_eq!(
            texts(&r.drain(None, 0.0)),
            [
                d("architect", "a1"),
                d("coder", "c1c2"),
                d("reviewer", "r1"),
                d("coder", "new"),
            ]
        );
    }

    #[test]
    fn clear_forgets_transcripts_but_not_pending_deltas() {
        let mut r = router();
        push(&mut r, "architect", "a");
        push(&mut r, "coder", "c");
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.total(), 0);
        assert_eq!(r.text("architect"), "");
        assert_eq!(r.count("coder"), 0);
        assert_eq!(r.pending(), 2);
        // A new chunk sees a new first-seen order.
        push(&mut r, "coder", "C");
        push(&mut r, "architect", "A");
        assert_eq!(r.agents().collect::<Vec<_>>(), ["coder", "architect"]);
        assert_eq!(r.total(), 2);
        assert_eq!(r.text("coder"), "C");
        // The log went on across the clear: sequence numbers too.
        let frames = r.drain(None, 0.0);
        assert_eq!(
            texts(&frames),
            [d("architect", "a"), d("coder", "cC"), d("architect", "A")]
        );
        assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), [0, 1, 3]);
    }

    #[test]
    fn large_transcript_appended_in_place() {
        let mut r = router();
        for i in 0..10_000 {
            push(&mut r, "coder", "ab");
            assert_eq!(r.count("coder"), i + 1);
        }
        assert_eq!(r.text("coder").len(), 20_000);
        assert_eq!(r.total(), 10_000);
    }

    // ---- fan-in log ----------------------------------------------------------

    #[test]
    fn drain_merges_runs_in_push_order() {
        let mut r = router();
        for (agent, text) in [
            ("a", "1"),
            ("a", "2"),
            ("b", "3"),
            ("a", "4"),
            ("a", "5"),
            ("a", "6"),
            ("c", "7"),
            ("b", "8"),
        ] {
            push(&mut r, agent, text);
        }
        let frames = r.drain(None, 0.0);
        assert_eq!(
            texts(&frames),
            [
                d("a", "12"),
                d("b", "3"),
                d("a", "456"),
                d("c", "7"),
                d("b", "8"),
            ]
        );
        assert_eq!(
            frames.iter().map(|f| (f.seq, f.count)).collect::<Vec<_>>(),
            [(0, 2), (2, 1), (3, 3), (6, 1), (7, 1)]
        );
        assert_eq!(r.pending(), 0);
        assert!(r.drain(None, 0.0).is_empty(), "a delta is drained once");
    }

    #[test]
    fn sequence_numbers_follow_push_order_across_drains() {
        let mut r = router();
        push(&mut r, "a", "x");
        assert_eq!(r.next_seq(), 1);
        push(&mut r, "b", "y");
        assert_eq!(r.drain(None, 0.0)[1].seq, 1);
        push(&mut r, "a", "z");
        let frames = r.drain(None, 0.0);
        assert_eq!((frames[0].seq, frames[0].count), (2, 1));
        assert_eq!(r.next_seq(), 3);
    }

    #[test]
    fn drain_stops_at_the_barrier() {
        let mut r = router();
        push(&mut r, "a", "1");
        push(&mut r, "a", "2");
        let barrier = r.next_seq();
        push(&mut r, "a", "3");
        push(&mut r, "b", "4");
        // Runs are not merged across a barrier: whatever the caller put there
        // stays between them.
        assert_eq!(texts(&r.drain(Some(barrier), 0.0)), [d("a", "12")]);
        assert!(r.drain(Some(barrier), 0.0).is_empty());
        assert!(r.drain(Some(0), 0.0).is_empty(), "a barrier in the past");
        assert_eq!(r.pending(), 2);
        assert_eq!(texts(&r.drain(Some(99), 0.0)), [d("a", "3"), d("b", "4")]);
    }

    #[test]
    fn timestamps_never_decrease_along_the_log() {
        let mut r = router();
        push(&mut r, "a", "1"); // t = 0
        r.push("b", "2", 5.0);
        r.push("a", "3", 3.0); // a clock that stepped back
        r.push("c", "4", f64::NAN); // or lies
        r.push("a", "5", 7.5);
        let frames = r.drain(None, 8.0);
        assert_eq!(
            frames.iter().map(|f| f.t).collect::<Vec<_>>(),
            [0.0, 5.0, 5.0, 5.0, 7.5]
        );
    }

    #[test]
    fn a_frame_carries_its_first_deltas_timestamp() {
        let mut r = router();
        r.push("a", "x", 1.0);
        r.push("a", "y", 2.0);
        r.push("b", "z", 3.0);
        let frames = r.drain(None, 4.0);
        assert_eq!((frames[0].t, frames[0].count), (1.0, 2));
        assert_eq!((frames[1].t, frames[1].count), (3.0, 1));
    }

    #[test]
    fn pending_text_is_kept_across_partial_drains() {
        // Drains that take part of the log at a time, with deltas of several
        // sizes, exercise the lazy dropping and compaction of the text buffer.
        let mut r = router();
        let mut expected = String::new();
        let mut got = String::new();
        for i in 0..2_000 {
            let text = "x".repeat(i % 7 + 1) + "日" + &i.to_string();
            expected.push_str(&text);
            push(&mut r, if i % 3 == 0 { "a" } else { "b" }, &text);
            if i % 5 == 4 {
                let barrier = r.next_seq() - 2;
                got.extend(r.drain(Some(barrier), 0.0).into_iter().map(|f| f.text));
            }
        }
        got.extend(r.drain(None, 0.0).into_iter().map(|f| f.text));
        assert_eq!(got, expected);
        assert_eq!(r.pending(), 0);
    }

    // ---- hold ------------------------------------------------------------------

    #[test]
    fn hold_keeps_everything_pushed_after_it_until_release() {
        let mut r = router();
        push(&mut r, "a", "before");
        r.hold();
        assert!(r.held());
        push(&mut r, "a", "during1");
        push(&mut r, "b", "during2");
        r.hold(); // holding again keeps the first hold point
        push(&mut r, "a", "during3");
        // What came before the hold still drains.
        assert_eq!(texts(&r.drain(None, 0.0)), [d("a", "before")]);
        assert!(r.drain(None, 0.0).is_empty());
        assert_eq!(r.available(), 0);
        assert_eq!(r.pending(), 3, "held, not lost");
        assert_eq!(r.text("a"), "beforeduring1during3", "readers still see it");
        r.release();
        assert!(!r.held());
        assert_eq!(
            texts(&r.drain(None, 0.0)),
            [d("a", "during1"), d("b", "during2"), d("a", "during3")]
        );
    }

    #[test]
    fn a_barrier_past_the_hold_point_does_not_release() {
        let mut r = router();
        push(&mut r, "a", "1");
        r.hold();
        push(&mut r, "a", "2");
        let later = r.next_seq();
        assert_eq!(texts(&r.drain(Some(later), 0.0)), [d("a", "1")]);
        assert_eq!(r.pending(), 1);
    }

    // ---- capacity ------------------------------------------------------------

    #[test]
    fn push_tells_the_producer_to_wait_at_capacity() {
        let mut r = Router::new(3, FramePolicy::default());
        assert!(push(&mut r, "a", "1"));
        assert!(push(&mut r, "b", "2"));
        assert!(!push(&mut r, "a", "3"), "the third fills the buffer");
        assert!(!r.has_room());
        // A delta is never refused (another producer's pending delta), only
        // the producer is told to wait.
        assert!(!push(&mut r, "c", "4"));
        assert_eq!(r.pending(), 4);
        assert_eq!(r.drain(None, 0.0).len(), 4);
        assert!(r.has_room());
        assert!(push(&mut r, "a", "5"));
    }

    #[test]
    fn held_deltas_count_against_capacity() {
        let mut r = Router::new(2, FramePolicy::default());
        r.hold();
        assert!(push(&mut r, "a", "1"));
        assert!(!push(&mut r, "a", "2"));
        assert!(r.drain(None, 0.0).is_empty());
        assert!(!r.has_room(), "a hold does not make room");
        r.release();
        assert_eq!(texts(&r.drain(None, 0.0)), [d("a", "12")]);
        assert!(r.has_room());
    }

    #[test]
    fn capacity_below_one_is_refused() {
        assert_eq!(Router::checked_capacity(1), Ok(1));
        for bad in [0, -1, i64::MIN] {
            assert_eq!(
                Router::checked_capacity(bad),
                Err(RouterError::InvalidCapacity(bad))
            );
        }
        assert_eq!(
            RouterError::InvalidCapacity(0).to_string(),
            "capacity must be at least 1 pending delta, got 0"
        );
    }

    // ---- frame policy --------------------------------------------------------

    #[test]
    fn frame_policy_rejects_bad_values() {
        assert!(FramePolicy::new(0.0, 1).is_ok());
        assert!(FramePolicy::new(0.016, 64).is_ok());
        for bad in [-0.001, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                FramePolicy::new(bad, 1),
                Err(RouterError::InvalidFrameInterval(_))
            ));
        }
        for bad in [0, -5] {
            assert_eq!(
                FramePolicy::new(0.016, bad),
                Err(RouterError::InvalidFrameDeltas(bad))
            );
        }
    }

    #[test]
    fn a_drain_is_due_once_per_interval() {
        let policy = FramePolicy::new(0.016, 100).unwrap();
        let mut r = Router::new(1000, policy);
        assert_eq!(r.due_in(0.0), None, "nothing waiting");
        r.push("a", "x", 1.0);
        assert_eq!(r.due_in(1.0), Some(0.0), "the first frame goes at once");
        r.drain(None, 1.0);
        r.push("a", "y", 1.001);
        let wait = r.due_in(1.004).unwrap();
        assert!((wait - 0.012).abs() < 1e-9, "{wait}");
        assert_eq!(r.due_in(1.016), Some(0.0));
        assert_eq!(r.due_in(2.0), Some(0.0));
    }

    #[test]
    fn enough_waiting_deltas_make_a_drain_due_early() {
        let policy = FramePolicy::new(0.016, 3).unwrap();
        let mut r = Router::new(1000, policy);
        r.push("a", "x", 0.0);
        r.drain(None, 0.0);
        r.push("a", "1", 0.001);
        r.push("b", "2", 0.001);
        assert!(r.due_in(0.002).unwrap() > 0.0);
        r.push("a", "3", 0.002);
        assert_eq!(r.due_in(0.002), Some(0.0));
    }

    #[test]
    fn held_deltas_never_make_a_drain_due() {
        let mut r = router();
        r.hold();
        r.push("a", "x", 0.0);
        assert_eq!(r.due_in(5.0), None);
        r.release();
        assert_eq!(r.due_in(5.0), Some(0.0));
    }

    #[test]
    fn random_pushes_holds_and_drains_lose_and_reorder_nothing() {
        const AGENTS: [&str; 4] = ["architect", "coder", "reviewer", "synthesizer"];
        const PIECES: [&str; 6] = ["", "a", "bc", "日本語", "🦀", "four words here"];
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..200 {
            let mut r = Router::new(rng.below(16) + 1, FramePolicy::default());
            let mut pushed: Vec<(String, String)> = Vec::new();
            let mut frames: Vec<Frame> = Vec::new();
            let mut t = 0.0;
            for _ in 0..rng.below(80) {
                t += 0.001;
                match rng.below(10) {
                    0 => r.hold(),
                    1 => r.release(),
                    2 | 3 => {
                        let barrier = (rng.below(2) == 0).then(|| r.next_seq());
                        frames.extend(r.drain(barrier, t));
                    }
                    _ => {
                        let (a, p) = (AGENTS[rng.below(4)], PIECES[rng.below(6)]);
                        let room = r.push(a, p, t);
                        if !p.is_empty() {
                            pushed.push(d(a, p));
                        }
                        assert_eq!(room, r.pending() < r.capacity());
                    }
                }
            }
            r.release();
            frames.extend(r.drain(None, t));
            assert_eq!(r.pending(), 0);
            // The frames are exactly the pushed deltas, in order, each run of
            // one agent merged, with consecutive sequence numbers.
            let mut next = 0;
            for frame in &frames {
                assert_eq!(frame.seq, next, "a gap or a reordering");
                let seq = usize::try_from(frame.seq).unwrap();
                let run = &pushed[seq..seq + frame.count];
                assert!(run.iter().all(|(a, _)| **a == *frame.agent));
                let text: String = run.iter().map(|(_, p)| p.as_str()).collect();
                assert_eq!(text, frame.text);
                next += u64::try_from(frame.count).unwrap();
            }
            assert_eq!(next, u64::try_from(pushed.len()).unwrap());
            let ts: Vec<f64> = frames.iter().map(|f| f.t).collect();
            assert!(ts.windows(2).all(|w| w[0] <= w[1]), "timestamps went back");
        }
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
