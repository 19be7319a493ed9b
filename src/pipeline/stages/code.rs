//! Stage 3: candidates for one sub-task, sampled from one prefilled prompt (the
//! scheduler's fork) at temperatures spread over a range (hotter in retry rounds), each
//! applied to its own scratch worktree; in a plan's first round, more batches while the
//! candidates do not settle the choice ([`ballot::settled`]). The coder writes short
//! files whole and edits long ones with blocks (the [`answer::Format`]s).
//! Red flags (MAKER): malformed output, an edit that does not apply, a candidate that hit
//! its token limit (or the time budget's deadline for answers before a complete edit),
//! changes nothing, or leaves a file that no longer parses; a
//! red-flagged candidate never reaches the vote, and the reason is recorded.

use std::sync::Arc;

use futures::StreamExt;

use crate::models::Role;
use crate::pipeline::answer::{self, blocks, whole_files, EditBlocks, Refused, WholeFiles};
use crate::pipeline::ballot::{self, Entry};
use crate::pipeline::context::{fit_files, is_whole, render_files, task_focus, ContextFile};
use crate::pipeline::event::{CandidateEvent, TestSummary};
use crate::pipeline::evidence::outcome::Outcome;
use crate::pipeline::evidence::probes::{self, Probes};
use crate::pipeline::evidence::worktree::{self, Scratch};
use crate::pipeline::evidence::{blocking, excuse, run_tests, selection, TestOutcome, TestPlan};
use crate::pipeline::models::{Ask, Ending};
use crate::pipeline::record::{Candidate, CodeOutput, Feedback, PlanOutput};
use crate::pipeline::red_flag::RedFlag;
use crate::pipeline::{heuristics, tuning, Ctx, Event, PipelineError};
use crate::state::Stage;
use crate::tools::{TestCommand, Workspace};

