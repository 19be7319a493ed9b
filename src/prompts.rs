//! Each role's system prompt: embedded from `prompts/` at build time, overridable at run
//! time by `ROLE.md` files in a directory (`prompts = "DIR"` in the config file, or
//! `QUORUM_PROMPTS=DIR`).

use std::collections::BTreeMap;
use std::path::Path;

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

/// How the coder writes its answer, appended to its prompt: edit blocks (large files) or
/// whole files (short ones). The pipeline parses these formats, so they are not overridable.
pub const EDIT_BLOCKS: &str = include_str!("../prompts/formats/edit-blocks.md");
pub const WHOLE_FILES: &str = include_str!("../prompts/formats/whole-files.md");

/// The reviewer model's prompt when it writes behaviour probes. Not overridable: a
/// `reviewer.md` override is the reviewer's, and the probes' answer format is fixed.
pub const PROBES: &str = include_str!("../prompts/probes.md");

/// The prompts in effect: the built-in ones, with any files found in `dir` instead.
#[derive(Debug, Clone, Default)]
pub struct Prompts {
    overrides: BTreeMap<Role, String>,
}

impl Prompts {
    pub fn load(dir: Option<&Path>) -> std::io::Result<Prompts> {
        let mut overrides = BTreeMap::new();
        if let Some(dir) = dir {
            for role in Role::ALL {
                let path = dir.join(format!("{role}.md"));
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        tracing::info!(%role, path = %path.display(), "using a prompt file");
                        overrides.insert(role, text);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
                }
            }
        }
        Ok(Prompts { overrides })
    }

    pub fn get(&self, role: Role) -> &str {
        self.overrides.get(&role).map(String::as_str).unwrap_or_else(|| system_prompt(role)).trim()
    }
}
