//! Voting, as MAKER does it: identical candidates merge, red-flagged ones never stand,
//! and votes are drawn until one option leads every other by `k` (first-to-ahead-by-k),
//! with a cap after which plurality decides. Where every candidate ran the behaviour
//! probes, those with more faults (crashes, changed arguments) than others do not stand
//! either; where some probe tells the rest apart, candidates that behave alike are one
//! choice, and the choice most candidates agree on wins before any vote. Pure logic; the
//! vote stage samples the votes.

use serde::{Deserialize, Serialize};

use super::evidence::outcome::Outcome;

/// What the ballot needs to know of a candidate.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub diff: String,
    /// Red-flagged candidates never stand.
    pub red_flagged: bool,
    /// `Some(true)` when its tests passed, `Some(false)` when they failed.
    pub tests_passed: Option<bool>,
    /// What it returned on each probe, where the probes ran.
    pub behaviour: Option<Vec<Outcome>>,
    /// On how many probes it crashed or changed its arguments, where the probes ran.
    pub faults: Option<usize>,
    /// Whether it does on every call the task writes as its example what the code did
    /// before any change, where that is known.
    pub unchanged: Option<bool>,
}

/// One choice on the ballot: a letter for one or more identical (or alike-behaving)
/// candidates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Choice {
    pub letter: char,
    /// Indexes of the candidates it stands for.
    pub candidates: Vec<usize>,
}

/// Git's `index` lines and trailing whitespace do not make two diffs different.
pub fn normalize(diff: &str) -> String {
    diff.lines()
        .filter(|l| !l.starts_with("index "))
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The choices voters see: the [`eligible`] candidates, identical ones merged
/// (alike-behaving ones, see [`behaviour_keys`]).
pub fn ballot(entries: &[Entry]) -> Vec<Choice> {
    let eligible = eligible(entries);
    let keys = behaviour_keys(entries, &eligible);
    let mut groups: Vec<(Key, Vec<usize>)> = Vec::new();
    for (n, &i) in eligible.iter().enumerate() {
        let key = match &keys {
            Some(keys) => Key::Behaviour(keys[n].clone()),
            None => Key::Diff(normalize(&entries[i].diff)),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    groups.into_iter().zip('A'..='Z').map(|((_, candidates), letter)| Choice { letter, candidates }).collect()
}

/// What makes candidates one choice: the same results on the probes that tell any apart,
/// or else the same diff.
#[derive(PartialEq)]
enum Key<'a> {
    Behaviour(Vec<&'a Outcome>),
    Diff(String),
}

/// Candidates without a red flag and with a non-empty diff; where some pass the tests,
/// only those; of those, where the probes ran on all, the ones with the fewest faults;
/// of those, where some change what the task's own example does, the others drop out.
fn eligible(entries: &[Entry]) -> Vec<usize> {
    let standing: Vec<usize> =
        (0..entries.len()).filter(|&i| !entries[i].red_flagged && !normalize(&entries[i].diff).is_empty()).collect();
    let any_pass = standing.iter().any(|&i| entries[i].tests_passed == Some(true));
    let passing: Vec<usize> =
        standing.into_iter().filter(|&i| !any_pass || entries[i].tests_passed == Some(true)).collect();
    // A red flag relative to the others (MAKER's red flags are absolute): a crash where
    // another candidate returns a value marks a bug, even when the crashing ones agree.
    // In the eval's records, the only correct candidate among five stood against four
    // that agreed on raising KeyError for a node missing from the graph.
    let fewest = match passing.iter().map(|&i| entries[i].faults).collect::<Option<Vec<usize>>>() {
        Some(faults) => {
            let least = faults.iter().copied().min().unwrap_or(0);
            passing.into_iter().zip(faults).filter(|&(_, f)| f == least).map(|(i, _)| i).collect()
        }
        None => passing,
    };
    // Relative too: where some candidates change what the task's own example does, those
    // that leave it as it was did not do the task (in toolz/0 of the repository set, three
    // of four agreed on the very output the bug report quoted, and won by agreement).
    if fewest.iter().any(|&i| entries[i].unchanged == Some(false)) {
        return fewest.into_iter().filter(|&i| entries[i].unchanged != Some(true)).collect();
    }
    fewest
}

/// Whether the candidates so far settle the choice (first-to-ahead-by-k over candidates):
/// where tests ran and `must_pass`, one passes them; and one choice stands for `k` more
/// candidates than any other. Candidates that all ran the probes and return the same on
/// each count as one choice, whatever their diffs.
pub fn settled(entries: &[Entry], k: u32, must_pass: bool) -> bool {
    let tested = entries.iter().any(|e| e.tests_passed.is_some());
    if must_pass && tested && !entries.iter().any(|e| !e.red_flagged && e.tests_passed == Some(true)) {
        return false;
    }
    let eligible = eligible(entries);
    let alike = probed(entries, &eligible).is_some_and(|seen| seen.iter().all(|s| *s == seen[0]));
    let mut sizes: Vec<usize> =
        if alike { vec![eligible.len()] } else { ballot(entries).iter().map(|c| c.candidates.len()).collect() };
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let (first, second) = (sizes.first().copied().unwrap_or(0), sizes.get(1).copied().unwrap_or(0));
    first >= second + k as usize
}

/// What each of `eligible` returned on the probes that tell them apart: None unless every
/// one ran the probes and some probe does. Probes on which all agree say nothing (a call
/// of a name that does not exist fails alike everywhere), and diffs decide instead.
fn behaviour_keys<'a>(entries: &'a [Entry], eligible: &[usize]) -> Option<Vec<Vec<&'a Outcome>>> {
    let seen = probed(entries, eligible)?;
    let calls = seen[0].len();
    let telling: Vec<usize> = (0..calls).filter(|&c| seen.iter().any(|s| s[c] != seen[0][c])).collect();
    if telling.is_empty() {
        return None;
    }
    Some(seen.iter().map(|s| telling.iter().map(|&c| &s[c]).collect()).collect())
}

/// What each of `eligible` returned on the probes, where every one ran the same probes.
fn probed<'a>(entries: &'a [Entry], eligible: &[usize]) -> Option<Vec<&'a Vec<Outcome>>> {
    let seen: Vec<&Vec<Outcome>> = eligible.iter().map(|&i| entries[i].behaviour.as_ref()).collect::<Option<_>>()?;
    let calls = seen.first()?.len();
    (calls > 0 && seen.iter().all(|s| s.len() == calls)).then_some(seen)
}

