//! Turning token bytes into text a client can be sent: UTF-8 that is never split inside
//! a character, and stop strings that are never half-emitted. Pure logic, no FFI.

/// Streams bytes into text. Token pieces are raw bytes that may end in the middle of a
/// multi-byte character; the incomplete tail waits for the next piece.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).expect("valid prefix"));
                    match e.error_len() {
                        // Invalid bytes, not just an unfinished character: replace them.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left at the end of generation (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Finds stop strings in streamed text. Text that might be the start of a stop string is
/// held back until it is known not to be, so a client never sees part of a stop string.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Each stop's index in the list the request gave (empty strings are left out).
    given: Vec<usize>,
    held: String,
    matched: Option<usize>,
}

/// The result of feeding text to a [`StopMatcher`].
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// Text safe to emit now.
    pub emit: String,
    /// A stop string was found; `emit` ends right before it.
    pub stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: Vec<String>) -> StopMatcher {
        let (given, stops) = stops.into_iter().enumerate().filter(|(_, s)| !s.is_empty()).unzip();
        StopMatcher { stops, given, held: String::new(), matched: None }
    }

    /// The index (in the request's list) of the stop string that ended the text.
    pub fn matched(&self) -> Option<usize> {
        self.matched
    }

    pub fn push(&mut self, text: &str) -> Scan {
        self.held.push_str(text);
        let found = self.stops.iter().enumerate().filter_map(|(i, s)| Some((self.held.find(s.as_str())?, i))).min();
        if let Some((at, i)) = found {
            let emit = self.held[..at].to_string();
            self.held.clear();
            self.matched = Some(self.given[i]);
            return Scan { emit, stopped: true };
        }
        let keep = self.partial_suffix_len();
        let cut = self.held.len() - keep;
        let emit = self.held[..cut].to_string();
        self.held.drain(..cut);
        Scan { emit, stopped: false }
    }

    /// Held-back text, released at the end of generation.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest suffix of `held` that is a proper prefix of a stop string.
    fn partial_suffix_len(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in self.held.char_indices() {
                let suffix = &self.held[i..];
                if suffix.len() > best && suffix.len() < stop.len() && stop.starts_with(suffix) {
                    best = suffix.len();
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_pieces_comes_out_whole() {
        let bytes = "héllo ✓".as_bytes();
        let mut s = Utf8Stream::default();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&s.push(&[*b]));
        }
        out.push_str(&s.finish());
        assert_eq!(out, "héllo ✓");
    }

    #[test]
    fn utf8_incomplete_character_waits_then_invalid_bytes_are_replaced() {
        let mut s = Utf8Stream::default();
        assert_eq!(s.push(&[b'a', 0xE2, 0x9C]), "a");
        assert_eq!(s.push(&[0x93, 0xFF, b'b']), "✓\u{FFFD}b");
        assert_eq!(s.push(&[0xE2]), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_string_split_across_pushes_is_never_emitted() {
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("abc E"), Scan { emit: "abc ".into(), stopped: false });
        assert_eq!(m.push("N"), Scan { emit: "".into(), stopped: false });
        assert_eq!(m.push("Dtail"), Scan { emit: "".into(), stopped: true });
    }

    #[test]
    fn held_text_is_released_when_it_stops_looking_like_a_stop() {
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("E").emit, "");
        assert_eq!(m.push("x").emit, "Ex");
        assert_eq!(m.push("EN").emit, "");
        assert_eq!(m.finish(), "EN");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let mut m = StopMatcher::new(vec!["b2".into(), String::new(), "a1".into()]);
        assert_eq!(m.push("xx a1 b2"), Scan { emit: "xx ".into(), stopped: true });
        assert_eq!(m.matched(), Some(2), "the index in the request's list, empties counted");
    }
}