pub async fn run(
    ctx: &Ctx<'_>,
    task: &str,
    plan: &PlanOutput,
    round: u32,
    subtask: usize,
    patches: Vec<String>,
    feedback: &Feedback,
) -> Result<CodeOutput, PipelineError> {
    let root = ctx.tools.workspace().root().to_path_buf();
    let step = &plan.plan.subtasks[subtask];
    // Rounds count from the plan's first: a re-plan starts cool again.
    let round_in_plan = round.saturating_sub(plan.round_start as u32);
    let temperatures = ctx.options.round_temperatures(round_in_plan);
    // Every batch starts from the same files: the workspace as it is now, then `patches`.
    let layers = {
        let (root, patches) = (root.clone(), patches.clone());
        blocking(move || {
            Ok(std::iter::once(crate::pipeline::evidence::worktree::workspace_patch(&root)?)
                .chain(patches)
                .collect::<Vec<String>>())
        })
        .await?
    };
    let scratches = scratch_trees(&root, &layers, temperatures.len()).await?;

    // The files as they are now (after earlier sub-tasks), the step's own first.
    let tree = Workspace::new(scratches[0].path()).map_err(PipelineError::Tool)?;
    let mut paths: Vec<String> = step.files.clone();
    paths.extend(plan.context.files.iter().map(|f| f.path.clone()));
    paths.dedup();
    let files = fit_files(ctx, &tree, &paths, ctx.options.context_tokens, &task_focus(task));
    // The step's own files decide the format; whole files may be written only for them.
    let targets = heuristics::editable(task, if step.files.is_empty() { &paths } else { &step.files });
    let form = Form::choose(ctx, &tree, &files, &targets);

    let mut user = format!("Task:\n{task}\n\n{}\n", step_line(plan, subtask));
    if !plan.plan.verify.is_empty() {
        user.push_str(&format!("Check: {}\n", plan.plan.verify));
    }
    user.push_str(&format!("\nCode:\n{}", render_files(&files)));
    if !feedback.problems.is_empty() {
        user.push_str(&format!("\nA reviewer rejected the last attempt:\n- {}\n", feedback.problems.join("\n- ")));
        match (&feedback.rejected_diff, form) {
            // What a coder writing whole files starts again from: its files, not a diff.
            (Some(_), Form::WholeFiles { .. }) if !feedback.rejected_files.is_empty() => {
                user.push_str(&format!("The rejected version was:\n{}", render_files(&feedback.rejected_files)))
            }
            (Some(diff), _) => user.push_str(&format!("The rejected change was:\n```diff\n{diff}```\n")),
            (None, _) => {}
        }
        if let Some(tail) = &feedback.failing_tests {
            user.push_str(&format!("Its tests failed:\n```\n{tail}\n```\n"));
        }
        if !feedback.earlier.is_empty() {
            user.push_str(&format!("Earlier rounds:\n- {}\n", feedback.earlier.join("\n- ")));
        }
    }
    let (format, max_tokens): (Arc<dyn answer::Format>, u32) = match form {
        Form::WholeFiles { tokens } => {
            // Writing a file again costs its length on top of the change.
            let max_tokens = (ctx.options.coder_max_tokens as usize + tokens).min(tuning::MAX_WHOLE_TOKENS) as u32;
            (Arc::new(WholeFiles { targets: targets.clone() }), max_tokens)
        }
        // Only the step's files: the other files shown are there to read (a small coder
        // that may edit them rewrites a docs config it was shown for an import).
        Form::EditBlocks => (
            Arc::new(EditBlocks { paths: targets.clone(), max_blocks: tuning::EDIT_BLOCKS }),
            edit_tokens(ctx, &files, &targets),
        ),
    };
    user.push_str(&format!("\n{}", format.request()));
    let system = format!("{}\n\n{}", ctx.prompt(Role::Coder), format.instructions());
    let ask = Ask::new(&system, user, max_tokens).grammar(format.grammar()).stop(format.stops());
    let evidence_before = async {
        let tests = test_plan(ctx, task, step_files(step, plan), &layers, round, subtask);
        // Before any change: the workspace alone, not earlier steps' patches (a step that
        // fixed the example already is part of the change).
        let probed = plan.plan.is_last(subtask) && !ctx.budget.spent(tuning::BUDGET_NO_MORE);
        let before = async {
            if probed {
                observe_before(ctx, &root, &layers[..1], &plan.probes).await
            } else {
                Ok(None)
            }
        };
        tokio::try_join!(tests, before)
    };
    let first = ask.clone().samples(temperatures.clone());
    let ((tests, before), samples) = if ctx.budget.is_set() {
        // Under a time budget the baseline's length says when the answers must end.
        let (tests, before) = evidence_before.await?;
        let samples = answers(ctx, first, deadline(ctx, tests.as_ref(), temperatures.len())).await?;
        ((tests, before), samples)
    } else {
        // Without one, the tree before any change is tested while the coders answer.
        tokio::try_join!(evidence_before, answers(ctx, first, None))?
    };
    let batch = Batch { task, round, subtask, format, plan, tests, before };
    let mut candidates = batch.judge(ctx, samples, &temperatures, scratches, 0).await?;
    // First-to-ahead-by-k over candidates (MAKER's rule for votes): while no choice stands
    // for k more candidates than any other, sample another batch, hotter, from the same
    // prompt (the scheduler's prompt cache keeps its prefill). Only in a plan's first
    // round (a retry round is itself a resample, with the reviewer's feedback), and only
    // with evidence to settle on: tests or probes.
    let evidence = ctx.has_tests() || !plan.probes.calls.is_empty();
    // Before a plan's last step the tests may fail whatever the step does.
    let must_pass = plan.plan.is_last(subtask);
    let cap = ctx.options.max_candidates as usize;
    let mut extra = 1;
    while round_in_plan == 1
        && evidence
        && candidates.len() < cap
        && !ballot::settled(
            &entries(&candidates, task, plan, subtask, batch.before.as_deref()),
            ctx.options.k,
            must_pass,
        )
    {
        if passed_over(subtask, &candidates) {
            break;
        }
        if ctx.budget.spent(tuning::BUDGET_NO_MORE) {
            ctx.emit(Stage::Code, ctx.budget.cut("no further candidate batches")).await?;
            break;
        }
        let hotter = ctx.options.round_temperatures(round_in_plan + extra);
        let n = hotter.len().min(cap - candidates.len());
        ctx.emit(Stage::Code, Event::MoreCandidates { round, subtask, after: candidates.len(), adding: n }).await?;
        let scratches = scratch_trees(&root, &layers, n).await?;
        let more = batch.sample(ctx, ask.clone().samples(hotter[..n].to_vec()), scratches, candidates.len()).await?;
        if more.is_empty() {
            break;
        }
        candidates.extend(more);
        extra += 1;
    }
    Ok(CodeOutput { round, subtask, patches, candidates, before: batch.before })
}

