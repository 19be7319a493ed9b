//! The run record: everything a task's run has produced, typed, saved as one versioned
//! blob in the task record (`Task::run`) at every transition and loaded once. What comes
//! next is a function of it alone ([`next_step`]), so running a new task and resuming an
//! interrupted one are the same loop. The record's `outputs`, `attempts` and `reviews`
//! are views of it for readers (the API, `quorum tasks`), written with it.

use serde::{Deserialize, Serialize};

use super::record::{CodeOutput, Feedback, Output, PlanOutput, Verdict, VoteOutput};
use super::{PipelineError, PipelineOptions};
use crate::state::task::{CoderAttempt, ReviewIteration};
use crate::state::{Stage, Task};

/// The version this build writes; a record of another is refused, never misread.
pub const RUN_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub version: u32,
    /// The task text after preprocessing.
    pub text: Option<String>,
    /// Every plan made (a re-plan adds one), with its rounds.
    pub plans: Vec<PlanRun>,
    pub output: Option<Output>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRun {
    pub plan: PlanOutput,
    pub rounds: Vec<Round>,
}

/// One code-vote-review round: a step per sub-task, then the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub steps: Vec<SubtaskRun>,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskRun {
    pub code: CodeOutput,
    pub vote: Option<VoteOutput>,
}

/// What the runner does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Preprocess,
    Plan {
        /// What earlier plans' reviews found.
        learned: Vec<String>,
        replans: u32,
    },
    Code {
        round: u32,
        subtask: usize,
        /// The winning patches of the round's earlier sub-tasks.
        patches: Vec<String>,
        feedback: Feedback,
    },
    Vote,
    Review,
    Output {
        failure: Option<String>,
    },
    /// The output is saved but the task was not marked finished (a crash in between).
    Finish {
        failure: Option<String>,
    },
}

impl Step {
    /// The stage the step runs (none for `Finish`).
    pub fn stage(&self) -> Option<Stage> {
        Some(match self {
            Step::Preprocess => Stage::Preprocess,
            Step::Plan { .. } => Stage::Plan,
            Step::Code { .. } => Stage::Code,
            Step::Vote => Stage::Vote,
            Step::Review => Stage::Review,
            Step::Output { .. } => Stage::Output,
            Step::Finish { .. } => return None,
        })
    }
}

/// What comes after what `run` holds.
pub fn next_step(run: &Run, options: &PipelineOptions) -> Step {
    if let Some(output) = &run.output {
        return Step::Finish { failure: output.failure.clone() };
    }
    if run.text.is_none() {
        return Step::Preprocess;
    }
    let Some(plan) = run.plans.last() else { return Step::Plan { learned: Vec::new(), replans: 0 } };
    let Some(round) = plan.rounds.last() else {
        let round = run.verdicts().count() as u32 + 1;
        return Step::Code { round, subtask: 0, patches: Vec::new(), feedback: Feedback::default() };
    };
    let step = round.steps.last().expect("a round starts with a step");
    let Some(vote) = &step.vote else { return Step::Vote };
    let Some(verdict) = &round.verdict else {
        if vote.reason.is_none() && vote.subtask + 1 < plan.plan.plan.subtasks.len() {
            // In a retry round every sub-task hears why the last attempt was rejected.
            let earlier = plan.rounds.len().checked_sub(2).and_then(|i| plan.rounds[i].verdict.as_ref());
            let feedback = earlier.map(|v| run.feedback(v)).unwrap_or_default();
            return Step::Code {
                round: vote.round,
                subtask: vote.subtask + 1,
                patches: vote.patches.clone(),
                feedback,
            };
        }
        return Step::Review;
    };
    if verdict.approved {
        Step::Output { failure: None }
    } else if plan.rounds.len() < options.max_rounds as usize && run.rejected_before(verdict).is_none() {
        // A coder that wrote a rejected change again would write it once more: the
        // plan's rounds end there.
        Step::Code { round: verdict.round + 1, subtask: 0, patches: Vec::new(), feedback: run.feedback(verdict) }
    } else if plan.plan.replans < options.replans {
        let learned = run.verdicts().flat_map(|v| v.problems.iter().cloned()).collect();
        Step::Plan { learned, replans: plan.plan.replans + 1 }
    } else {
        Step::Output { failure: Some(verdict.problems.join("; ")) }
    }
}

