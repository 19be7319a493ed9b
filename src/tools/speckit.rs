//! spec-kit's command templates as a workspace has them: the Markdown files that
//! `specify init` installs (`speckit.specify.md`, `speckit.plan.md`, ...), read from the
//! commands folder its integration recorded. quorum ships no template of its own: it reads
//! whatever version the project has. MCP lists them as prompts; the spec layer, above
//! the pipeline, carries them out.

use std::path::{Path, PathBuf};

use super::ToolError;

/// Where quorum asks `specify init` to put the commands (its generic integration).
pub const COMMANDS_DIR: &str = ".quorum/commands";

/// One command template.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecCommand {
    /// The name after `speckit.`: `specify`, `plan`, ...
    pub name: String,
    pub description: String,
    pub handoffs: Vec<Handoff>,
    /// The front matter's `scripts.sh` (older templates; newer ones name the script in
    /// their text).
    pub script: Option<String>,
    /// The template after its front matter.
    pub body: String,
}

/// A next step the template suggests (`handoffs` in its front matter).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Handoff {
    pub label: String,
    pub agent: String,
    pub prompt: String,
}

/// A helper script the template tells the agent to run, as the template wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptCall {
    /// Relative to the workspace: always under `.specify/scripts/`.
    pub path: String,
    /// The template's arguments; [`USER_ARGUMENTS`] where the user's text goes.
    pub args: Vec<String>,
}

/// Stands for the user's arguments among a [`ScriptCall`]'s.
pub const USER_ARGUMENTS: &str = "{ARGS}";

impl SpecCommand {
    pub fn parse(name: &str, text: &str) -> SpecCommand {
        let (front, body) = split_front_matter(text);
        let mut command = SpecCommand {
            name: name.to_string(),
            description: String::new(),
            handoffs: Vec::new(),
            script: None,
            body: body.to_string(),
        };
        read_front_matter(front, &mut command);
        command
    }

    /// The template with the user's arguments and the script filled in, as an agent
    /// reads it.
    pub fn fill(&self, arguments: &str) -> String {
        let script = self.script.as_deref().unwrap_or_default().replace(USER_ARGUMENTS, arguments);
        self.body
            .replace("$ARGUMENTS", arguments)
            .replace("{SCRIPT}", &script)
            .replace(USER_ARGUMENTS, arguments)
            .replace("__AGENT__", "quorum")
    }

    /// The first helper script the template names (its setup step), if any. Only scripts
    /// under `.specify/scripts/` count; arguments other than flags, plain words and the
    /// user's text make the call unusable (`Err`), so no template can smuggle a shell
    /// construct into what runs.
    pub fn script_call(&self) -> Result<Option<ScriptCall>, ToolError> {
        let from_front = self.script.as_deref().map(str::to_string);
        let spans = code_spans(&self.body).into_iter().map(str::to_string);
        for span in from_front.into_iter().chain(spans) {
            let mut words = span.split_whitespace();
            let Some(first) = words.next() else { continue };
            let path = match first {
                p if p.starts_with(".specify/scripts/") => p.to_string(),
                p if p.starts_with("scripts/bash/") => format!(".specify/{p}"),
                _ => continue,
            };
            if !path.ends_with(".sh") || path.contains("..") {
                continue;
            }
            let args = words.map(script_argument).collect::<Result<Vec<_>, _>>()?;
            return Ok(Some(ScriptCall { path, args }));
        }
        Ok(None)
    }
}

fn script_argument(word: &str) -> Result<String, ToolError> {
    let unquoted = word.trim_matches(|c| c == '"' || c == '\'');
    if unquoted == USER_ARGUMENTS || unquoted == "$ARGUMENTS" {
        return Ok(USER_ARGUMENTS.to_string());
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !unquoted.is_empty() && unquoted.chars().all(plain) {
        return Ok(unquoted.to_string());
    }
    Err(ToolError::refused(format!("the template's script argument `{word}` is neither a flag nor a word")))
}

/// The text of each inline code span (`like this`), in order.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn split_front_matter(text: &str) -> (&str, &str) {
    let Some(rest) = text.strip_prefix("---\n") else { return ("", text) };
    match rest.find("\n---") {
        Some(end) => {
            let body = &rest[end + 4..];
            (&rest[..end], body.strip_prefix('\n').unwrap_or(body))
        }
        None => ("", text),
    }
}

/// The front matter's fields quorum uses, from the YAML spec-kit writes: top-level
/// scalars, the `handoffs` list of maps and the `scripts` map.
fn read_front_matter(front: &str, command: &mut SpecCommand) {
    let mut section = "";
    for line in front.lines() {
        let indented = line.starts_with(' ') || line.starts_with('\t');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !indented {
            let (key, value) = key_value(trimmed);
            section = key;
            if key == "description" {
                command.description = value.to_string();
            }
            continue;
        }
        match section {
            "handoffs" => {
                let item = trimmed.strip_prefix("- ");
                if item.is_some() {
                    command.handoffs.push(Handoff::default());
                }
                let (key, value) = key_value(item.unwrap_or(trimmed));
                if let Some(handoff) = command.handoffs.last_mut() {
                    match key {
                        "label" => handoff.label = value.to_string(),
                        "agent" => handoff.agent = value.to_string(),
                        "prompt" => handoff.prompt = value.to_string(),
                        _ => {}
                    }
                }
            }
            "scripts" => {
                let (key, value) = key_value(trimmed);
                if key == "sh" {
                    command.script = Some(value.to_string());
                }
            }
            _ => {}
        }
    }
}