/// The token limit of an edit-blocks answer: `coder_max_tokens`, plus what rewriting the
/// longest definition shown in a file it may change costs (a rewrite quotes it whole, as
/// a whole-files answer writes its files again), at most as much again.
fn edit_tokens(ctx: &Ctx<'_>, shown: &[ContextFile], targets: &[String]) -> u32 {
    let count = |s: &str| ctx.models.count_tokens(Role::Coder, s);
    let longest = shown
        .iter()
        .filter(|f| targets.contains(&f.path))
        .map(|f| crate::pipeline::excerpt::longest_block(&f.content, &count))
        .max()
        .unwrap_or(0);
    let base = ctx.options.coder_max_tokens;
    base + (longest as u32).min(base)
}

/// What the coder is told of its step. A plan of one step is the task itself: the
/// planner's restatement of it is left out (a small planner's adds work the task did not
/// ask for, "update the egg-info", which candidates then do), and only its files are said.
fn step_line(plan: &PlanOutput, subtask: usize) -> String {
    let steps = &plan.plan.subtasks;
    let step = &steps[subtask];
    if steps.len() > 1 || step.files.is_empty() {
        return format!("Step {} of {}: {}", subtask + 1, steps.len(), step.description);
    }
    format!("Files to change: {}", step.files.join(", "))
}

/// Whether a step is passed over: a later one whose every candidate changes nothing was
/// done by the earlier ones (small planners add "now check it" steps).
pub fn passed_over(subtask: usize, candidates: &[Candidate]) -> bool {
    subtask > 0 && candidates.iter().all(|c| c.red_flag == Some(RedFlag::NoChange))
}

/// What the ballot needs of each candidate; `task` says which exceptions are asked for.
/// Faults and an unchanged example count at the plan's last step only: before it, code
/// that a later step changes may crash on the probes, or still do what the task reports,
/// whatever this step does. `before` is what the probes did before any change.
pub fn entries(
    candidates: &[Candidate],
    task: &str,
    plan: &PlanOutput,
    subtask: usize,
    before: Option<&[Outcome]>,
) -> Vec<Entry> {
    let last_step = plan.plan.is_last(subtask);
    let examples = heuristics::example_calls(task);
    let asked: Vec<usize> =
        plan.probes.calls.iter().enumerate().filter(|(_, call)| examples.contains(call)).map(|(i, _)| i).collect();
    let before = before.filter(|_| last_step && !asked.is_empty());
    candidates
        .iter()
        .map(|c| Entry {
            unchanged: c
                .behaviour
                .as_deref()
                .zip(before)
                .map(|(seen, before)| asked.iter().all(|&i| seen.get(i) == before.get(i))),
            diff: c.diff.clone(),
            red_flagged: c.red_flag.is_some(),
            tests_passed: c.tests.as_ref().map(|t| t.success),
            behaviour: c.behaviour.clone(),
            faults: c.behaviour.as_deref().filter(|_| last_step).map(|seen| probes::faults(seen, task)),
        })
        .collect()
}

/// `n` scratch worktrees with `layers` applied (git and the file system block: off the
/// async threads).
async fn scratch_trees(root: &std::path::Path, layers: &[String], n: usize) -> Result<Vec<Scratch>, PipelineError> {
    let (root, layers) = (root.to_path_buf(), layers.to_vec());
    blocking(move || {
        let layers: Vec<&str> = layers.iter().map(String::as_str).collect();
        (0..n).map(|_| Scratch::create(&root, &layers)).collect::<Result<Vec<_>, _>>()
    })
    .await
}

/// What the probes do on the tree of `layers`.
async fn observe_before(
    ctx: &Ctx<'_>,
    root: &std::path::Path,
    layers: &[String],
    probes: &Probes,
) -> Result<Option<Vec<Outcome>>, PipelineError> {
    if probes.is_empty() {
        return Ok(None);
    }
    let scratch = scratch_trees(root, layers, 1).await?.remove(0);
    let seen = probes::observe(ctx, &scratch, scratch.id(), probes).await?;
    blocking(move || {
        drop(scratch);
        Ok(())
    })
    .await?;
    Ok(seen)
}