impl Run {
    /// The run of a task record: its blob, or a fresh one for a task that has not started.
    /// Records written before the run record existed resume only from before the code
    /// stage (their text and plan are read); later they are refused, with a message.
    pub fn load(task: &Task) -> Result<Run, PipelineError> {
        let Some(blob) = &task.run else { return legacy(task) };
        let version = blob["version"].as_u64().unwrap_or(0);
        if version != RUN_VERSION as u64 {
            return Err(PipelineError::Invalid(format!(
                "task `{}` has a run record of version {version}; this quorum reads version {RUN_VERSION}",
                task.id
            )));
        }
        serde_json::from_value(blob.clone())
            .map_err(|e| PipelineError::Invalid(format!("task `{}`: the run record is unreadable: {e}", task.id)))
    }

    /// Writes the run into the record, with the views of it: the output of `stage`, the
    /// coder attempts and the reviews.
    pub fn store(&self, task: &mut Task, stage: Stage) -> serde_json::Value {
        task.run = Some(serde_json::to_value(self).expect("runs serialize"));
        task.attempts = self.attempts();
        task.reviews = self.reviews();
        self.output_of(stage)
    }

    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or_default()
    }

    /// The current plan.
    pub fn plan(&self) -> Option<&PlanOutput> {
        self.plans.last().map(|p| &p.plan)
    }

    /// The current round's latest sub-task.
    pub fn current(&self) -> Option<&SubtaskRun> {
        self.plans.last()?.rounds.last()?.steps.last()
    }

    pub fn add_plan(&mut self, plan: PlanOutput) {
        self.plans.push(PlanRun { plan, rounds: Vec::new() });
    }

    /// A sub-task's candidates: the first starts a round.
    pub fn add_code(&mut self, code: CodeOutput) {
        let plan = self.plans.last_mut().expect("code follows a plan");
        let step = SubtaskRun { code, vote: None };
        match plan.rounds.last_mut() {
            Some(round) if round.verdict.is_none() && step.code.subtask > 0 => round.steps.push(step),
            _ => plan.rounds.push(Round { steps: vec![step], verdict: None }),
        }
    }

    pub fn set_vote(&mut self, vote: VoteOutput) {
        let round = self.plans.last_mut().and_then(|p| p.rounds.last_mut()).expect("a vote follows code");
        round.steps.last_mut().expect("a round has a step").vote = Some(vote);
    }

    pub fn set_verdict(&mut self, verdict: Verdict) {
        self.plans.last_mut().and_then(|p| p.rounds.last_mut()).expect("a review follows a vote").verdict =
            Some(verdict);
    }

    fn rounds(&self) -> impl Iterator<Item = &Round> {
        self.plans.iter().flat_map(|p| &p.rounds)
    }

    /// How many of its plan's steps round `round` went through.
    pub fn steps_of(&self, round: u32) -> usize {
        self.rounds().filter(|r| r.steps.first().is_some_and(|s| s.code.round == round)).map(|r| r.steps.len()).sum()
    }

    /// Every verdict, oldest first.
    pub fn verdicts(&self) -> impl Iterator<Item = &Verdict> {
        self.rounds().filter_map(|r| r.verdict.as_ref())
    }

    /// The earlier verdict that rejected the change `verdict` judges, if a round before
    /// it was rejected with the same change.
    pub fn rejected_before(&self, verdict: &Verdict) -> Option<&Verdict> {
        if verdict.diff.is_empty() {
            return None;
        }
        self.rejected().find(|v| v.round < verdict.round && v.diff == verdict.diff)
    }

    /// Every verdict that rejected a change, oldest first.
    pub fn rejected(&self) -> impl Iterator<Item = &Verdict> {
        self.verdicts().filter(|v| !v.approved)
    }

    /// The latest vote.
    pub fn vote(&self) -> Option<&VoteOutput> {
        self.rounds().flat_map(|r| &r.steps).filter_map(|s| s.vote.as_ref()).last()
    }

    /// The change to show when no review approved one: the latest reviewed change whose
    /// tests passed, else the latest reviewed change at all (a later round may have had none).
    pub fn best_reviewed(&self) -> String {
        let reviewed = || self.verdicts().filter(|v| !v.diff.is_empty());
        let passed = reviewed().filter(|v| v.tests.as_ref().is_some_and(|t| t.success)).last();
        passed.or_else(|| reviewed().last()).map(|v| v.diff.clone()).unwrap_or_default()
    }

    /// The change to show when the run ends without an approval, as patches to apply in
    /// order: [`Run::best_reviewed`], else what the current round chose so far (a one-step
    /// plan's winner, or the steps before the one the time budget cut short).
    pub fn best_change(&self) -> Vec<String> {
        let reviewed = self.best_reviewed();
        if !reviewed.is_empty() {
            return vec![reviewed];
        }
        let Some(step) = self.current() else { return Vec::new() };
        step.vote.as_ref().map_or(&step.code.patches, |v| &v.patches).clone()
    }

    /// What the coders are told after a rejection.
    fn feedback(&self, verdict: &Verdict) -> Feedback {
        Feedback {
            problems: verdict.problems.clone(),
            rejected_diff: Some(verdict.diff.clone()).filter(|d| !d.is_empty()),
            rejected_files: verdict.files.clone(),
            failing_tests: verdict.tests.as_ref().filter(|t| !t.success).map(|t| t.tail(30)),
            earlier: self.earlier_rounds(),
        }
    }

    /// One line per earlier round: how its candidates fared.
    fn earlier_rounds(&self) -> Vec<String> {
        self.rounds()
            .map(|round| {
                let candidates: Vec<_> = round.steps.iter().flat_map(|s| &s.code.candidates).collect();
                let number = round.steps[0].code.round;
                let mut reasons: Vec<&str> =
                    candidates.iter().filter_map(|c| c.red_flag.as_ref()).map(|f| f.reason()).collect();
                let flagged = reasons.len();
                reasons.sort();
                reasons.dedup();
                format!(
                    "round {number}: {} candidates, {flagged} red-flagged ({})",
                    candidates.len(),
                    reasons.join(", ")
                )
            })
            .collect()
    }

    fn attempts(&self) -> Vec<CoderAttempt> {
        let steps = self.rounds().flat_map(|r| &r.steps);
        steps
            .flat_map(|s| {
                s.code.candidates.iter().map(|c| CoderAttempt {
                    round: s.code.round,
                    candidate: c.index as u32,
                    diff: c.diff.clone(),
                    red_flag: c.red_flag.as_ref().map(ToString::to_string),
                    red_flag_kind: c.red_flag.as_ref().map(|f| f.reason().to_string()),
                })
            })
            .collect()
    }

    fn reviews(&self) -> Vec<ReviewIteration> {
        self.verdicts()
            .map(|v| ReviewIteration {
                round: v.round,
                approved: v.approved,
                problems: v.problems.clone(),
                diff: v.diff.clone(),
                tests_passed: v.tests.as_ref().map(|t| t.success),
            })
            .collect()
    }

    /// The latest output of `stage`, as the record's `outputs` show it.
    fn output_of(&self, stage: Stage) -> serde_json::Value {
        fn json<T: Serialize>(v: Option<&T>) -> serde_json::Value {
            v.map(|v| serde_json::to_value(v).expect("outputs serialize")).unwrap_or_default()
        }
        match stage {
            Stage::Preprocess => serde_json::json!({"text": self.text}),
            Stage::Plan => json(self.plan()),
            Stage::Code => json(self.current().map(|s| &s.code)),
            Stage::Vote => json(self.vote()),
            Stage::Review => json(self.verdicts().last()),
            Stage::Output => json(self.output.as_ref()),
        }
    }
}

