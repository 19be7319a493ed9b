//! The task record the pipeline keeps: what was asked, where it stands, what each stage
//! produced, what the coders tried and what the reviewer said. Stored as one JSON value
//! (so a save is atomic on every backend), with the event log in a list beside it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The pipeline's stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Preprocess,
    Plan,
    Code,
    Vote,
    Review,
    Output,
}

impl Stage {
    pub const ALL: [Stage; 6] =
        [Stage::Preprocess, Stage::Plan, Stage::Code, Stage::Vote, Stage::Review, Stage::Output];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Preprocess => "preprocess",
            Stage::Plan => "plan",
            Stage::Code => "code",
            Stage::Vote => "vote",
            Stage::Review => "review",
            Stage::Output => "output",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a task stands. While it runs, the status is the stage it is in (`plan`, `code`,
/// ...), or `running` between stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TaskStatus {
    Queued,
    Running,
    InStage(Stage),
    Succeeded,
    Failed,
    /// The process died while the task ran; it can be resumed after its last completed stage.
    Interrupted,
    /// Stopped on request (`POST /api/task/{id}/cancel`, a chat client that went away).
    Cancelled,
}

impl TaskStatus {
    /// Running or in a stage: some process is (or was, before dying) working on it.
    pub fn is_active(self) -> bool {
        matches!(self, TaskStatus::Running | TaskStatus::InStage(_))
    }

    /// Whether `filter` (a status name, `running` for any active one) selects this status.
    pub fn matches(self, filter: TaskStatus) -> bool {
        self == filter || (filter == TaskStatus::Running && self.is_active())
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::InStage(stage) => stage.as_str(),
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Interrupted => "interrupted",
            TaskStatus::Cancelled => "cancelled",
        })
    }
}

impl FromStr for TaskStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<TaskStatus, String> {
        Ok(match s {
            "queued" => TaskStatus::Queued,
            "running" => TaskStatus::Running,
            "succeeded" => TaskStatus::Succeeded,
            "failed" => TaskStatus::Failed,
            "interrupted" => TaskStatus::Interrupted,
            "cancelled" => TaskStatus::Cancelled,
            other => TaskStatus::InStage(Stage::ALL.into_iter().find(|st| st.as_str() == other).ok_or_else(|| {
                format!(
                    "unknown task status `{other}`; expected queued, running, succeeded, failed, interrupted, cancelled or a stage ({})",
                    Stage::ALL.map(Stage::as_str).join(", ")
                )
            })?),
        })
    }
}

impl TryFrom<String> for TaskStatus {
    type Error = String;
    fn try_from(s: String) -> Result<TaskStatus, String> {
        s.parse()
    }
}

impl From<TaskStatus> for String {
    fn from(s: TaskStatus) -> String {
        s.to_string()
    }
}

/// What was asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskInput {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    #[serde(default)]
    pub apply: bool,
    /// Pipeline options for this task (see `PipelineOptions`); null: the defaults.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub options: serde_json::Value,
}

/// One coder candidate, kept so that a retry can see what was tried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoderAttempt {
    pub round: u32,
    pub candidate: u32,
    pub diff: String,
    /// What disqualified it, in words, and the kind of flag (a word or two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub red_flag_kind: Option<String>,
}

/// One reviewer verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewIteration {
    pub round: u32,
    pub approved: bool,
    #[serde(default)]
    pub problems: Vec<String>,
    /// The change reviewed (empty when the round had none), and whether its tests passed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub diff: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests_passed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    /// Unix milliseconds.
    pub created_at: u64,
    pub updated_at: u64,
    pub input: TaskInput,
    pub status: TaskStatus,
    /// The last stage that finished; a resumed task starts after it.
    #[serde(default)]
    pub last_completed_stage: Option<Stage>,
    /// Each stage's latest output, for readers of the record; the pipeline works from `run`.
    #[serde(default)]
    pub outputs: BTreeMap<Stage, serde_json::Value>,
    /// The pipeline's own record of the run (versioned; opaque to the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<serde_json::Value>,
    #[serde(default)]
    pub attempts: Vec<CoderAttempt>,
    #[serde(default)]
    pub reviews: Vec<ReviewIteration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The instance working on it (see `TaskStore`'s leases).
    pub owner: String,
    /// Increases with every save.
    pub version: u64,
}

/// One entry of a task's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskEvent {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Unix milliseconds.
    pub at: u64,
    /// What happened: `stage_started`, `stage_finished`, `candidate`, `vote`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

/// The columns of a task list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub id: String,
    pub status: TaskStatus,
    pub created_at: u64,
    pub updated_at: u64,
    pub last_completed_stage: Option<Stage>,
    /// The first line of the input, shortened.
    pub title: String,
}

impl From<&Task> for TaskSummary {
    fn from(task: &Task) -> TaskSummary {
        let first = task.input.text.lines().next().unwrap_or("").trim();
        let title = match first.char_indices().nth(80) {
            Some((cut, _)) => format!("{}…", &first[..cut]),
            None => first.to_string(),
        };
        TaskSummary {
            id: task.id.clone(),
            status: task.status,
            created_at: task.created_at,
            updated_at: task.updated_at,
            last_completed_stage: task.last_completed_stage,
            title,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_as_names() {
        for s in ["queued", "running", "plan", "review", "succeeded", "failed", "interrupted"] {
            let status: TaskStatus = s.parse().unwrap();
            assert_eq!(status.to_string(), s);
            assert_eq!(serde_json::to_value(status).unwrap(), serde_json::json!(s));
        }
        assert!("planning".parse::<TaskStatus>().unwrap_err().contains("expected queued"));
        assert!(TaskStatus::InStage(Stage::Vote).matches(TaskStatus::Running));
        assert!(!TaskStatus::Queued.matches(TaskStatus::Running));
    }
}