/// Where the ballot grouped candidates by behaviour, the choices whose candidates agree
/// most with the others, call by call (one alone wins; a tie is left to the voters); None
/// where it did not. Counting per call, not per whole behaviour, keeps one difference
/// (raising on an invalid input, say) from splitting candidates that agree elsewhere into
/// groups too small to win; where groups differ on every call that tells any apart, it
/// is the largest group.
pub fn most_agreed(entries: &[Entry], choices: &[Choice]) -> Option<Vec<usize>> {
    let mut eligible: Vec<usize> = choices.iter().flat_map(|c| c.candidates.iter().copied()).collect();
    eligible.sort_unstable();
    behaviour_keys(entries, &eligible)?;
    let seen = probed(entries, &eligible)?;
    let agreement = |i: usize| -> usize {
        let mine = &seen[i];
        seen.iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, other)| other.iter().zip(mine.iter()).filter(|(a, b)| a == b).count())
            .sum()
    };
    let scores: Vec<usize> =
        choices.iter().map(|c| agreement(eligible.binary_search(&c.candidates[0]).expect("a member"))).collect();
    let best = *scores.iter().max()?;
    Some((0..choices.len()).filter(|&i| scores[i] == best).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// Its candidates agreed most with the others on the probes, call by call.
    Agreement,
    /// One choice only: no vote needed.
    Uncontested,
    /// A choice led every other by k.
    AheadByK,
    /// The cap was reached; the most votes won.
    Plurality,
    /// The cap was reached with a tie; the earliest choice (lowest temperature of its batch) won.
    TieAtCap,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Index into the ballot.
    pub winner: usize,
    pub decided_by: DecidedBy,
}