/// The files a step's tests are chosen for: its own, or the plan's context.
fn step_files(step: &crate::pipeline::record::Subtask, plan: &PlanOutput) -> Vec<String> {
    if step.files.is_empty() {
        plan.context.files.iter().map(|f| f.path.clone()).collect()
    } else {
        step.files.clone()
    }
}

/// The tests a step's candidates run ([`selection`]), run first on the tree they start
/// from; None without tests, or when that run timed out.
async fn test_plan(
    ctx: &Ctx<'_>,
    task: &str,
    files: Vec<String>,
    layers: &[String],
    round: u32,
    subtask: usize,
) -> Result<Option<TestPlan>, PipelineError> {
    if !ctx.has_tests() {
        return Ok(None);
    }
    let (root, task) = (ctx.tools.workspace().root().to_path_buf(), task.to_string());
    let Some(selection) =
        blocking(move || Ok(selection::select(&root, &files, &task, &worktree::workspace_files(&root)))).await?
    else {
        return Ok(None);
    };
    let tests = selection.describe();
    let plan = TestPlan::prepare(ctx, layers, selection).await?;
    let event = match &plan {
        Ok(TestPlan { baseline: b, timeout_secs, .. }) => Event::Baseline {
            round,
            subtask,
            tests,
            seconds: b.seconds,
            passed: b.passed,
            failing: b.failed_tests.clone(),
            timeout_secs: Some(*timeout_secs),
            error: b.not_run.clone(),
        },
        Err(untested) => Event::Baseline {
            round,
            subtask,
            tests,
            seconds: 0.0,
            passed: None,
            failing: vec![],
            timeout_secs: None,
            error: untested.reason(),
        },
    };
    ctx.emit(Stage::Code, event).await?;
    Ok(plan.ok())
}

/// What every batch of one sub-task's candidates shares.
struct Batch<'a> {
    task: &'a str,
    round: u32,
    subtask: usize,
    format: Arc<dyn answer::Format>,
    plan: &'a PlanOutput,
    tests: Option<TestPlan>,
    /// What the probes did before any change, where they ran.
    before: Option<Vec<Outcome>>,
}

