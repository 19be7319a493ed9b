//! Prompt lookup: drafts for speculative decoding taken from the sequence's own tokens.
//!
//! A coder mostly writes again what it was shown (a file it rewrites, the lines an edit
//! block quotes), so the tokens that followed the last few tokens the last time they
//! occurred, in the prompt or in the output so far, are a good guess of what comes next.
//! The worker feeds such a draft after the sampled token in the same decode as every other
//! sequence's tokens, samples at each drafted position in turn and keeps the draft up to the
//! first token the sampler did not draw: the output is the one the sampler gives without a
//! draft (see `worker::step`). A draft's length adapts to how much of it was kept, so
//! speculation backs off where it does not pay.

use llama_cpp_2::token::LlamaToken;

/// Tokens of the n-gram looked up (llama.cpp's `ngram-simple` takes 12 too): shorter ones
/// match where the text goes on otherwise, and on a CPU a rejected draft costs nearly what
/// a kept one saves (`benches/RESULTS.md`).
const NGRAM: usize = 12;
/// Tokens of history scanned for the n-gram (a scan costs microseconds per thousand).
const LOOKBACK_MAX: usize = 32_768;
/// The longest draft.
pub const DRAFT_MAX: usize = 16;
/// A draft of this length after a pause.
const DRAFT_START: usize = 4;
/// Steps without drafting after drafts of one sequence were rejected from their first token.
const PAUSE_STEPS: u32 = 16;

/// The tokens that followed the most recent earlier occurrence of the history's last
/// [`NGRAM`] tokens, at most `max`. The history is the prompt followed by what the
/// sequence generated.
pub fn lookup(prompt: &[LlamaToken], generated: &[LlamaToken], max: usize) -> Vec<LlamaToken> {
    lookup_n(prompt, generated, NGRAM, max)
}

fn lookup_n(prompt: &[LlamaToken], generated: &[LlamaToken], n: usize, max: usize) -> Vec<LlamaToken> {
    let len = prompt.len() + generated.len();
    if max == 0 || len <= n {
        return Vec::new();
    }
    if len > LOOKBACK_MAX && !prompt.is_empty() {
        // Too long a history to scan each step: the prompt's end and the output.
        let skip = (len - LOOKBACK_MAX).min(prompt.len());
        return lookup_n(&prompt[skip..], generated, n, max);
    }
    let at = |i: usize| if i < prompt.len() { prompt[i] } else { generated[i - prompt.len()] };
    let tail = len - n;
    let found = (0..tail).rev().find(|&start| (0..n).all(|k| at(start + k) == at(tail + k)));
    found.map_or_else(Vec::new, |start| (start + n..len.min(start + n + max)).map(at).collect())
}

/// One sequence's drafting: how long its next draft may be, from how much of the last
/// ones the sampler kept.
#[derive(Debug, Clone)]
pub struct Drafter {
    max: usize,
    paused: u32,
    pub drafted: u32,
    pub accepted: u32,
}

impl Default for Drafter {
    fn default() -> Self {
        Drafter { max: DRAFT_START, paused: 0, drafted: 0, accepted: 0 }
    }
}

impl Drafter {
    /// How long the next draft may be, at most `room` tokens (what the sequence may
    /// still generate and the batch can take), from any source: 0 while paused.
    pub fn allowance(&mut self, room: usize) -> usize {
        if self.paused > 0 {
            self.paused -= 1;
            return 0;
        }
        self.max.min(room)
    }

    /// A verified draft of `drafted` tokens of which the first `accepted` were kept: the
    /// whole draft kept doubles the next one's length, a draft rejected from its first
    /// token pauses drafting, otherwise the next is one longer than what was kept.
    pub fn verified(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        self.drafted += drafted as u32;
        self.accepted += accepted as u32;
        self.max = if accepted == drafted {
            (self.max * 2).min(DRAFT_MAX)
        } else if accepted == 0 {
            self.paused = PAUSE_STEPS;
            DRAFT_START
        } else {
            (accepted + 1).min(DRAFT_MAX)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[i32]) -> Vec<LlamaToken> {
        v.iter().map(|&t| LlamaToken(t)).collect()
    }

    #[test]
    fn the_most_recent_ngram_gives_what_followed_it() {
        // "1 2 3" occurred at the start: "4 5" followed it.
        let prompt = toks(&[1, 2, 3, 4, 5, 6, 9, 3, 7]);
        assert_eq!(lookup_n(&prompt, &toks(&[1, 2, 3]), 3, 2), toks(&[4, 5]));
        // The most recent occurrence wins.
        let prompt = toks(&[8, 9, 1, 8, 9, 2]);
        assert_eq!(lookup_n(&prompt, &toks(&[8, 9]), 2, 1), toks(&[2]));
        // Twelve tokens by default: eleven are not enough.
        let text: Vec<i32> = (0..20).collect();
        let prompt = toks(&text);
        assert_eq!(lookup(&prompt, &toks(&text[..12]), 3), toks(&[12, 13, 14]));
        assert!(lookup(&prompt, &toks(&text[1..12]), 3).is_empty());
    }

    #[test]
    fn the_draft_spans_prompt_and_output_and_stops_at_the_end() {
        let prompt = toks(&[5, 6, 7]);
        // "6 7" occurred across the prompt's end; what followed it is the output so far.
        assert_eq!(lookup_n(&prompt, &toks(&[1, 6, 7]), 2, 8), toks(&[1, 6, 7]));
        assert!(lookup_n(&prompt, &toks(&[1, 2]), 2, 8).is_empty(), "no 2-gram repeats");
        assert!(lookup_n(&toks(&[1, 2]), &[], 2, 8).is_empty(), "a history as short as the n-gram");
        assert!(lookup_n(&toks(&[1, 2, 1, 2]), &[], 2, 0).is_empty());
    }

    #[test]
    fn drafts_grow_when_kept_and_pause_when_rejected() {
        let prompt = toks(&(0..40).chain(0..12).collect::<Vec<_>>());
        let mut d = Drafter::default();
        assert_eq!(lookup(&prompt, &[], d.allowance(64)).len(), DRAFT_START);
        d.verified(DRAFT_START, DRAFT_START);
        assert_eq!(lookup(&prompt, &[], d.allowance(64)).len(), 2 * DRAFT_START);
        assert_eq!(lookup(&prompt, &[], d.allowance(3)).len(), 3, "never more than the room");
        d.verified(8, 2);
        assert_eq!(lookup(&prompt, &[], d.allowance(64)).len(), 3);
        d.verified(3, 0);
        for _ in 0..PAUSE_STEPS {
            assert!(lookup(&prompt, &[], d.allowance(64)).is_empty());
        }
        assert_eq!(lookup(&prompt, &[], d.allowance(64)).len(), DRAFT_START);
        assert_eq!((d.drafted, d.accepted), (15, 6));
    }
}
