//! `/speckit.implement`: each unchecked task of `tasks.md`, in order, becomes a pipeline
//! task on the workspace; an approved change is applied and its box ticked. The first
//! task that fails stops the run. Which pipeline task carried out which line is kept in
//! the state store, so that a re-run resumes an interrupted one, and ticks one that was
//! applied before the run was stopped, instead of doing it again.

use std::path::Path;

use futures::StreamExt;
use serde_json::Value;

use super::files::Writable;
use super::{Progress, SpecError};
use crate::pipeline::Pipeline;
use crate::state::{Stage, Task, TaskStatus};
use crate::tools::Tools;

/// One task line: `- [ ] T001 [P] [US1] Description`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLine {
    pub id: String,
    pub done: bool,
    /// Marked `[P]`: may run beside its `[P]` neighbours.
    pub parallel: bool,
    pub description: String,
}

pub fn parse(tasks_md: &str) -> Vec<TaskLine> {
    tasks_md.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<TaskLine> {
    let rest = line.trim_start().strip_prefix("- [")?;
    let (mark, rest) = rest.split_once(']')?;
    let done = match mark {
        " " => false,
        "x" | "X" => true,
        _ => return None,
    };
    let mut words = rest.split_whitespace().peekable();
    let id =
        words.next().filter(|w| w.len() > 1 && w.starts_with('T') && w[1..].chars().all(|c| c.is_ascii_digit()))?;
    let mut parallel = false;
    while let Some(marker) = words.peek().filter(|w| w.starts_with('[') && w.ends_with(']')) {
        parallel |= *marker == "[P]";
        words.next();
    }
    Some(TaskLine { id: id.to_string(), done, parallel, description: words.collect::<Vec<_>>().join(" ") })
}

/// `tasks_md` with the box of task `id` ticked.
pub fn tick(tasks_md: &str, id: &str) -> String {
    let mut out: String = tasks_md
        .lines()
        .map(|line| match parse_line(line) {
            Some(task) if task.id == id && !task.done => line.replacen("- [ ]", "- [X]", 1),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    if tasks_md.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Groups of tasks to run together: a run of `[P]` tasks, or one task.
fn batches(tasks: &[TaskLine]) -> Vec<Vec<TaskLine>> {
    let mut out: Vec<Vec<TaskLine>> = Vec::new();
    for task in tasks.iter().filter(|t| !t.done) {
        match out.last_mut() {
            Some(batch) if task.parallel && batch.iter().all(|t| t.parallel) => batch.push(task.clone()),
            _ => out.push(vec![task.clone()]),
        }
    }
    out
}

/// What `implement` did: the tasks ticked, and the one that stopped it.
pub struct Outcome {
    pub ticked: Vec<String>,
    pub failed: Option<(String, String)>,
    pub left: usize,
}

pub struct Implement<'a> {
    pub pipeline: &'a Pipeline,
    pub tools: &'a Tools,
    pub tasks_file: &'a Path,
    pub writable: &'a Writable,
    /// What every pipeline task is told about the feature.
    pub feature: String,
    pub options: Value,
    /// Stop after this many tasks were done.
    pub limit: Option<usize>,
    pub progress: &'a Progress,
}

impl Implement<'_> {
    pub async fn run(&self) -> Result<Outcome, SpecError> {
        let text = self.read()?;
        let lines = parse(&text);
        if lines.is_empty() {
            return Err(SpecError::Document(format!(
                "{} has no task lines (`- [ ] T001 ...`)",
                self.tasks_file.display()
            )));
        }
        let mut outcome = Outcome { ticked: Vec::new(), failed: None, left: 0 };
        let mut all = batches(&lines);
        // A limit below a batch's size cuts the batch.
        if let (Some(limit), Some(first)) = (self.limit, all.first_mut()) {
            first.truncate(limit);
        }
        for (i, batch) in all.iter().enumerate() {
            let runs = futures::future::join_all(batch.iter().map(|task| self.one(task))).await;
            for (task, result) in batch.iter().zip(runs) {
                match result {
                    Ok(()) => {
                        let text = tick(&self.read()?, &task.id);
                        self.writable.write(self.tasks_file, &text)?;
                        self.progress.say(format!("[X] {} {}", task.id, task.description));
                        outcome.ticked.push(task.id.clone());
                    }
                    Err(reason) if outcome.failed.is_none() => outcome.failed = Some((task.id.clone(), reason)),
                    Err(reason) => self.progress.say(format!("{} failed too: {reason}", task.id)),
                }
            }
            let enough = self.limit.is_some_and(|n| outcome.ticked.len() >= n);
            if outcome.failed.is_some() || enough {
                outcome.left = all[i + 1..].iter().map(Vec::len).sum();
                break;
            }
        }
        Ok(outcome)
    }

    fn read(&self) -> Result<String, SpecError> {
        std::fs::read_to_string(self.tasks_file)
            .map_err(|e| SpecError::Io(format!("{}: {e}", self.tasks_file.display())))
    }

    /// The key under which this feature's task lines map to pipeline tasks.
    fn record_key(&self) -> String {
        format!("speckit:implement:{}", self.tasks_file.display())
    }

    /// Carries out one task line; `Err` is the reason it was not done.
    async fn one(&self, line: &TaskLine) -> Result<(), String> {
        let store = self.pipeline.tasks().store().clone();
        let key = self.record_key();
        let earlier = match store.hget(&key, &line.id).await.map_err(|e| e.to_string())? {
            Some(id) => self.pipeline.tasks().get(&String::from_utf8_lossy(&id)).await.map_err(|e| e.to_string())?,
            None => None,
        };
        let task = match earlier {
            Some(task) if applied(&task) => {
                self.progress.say(format!("{}: applied by task {} before; ticking it", line.id, task.id));
                return Ok(());
            }
            Some(task) if matches!(task.status, TaskStatus::Interrupted | TaskStatus::Queued) => {
                self.progress.say(format!("{}: resuming task {}", line.id, task.id));
                task
            }
            _ => {
                let text = format!("{}: {}\n\n{}", line.id, line.description, self.feature);
                let task = self.pipeline.create_on(self.tools, &text, true, self.options.clone()).await;
                let task = task.map_err(|e| e.to_string())?;
                store.hset(&key, &[(&line.id, task.id.as_bytes())]).await.map_err(|e| e.to_string())?;
                self.progress.say(format!("{}: task {} — {}", line.id, task.id, line.description));
                task
            }
        };
        let done = self.follow(&line.id, &task.id).await?;
        if applied(&done) {
            Ok(())
        } else {
            Err(done.error.unwrap_or_else(|| "the change was not approved and applied".into()))
        }
    }

    /// Runs the pipeline task while passing its progress on.
    async fn follow(&self, line: &str, id: &str) -> Result<Task, String> {
        let from = self.pipeline.tasks().events(id, 0).await.map_err(|e| e.to_string())?.len() as u64;
        let mut events = Box::pin(self.pipeline.follow(id, from));
        let run = self.pipeline.run(id);
        tokio::pin!(run);
        loop {
            tokio::select! {
                result = &mut run => return result.map_err(|e| e.to_string()),
                Some(event) = events.next() => {
                    if let Some(text) = event.describe() {
                        self.progress.say(format!("{line} {text}"));
                    }
                }
            }
        }
    }
}

fn applied(task: &Task) -> bool {
    task.status == TaskStatus::Succeeded && task.outputs.get(&Stage::Output).is_some_and(|o| o["applied"] == true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASKS: &str = "# Tasks\n\n## Phase 1\n\n- [ ] T001 Create `tool/cli.py` flag\n- [X] T002 [P] [US1] Done already\n- [ ] T003 [P] [US1] Add test in tests/test_cli.py\n- [ ] T004 [P] Update README.md\n- [ ] T005 Check\n- [ ] not a task\n";

    #[test]
    fn task_lines_are_read_with_their_markers() {
        let tasks = parse(TASKS);
        assert_eq!(tasks.len(), 5);
        assert_eq!(
            tasks[0],
            TaskLine {
                id: "T001".into(),
                done: false,
                parallel: false,
                description: "Create `tool/cli.py` flag".into()
            }
        );
        assert!(tasks[1].done && tasks[1].parallel);
        assert_eq!(tasks[2].description, "Add test in tests/test_cli.py");
    }

    #[test]
    fn parallel_neighbours_run_together_and_the_rest_alone() {
        let ids: Vec<Vec<String>> =
            batches(&parse(TASKS)).iter().map(|b| b.iter().map(|t| t.id.clone()).collect()).collect();
        assert_eq!(ids, vec![vec!["T001"], vec!["T003", "T004"], vec!["T005"]]);
    }

    #[test]
    fn ticking_changes_only_that_box() {
        let ticked = tick(TASKS, "T003");
        assert!(ticked.contains("- [X] T003 [P] [US1] Add test"));
        assert!(ticked.contains("- [ ] T001") && ticked.contains("- [ ] T004"));
        assert_eq!(ticked.len(), TASKS.len());
    }
}