impl Batch<'_> {
    fn event(&self, c: &Candidate) -> CandidateEvent {
        CandidateEvent {
            round: self.round,
            subtask: self.subtask,
            index: c.index,
            temperature: c.temperature,
            tokens: c.tokens,
            red_flag: c.red_flag.as_ref().map(RedFlag::to_string),
            diff_lines: c.diff.lines().count(),
            tests: c.tests.as_ref().map(|t| TestSummary { success: t.success, passed: t.passed, failed: t.failed }),
            behaviour: c.behaviour.clone(),
        }
    }

    /// The flag of a candidate that fails a call the task writes itself: every call the
    /// bug report says goes wrong does what it did before the change, or one still returns
    /// what the task reports as the bug, or other than what the task says it should give,
    /// or None where the task reports a value, or it crashes (as [`probes::faults`] counts
    /// crashes). Only at the plan's last step:
    /// before it, a later step may be what fixes it.
    fn fails_example(&self, behaviour: Option<&[Outcome]>) -> Option<RedFlag> {
        if !self.plan.plan.is_last(self.subtask) {
            return None;
        }
        let behaviour = behaviour?;
        let examples = heuristics::example_calls(self.task);
        let reported = heuristics::reported_values(self.task);
        let expected = heuristics::expected_values(self.task);
        // What the report says of a call names the fault best; where it quotes no value
        // as Python prints it ("yields 20, 40"), the call doing as before still tells.
        let found = self.plan.probes.calls.iter().zip(behaviour).find_map(|(call, seen)| {
            let seen = match seen {
                Outcome::Returned { value, .. } => {
                    let wrong = reported.iter().find(|(c, _)| c == call).map(|(_, v)| v);
                    let right = expected.iter().find(|(c, _)| c == call).map(|(_, v)| v);
                    if wrong.is_some_and(|wrong| heuristics::gives(value, wrong)) {
                        Some(format!("still returns {value}, as the task reports of the bug"))
                    } else if let Some(right) = right.filter(|right| !heuristics::gives(value, right)) {
                        Some(format!("returns {value} where the task says it should give {right}"))
                    } else {
                        // A function that gave a wrong value now gives none at all.
                        wrong.filter(|w| value == "None" && *w != "None").map(|_| "returns None".to_string())
                    }
                }
                Outcome::Raised { exception, crash: true }
                    if examples.contains(call) && !heuristics::names_exception(self.task, exception) =>
                {
                    Some(format!("raises {exception}"))
                }
                Outcome::Raised { .. } => None,
            }?;
            Some(RedFlag::FailsExample { call: call.clone(), seen })
        });
        found.or_else(|| self.as_before(behaviour))
    }

    /// The flag of a candidate after which every call the bug report says goes wrong does
    /// what it did before the change (the report's own outcome need not be quoted as
    /// Python prints it: "yields 20, 40", "raises SQLParseError").
    fn as_before(&self, seen: &[Outcome]) -> Option<RedFlag> {
        let (before, calls) = (self.before.as_deref()?, &self.plan.probes.calls);
        let reported = heuristics::reported_calls(self.task);
        let at: Vec<usize> = (0..calls.len()).filter(|&i| reported.contains(&calls[i])).collect();
        let first = *at.first()?;
        let same = at.iter().all(|&i| seen.get(i).is_some() && seen.get(i) == before.get(i));
        same.then(|| RedFlag::FailsExample {
            call: calls[first].clone(),
            seen: format!("still does what it did before the change ({})", seen[first]),
        })
    }

    /// The flag of a candidate after which, at the plan's last step, fewer than half of
    /// the tests that passed before any change pass.
    fn breaks_tests(&self, ran: Option<&TestOutcome>) -> Option<RedFlag> {
        let baseline = &self.tests.as_ref()?.baseline;
        let before = baseline.passed_untouched.or(baseline.passed)?;
        let ran = ran?;
        (self.plan.plan.is_last(self.subtask) && breaks_most_tests(before, ran))
            .then(|| RedFlag::BreaksTests { before, passed: ran.passed.unwrap_or(0) })
    }

    /// A candidate's test outcome and what the probes saw, on its scratch tree changed by
    /// `diff` (neither for a red-flagged one, which has none).
    async fn evidence(
        &self,
        ctx: &Ctx<'_>,
        scratch: &Scratch,
        diff: Option<&str>,
    ) -> Result<(Option<TestOutcome>, Option<Vec<Outcome>>), PipelineError> {
        let Some(diff) = diff else { return Ok((None, None)) };
        let tree = scratch.id().then(diff);
        let tests = async {
            match &self.tests {
                Some(tests) => run_tests(ctx, scratch, tree, tests).await,
                None => Ok(None),
            }
        };
        let behaviour = probes::observe(ctx, scratch, tree, &self.plan.probes);
        // The whole pytest suite would collect the probes' file: they wait for it.
        let whole = |t: &TestPlan| t.selection.is_whole() && t.selection.command == TestCommand::Pytest;
        if self.tests.as_ref().is_some_and(whole) {
            let tests = tests.await?;
            return Ok((tests, behaviour.await?));
        }
        tokio::try_join!(tests, behaviour)
    }

    /// Samples `ask` (a sample per temperature), then [`Batch::judge`]s the answers.
    async fn sample(
        &self,
        ctx: &Ctx<'_>,
        ask: Ask,
        scratches: Vec<Scratch>,
        first: usize,
    ) -> Result<Vec<Candidate>, PipelineError> {
        let temperatures = ask.temperatures.clone();
        let samples = answers(ctx, ask, deadline(ctx, self.tests.as_ref(), temperatures.len())).await?;
        self.judge(ctx, samples, &temperatures, scratches, first).await
    }

    /// Applies each sample (drawn at `temperatures`) to its scratch worktree, then tests and
    /// probes it; candidates are numbered from `first`.
    async fn judge(
        &self,
        ctx: &Ctx<'_>,
        samples: Vec<crate::pipeline::Sample>,
        temperatures: &[f32],
        scratches: Vec<Scratch>,
        first: usize,
    ) -> Result<Vec<Candidate>, PipelineError> {
        let format = self.format.clone();
        let (scratches, judged) = blocking(move || {
            let judged: Vec<Result<String, RedFlag>> =
                samples.iter().zip(&scratches).map(|(s, scratch)| judge(s, scratch, &*format)).collect();
            Ok((scratches, samples.into_iter().zip(judged).collect::<Vec<_>>()))
        })
        .await?;
        // Each candidate's tests and probes, several at once within the CPU budget; the
        // events follow in the candidates' order.
        let evidence: Vec<_> = judged
            .iter()
            .zip(&scratches)
            .map(|((_, verdict), scratch)| self.evidence(ctx, scratch, verdict.as_ref().ok().map(String::as_str)))
            .collect();
        let mut evidence: Vec<_> = futures::stream::iter(evidence).buffered(tuning::test_jobs()).collect().await;
        if let Some(tests) = &self.tests {
            let mut outcomes: Vec<&mut TestOutcome> =
                evidence.iter_mut().filter_map(|e| e.as_mut().ok().and_then(|(t, _)| t.as_mut())).collect();
            excuse(tests, self.task, &mut outcomes);
        }
        let mut candidates = Vec::with_capacity(scratches.len());
        for (offset, ((sample, verdict), found)) in judged.into_iter().zip(evidence).enumerate() {
            let (tests, behaviour) = found?;
            let (diff, red_flag) = match verdict {
                Ok(diff) => {
                    (diff, self.fails_example(behaviour.as_deref()).or_else(|| self.breaks_tests(tests.as_ref())))
                }
                Err(flag) => (String::new(), Some(flag)),
            };
            let index = first + offset;
            let candidate = Candidate {
                index,
                temperature: temperatures[offset],
                tokens: sample.tokens,
                text: sample.text,
                diff,
                red_flag,
                tests,
                behaviour,
            };
            ctx.emit(Stage::Code, Event::Candidate(self.event(&candidate))).await?;
            candidates.push(candidate);
        }
        // Removing worktrees runs git too.
        blocking(move || {
            drop(scratches);
            Ok(())
        })
        .await?;
        Ok(candidates)
    }
}

