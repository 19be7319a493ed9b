//! Stage 2: gather codebase context with the tools ([`crate::pipeline::context`]), then
//! ask the planner for a plan constrained by a JSON schema (grammar-constrained decoding,
//! not repair afterwards). The probes ([`super::probe`]) follow under the same stage.

use crate::pipeline::record::{Plan, PlanOutput, Subtask};
use serde_json::json;

use super::repair;
use crate::models::Role;
use crate::pipeline::context::{gather, render_files};
use crate::pipeline::event::ContextEntry;
use crate::pipeline::evidence::blocking;
use crate::pipeline::{heuristics, tuning, Ctx, Event, PipelineError};
use crate::state::Stage;

pub fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "properties": {
            "subtasks": {
                "type": "array", "minItems": 1, "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "description": {"type": "string", "maxLength": 300},
                        "files": {"type": "array", "maxItems": 4, "items": {"type": "string", "maxLength": 120}},
                        "new_files": {"type": "array", "maxItems": 2, "items": {"type": "string", "maxLength": 120}}
                    },
                    "required": ["description", "files"]
                }
            },
            "verify": {"type": "string", "maxLength": 200}
        },
        "required": ["subtasks", "verify"]
    })
}

/// Asks the planner; `learned` carries what earlier rounds found (for a re-plan).
pub async fn run(
    ctx: &Ctx<'_>,
    task: &str,
    learned: &[String],
    round_start: usize,
    replans: u32,
) -> Result<PlanOutput, PipelineError> {
    let context = gather(ctx, task, &[]).await?;
    let files = context.files.iter().map(|f| ContextEntry { path: f.path.clone(), tokens: f.tokens }).collect();
    ctx.emit(Stage::Plan, Event::Context { files, tokens: context.files.iter().map(|f| f.tokens).sum() }).await?;
    let mut user = format!("Task:\n{task}\n\nProject:\n{}\n\nCode:\n{}", context.summary, render_files(&context.files));
    if !learned.is_empty() {
        user.push_str(&format!("\nEarlier attempts were rejected for these reasons:\n- {}\n", learned.join("\n- ")));
    }
    let answer = ctx.ask_json(Role::Planner, &schema(), user, tuning::PLAN_TOKENS).await?;
    let parsed = serde_json::from_str::<Plan>(&answer)
        .ok()
        .map(|p| heuristics::merge_same_files(heuristics::without_test_steps(without_generated(p), task)))
        .filter(|p| !p.subtasks.is_empty());
    let fallback = parsed.is_none();
    let plan = parsed.unwrap_or_else(|| Plan {
        subtasks: vec![Subtask {
            description: task.to_string(),
            files: context.files.iter().map(|f| f.path.clone()).collect(),
            ..Default::default()
        }],
        verify: String::new(),
    });
    let (plan, repairs) = {
        let (root, task) = (ctx.tools.workspace().root().to_path_buf(), task.to_string());
        let shown: Vec<String> = context.files.iter().map(|f| f.path.clone()).collect();
        blocking(move || {
            let files = crate::pipeline::evidence::worktree::workspace_files(&root);
            Ok(repair::repair(plan, &task, &root, &files, &shown))
        })
        .await?
    };
    // Repairs may leave neighbouring steps on the same files.
    let plan = heuristics::merge_same_files(plan);
    ctx.emit(Stage::Plan, Event::Plan { plan: plan.clone(), fallback, repairs }).await?;
    Ok(PlanOutput { plan, context, fallback, round_start, replans, probes: Default::default() })
}

/// A plan never changes generated, vendored or packaging files; a step left with none of
/// the files it named goes.
fn without_generated(mut plan: Plan) -> Plan {
    plan.subtasks.retain_mut(|step| {
        let named = !step.files.is_empty();
        step.files.retain(|f| !crate::tools::is_generated(f));
        !named || !step.files.is_empty()
    });
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_leave_the_plan() {
        let step = |files: &[&str]| Subtask {
            description: "d".into(),
            files: files.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        };
        let plan = Plan {
            subtasks: vec![
                step(&["pkg/core.py", "pkg.egg-info/SOURCES.txt"]),
                step(&["build/lib/pkg/core.py"]),
                step(&[]),
            ],
            verify: "pytest".into(),
        };
        let kept = without_generated(plan);
        assert_eq!(kept.subtasks, vec![step(&["pkg/core.py"]), step(&[])]);
    }
}
