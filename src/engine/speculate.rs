//! Prompt lookup: drafts for speculative decoding taken from the sequence's own tokens.
//!
//! A coder mostly writes again what it was shown (a file it rewrites, the lines an edit
//! block quotes), so the tokens that followed the last few tokens the last time they
//! occurred, in the prompt or in the output so far, are a good guess of what comes next.
//! The worker feeds such a draft after the sampled token in the same decode as every other
//! sequence's tokens, samples at each drafted position in turn and keeps the draft up to the
//! first token the sampler did not draw: the output is the one the sampler gives without a
//! draft (see `worker::step`). A draft rejected from its first token pauses drafting, so
//! speculation backs off where it does not pay.

use llama_cpp_2::token::LlamaToken;

/// Tokens of the n-gram looked up (llama.cpp's `ngram-simple` takes 12 too): shorter ones
/// match where the text goes on otherwise, and on a CPU a rejected draft costs nearly what
/// a kept one saves (`benches/RESULTS.md`).
const NGRAM: usize = 12;
/// Tokens of history scanned for the n-gram (a scan costs microseconds per thousand).
const LOOKBACK_MAX: usize = 32_768;
/// The longest lookup draft, as in llama.cpp's `ngram-simple`. A copy under way is mostly
/// kept whole or cut where the text turns, and on a CPU a decode of many rows costs less
/// per row than one of a few, so its draft takes all it can (`benches/RESULTS.md`, 2026-12-07).
const LOOKUP_MAX: usize = 48;
/// Tokens before the n-gram that must match too for a copy under way; a match without
/// them is new (prose repeats a phrase, a copy starts) and drafts only [`TEST_DRAFT`]:
/// on a CPU a long draft rejected from its first token costs the time of many steps.
const COPY_EXTRA: usize = 3;
/// The draft of a new match.
const TEST_DRAFT: usize = 3;
/// The longest draft of a draft model, whose every token costs one of its decodes.
const MODEL_MAX: usize = 16;
/// A draft model's draft of this length after a pause.
const MODEL_START: usize = 4;
/// Steps without drafting after drafts of one sequence were rejected from their first token.
const PAUSE_STEPS: u32 = 16;

/// The tokens that followed the most recent earlier occurrence of the history's last
/// [`NGRAM`] tokens, at most `max`, or [`TEST_DRAFT`] where the tokens before the two
/// differ. The history is the prompt followed by what the sequence generated.
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
    let Some(start) = (0..tail).rev().find(|&start| (0..n).all(|k| at(start + k) == at(tail + k))) else {
        return Vec::new();
    };
    let copying = start >= COPY_EXTRA && (1..=COPY_EXTRA).all(|k| at(start - k) == at(tail - k));
    let max = if copying { max } else { max.min(TEST_DRAFT) };
    (start + n..len.min(start + n + max)).map(at).collect()
}

/// How long a sequence's next draft may be, by where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub lookup: usize,
    pub model: usize,
}

/// One sequence's drafting: how long its next draft may be, from how much of the last
/// ones the sampler kept.
#[derive(Debug, Clone)]
pub struct Drafter {
    /// The next draft model's draft at most.
    model_max: usize,
    paused: u32,
    pub drafted: u32,
    pub accepted: u32,
}

impl Default for Drafter {
    fn default() -> Self {
        Drafter { model_max: MODEL_START, paused: 0, drafted: 0, accepted: 0 }
    }
}

impl Drafter {
    /// How long the next draft may be, at most `room` tokens (what the sequence may
    /// still generate): none while paused.
    pub fn allowance(&mut self, room: usize) -> Option<Allowance> {
        if self.paused > 0 {
            self.paused -= 1;
            return None;
        }
        Some(Allowance { lookup: LOOKUP_MAX.min(room), model: self.model_max.min(room) }).filter(|a| a.lookup > 0)
    }

    /// A verified draft of `drafted` tokens of which the first `accepted` were kept: a
    /// draft rejected from its first token pauses drafting. A draft model's next draft
    /// doubles after one kept whole, else is one longer than what was kept.
    pub fn verified(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        self.drafted += drafted as u32;
        self.accepted += accepted as u32;
        self.model_max = if accepted == drafted {
            (self.model_max * 2).min(MODEL_MAX)
        } else if accepted == 0 {
            self.paused = PAUSE_STEPS;
            MODEL_START
        } else {
            (accepted + 1).min(MODEL_MAX)
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
    fn a_new_match_drafts_a_test_and_a_copy_under_way_all_it_can() {
        let text: Vec<i32> = (0..100).collect();
        let prompt = toks(&text);
        // The n-gram alone matches (what came before it differs): a short draft.
        let fresh = [&[-1, -2, -3][..], &text[20..32]].concat();
        assert_eq!(lookup(&prompt, &toks(&fresh), LOOKUP_MAX), toks(&[32, 33, 34]));
        // Three more tokens before it match: the copy is under way.
        let copying = toks(&text[17..32]);
        assert_eq!(lookup(&prompt, &copying, LOOKUP_MAX), toks(&(32..80).collect::<Vec<_>>()));
        // A match at the history's start has nothing before it: new.
        assert_eq!(lookup(&prompt, &toks(&text[..12]), LOOKUP_MAX).len(), TEST_DRAFT);
    }

    #[test]
    fn the_draft_spans_prompt_and_output_and_stops_at_the_end() {
        let prompt = toks(&[2, 3, 4, 5, 6, 7]);
        // "6 7" (and the three before it) occurred in the prompt; what followed it is the
        // output so far, seven tokens though eight were allowed.
        let generated = toks(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(lookup_n(&prompt, &generated, 2, 8), generated);
        assert!(lookup_n(&prompt, &toks(&[1, 2]), 2, 8).is_empty(), "no 2-gram repeats");
        assert!(lookup_n(&toks(&[1, 2]), &[], 2, 8).is_empty(), "a history as short as the n-gram");
        assert!(lookup_n(&toks(&[1, 2, 1, 2]), &[], 2, 0).is_empty());
    }

    #[test]
    fn lookup_drafts_take_all_they_can_and_pause_when_rejected() {
        let prompt = toks(&(0..100).chain(0..20).collect::<Vec<_>>());
        let mut d = Drafter::default();
        let first = d.allowance(200).expect("no pause yet");
        assert_eq!(first, Allowance { lookup: LOOKUP_MAX, model: MODEL_START });
        assert_eq!(lookup(&prompt, &[], first.lookup).len(), LOOKUP_MAX);
        assert_eq!(d.allowance(3).map(|a| a.lookup), Some(3), "never more than the room");
        assert_eq!(d.allowance(0), None, "no room, no draft");
        // A draft model's drafts grow while kept whole, shrink to what was kept.
        d.verified(4, 4);
        assert_eq!(d.allowance(200).map(|a| a.model), Some(2 * MODEL_START));
        d.verified(8, 2);
        assert_eq!(d.allowance(200), Some(Allowance { lookup: LOOKUP_MAX, model: 3 }));
        // Rejected from the first token: no draft of either kind for a while.
        d.verified(3, 0);
        for _ in 0..PAUSE_STEPS {
            assert_eq!(d.allowance(200), None);
        }
        assert_eq!(d.allowance(200), Some(Allowance { lookup: LOOKUP_MAX, model: MODEL_START }));
        assert_eq!((d.drafted, d.accepted), (15, 6));
    }
}
