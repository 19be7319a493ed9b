//! The modes that ask the models directly: `single` (one coder sample) and `vote`
//! (candidates from one prefill, red flags, first-to-ahead-by-k voting, no review).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{examples_check, program, run_check, sandboxed, EvalError, EvalTask, TaskResult};
use crate::engine::{ChatMessage, Engine, FinishReason, GenerateRequest, Prompt, SamplingParams};
use crate::models::Role;

const INSTRUCTION: &str =
    "Complete this Python function. Answer with the whole function in one ```python code block, nothing else.";

/// `single`: one coder sample at the coder's default temperature per task.
pub async fn run_single(
    engine: &Engine,
    task: &EvalTask,
    max_tokens: u32,
    timeout: Duration,
) -> Result<TaskResult, EvalError> {
    let coder = engine.role(Role::Coder).ok_or_else(|| EvalError::Run("the coder role is not loaded".into()))?;
    let started = Instant::now();
    let messages = vec![ChatMessage::new("user", format!("{INSTRUCTION}\n\n```python\n{}```", task.prompt))];
    let request = GenerateRequest {
        prompt: Prompt::Chat(messages),
        sampling: SamplingParams { max_tokens: Some(max_tokens), ..Default::default() },
        n: 1,
    };
    let generation = coder.start(request).await.map_err(|e| EvalError::Run(e.to_string()))?;
    let answer = generation.collect().await.map_err(|e| EvalError::Run(e.to_string()))?.remove(0);
    let seconds = started.elapsed().as_secs_f64();
    let outcome = sandboxed(program(task, &answer.text), task, timeout).await?;
    Ok(TaskResult {
        task_id: task.task_id.clone(),
        passed: outcome.passed,
        tokens: answer.completion_tokens,
        seconds,
        hit_limit: answer.finish == Some(FinishReason::Length),
        error: outcome.error,
        oracle: None,
        stages: BTreeMap::from([("code".to_string(), seconds)]),
        files: None,
    })
}

/// `vote`: candidates sampled from one prefill at spread temperatures; red flags (hit the
/// limit, no function, does not parse); identical programs merged; with `use_examples`,
/// a candidate failing the docstring's examples that another passes cannot stand; the
/// voter picks by first-to-ahead-by-k. No review. The oracle checks every candidate.
pub async fn run_vote(
    engine: &Engine,
    task: &EvalTask,
    options: &crate::pipeline::PipelineOptions,
    use_examples: bool,
    timeout: Duration,
) -> Result<TaskResult, EvalError> {
    use crate::pipeline::ballot::{self, Entry, Tally};
    let role = |r: Role| engine.role(r).ok_or_else(|| EvalError::Run(format!("the {r} role is not loaded")));
    let (coder, voter) = (role(Role::Coder)?, role(Role::Voter)?);
    let started = Instant::now();
    let temperatures = options.temperatures();
    let messages = vec![ChatMessage::new("user", format!("{INSTRUCTION}\n\n```python\n{}```", task.prompt))];
    let request = GenerateRequest {
        prompt: Prompt::Chat(messages),
        n: temperatures.len() as u32,
        sampling: SamplingParams { max_tokens: Some(options.coder_max_tokens), temperatures, ..Default::default() },
    };
    let answers = coder
        .start(request)
        .await
        .map_err(|e| EvalError::Run(e.to_string()))?
        .collect()
        .await
        .map_err(|e| EvalError::Run(e.to_string()))?;
    let mut tokens = 0;
    let mut entries = Vec::new();
    for answer in &answers {
        tokens += answer.completion_tokens;
        let program = program(task, &answer.text);
        // Red flags: cut off, no function of the name asked for, or a program that does not parse.
        let red_flagged = answer.finish == Some(FinishReason::Length)
            || !program.contains(&format!("def {}(", task.entry_point))
            || crate::tools::syntax_error(Path::new("candidate.py"), &program).is_some();
        entries.push(Entry { diff: program, red_flagged, ..Default::default() });
    }
    let coded = started.elapsed().as_secs_f64();
    if use_examples {
        let examples = examples_check(&task.prompt);
        for entry in entries.iter_mut().filter(|e| !e.red_flagged) {
            let outcome = run_check(entry.diff.clone(), examples.clone(), task.entry_point.clone(), timeout).await?;
            entry.tests_passed = Some(outcome.passed);
        }
    }
    let tested = started.elapsed().as_secs_f64();
    let choices = ballot::ballot(&entries);
    let winner = if choices.len() <= 1 {
        choices.first().map(|c| c.candidates[0])
    } else {
        let mut prompt = format!("Task:\n```python\n{}```\nCandidate solutions:\n", task.prompt);
        for c in &choices {
            let entry = &entries[c.candidates[0]];
            prompt.push_str(&format!("\n{}:\n```python\n{}\n```\n", c.letter, entry.diff.trim()));
            if let Some(passed) = entry.tests_passed {
                prompt.push_str(if passed { "Examples: pass\n" } else { "Examples: fail\n" });
            }
        }
        prompt.push_str("\nWhich solution is correct? Answer with its letter.");
        let grammar = ballot::letter_grammar(&choices);
        let mut tally = Tally::new(choices.len(), options.k, options.max_votes);
        let decision = loop {
            if let Some(d) = tally.decision() {
                break d;
            }
            let n = tally.wanted(voter.spec().parallel);
            let ask = GenerateRequest {
                prompt: Prompt::Chat(vec![
                    ChatMessage::new("system", crate::prompts::system_prompt(Role::Voter).trim()),
                    ChatMessage::new("user", prompt.clone()),
                ]),
                n,
                sampling: SamplingParams {
                    max_tokens: Some(2),
                    temperatures: vec![crate::pipeline::VOTE_TEMPERATURE; n as usize],
                    grammar: Some(grammar.clone()),
                    ..Default::default()
                },
            };
            for vote in voter
                .start(ask)
                .await
                .map_err(|e| EvalError::Run(e.to_string()))?
                .collect()
                .await
                .map_err(|e| EvalError::Run(e.to_string()))?
            {
                tokens += vote.completion_tokens;
                tally.record(ballot::named(&choices, &vote.text));
            }
        };
        Some(choices[decision.winner].candidates[0])
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut oracle = false;
    for entry in entries.iter().filter(|e| !e.red_flagged) {
        oracle |= sandboxed(entry.diff.clone(), task, timeout).await?.passed;
    }
    let (passed, error) = match winner {
        Some(i) => {
            let outcome = sandboxed(entries[i].diff.clone(), task, timeout).await?;
            (outcome.passed, outcome.error)
        }
        None => (false, "every candidate was red-flagged".to_string()),
    };
    Ok(TaskResult {
        task_id: task.task_id.clone(),
        passed,
        tokens,
        seconds,
        hit_limit: answers.iter().all(|a| a.finish == Some(FinishReason::Length)),
        error,
        oracle: Some(oracle),
        stages: BTreeMap::from([
            ("code".to_string(), coded),
            ("examples".to_string(), tested - coded),
            ("vote".to_string(), seconds - tested),
        ]),
        files: None,
    })
}
