//! The events of a task's log, as one type: stages produce them, and the OpenAI progress
//! stream, the CLI and the eval read them. On the wire (SSE, `GET /api/task/{id}`) an
//! event is `{"seq", "at", "kind", "stage"?, "data"?}`; `kind` and `data` are this enum,
//! adjacently tagged. The task store writes the lifecycle kinds (`stage_started`,
//! `stage_finished`, `finished`, `interrupted`) itself; they decode into the same enum.

use serde::{Deserialize, Serialize};

use super::ballot::DecidedBy;
use super::evidence::outcome::Outcome;
use super::record::Plan;
use crate::state::{Stage, TaskEvent, TaskStatus};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Event {
    StageStarted,
    StageFinished,
    Finished {
        status: TaskStatus,
        error: Option<String>,
    },
    Interrupted {
        was: TaskStatus,
        resume_after: Option<Stage>,
    },
    Resumed {
        after: Option<Stage>,
    },
    TaskText {
        chars: usize,
    },
    /// The preprocessor's rewrite was not used: it lost these details of the request
    /// (empty: it wrote nothing usable).
    RewriteKept {
        missing: Vec<String>,
    },
    Context {
        files: Vec<ContextEntry>,
        tokens: usize,
    },
    Plan {
        plan: Plan,
        fallback: bool,
        /// What was put right in the planner's answer (files that do not exist, a verify
        /// command for another language).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        repairs: Vec<String>,
    },
    Probes {
        modules: Vec<String>,
        calls: Vec<String>,
        error: Option<String>,
    },
    /// The tests a step's candidates run, run first on the tree they start from: what
    /// failed there already (excused), and the time limit it sets a candidate (none: that
    /// run timed out or its runner is missing, and the candidates are judged without
    /// tests). `error`: why the tests did not run there (then a candidate's run that stops
    /// as early says nothing of it).
    Baseline {
        round: u32,
        subtask: usize,
        tests: String,
        seconds: f64,
        passed: Option<u64>,
        failing: Vec<String>,
        timeout_secs: Option<u64>,
        error: Option<String>,
    },
    /// The time budget is running out: `cut` says what the pipeline leaves out.
    Budget {
        elapsed_secs: u64,
        budget_secs: u64,
        cut: String,
    },
    Candidate(CandidateEvent),
    MoreCandidates {
        round: u32,
        subtask: usize,
        after: usize,
        adding: usize,
    },
    Vote {
        vote: u32,
        letter: Option<String>,
        /// The answer, when it named no choice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid: Option<String>,
    },
    Tally(TallyEvent),
    Verdict {
        round: u32,
        approved: bool,
        problems: Vec<String>,
        /// Nothing was reviewed: the round failed at the vote, or its change was rejected
        /// before.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        skipped: bool,
    },
    Diff {
        diff: String,
        explanation: String,
        applied: bool,
    },
    /// A kind this version does not know (written by a newer one).
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextEntry {
    pub path: String,
    pub tokens: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateEvent {
    pub round: u32,
    pub subtask: usize,
    pub index: usize,
    pub temperature: f32,
    pub tokens: u32,
    pub red_flag: Option<String>,
    pub diff_lines: usize,
    pub tests: Option<TestSummary>,
    pub behaviour: Option<Vec<Outcome>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSummary {
    pub success: bool,
    pub passed: Option<u64>,
    pub failed: Option<u64>,
}

/// How a sub-task's vote ended: a winner, or none and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TallyEvent {
    pub round: u32,
    pub subtask: usize,
    /// The winning choice's letter.
    pub winner: Option<String>,
    /// The step was passed over (no candidate changed anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why nothing won.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<ChoiceVotes>,
    /// The behaviour groups, where the probes grouped candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Vec<usize>>>,
    /// Where they counted: each candidate's faults on the probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<Option<usize>>>,
    /// The winning candidate's index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
}

impl TallyEvent {
    /// A tally with no winner.
    pub fn empty(round: u32, subtask: usize) -> TallyEvent {
        TallyEvent {
            round,
            subtask,
            winner: None,
            skipped: None,
            reason: None,
            choices: Vec::new(),
            groups: None,
            faults: None,
            candidate: None,
            decided_by: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChoiceVotes {
    pub letter: String,
    pub candidates: Vec<usize>,
    pub votes: u32,
}

impl Event {
    /// The event's `kind` and `data`, as the task log stores them.
    pub fn into_parts(self) -> (String, serde_json::Value) {
        let mut value = serde_json::to_value(self).expect("events serialize");
        let kind = value["kind"].as_str().expect("events are tagged").to_string();
        (kind, value["data"].take())
    }

    /// The typed event of a log entry (`Other` for a kind this version does not know).
    pub fn of(entry: &TaskEvent) -> Event {
        let tagged = serde_json::json!({"kind": entry.kind, "data": entry.data});
        serde_json::from_value(tagged).unwrap_or_else(|e| {
            tracing::debug!(kind = %entry.kind, error = %e, "an event that does not decode");
            Event::Other
        })
    }

    /// One line of progress, for terminals and the `reasoning_content` of the OpenAI
    /// stream, or none for events that say nothing new.
    pub fn describe(&self, stage: Option<Stage>) -> Option<String> {
        let stage = stage.map(|s| s.to_string()).unwrap_or_default();
        Some(match self {
            Event::StageStarted => format!("▸ {stage}"),
            Event::Context { files, tokens } => format!("  context: {} file(s), {tokens} tokens", files.len()),
            Event::Plan { plan, repairs, .. } => {
                let steps: Vec<&str> = plan.subtasks.iter().map(|s| s.description.as_str()).collect();
                let repaired = repairs.iter().map(|r| format!("\n  plan repaired: {r}")).collect::<String>();
                format!("  plan: {}{repaired}", steps.join(" | "))
            }
            Event::Candidate(c) => {
                let head = format!("  candidate {} (t={:.1})", c.index + 1, c.temperature);
                match &c.red_flag {
                    Some(flag) => format!("{head}: red flag: {flag}"),
                    None => format!("{head}: {} diff lines", c.diff_lines),
                }
            }
            Event::Baseline { tests, seconds, failing, timeout_secs, error, .. } => match (timeout_secs, error) {
                (Some(limit), None) => format!(
                    "  tests: {tests}, {seconds:.1} s before any change, {} failing already; {limit} s a candidate",
                    failing.len()
                ),
                (Some(limit), Some(error)) => format!(
                    "  tests: {tests} stop before any test runs ({error}): a candidate's run counts where it gets further; {limit} s a candidate"
                ),
                (None, Some(error)) => format!("  tests: {tests} cannot run here ({error}): candidates go untested"),
                (None, None) => format!("  tests: {tests} time out before any change: candidates go untested"),
            },
            Event::Budget { elapsed_secs, budget_secs, cut } => {
                format!("  time budget: {elapsed_secs} of {budget_secs} s spent: {cut}")
            }
            Event::MoreCandidates { adding, .. } => format!("  no choice leads yet: {adding} more candidates"),
            Event::Vote { vote, letter, .. } => format!("  vote {vote}: {}", letter.as_deref().unwrap_or("invalid")),
            Event::Tally(t) => match (&t.winner, &t.decided_by) {
                (Some(w), Some(by)) => format!("  winner: {w} ({})", serde_name(by)),
                (Some(w), None) => format!("  winner: {w}"),
                (None, _) => format!("  no winner: {}", t.reason.as_deref().or(t.skipped.as_deref()).unwrap_or("")),
            },
            Event::Verdict { approved: true, .. } => "  review: approved".to_string(),
            Event::Verdict { problems, .. } => format!("  review: rejected: {}", problems.join("; ")),
            Event::Resumed { .. } => "resumed".to_string(),
            Event::RewriteKept { missing } if missing.is_empty() => "  the request is used as written".to_string(),
            Event::RewriteKept { missing } => {
                format!("  the request is used as written: the rewrite lost {}", missing.join(", "))
            }
            _ => return None,
        })
    }
}

/// How a unit enum value is spelled on the wire.
fn serde_name(value: &impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// A log entry with its event decoded, for the readers inside the process.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// Unix milliseconds.
    pub at: u64,
    pub stage: Option<Stage>,
    pub event: Event,
}

impl From<&TaskEvent> for Logged {
    fn from(entry: &TaskEvent) -> Logged {
        Logged { at: entry.at, stage: entry.stage, event: Event::of(entry) }
    }
}

impl Logged {
    /// One line of progress (see [`Event::describe`]).
    pub fn describe(&self) -> Option<String> {
        self.event.describe(self.stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, stage: Option<Stage>, data: serde_json::Value) -> TaskEvent {
        TaskEvent { seq: 0, at: 0, kind: kind.into(), stage, data }
    }

    #[test]
    fn the_stores_lifecycle_events_decode_and_unknown_kinds_are_other() {
        let started = entry("stage_started", Some(Stage::Plan), serde_json::Value::Null);
        assert_eq!(Event::of(&started), Event::StageStarted);
        assert_eq!(Logged::from(&started).describe().as_deref(), Some("▸ plan"));
        let finished = entry("finished", None, serde_json::json!({"status": "failed", "error": "no plan"}));
        assert_eq!(Event::of(&finished), Event::Finished { status: TaskStatus::Failed, error: Some("no plan".into()) });
        let interrupted = entry("interrupted", None, serde_json::json!({"was": "code", "resume_after": "plan"}));
        assert_eq!(
            Event::of(&interrupted),
            Event::Interrupted { was: TaskStatus::InStage(Stage::Code), resume_after: Some(Stage::Plan) }
        );
        assert_eq!(Event::of(&entry("from_the_future", None, serde_json::json!({"x": 1}))), Event::Other);
    }

    #[test]
    fn events_keep_their_wire_shape() {
        let (kind, data) = Event::Vote { vote: 3, letter: None, invalid: Some("Z".into()) }.into_parts();
        assert_eq!((kind.as_str(), data), ("vote", serde_json::json!({"vote": 3, "letter": null, "invalid": "Z"})));
        let (kind, data) = Event::StageFinished.into_parts();
        assert_eq!((kind.as_str(), data), ("stage_finished", serde_json::Value::Null));
        let mut tally = TallyEvent::empty(1, 0);
        tally.reason = Some("no candidate survived the red flags".into());
        let (_, data) = Event::Tally(tally.clone()).into_parts();
        assert_eq!(
            data,
            serde_json::json!({"round": 1, "subtask": 0, "winner": null, "reason": "no candidate survived the red flags"})
        );
        assert_eq!(Event::of(&entry("tally", Some(Stage::Vote), data)), Event::Tally(tally));
        let verdict = Event::Verdict { round: 2, approved: false, problems: vec!["x".into()], skipped: false };
        assert_eq!(verdict.into_parts().1, serde_json::json!({"round": 2, "approved": false, "problems": ["x"]}));
    }

    #[test]
    fn progress_lines_read_as_before() {
        let mut tally = TallyEvent::empty(1, 0);
        tally.winner = Some("B".into());
        tally.decided_by = Some(DecidedBy::AheadByK);
        assert_eq!(Event::Tally(tally).describe(None).as_deref(), Some("  winner: B (ahead_by_k)"));
        let candidate = CandidateEvent {
            round: 1,
            subtask: 0,
            index: 2,
            temperature: 0.5,
            tokens: 40,
            red_flag: Some("changes nothing".into()),
            diff_lines: 0,
            tests: None,
            behaviour: None,
        };
        assert_eq!(
            Event::Candidate(candidate).describe(None).as_deref(),
            Some("  candidate 3 (t=0.5): red flag: changes nothing")
        );
    }
}
