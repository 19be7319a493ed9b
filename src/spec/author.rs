//! Writes a spec-kit document with a model, one template section at a time: the
//! command's own instructions, what is known (the feature, its documents, the code) and
//! the section to fill go to the model; the fields quorum knows (date, names) are filled
//! first; what the model leaves unfilled is asked again once, then reported.

use futures::StreamExt;

use super::blanks::Blanks;
use super::document::{self, Section};
use super::{Progress, SpecError};
use crate::models::Role;
use crate::pipeline::{Ask, Models};

const SYSTEM: &str = include_str!("../../prompts/speckit.md");
/// Tokens a section's answer may take, and a blank on average.
const ANSWER_TOKENS: u32 = 1500;
const BLANK_TOKENS: u32 = 45;
/// What one section's prompt may take, so that the small profile's 4,096-token contexts
/// hold the prompt and the answer.
const PROMPT_TOKENS: usize = 3000;
/// The command's instructions shown with a report or questions.
const GUIDANCE_CHARS: usize = 2400;
/// Sections written at once (each a sequence of the role's model).
const AT_ONCE: usize = 2;

/// Who writes, under which instructions, knowing what.
pub struct Author<'a> {
    pub models: &'a dyn Models,
    pub role: Role,
    /// The command's name and description, for the prompt (its steps are quorum's to
    /// follow, and a small model given them copies them out).
    pub command: &'a str,
    pub description: &'a str,
    /// The feature, its documents, the code: most important first (cut from the end).
    pub known: String,
    pub progress: &'a Progress,
}

/// A document and what is still wrong with it.
pub struct Written {
    pub text: String,
    pub problems: Vec<String>,
}

impl Author<'_> {
    /// `template` with `fields` filled by quorum and every other placeholder by the model.
    pub async fn write(&self, template: &str, fields: &[(&str, String)], limit: usize) -> Result<Written, SpecError> {
        let filled = document::unwrap_placeholders(&document::fill(template, fields));
        let sections = document::sections(&filled);
        let total = sections.len();
        // Boxed first: a spawned future cannot hold the closure's borrow (rust-lang/rust#102211).
        let asks: Vec<_> =
            sections.iter().enumerate().map(|(i, s)| Box::pin(self.section(s, i, total, None))).collect();
        let answers = futures::stream::iter(asks).buffered(AT_ONCE).collect::<Vec<_>>().await;
        let mut parts = answers.into_iter().collect::<Result<Vec<_>, _>>()?;
        // One more try for each section that left a placeholder of its template, or whose
        // values were all copies (a mandatory section left empty).
        for (i, section) in sections.iter().enumerate() {
            let left: Vec<String> = document::placeholders(&section.text)
                .intersection(&document::placeholders(&parts[i]))
                .cloned()
                .collect();
            if !left.is_empty() || !document::problems(&parts[i], &section.text, usize::MAX).is_empty() {
                parts[i] = self.section(section, i, total, Some(&left)).await?;
            }
        }
        let text = parts.join("\n");
        let problems = document::problems(&text, &document::unwrap_placeholders(template), limit);
        Ok(Written { text, problems })
    }

    /// One section: kept as it is where it has nothing to fill, else its blanks filled.
    async fn section(
        &self,
        section: &Section,
        index: usize,
        total: usize,
        left: Option<&[String]>,
    ) -> Result<String, SpecError> {
        let plain = document::strip_comments(&section.text);
        let blanks = Blanks::new(&plain);
        if blanks.len() == 0 {
            return Ok(plain);
        }
        let title = if section.heading.is_empty() { "the title and header lines" } else { section.heading.as_str() };
        self.progress.say(format!("writing {title} ({}/{total}, {} blanks)", index + 1, blanks.len()));
        let mut user = format!(
            "The command: /speckit.{}: {}\n\nWhat is known:\n<<<\n{}\n>>>\n\nThe template section, its blanks numbered <N: what goes there>:\n<<<\n{}\n>>>",
            self.command,
            self.description,
            self.known.trim(),
            blanks.numbered().trim()
        );
        match left {
            Some([]) => user.push_str(
                "\n\nLast time the values copied the template or the instructions. Write this feature's own.",
            ),
            Some(left) => user.push_str(&format!(
                "\n\nLast time these were left unfilled: {}. Write real text for each.",
                left.join(", ")
            )),
            None => {}
        }
        user.push_str(&format!(
            "\n\nAnswer in JSON with the text for each of the {} blanks, for this feature. Use \"\" for a blank on an example line that does not apply.",
            blanks.len()
        ));
        let user = self.fit(user);
        let grammar = crate::engine::json_schema_grammar(&blanks.schema().to_string())
            .map_err(|e| SpecError::Model(e.to_string()))?;
        let tokens = (BLANK_TOKENS * blanks.len() as u32 + 20).min(ANSWER_TOKENS);
        let ask = Ask::new(SYSTEM, user, tokens).grammar(grammar);
        let answer = self.models.ask(self.role, ask).await.map_err(|e| SpecError::Model(e.to_string()))?;
        let text = answer.into_iter().next().map(|s| s.text).unwrap_or_default();
        tracing::debug!(target: "quorum::spec", section = %title, answer = %text, "blanks answered");
        let values = serde_json::from_str::<serde_json::Value>(&text).ok();
        let values = values.as_ref().and_then(|v| v.as_object()).cloned().unwrap_or_default();
        Ok(blanks.fill(&values, &format!("{SYSTEM}\n{}", self.description)))
    }

    /// Cuts what is known until the prompt fits.
    fn fit(&self, user: String) -> String {
        let mut user = user;
        while self.models.count_tokens(self.role, &user) + self.models.count_tokens(self.role, SYSTEM) > PROMPT_TOKENS {
            let Some(start) = user.find("What is known:") else { break };
            let Some(end) = user.find("The template section to fill:") else { break };
            let known = &user[start..end];
            if known.len() < 400 {
                break;
            }
            let cut = known.char_indices().nth(known.chars().count() * 3 / 4).map(|(i, _)| i).unwrap_or(known.len());
            user = format!("{}{}\n[...]\n>>>\n\n{}", &user[..start], &known[..cut], &user[end..]);
        }
        user
    }
}

/// The command's steps, where it has them, else its beginning.
pub(super) fn excerpt(instructions: &str) -> String {
    let from = ["## Outline", "## Execution", "## Steps"].iter().find_map(|h| instructions.find(h)).unwrap_or(0);
    let text = &instructions[from..];
    match text.char_indices().nth(GUIDANCE_CHARS) {
        Some((cut, _)) => format!("{}\n[...]", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_starts_at_the_outline() {
        let text = format!("## User Input\n\nx\n\n## Outline\n\n{}", "step ".repeat(1000));
        let cut = excerpt(&text);
        assert!(cut.starts_with("## Outline"));
        assert!(cut.ends_with("[...]"));
    }
}