/// The coder's answers to `ask`, ended at `deadline` (the time budget's).
async fn answers(
    ctx: &Ctx<'_>,
    ask: Ask,
    deadline: Option<tokio::time::Instant>,
) -> Result<Vec<crate::pipeline::Sample>, PipelineError> {
    let samples = ctx.models.ask(Role::Coder, ask.until(deadline)).await?;
    let cut = samples.iter().filter(|s| s.ending == Ending::Deadline).count();
    if cut > 0 {
        let what =
            format!("{cut} of {} answers cut short for their tests; their complete edits are judged", samples.len());
        ctx.emit(Stage::Code, ctx.budget.cut(&what)).await?;
    }
    Ok(samples)
}

/// When `n` answers must end for their tests (in waves of [`tuning::test_jobs`], each as
/// long as the baseline run), the probes, the vote and a review to fit the time budget. A
/// run longer than its wave's share still ends before the budget does ([`run_tests`]).
fn deadline(ctx: &Ctx<'_>, tests: Option<&TestPlan>, n: usize) -> Option<tokio::time::Instant> {
    let waves = n.div_ceil(tuning::test_jobs()) as f64;
    let tests = tests.map_or(0.0, |t| waves * (t.baseline.seconds + 1.0));
    ctx.budget.deadline(tuning::BUDGET_AFTER_ANSWERS, std::time::Duration::from_secs_f64(tests))
}

/// How the coders answer: whole files when every file the step may change is short
/// (`whole_file_lines`) and shown complete, or new; edit blocks otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// `tokens`: what the shown files cost, which writing them again costs too.
    WholeFiles {
        tokens: usize,
    },
    EditBlocks,
}