/// A record from before the run record: its text and plan, if nothing came after them.
fn legacy(task: &Task) -> Result<Run, PipelineError> {
    let mut run = Run { version: RUN_VERSION, ..Run::default() };
    match task.last_completed_stage {
        None => {}
        Some(Stage::Preprocess | Stage::Plan) => {
            let text = task.outputs.get(&Stage::Preprocess).and_then(|o| o["text"].as_str());
            run.text = Some(text.unwrap_or(&task.input.text).to_string());
            if task.last_completed_stage == Some(Stage::Plan) {
                let saved = task.outputs.get(&Stage::Plan).cloned().unwrap_or_default();
                let plan = serde_json::from_value(saved).map_err(|e| {
                    PipelineError::Invalid(format!("task `{}`: the saved plan is unreadable: {e}", task.id))
                })?;
                run.add_plan(plan);
            }
        }
        Some(stage) => {
            return Err(PipelineError::Invalid(format!(
                "task `{}` was saved by an older quorum after its {stage} stage, which this version cannot resume; \
                 its outputs stay readable (quorum tasks show); run the task again",
                task.id
            )))
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::context::Context;
    use crate::pipeline::record::{Plan, Subtask};

    fn plan(steps: usize, round_start: usize, replans: u32) -> PlanOutput {
        let subtasks = (0..steps)
            .map(|i| Subtask { description: format!("step {i}"), files: vec!["a.py".into()], ..Default::default() })
            .collect();
        PlanOutput {
            plan: Plan { subtasks, verify: String::new() },
            context: Context::default(),
            fallback: false,
            round_start,
            replans,
            probes: Default::default(),
        }
    }

    fn code(round: u32, subtask: usize) -> CodeOutput {
        CodeOutput { round, subtask, patches: Vec::new(), candidates: Vec::new(), before: None }
    }

    fn vote(round: u32, subtask: usize, patches: &[&str]) -> VoteOutput {
        VoteOutput {
            round,
            subtask,
            patches: patches.iter().map(|p| p.to_string()).collect(),
            winner: Some(0),
            ballot: Vec::new(),
            choices: Vec::new(),
            counts: Vec::new(),
            decided_by: None,
            reason: None,
        }
    }

    fn verdict(round: u32, approved: bool, problem: &str) -> Verdict {
        let problems = if approved { Vec::new() } else { vec![problem.to_string()] };
        Verdict { round, approved, problems, diff: format!("diff {round}"), files: Vec::new(), tests: None }
    }

    /// A round of a two-step plan, rejected for `problem`.
    fn rejected_round(run: &mut Run, round: u32, problem: &str) {
        run.add_code(code(round, 0));
        run.set_vote(vote(round, 0, &["p0"]));
        run.add_code(code(round, 1));
        run.set_vote(vote(round, 1, &["p0", "p1"]));
        run.set_verdict(verdict(round, false, problem));
    }

    #[test]
    fn the_next_step_follows_the_record_through_rounds_and_a_re_plan() {
        let options = PipelineOptions { max_rounds: 2, replans: 1, ..Default::default() };
        let mut run = Run { version: RUN_VERSION, ..Run::default() };
        assert_eq!(next_step(&run, &options), Step::Preprocess);
        run.text = Some("task".into());
        assert_eq!(next_step(&run, &options), Step::Plan { learned: Vec::new(), replans: 0 });
        run.add_plan(plan(2, 0, 0));
        assert!(matches!(next_step(&run, &options), Step::Code { round: 1, subtask: 0, .. }));
        run.add_code(code(1, 0));
        assert_eq!(next_step(&run, &options), Step::Vote);
        run.set_vote(vote(1, 0, &["p0"]));
        let Step::Code { round: 1, subtask: 1, patches, feedback } = next_step(&run, &options) else { panic!() };
        assert_eq!((patches, feedback), (vec!["p0".to_string()], Feedback::default()));
        run.add_code(code(1, 1));
        run.set_vote(vote(1, 1, &["p0", "p1"]));
        assert_eq!(next_step(&run, &options), Step::Review);
        run.set_verdict(verdict(1, false, "wrong sum"));
        let Step::Code { round: 2, subtask: 0, feedback, .. } = next_step(&run, &options) else { panic!() };
        assert_eq!(feedback.problems, ["wrong sum"]);
        assert_eq!(feedback.rejected_diff.as_deref(), Some("diff 1"));
        assert_eq!(feedback.earlier, ["round 1: 0 candidates, 0 red-flagged ()"]);
        // The second round's later step hears the first round's verdict too.
        run.add_code(code(2, 0));
        run.set_vote(vote(2, 0, &["p0"]));
        let Step::Code { round: 2, subtask: 1, feedback, .. } = next_step(&run, &options) else { panic!() };
        assert_eq!(feedback.problems, ["wrong sum"]);
        run.add_code(code(2, 1));
        run.set_vote(vote(2, 1, &["p0", "p1"]));
        run.set_verdict(verdict(2, false, "still wrong"));
        // Two rounds spent: a new plan, told what the reviews found.
        let learned = vec!["wrong sum".to_string(), "still wrong".to_string()];
        assert_eq!(next_step(&run, &options), Step::Plan { learned, replans: 1 });
        run.add_plan(plan(2, 2, 1));
        assert!(matches!(next_step(&run, &options), Step::Code { round: 3, subtask: 0, .. }));
        rejected_round(&mut run, 3, "third");
        rejected_round(&mut run, 4, "fourth");
        assert_eq!(next_step(&run, &options), Step::Output { failure: Some("fourth".into()) });
        assert_eq!(run.best_reviewed(), "diff 4");
        let record = serde_json::json!({"id": "t", "created_at": 0, "updated_at": 0, "input": {"text": "task"},
                                        "status": "running", "owner": "", "version": 0});
        let mut task: Task = serde_json::from_value(record).unwrap();
        assert_eq!(run.store(&mut task, Stage::Review)["problems"], serde_json::json!(["fourth"]));
        assert_eq!(task.reviews.len(), 4);
        assert_eq!(Run::load(&task).unwrap(), run, "the saved run loads as it was");
    }

    #[test]
    fn the_best_change_of_a_round_cut_short_is_the_steps_it_chose() {
        let mut run = Run { version: RUN_VERSION, text: Some("task".into()), ..Run::default() };
        run.add_plan(plan(3, 0, 0));
        assert!(run.best_change().is_empty());
        run.add_code(code(1, 0));
        run.set_vote(vote(1, 0, &["p0"]));
        assert_eq!(run.best_change(), ["p0"]);
        // The next step's candidates are in, its vote is not: what was chosen before it.
        run.add_code(CodeOutput { patches: vec!["p0".into()], ..code(1, 1) });
        assert_eq!(run.best_change(), ["p0"]);
        run.set_vote(vote(1, 1, &["p0", "p1"]));
        assert_eq!(run.best_change(), ["p0", "p1"]);
        run.set_verdict(verdict(1, false, "wrong"));
        assert_eq!(run.best_change(), ["diff 1"], "a reviewed change comes first");
        assert_eq!(run.steps_of(1), 2, "the third step was not coded");
    }

    #[test]
    fn a_change_rejected_again_ends_its_plans_rounds() {
        let options = PipelineOptions { max_rounds: 3, replans: 1, ..Default::default() };
        let mut run = Run { version: RUN_VERSION, text: Some("task".into()), ..Run::default() };
        run.add_plan(plan(1, 0, 0));
        let again = |round, diff: &str| Verdict { diff: diff.into(), ..verdict(round, false, "wrong") };
        for (round, diff) in [(1, "d"), (2, "e")] {
            run.add_code(code(round, 0));
            run.set_vote(vote(round, 0, &["p"]));
            run.set_verdict(again(round, diff));
            assert!(run.rejected_before(&again(round, diff)).is_none());
            assert!(matches!(next_step(&run, &options), Step::Code { .. }), "round {round} was a new change");
        }
        run.add_code(code(3, 0));
        run.set_vote(vote(3, 0, &["p"]));
        // Round 3 would be the plan's last anyway; with max_rounds 4 it is still the end.
        run.set_verdict(again(3, "d"));
        assert_eq!(run.rejected_before(&again(3, "d")).map(|v| v.round), Some(1));
        let options = PipelineOptions { max_rounds: 4, ..options };
        assert!(matches!(next_step(&run, &options), Step::Plan { replans: 1, .. }));
        run.add_plan(plan(1, 3, 1));
        run.add_code(code(4, 0));
        run.set_vote(vote(4, 0, &["p"]));
        run.set_verdict(again(4, "e"));
        assert_eq!(next_step(&run, &options), Step::Output { failure: Some("wrong".into()) });
        // A round that changed nothing repeats no change.
        assert!(run.rejected_before(&again(5, "")).is_none());
    }

    #[test]
    fn an_approved_round_ends_and_a_failed_vote_goes_to_review() {
        let options = PipelineOptions::default();
        let mut run = Run { version: RUN_VERSION, text: Some("task".into()), ..Run::default() };
        run.add_plan(plan(2, 0, 0));
        run.add_code(code(1, 0));
        // Nothing survived the red flags: the round goes to review, not on to step 2.
        run.set_vote(VoteOutput { winner: None, reason: Some("no candidate survived".into()), ..vote(1, 0, &[]) });
        assert_eq!(next_step(&run, &options), Step::Review);
        run.set_verdict(verdict(1, true, ""));
        assert_eq!(next_step(&run, &options), Step::Output { failure: None });
    }
}
