//! What the stages produce, as the run record keeps it: plans, candidates, votes,
//! verdicts and the output, and the context, test runs and probes they rest on. Plain
//! data, depending on nothing else of the pipeline but the ballot, red flags and probe
//! outcomes.

use serde::{Deserialize, Serialize};

use super::ballot::{Choice, DecidedBy};
pub use super::evidence::outcome::Outcome;
use super::red_flag::RedFlag;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Subtask {
    pub description: String,
    #[serde(default)]
    pub files: Vec<String>,
    /// Files of `files` that the step creates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub subtasks: Vec<Subtask>,
    #[serde(default)]
    pub verify: String,
}

impl Plan {
    /// Whether `subtask` is the plan's last step, after which its tests must pass.
    pub fn is_last(&self, subtask: usize) -> bool {
        subtask + 1 == self.subtasks.len()
    }
}

/// The plan stage's saved output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOutput {
    pub plan: Plan,
    pub context: Context,
    /// The planner's answer did not parse; the task itself became the only sub-task.
    pub fallback: bool,
    /// Review rounds already spent when this plan was made (rounds count per plan).
    pub round_start: usize,
    pub replans: u32,
    /// Edge-case calls every candidate runs (none outside Python).
    #[serde(default)]
    pub probes: Probes,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Candidate {
    pub index: usize,
    pub temperature: f32,
    pub tokens: u32,
    pub text: String,
    pub diff: String,
    #[serde(default, deserialize_with = "super::red_flag::saved")]
    pub red_flag: Option<RedFlag>,
    pub tests: Option<TestOutcome>,
    /// What each of the plan's probes returned or raised, where they ran.
    #[serde(default)]
    pub behaviour: Option<Vec<Outcome>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeOutput {
    pub round: u32,
    pub subtask: usize,
    /// The winning patches of the earlier sub-tasks of this round, in order.
    pub patches: Vec<String>,
    pub candidates: Vec<Candidate>,
    /// What the plan's probes did on the tree before any candidate's change, where they
    /// ran (the plan's last step only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Vec<Outcome>>,
}

/// What the coder is told about earlier rounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feedback {
    pub problems: Vec<String>,
    pub rejected_diff: Option<String>,
    /// The files the rejected change touched, as it left them.
    pub rejected_files: Vec<ContextFile>,
    /// The end of the failing test run of the rejected change: which case fails, and how.
    pub failing_tests: Option<String>,
    /// How earlier rounds' candidates fared (from the task record).
    pub earlier: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoteOutput {
    pub round: u32,
    pub subtask: usize,
    /// The winning patches so far this round, this sub-task's last.
    pub patches: Vec<String>,
    /// The winning candidate's index, if any candidate stood.
    pub winner: Option<usize>,
    /// Every choice that stood.
    #[serde(default)]
    pub ballot: Vec<Choice>,
    /// The choices voted on (the largest behaviour groups, where the probes grouped them);
    /// `counts` are their votes.
    pub choices: Vec<Choice>,
    pub counts: Vec<u32>,
    pub decided_by: Option<DecidedBy>,
    /// Why nothing won; None with no winner when the step needed no change.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    pub round: u32,
    pub approved: bool,
    pub problems: Vec<String>,
    pub diff: String,
    /// The changed files after the change, as the reviewer read them; a retry writing
    /// whole files starts from them.
    #[serde(default)]
    pub files: Vec<ContextFile>,
    pub tests: Option<TestOutcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    pub diff: String,
    pub explanation: String,
    pub tally: serde_json::Value,
    pub review: Option<Verdict>,
    pub applied: bool,
    /// Set when the task failed: why, with the best candidate as the diff.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContextFile {
    pub path: String,
    pub content: String,
    pub tokens: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Context {
    pub summary: String,
    pub files: Vec<ContextFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestOutcome {
    pub success: bool,
    pub passed: Option<u64>,
    pub failed: Option<u64>,
    pub output_tail: String,
    /// The failing tests as the runner names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_tests: Vec<String>,
}

impl TestOutcome {
    /// The last `n` lines of the run's output, where runners summarize what failed.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.output_tail.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Hash)]
pub struct Probes {
    /// The modules the calls see (`from module import *`, underscored names too).
    pub modules: Vec<String>,
    /// Python expressions.
    pub calls: Vec<String>,
}

impl Probes {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty() || self.modules.is_empty()
    }
}