/// The decision the counts allow after `drawn` votes (invalid ones count toward the cap,
/// so that a vote always ends), if any.
fn decide(counts: &[u32], drawn: u32, k: u32, cap: u32) -> Option<Decision> {
    match counts.len() {
        0 => return None,
        1 => return Some(Decision { winner: 0, decided_by: DecidedBy::Uncontested }),
        _ => {}
    }
    let best = *counts.iter().max().expect("non-empty");
    let leader = counts.iter().position(|&c| c == best).expect("max is present");
    let second = counts.iter().enumerate().filter(|&(i, _)| i != leader).map(|(_, &c)| c).max().unwrap_or(0);
    if best >= second + k {
        return Some(Decision { winner: leader, decided_by: DecidedBy::AheadByK });
    }
    if drawn >= cap {
        let tied = counts.iter().filter(|&&c| c == best).count() > 1;
        let decided_by = if tied { DecidedBy::TieAtCap } else { DecidedBy::Plurality };
        return Some(Decision { winner: leader, decided_by });
    }
    None
}

/// A vote in progress: first-to-ahead-by-k over the choices of a ballot, ended by the
/// plurality once `cap` votes are drawn. The vote stage and `quorum eval` draw the votes;
/// this decides how many and when they are enough.
#[derive(Debug, Clone)]
pub struct Tally {
    counts: Vec<u32>,
    drawn: u32,
    k: u32,
    cap: u32,
}

impl Tally {
    pub fn new(choices: usize, k: u32, cap: u32) -> Tally {
        Tally { counts: vec![0; choices], drawn: 0, k, cap }
    }

    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    pub fn drawn(&self) -> u32 {
        self.drawn
    }

    /// The decision, once the votes allow one.
    pub fn decision(&self) -> Option<Decision> {
        decide(&self.counts, self.drawn, self.k, self.cap)
    }

    /// The fewest further votes that could end the vote (enough for the leader to get k
    /// ahead, never past the cap), at most `parallel` at once.
    pub fn wanted(&self, parallel: u32) -> u32 {
        let mut sorted = self.counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let lead = sorted.first().copied().unwrap_or(0) - sorted.get(1).copied().unwrap_or(0);
        let needed = self.k.saturating_sub(lead).max(1).min(self.cap.saturating_sub(self.drawn)).max(1);
        needed.min(parallel.max(1))
    }

    /// One vote: the index of the choice it named, None for an answer naming none.
    pub fn record(&mut self, choice: Option<usize>) {
        self.drawn += 1;
        if let Some(slot) = choice.and_then(|i| self.counts.get_mut(i)) {
            *slot += 1;
        }
    }
}

/// The grammar of one vote: one of the choices' letters.
pub fn letter_grammar(choices: &[Choice]) -> String {
    let letters: Vec<String> = choices.iter().map(|c| format!("\"{}\"", c.letter)).collect();
    format!("root ::= {}", letters.join(" | "))
}