impl Form {
    /// `targets` are the files the step may change; `shown` what the coder was shown.
    fn choose(ctx: &Ctx<'_>, tree: &Workspace, shown: &[ContextFile], targets: &[String]) -> Form {
        let max_lines = ctx.options.whole_file_lines;
        // The grammar names every target: without them it would allow any path.
        if max_lines == 0 || targets.is_empty() || !targets.iter().all(|p| blocks::quotable(p)) {
            return Form::EditBlocks;
        }
        let mut tokens = 0;
        for path in targets {
            let full = match tree.resolve_content(path) {
                Ok(full) => full,
                Err(crate::tools::ToolError::NotFound(_)) => continue,
                Err(_) => return Form::EditBlocks,
            };
            match shown.iter().find(|f| f.path == tree.relative(&full)) {
                Some(file)
                    if is_whole(file)
                        && file.content.lines().count() <= max_lines
                        && whole_files::writable(&file.content) =>
                {
                    // Its FILE line and fences, then its lines again.
                    tokens += 10 + ctx.models.count_tokens(Role::Coder, &file.content);
                }
                // Empty files are not shown, and can be written whole.
                None if full.metadata().is_ok_and(|m| m.len() == 0) => {}
                _ => return Form::EditBlocks,
            }
        }
        Form::WholeFiles { tokens }
    }
}

/// Whether a run that failed passes fewer than half of the `before` tests that passed
/// before the change (where some did): a module that no longer imports fails every test
/// file at once, and a change that keeps a third of a module's tests passing (sqlparse's
/// `format` passing 3 of 111) undoes what the rest check, whatever it fixes.
pub fn breaks_most_tests(before: u64, ran: &TestOutcome) -> bool {
    before > 0 && !ran.success && ran.passed.unwrap_or(0) * 2 < before
}

/// The candidate's diff, or the red flag that disqualifies it.
fn judge(sample: &crate::pipeline::Sample, scratch: &Scratch, format: &dyn answer::Format) -> Result<String, RedFlag> {
    format.apply(scratch.path(), &sample.text, sample.ending).map_err(|refused| match refused {
        Refused::CutOff => RedFlag::TokenLimit { tokens: sample.tokens },
        Refused::Unfinished => RedFlag::Unfinished { tokens: sample.tokens },
        Refused::Edit(e) => RedFlag::from(e),
    })?;
    let unjudged = |e: PipelineError| RedFlag::Unjudged { detail: e.to_string() };
    let diff = scratch.diff().map_err(unjudged)?;
    if crate::pipeline::ballot::normalize(&diff).is_empty() || blank_lines_only(&diff) {
        return Err(RedFlag::NoChange);
    }
    for path in scratch.changed().map_err(unjudged)? {
        let full = scratch.path().join(&path);
        let Ok(source) = std::fs::read_to_string(&full) else { continue };
        if let Some(line) = crate::tools::syntax_error(&full, &source) {
            return Err(RedFlag::DoesNotParse { path, line });
        }
    }
    Ok(diff)
}

