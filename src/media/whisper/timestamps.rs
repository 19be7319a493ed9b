//! Whisper's special tokens, its timestamp rules for decoding (as openai-whisper's
//! `ApplyTimestampRules`), and the segments read back from timestamped output.

use std::ops::Range;

use tokenizers::Tokenizer;

/// Seconds one timestamp token stands for.
const TIME_PRECISION: f64 = 0.02;
/// The first timestamp may be at most this late (openai-whisper's `max_initial_timestamp`).
const MAX_INITIAL_TIMESTAMP: u32 = 50;
const FRAMES_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone)]
pub struct Specials {
    pub sot: u32,
    pub eot: u32,
    transcribe: Option<u32>,
    no_timestamps: u32,
    /// The first timestamp token, `<|0.00|>`; every id from it up is a timestamp.
    pub timestamp_begin: u32,
    vocab: u32,
    /// Language tokens of a multilingual model (empty for `.en` models).
    pub languages: Range<u32>,
}

impl Specials {
    pub fn from_tokenizer(tok: &Tokenizer, vocab: usize) -> Result<Specials, String> {
        let id = |s: &str| tok.token_to_id(s).ok_or_else(|| format!("tokenizer.json has no {s}"));
        let sot = id("<|startoftranscript|>")?;
        let no_timestamps = id("<|notimestamps|>")?;
        let translate = tok.token_to_id("<|translate|>");
        // English-only models have a vocabulary one token smaller (openai-whisper's own test);
        // their tokenizer still lists language tokens, which they were never prompted with.
        let multilingual = vocab >= 51_865;
        let languages = match (tok.token_to_id("<|en|>"), translate) {
            (Some(en), Some(tr)) if multilingual && en == sot + 1 && tr > en => en..tr,
            _ => 0..0,
        };
        Ok(Specials {
            sot,
            eot: id("<|endoftext|>")?,
            transcribe: tok.token_to_id("<|transcribe|>").filter(|_| !languages.is_empty()),
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
            vocab: vocab as u32,
            languages,
        })
    }

    /// The start of every window: start, then language and task on multilingual models.
    pub fn prompt(&self, language: Option<u32>) -> Vec<u32> {
        std::iter::once(self.sot).chain(language).chain(self.transcribe.filter(|_| language.is_some())).collect()
    }

    pub fn language_code(&self, tok: &Tokenizer, token: u32) -> String {
        let piece = tok.id_to_token(token).unwrap_or_default();
        piece.trim_start_matches("<|").trim_end_matches("|>").to_string()
    }
}

/// The logit masks applied before each greedy pick.
pub struct Rules<'a> {
    specials: &'a Specials,
    suppress: &'a [u32],
}

impl<'a> Rules<'a> {
    pub fn new(specials: &'a Specials, suppress: &'a [u32]) -> Rules<'a> {
        Rules { specials, suppress }
    }

    /// `sampled`: what this window produced so far (without the prompt).
    pub fn apply(&self, logits: &mut [f32], sampled: &[u32]) {
        let s = self.specials;
        let ts = s.timestamp_begin as usize;
        let end = (s.vocab as usize).min(logits.len());
        let len = logits.len();
        let mut mask = |range: Range<usize>| logits[range.start.min(len)..range.end.min(len)].fill(f32::NEG_INFINITY);
        for &t in self.suppress {
            mask(t as usize..t as usize + 1);
        }
        mask(s.no_timestamps as usize..s.no_timestamps as usize + 1);
        // Special tokens other than end-of-text and timestamps never appear in a transcript.
        mask(s.eot as usize + 1..ts);
        let is_ts = |t: &u32| *t >= s.timestamp_begin;
        let last_ts = sampled.last().is_some_and(is_ts);
        let penultimate_ts = sampled.len() < 2 || is_ts(&sampled[sampled.len() - 2]);
        if last_ts {
            if penultimate_ts {
                mask(ts..end);
            } else {
                mask(0..s.eot as usize);
            }
        }
        if let Some(&last) = sampled.iter().rev().find(|t| is_ts(t)) {
            // Timestamps never go back; a closing one may repeat the opening one's time.
            let floor = if last_ts && !penultimate_ts { last } else { last + 1 };
            mask(ts..floor as usize);
        }
        if sampled.is_empty() {
            mask(0..ts);
            mask(ts + MAX_INITIAL_TIMESTAMP as usize + 1..end);
        }
        mask(end..len);
        // A timestamp wins when the timestamps together are likelier than any one text token.
        if log_sum_exp(&logits[ts..end]) > max(&logits[..ts]) {
            logits[..ts].fill(f32::NEG_INFINITY);
        }
    }
}

fn max(xs: &[f32]) -> f32 {
    xs.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

fn log_sum_exp(xs: &[f32]) -> f32 {
    let m = max(xs);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
}

/// The most likely token and its log-probability.
pub fn best(logits: &[f32]) -> (u32, f32) {
    let (mut best, mut best_logit) = (0, f32::NEG_INFINITY);
    for (i, &l) in logits.iter().enumerate() {
        if l > best_logit {
            (best, best_logit) = (i, l);
        }
    }
    (best as u32, best_logit - log_sum_exp(logits))
}

/// A stretch of speech between two timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub tokens: Vec<u32>,
    /// Mean log-probability of its tokens.
    pub avg_logprob: f64,
}