fn key_value(line: &str) -> (&str, &str) {
    match line.split_once(':') {
        Some((key, value)) => (key.trim(), unquote(value.trim())),
        None => (line.trim(), ""),
    }
}

/// A YAML scalar without the quotes around it (only where it is quoted as a whole).
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// The folder holding the workspace's command templates: the one `specify init`
/// recorded for its integration, else quorum's own.
pub fn commands_dir(root: &Path) -> Option<PathBuf> {
    let recorded = std::fs::read_to_string(root.join(".specify/integration.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| {
            let integration = json["integration"].as_str()?.to_string();
            json["integration_settings"][integration]["parsed_options"]["commands_dir"].as_str().map(str::to_string)
        });
    let dir = recorded.unwrap_or_else(|| COMMANDS_DIR.to_string());
    let relative = Path::new(dir.trim_end_matches('/'));
    // The recorded folder must stay inside the workspace.
    if relative.is_absolute() || relative.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return None;
    }
    let path = root.join(relative);
    path.is_dir().then_some(path)
}

/// The workspace's commands, by name; empty where spec-kit is not set up.
pub fn list(root: &Path) -> Result<Vec<SpecCommand>, ToolError> {
    let Some(dir) = commands_dir(root) else { return Ok(Vec::new()) };
    let entries = std::fs::read_dir(&dir).map_err(|e| ToolError::Io(format!("{}: {e}", dir.display())))?;
    let mut commands = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(name) = file.strip_prefix("speckit.").and_then(|f| f.strip_suffix(".md")) else { continue };
        let text = std::fs::read_to_string(entry.path())
            .map_err(|e| ToolError::Io(format!("{}: {e}", entry.path().display())))?;
        commands.push(SpecCommand::parse(name, &text));
    }
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(commands)
}

/// One command by name (`plan` or `speckit.plan`).
pub fn find(root: &Path, name: &str) -> Result<SpecCommand, ToolError> {
    let name = name.trim_start_matches('/').trim_start_matches("speckit.");
    let commands = list(root)?;
    if commands.is_empty() {
        return Err(ToolError::Unavailable(format!(
            "{} has no spec-kit commands; run `quorum spec init` there first",
            root.display()
        )));
    }
    let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
    let known = names.join(", ");
    commands
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .ok_or_else(|| ToolError::NotFound(format!("no spec-kit command `{name}` in this workspace (it has {known})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = "---\ndescription: Make a plan.\nhandoffs:\n  - label: Create Tasks\n    agent: speckit.tasks\n    prompt: Break the plan into tasks\n    send: true\n  - label: Checklist\n    agent: speckit.checklist\n---\n\n## User Input\n\n```text\n$ARGUMENTS\n```\n\n1. Run `.specify/scripts/bash/setup-plan.sh --json` from repo root.\n2. Later `.specify/scripts/bash/other.sh`.\n";

    #[test]
    fn front_matter_and_script_are_read() {
        let command = SpecCommand::parse("plan", PLAN);
        assert_eq!(command.description, "Make a plan.");
        assert_eq!(command.handoffs.len(), 2);
        assert_eq!(command.handoffs[0].agent, "speckit.tasks");
        assert_eq!(command.handoffs[0].prompt, "Break the plan into tasks");
        assert!(command.body.starts_with("\n## User Input"));
        let call = command.script_call().unwrap().unwrap();
        assert_eq!(call.path, ".specify/scripts/bash/setup-plan.sh");
        assert_eq!(call.args, vec!["--json"]);
        assert!(command.fill("use Rust").contains("```text\nuse Rust\n```"));
    }

    #[test]
    fn older_templates_name_their_script_in_front_matter() {
        let text = "---\ndescription: Specify.\nscripts:\n  sh: scripts/bash/create-new-feature.sh --json \"{ARGS}\"\n  ps: scripts/powershell/create.ps1 -Json \"{ARGS}\"\n---\nRun `{SCRIPT}` once.\n";
        let command = SpecCommand::parse("specify", text);
        let call = command.script_call().unwrap().unwrap();
        assert_eq!(call.path, ".specify/scripts/bash/create-new-feature.sh");
        assert_eq!(call.args, vec!["--json", USER_ARGUMENTS]);
        assert_eq!(command.fill("a b"), "Run `scripts/bash/create-new-feature.sh --json \"a b\"` once.\n");
    }

    #[test]
    fn a_script_argument_with_shell_syntax_is_refused() {
        let text = "Run `.specify/scripts/bash/x.sh --json $(rm -rf ~)` now.";
        assert!(SpecCommand::parse("x", text).script_call().is_err());
        let outside = "Run `.specify/scripts/bash/../../evil.sh` and `/bin/sh -c x`.";
        assert_eq!(SpecCommand::parse("x", outside).script_call().unwrap(), None);
    }
}