/// Whether every line a diff adds or removes is blank: a candidate that only drops an
/// empty line changes nothing the task asked for, and would stand beside ones that do.
fn blank_lines_only(diff: &str) -> bool {
    diff.lines()
        .filter(|l| (l.starts_with('+') && !l.starts_with("+++")) || (l.starts_with('-') && !l.starts_with("---")))
        .all(|l| l[1..].trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_of_blank_lines_changes_nothing() {
        let blank = "diff --git a/six.py b/six.py\n--- a/six.py\n+++ b/six.py\n@@ -142,7 +142,6 @@\n \n class M:\n-\n     def f(self):\n";
        assert!(blank_lines_only(blank));
        assert!(!blank_lines_only(&blank.replace("-\n", "-    x = 1\n")));
        // Indentation is code in Python: a line indented again is a change.
        assert!(!blank_lines_only("--- a/a.py\n+++ b/a.py\n-    return 1\n+        return 1\n"));
    }

    fn candidate(seen: &[&str]) -> Candidate {
        let behaviour = Some(seen.iter().map(|s| Outcome::from(*s)).collect());
        Candidate {
            index: 0,
            temperature: 0.5,
            tokens: 1,
            text: String::new(),
            diff: "-a\n+b".into(),
            red_flag: None,
            tests: None,
            behaviour,
        }
    }

    #[test]
    fn a_bug_reports_call_that_does_what_it_did_before_flags_the_candidate() {
        let task = "format('x', case='cap') raises SQLParseError, although documented. It should give 'X'.";
        let plan: PlanOutput = serde_json::from_value(serde_json::json!({
            "plan": {"subtasks": [{"description": "fix", "files": ["f.py"]}]},
            "context": {"summary": "", "files": []}, "fallback": false, "round_start": 0, "replans": 0,
            "probes": {"modules": ["f"], "calls": ["format('', case='cap')", "format('x', case='cap')"]}
        }))
        .unwrap();
        let batch = Batch {
            task,
            round: 1,
            subtask: 0,
            format: Arc::new(EditBlocks { paths: vec!["f.py".into()], max_blocks: 1 }),
            plan: &plan,
            tests: None,
            before: Some(vec!["''".into(), "raises SQLParseError".into()]),
        };
        let seen = |s: &[&str]| s.iter().map(|o| Outcome::from(*o)).collect::<Vec<_>>();
        let flag = batch.fails_example(Some(&seen(&["'y'", "raises SQLParseError"])));
        assert!(
            matches!(&flag, Some(RedFlag::FailsExample { call, seen }) if call == "format('x', case='cap')" && seen.contains("raises SQLParseError")),
            "{flag:?}"
        );
        assert_eq!(batch.fails_example(Some(&seen(&["''", "'X'"]))), None, "the reported call changed");
        let flag = batch.fails_example(Some(&seen(&["''", "'x'"])));
        assert!(
            matches!(&flag, Some(RedFlag::FailsExample { seen, .. }) if seen == "returns 'x' where the task says it should give 'X'"),
            "changed, but not to what the task says: {flag:?}"
        );
        let unknown = Batch { before: None, ..batch };
        assert_eq!(unknown.fails_example(Some(&seen(&["''", "raises SQLParseError"]))), None);
    }

    #[test]
    fn a_run_that_passes_fewer_than_half_of_the_tests_that_passed_before_breaks_most_tests() {
        let ran = |success: bool, passed: Option<u64>| TestOutcome {
            success,
            passed,
            failed: Some(2),
            output_tail: String::new(),
            failed_tests: Vec::new(),
        };
        assert!(breaks_most_tests(749, &ran(false, Some(0))));
        assert!(breaks_most_tests(749, &ran(false, None)));
        assert!(breaks_most_tests(111, &ran(false, Some(3))));
        assert!(breaks_most_tests(111, &ran(false, Some(55))));
        assert!(!breaks_most_tests(111, &ran(false, Some(56))), "half still pass: the vote weighs it");
        assert!(!breaks_most_tests(749, &ran(false, Some(434))), "most still pass: the vote weighs it");
        assert!(!breaks_most_tests(0, &ran(false, Some(0))), "none passed before either");
        assert!(!breaks_most_tests(749, &ran(true, Some(0))), "its failures were excused");
    }

    #[test]
    fn a_candidate_is_unchanged_when_the_tasks_own_calls_do_what_they_did_before() {
        let task = "take_nth(2, [10, 20, 30]) yields 20 but should start with the first item";
        let plan: PlanOutput = serde_json::from_value(serde_json::json!({
            "plan": {"subtasks": [{"description": "fix", "files": ["t.py"]}, {"description": "fix", "files": ["t.py"]}]},
            "context": {"summary": "", "files": []}, "fallback": false, "round_start": 0, "replans": 0,
            "probes": {"modules": ["t"], "calls": ["take_nth(2, [10, 20, 30])", "take_nth(0, [])"]}
        }))
        .unwrap();
        let before: Vec<Outcome> = vec!["iter[20]".into(), "raises ValueError".into()];
        // Only the task's own call counts: the invented one changing is not enough.
        let candidates = [candidate(&["iter[20]", "iter[]"]), candidate(&["iter[10, 30]", "raises ValueError"])];
        let unchanged = |subtask| -> Vec<Option<bool>> {
            entries(&candidates, task, &plan, subtask, Some(&before)).iter().map(|e| e.unchanged).collect()
        };
        assert_eq!(unchanged(1), [Some(true), Some(false)]);
        assert_eq!(unchanged(0), [None, None], "before the last step a later one may make the change");
        assert!(entries(&candidates, task, &plan, 1, None).iter().all(|e| e.unchanged.is_none()));
    }
}