/// Segments of one window's output (`offset` seconds into the audio), and how many frames
/// the next window starts after: the last closed timestamp where speech was cut off,
/// else the whole window.
pub fn segments(sampled: &[(u32, f32)], s: &Specials, offset: f64, window_frames: usize) -> (Vec<Segment>, usize) {
    let time = |t: u32| offset + (t - s.timestamp_begin) as f64 * TIME_PRECISION;
    let mut out = Vec::new();
    let (mut start, mut text, mut logprobs): (Option<u32>, Vec<u32>, Vec<f32>) = (None, Vec::new(), Vec::new());
    let mut last_closed = None;
    for &(t, lp) in sampled {
        if t >= s.timestamp_begin {
            match start {
                Some(open) if !text.is_empty() => {
                    let avg = logprobs.iter().map(|&x| x as f64).sum::<f64>() / logprobs.len() as f64;
                    let tokens = std::mem::take(&mut text);
                    out.push(Segment {
                        start: time(open),
                        end: time(t),
                        text: String::new(),
                        tokens,
                        avg_logprob: avg,
                    });
                    logprobs.clear();
                    start = None;
                    last_closed = Some(t);
                }
                _ => start = Some(t),
            }
        } else if t < s.eot {
            text.push(t);
            logprobs.push(lp);
        }
    }
    let ended_cleanly = sampled.last().is_some_and(|(t, _)| *t == s.eot) && text.is_empty();
    let frames = |t: u32| ((t - s.timestamp_begin) as f64 * TIME_PRECISION * FRAMES_PER_SECOND) as usize;
    // Cut off after a closed segment: the rest is decoded again from there. A window cut
    // before its first second moves on whole, so that it cannot stall.
    let cut = last_closed.filter(|&t| !ended_cleanly && frames(t) >= FRAMES_PER_SECOND as usize);
    let advance = cut.map(frames).unwrap_or(window_frames);
    // Text that no timestamp closed (output cut by the token limit) still counts.
    if cut.is_none() && !text.is_empty() {
        let open = start.map(time).unwrap_or(offset);
        let end = offset + window_frames as f64 / FRAMES_PER_SECOND;
        let avg = logprobs.iter().map(|&x| x as f64).sum::<f64>() / logprobs.len() as f64;
        out.push(Segment { start: open, end, text: String::new(), tokens: text, avg_logprob: avg });
    }
    (out, advance.min(window_frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specials() -> Specials {
        // The layout of the English-only models: text < 50256 = eot < ... < 50362 = no timestamps.
        Specials {
            sot: 50257,
            eot: 50256,
            transcribe: None,
            no_timestamps: 50362,
            timestamp_begin: 50363,
            vocab: 51864,
            languages: 0..0,
        }
    }

    #[test]
    fn the_first_token_is_an_early_timestamp_and_pairs_close() {
        let s = specials();
        let rules = Rules::new(&s, &[]);
        let mut logits = vec![0.0; 51864];
        logits[11] = 5.0;
        rules.apply(&mut logits, &[]);
        let (first, _) = best(&logits);
        assert!((s.timestamp_begin..=s.timestamp_begin + MAX_INITIAL_TIMESTAMP).contains(&first));
        // After an opening timestamp, text; after text and a closing one, not text again
        // before another timestamp or the end.
        let mut logits = vec![0.0; 51864];
        logits[11] = 5.0;
        logits[s.eot as usize] = 20.0;
        rules.apply(&mut logits, &[s.timestamp_begin, 11, s.timestamp_begin + 40]);
        assert!(logits[11].is_infinite());
        assert!(logits[s.eot as usize].is_finite());
        // Timestamps never go back.
        assert!(logits[(s.timestamp_begin + 39) as usize].is_infinite());
    }

    #[test]
    fn segments_come_from_timestamp_pairs() {
        let s = specials();
        let ts = |secs: f64| s.timestamp_begin + (secs / TIME_PRECISION) as u32;
        let out = [
            (ts(0.0), 0.0),
            (10, -0.5),
            (11, -0.1),
            (ts(1.5), 0.0),
            (ts(1.5), 0.0),
            (12, -0.2),
            (ts(3.0), 0.0),
            (s.eot, 0.0),
        ];
        let (segs, advance) = segments(&out, &s, 30.0, 3000);
        assert_eq!(segs.len(), 2);
        assert_eq!((segs[0].start, segs[0].end, segs[0].tokens.clone()), (30.0, 31.5, vec![10, 11]));
        assert_eq!((segs[1].start, segs[1].end), (31.5, 33.0));
        assert!((segs[0].avg_logprob + 0.3).abs() < 1e-6);
        assert_eq!(advance, 3000, "a window that ended cleanly is done");
        // Cut off mid-sentence: the next window starts at the last closed timestamp.
        let cut = [(ts(0.0), 0.0), (10, 0.0), (ts(20.0), 0.0), (ts(20.0), 0.0), (11, 0.0)];
        let (segs, advance) = segments(&cut, &s, 0.0, 3000);
        assert_eq!(advance, 2000);
        assert_eq!(segs.len(), 1, "the cut text is decoded again in the next window");
        // No timestamp closed anything: the text counts and the window moves on whole.
        let (segs, advance) = segments(&[(ts(0.0), 0.0), (10, 0.0), (11, 0.0)], &s, 0.0, 3000);
        assert_eq!((segs.len(), advance), (1, 3000));
    }
}