/// The choice a voter's answer names, if any.
pub fn named(choices: &[Choice], answer: &str) -> Option<usize> {
    let letter = answer.trim().chars().next()?;
    choices.iter().position(|c| c.letter == letter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(diff: &str) -> Entry {
        Entry { diff: diff.into(), ..Default::default() }
    }

    #[test]
    fn identical_candidates_merge_and_red_flags_never_stand() {
        let entries = vec![
            entry("diff --git a/x b/x\nindex 111..222\n-a\n+b\n"),
            Entry { red_flagged: true, ..entry("-a\n+c") },
            entry("diff --git a/x b/x\nindex 333..444\n-a\n+b   \n"),
            entry("-a\n+d"),
            entry(""),
        ];
        let choices = ballot(&entries);
        assert_eq!(
            choices,
            vec![Choice { letter: 'A', candidates: vec![0, 2] }, Choice { letter: 'B', candidates: vec![3] }]
        );
    }

    #[test]
    fn all_red_flagged_leaves_an_empty_ballot() {
        let flagged = Entry { red_flagged: true, ..entry("-a\n+b") };
        assert!(ballot(&[flagged.clone(), flagged]).is_empty());
        assert_eq!(decide(&[], 0, 2, 9), None);
    }

    #[test]
    fn a_candidate_failing_tests_that_others_pass_cannot_stand() {
        let entries = vec![
            Entry { tests_passed: Some(false), ..entry("-a\n+b") },
            Entry { tests_passed: Some(true), ..entry("-a\n+c") },
        ];
        assert_eq!(ballot(&entries), vec![Choice { letter: 'A', candidates: vec![1] }]);
        // When none passes, the tests do not decide.
        let none_pass = vec![
            Entry { tests_passed: Some(false), ..entry("-a\n+b") },
            Entry { tests_passed: Some(false), ..entry("-a\n+c") },
        ];
        assert_eq!(ballot(&none_pass).len(), 2);
    }

    #[test]
    fn candidates_that_crash_more_cannot_stand() {
        let probed = |diff: &str, faults: usize, seen: &str| Entry {
            faults: Some(faults),
            behaviour: Some(vec![seen.into()]),
            tests_passed: Some(true),
            ..entry(diff)
        };
        // Tests first: the failing candidate has no faults, and still cannot stand.
        let entries = vec![
            probed("-a\n+b", 2, "raises KeyError (crash)"),
            probed("-a\n+c", 2, "raises KeyError (crash)"),
            probed("-a\n+d", 1, "-1"),
            probed("-a\n+e", 2, "raises KeyError (crash)"),
            Entry { tests_passed: Some(false), ..probed("-a\n+f", 0, "0") },
        ];
        assert_eq!(ballot(&entries), vec![Choice { letter: 'A', candidates: vec![2] }]);
        assert!(!settled(&entries, 2, true), "one candidate alone does not lead by two");
        // Two with the fewest faults that agree settle it, however many crash.
        let mut more = entries.clone();
        more.push(probed("-a\n+g", 1, "-1"));
        assert!(settled(&more, 2, true));
        assert_eq!(most_agreed(&more, &ballot(&more)), None, "no probe tells the two apart");
        // Where a candidate did not run the probes, faults do not count.
        let mut unrun = entries.clone();
        unrun[0] = Entry { faults: None, behaviour: None, ..unrun[0].clone() };
        assert_eq!(ballot(&unrun).len(), 4);
    }

    #[test]
    fn candidates_that_leave_the_tasks_example_as_it_was_drop_out_where_others_change_it() {
        let probed = |diff: &str, seen: &str, unchanged: bool| Entry {
            behaviour: Some(vec![seen.into()]),
            unchanged: Some(unchanged),
            ..entry(diff)
        };
        // Three agree on what the bug report quotes; the one that changed it stands alone.
        let entries = vec![
            probed("-a\n+b", "iter[20, 40]", true),
            probed("-a\n+c", "iter[20, 40]", true),
            probed("-a\n+d", "iter[10, 30, 50]", false),
            probed("-a\n+e", "iter[20, 40]", true),
        ];
        assert_eq!(ballot(&entries), vec![Choice { letter: 'A', candidates: vec![2] }]);
        assert!(!settled(&entries, 2, false), "one alone does not lead by two");
        // Where none changes it (or it is not known), the rule leaves the ballot alone.
        let alike: Vec<Entry> = entries.iter().map(|e| Entry { unchanged: Some(true), ..e.clone() }).collect();
        assert_eq!(ballot(&alike).len(), 2);
        let unknown: Vec<Entry> = entries.iter().map(|e| Entry { unchanged: None, ..e.clone() }).collect();
        assert_eq!(ballot(&unknown).len(), 2);
    }

    #[test]
    fn alike_behaviour_merges_and_the_largest_group_needs_no_vote() {
        let probed = |diff: &str, seen: &[&str]| Entry {
            behaviour: Some(seen.iter().map(|&s| Outcome::from(s)).collect()),
            tests_passed: Some(true),
            ..entry(diff)
        };
        let entries = vec![
            probed("-a\n+b", &["''", "1"]),
            probed("-a\n+c", &["''", "raises ValueError"]),
            probed("-a\n+d", &["''", "1"]),
            Entry { tests_passed: Some(false), ..probed("-a\n+e", &["''", "raises ValueError"]) },
        ];
        let choices = ballot(&entries);
        assert_eq!(
            choices,
            vec![Choice { letter: 'A', candidates: vec![0, 2] }, Choice { letter: 'B', candidates: vec![1] }]
        );
        assert_eq!(most_agreed(&entries, &choices), Some(vec![0]));
        // A tie leaves both to the voters.
        let tied = ballot(&entries[..2]);
        assert_eq!(most_agreed(&entries, &tied), Some(vec![0, 1]));
        // A candidate the probes could not run on: diffs decide, and nothing is agreed.
        let mut unrun = entries.clone();
        unrun[2].behaviour = None;
        let choices = ballot(&unrun);
        assert_eq!(choices.len(), 3);
        assert_eq!(most_agreed(&unrun, &choices), None);
        // Probes on which every candidate agrees tell nothing: identical diffs still merge.
        let alike = |diff: &str| probed(diff, &["raises NameError"]);
        let all_alike = vec![alike("-a\n+b"), alike("-a\n+b"), alike("-a\n+c")];
        let choices = ballot(&all_alike);
        assert_eq!(
            choices,
            vec![Choice { letter: 'A', candidates: vec![0, 1] }, Choice { letter: 'B', candidates: vec![2] }]
        );
        assert_eq!(most_agreed(&all_alike, &choices), None);
    }

    #[test]
    fn agreement_counts_call_by_call() {
        let probed = |diff: &str, seen: &[&str]| Entry {
            behaviour: Some(seen.iter().map(|&s| Outcome::from(s)).collect()),
            ..entry(diff)
        };
        // Two pairs and a loner: whole behaviours tie two against two, but B agrees with
        // the loner on one more call than A does.
        let entries = vec![
            probed("-a\n+b", &["0", "0", "2"]),
            probed("-a\n+c", &["raises ValueError", "1", "2"]),
            probed("-a\n+d", &["0", "0", "2"]),
            probed("-a\n+e", &["raises ValueError", "1", "2"]),
            probed("-a\n+f", &["1", "1", "2"]),
        ];
        let choices = ballot(&entries);
        assert_eq!(
            choices.iter().map(|c| c.candidates.clone()).collect::<Vec<_>>(),
            vec![vec![0, 2], vec![1, 3], vec![4]]
        );
        assert_eq!(most_agreed(&entries, &choices), Some(vec![1]));
    }

    #[test]
    fn candidates_settle_when_a_passing_choice_leads_by_k() {
        let probed = |diff: &str, passed: bool, seen: &[&str]| Entry {
            tests_passed: Some(passed),
            behaviour: Some(seen.iter().map(|&s| Outcome::from(s)).collect()),
            ..entry(diff)
        };
        let failing =
            vec![probed("-a\n+b", false, &["1"]), probed("-a\n+b", false, &["1"]), probed("-a\n+b", false, &["1"])];
        assert!(!settled(&failing, 2, true), "none passes the tests");
        assert!(settled(&failing, 2, false), "before the last step, failing tests do not count");
        // Three passers whose diffs differ but who behave alike on every probe: one choice.
        let alike = vec![
            probed("-a\n+b", true, &["1"]),
            probed("-a\n+c", true, &["1"]),
            probed("-a\n+d", true, &["1"]),
            probed("-a\n+e", false, &["2"]),
        ];
        assert!(settled(&alike, 2, true));
        assert!(!settled(&alike, 4, true));
        // Two against one is ahead by one: not yet by two.
        let split =
            vec![probed("-a\n+b", true, &["1"]), probed("-a\n+c", true, &["1"]), probed("-a\n+d", true, &["2"])];
        assert!(!settled(&split, 2, true) && settled(&split, 1, true));
        // Without probes, identical diffs count together; a lone passer is not ahead by two.
        let plain = |diff: &str, passed: bool| Entry { tests_passed: Some(passed), ..entry(diff) };
        assert!(settled(&[plain("-a\n+b", true), plain("-a\n+b", true), plain("-a\n+c", false)], 2, true));
        assert!(!settled(&[plain("-a\n+b", true), plain("-a\n+c", false)], 2, true));
        assert!(!settled(&[], 2, true) && !settled(&[], 2, false));
    }

    fn decide_after(counts: &[u32], k: u32, cap: u32) -> Option<Decision> {
        decide(counts, counts.iter().sum(), k, cap)
    }

    #[test]
    fn first_to_ahead_by_k() {
        assert_eq!(decide_after(&[1], 2, 9), Some(Decision { winner: 0, decided_by: DecidedBy::Uncontested }));
        assert_eq!(decide_after(&[1, 0], 2, 9), None);
        assert_eq!(decide_after(&[2, 0], 2, 9), Some(Decision { winner: 0, decided_by: DecidedBy::AheadByK }));
        assert_eq!(decide_after(&[3, 2, 0], 2, 9), None, "ahead of the runner-up by one only");
        assert_eq!(decide_after(&[3, 4, 6], 2, 9), Some(Decision { winner: 2, decided_by: DecidedBy::AheadByK }));
        assert_eq!(decide_after(&[0, 3, 1], 1, 9), Some(Decision { winner: 1, decided_by: DecidedBy::AheadByK }));
    }

    #[test]
    fn the_cap_ends_a_close_vote_and_says_how() {
        assert_eq!(decide_after(&[5, 4], 2, 9), Some(Decision { winner: 0, decided_by: DecidedBy::Plurality }));
        assert_eq!(decide_after(&[3, 3, 3], 2, 9), Some(Decision { winner: 0, decided_by: DecidedBy::TieAtCap }));
        assert_eq!(decide_after(&[4, 4], 2, 8), Some(Decision { winner: 0, decided_by: DecidedBy::TieAtCap }));
        assert_eq!(decide_after(&[4, 3], 2, 9), None, "7 of 9 votes cast");
    }

    #[test]
    fn invalid_votes_count_toward_the_cap_and_the_plurality_still_decides() {
        let mut tally = Tally::new(3, 2, 5);
        for vote in [Some(1), None, Some(0), None, Some(1)] {
            assert_eq!(tally.decision(), None);
            tally.record(vote);
        }
        // Five drawn, two of them invalid: B leads A by one, not two, and wins at the cap.
        assert_eq!(tally.counts(), [1, 2, 0]);
        assert_eq!(tally.decision(), Some(Decision { winner: 1, decided_by: DecidedBy::Plurality }));
        // No valid vote at all is a tie at the cap, not a plurality.
        let mut blank = Tally::new(2, 2, 2);
        blank.record(None);
        blank.record(Some(7));
        assert_eq!(blank.decision(), Some(Decision { winner: 0, decided_by: DecidedBy::TieAtCap }));
    }

    #[test]
    fn votes_are_drawn_no_faster_than_needed() {
        let tally =
            |counts: &[u32], k: u32, cap: u32| Tally { counts: counts.to_vec(), drawn: counts.iter().sum(), k, cap };
        assert_eq!(tally(&[0, 0], 2, 9).wanted(8), 2);
        assert_eq!(tally(&[1, 0], 2, 9).wanted(8), 1);
        assert_eq!(tally(&[3, 3], 3, 9).wanted(8), 3);
        assert_eq!(tally(&[3, 3], 3, 9).wanted(2), 2, "at most `parallel` at once");
        assert_eq!(tally(&[4, 4], 3, 9).wanted(8), 1, "never past the cap");
    }

    #[test]
    fn a_vote_names_a_letter_of_the_ballot() {
        let choices = vec![Choice { letter: 'A', candidates: vec![0] }, Choice { letter: 'B', candidates: vec![2] }];
        assert_eq!(letter_grammar(&choices), r#"root ::= "A" | "B""#);
        assert_eq!(named(&choices, " B\n"), Some(1));
        assert_eq!(named(&choices, "C"), None);
        assert_eq!(named(&choices, ""), None);
    }
}
