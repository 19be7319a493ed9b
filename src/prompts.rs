//! Each role's system prompt, embedded from `prompts/` at build time.

use crate::models::Role;

pub fn system_prompt(role: Role) -> &'static str {
    match role {
        Role::Preprocessor => include_str!("../prompts/preprocessor.md"),
        Role::Planner => include_str!("../prompts/planner.md"),
        Role::Coder => include_str!("../prompts/coder.md"),
        Role::Voter => include_str!("../prompts/voter.md"),
        Role::Reviewer => include_str!("../prompts/reviewer.md"),
    }
}
