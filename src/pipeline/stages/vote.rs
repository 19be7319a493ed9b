//! Stage 4: voters choose among the surviving candidates. Identical diffs merge; where
//! the workspace has tests, a candidate failing tests that another passes cannot stand,
//! nor one with more faults on the behaviour probes than another. Where the probes tell
//! candidates apart, alike-behaving ones merge and the group that agrees most with the
//! others wins without a vote; the voters only break a tie.
//! Votes are drawn from one prefilled voter prompt (the scheduler's fork), a letter each
//! (grammar-constrained), until one choice leads every other by k or the cap is reached.

use crate::pipeline::record::{CodeOutput, PlanOutput, VoteOutput};

use crate::models::Role;
use crate::pipeline::ballot::{self, Choice, DecidedBy, Tally};
use crate::pipeline::event::{ChoiceVotes, TallyEvent};
use crate::pipeline::models::Ask;
use crate::pipeline::{tuning, Ctx, Event, PipelineError};
use crate::state::Stage;

/// The vote on the candidates of one of `plan`'s sub-tasks.
pub async fn run(ctx: &Ctx<'_>, task: &str, plan: &PlanOutput, code: &CodeOutput) -> Result<VoteOutput, PipelineError> {
    let step = plan.plan.subtasks.get(code.subtask).map(|s| s.description.as_str()).unwrap_or_default();
    let entries =
        crate::pipeline::stages::code::entries(&code.candidates, task, plan, code.subtask, code.before.as_deref());
    let standing = ballot::ballot(&entries);
    // Behaviour most candidates agree on wins outright; the voters only break a tie.
    let agreed = ballot::most_agreed(&entries, &standing);
    let choices: Vec<Choice> = match &agreed {
        Some(top) => top.iter().zip('A'..='Z').map(|(&i, letter)| Choice { letter, ..standing[i].clone() }).collect(),
        None => standing.clone(),
    };
    let by_agreement = agreed.is_some() && choices.len() == 1 && standing.len() > 1;
    let mut out = VoteOutput {
        round: code.round,
        subtask: code.subtask,
        patches: code.patches.clone(),
        winner: None,
        ballot: standing.clone(),
        choices: choices.clone(),
        counts: vec![0; choices.len()],
        decided_by: None,
        reason: None,
    };
    let empty = TallyEvent::empty(code.round, code.subtask);
    if choices.is_empty() {
        // The round goes on without a step that was passed over.
        if crate::pipeline::stages::code::passed_over(code.subtask, &code.candidates) {
            let tally = TallyEvent { skipped: Some("no candidate changed anything".into()), ..empty };
            ctx.emit(Stage::Vote, Event::Tally(tally)).await?;
            return Ok(out);
        }
        let reasons: Vec<String> = code
            .candidates
            .iter()
            .map(|c| match &c.red_flag {
                Some(flag) => format!("candidate {}: {flag}", c.index + 1),
                None => format!("candidate {}: failed its tests", c.index + 1),
            })
            .collect();
        out.reason = Some(format!("no candidate survived the red flags ({})", reasons.join("; ")));
        ctx.emit(Stage::Vote, Event::Tally(TallyEvent { reason: out.reason.clone(), ..empty })).await?;
        return Ok(out);
    }

    let decision = if by_agreement {
        ballot::Decision { winner: 0, decided_by: DecidedBy::Agreement }
    } else {
        draw_votes(ctx, &ballot_prompt(task, step, code, &choices), &choices, &mut out.counts).await?
    };
    let winner = choices[decision.winner].candidates[0];
    out.winner = Some(winner);
    out.decided_by = Some(decision.decided_by);
    out.patches.push(code.candidates[winner].diff.clone());
    let votes = choices.iter().zip(&out.counts);
    let tally = TallyEvent {
        choices: votes
            .map(|(c, &votes)| ChoiceVotes { letter: c.letter.to_string(), candidates: c.candidates.clone(), votes })
            .collect(),
        groups: agreed.is_some().then(|| standing.iter().map(|c| c.candidates.clone()).collect()),
        faults: entries.iter().any(|e| e.faults.is_some()).then(|| entries.iter().map(|e| e.faults).collect()),
        winner: Some(choices[decision.winner].letter.to_string()),
        candidate: Some(winner),
        decided_by: Some(decision.decided_by),
        ..empty
    };
    ctx.emit(Stage::Vote, Event::Tally(tally)).await?;
    Ok(out)
}

/// Votes on `choices` until one leads by k or the cap is reached; `counts` gets them.
async fn draw_votes(
    ctx: &Ctx<'_>,
    prompt: &str,
    choices: &[Choice],
    counts: &mut [u32],
) -> Result<ballot::Decision, PipelineError> {
    let grammar = ballot::letter_grammar(choices);
    let parallel = ctx.models.parallel(Role::Voter);
    let mut tally = Tally::new(choices.len(), ctx.options.k, ctx.options.max_votes);
    let decision = loop {
        if let Some(decision) = tally.decision() {
            break decision;
        }
        let ask = Ask::new(ctx.prompt(Role::Voter), prompt.to_string(), tuning::VOTE_TOKENS)
            .samples(vec![tuning::VOTE_TEMPERATURE; tally.wanted(parallel) as usize])
            .grammar(grammar.clone());
        for sample in ctx.models.ask(Role::Voter, ask).await? {
            let slot = ballot::named(choices, &sample.text);
            tally.record(slot);
            let event = match slot {
                Some(slot) => {
                    Event::Vote { vote: tally.drawn(), letter: Some(choices[slot].letter.to_string()), invalid: None }
                }
                None => Event::Vote { vote: tally.drawn(), letter: None, invalid: Some(sample.text) },
            };
            ctx.emit(Stage::Vote, event).await?;
        }
    };
    counts.copy_from_slice(tally.counts());
    Ok(decision)
}

fn ballot_prompt(task: &str, step: &str, code: &CodeOutput, choices: &[Choice]) -> String {
    let mut text = format!("Task:\n{task}\n\nStep: {step}\n\nCandidate changes:\n");
    for choice in choices {
        let candidate = &code.candidates[choice.candidates[0]];
        text.push_str(&format!("\n{}:\n```diff\n{}```\n", choice.letter, candidate.diff));
        if let Some(tests) = &candidate.tests {
            text.push_str(&format!("Tests: {}\n", if tests.success { "pass" } else { "fail" }));
        }
    }
    let letters: Vec<String> = choices.iter().map(|c| c.letter.to_string()).collect();
    text.push_str(&format!("\nWhich change is best? Answer {}.", letters.join(" or ")));
    text
}
