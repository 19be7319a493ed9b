//! A template section's placeholders as numbered blanks: the model answers one value
//! per blank (JSON, held to a schema, so that a small model cannot copy the template
//! out instead), and the values go back where the blanks were. A blank answered empty
//! drops its line as an example that does not apply, and a dropped heading its whole
//! sub-section.

use super::document;

/// Longest value of one blank, in characters.
const VALUE_CHARS: u32 = 160;

/// A section with its placeholders numbered.
#[derive(Debug, Clone, PartialEq)]
pub struct Blanks {
    lines: Vec<String>,
    /// (line, placeholder as written) per blank, in order; blank `n` is `spots[n - 1]`.
    spots: Vec<(usize, String)>,
}

impl Blanks {
    pub fn new(section: &str) -> Blanks {
        let lines: Vec<String> = section.lines().map(str::to_string).collect();
        let mut spots = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            for placeholder in in_order(line) {
                spots.push((i, placeholder));
            }
        }
        Blanks { lines, spots }
    }

    pub fn len(&self) -> usize {
        self.spots.len()
    }

    /// The section with each blank shown as `<n: what it asks>`, without the template's
    /// examples, which a small model copies instead of writing its own.
    pub fn numbered(&self) -> String {
        let mut lines = self.lines.clone();
        let mut next = 1;
        for (i, line) in lines.iter_mut().enumerate() {
            for (_, placeholder) in self.spots.iter().filter(|(l, _)| *l == i) {
                let inner = &placeholder[1..placeholder.len() - 1];
                let inner = inner.split(" - e.g.").next().unwrap_or(inner);
                let inner = inner.split(", e.g.").next().unwrap_or(inner).trim_end_matches(',');
                *line = line.replacen(placeholder.as_str(), &format!("<{next}: {inner}>"), 1);
                next += 1;
            }
        }
        lines.join("\n")
    }

    /// The JSON schema of an answer: one string per blank, keyed by its number.
    pub fn schema(&self) -> serde_json::Value {
        let keys: Vec<String> = (1..=self.spots.len()).map(|n| n.to_string()).collect();
        let properties: serde_json::Map<String, serde_json::Value> =
            keys.iter().map(|k| (k.clone(), serde_json::json!({"type": "string", "maxLength": VALUE_CHARS}))).collect();
        serde_json::json!({"type": "object", "properties": properties, "required": keys, "additionalProperties": false})
    }

    /// The section with the answer's values in place (a blank the answer lacks stays as
    /// it was, for the checks to find). A value that copies what the model was shown (the
    /// blank's own description, `shown`, or another blank's value) counts as empty.
    pub fn fill(&self, answer: &serde_json::Map<String, serde_json::Value>, shown: &str) -> String {
        let mut lines: Vec<Option<String>> = self.lines.iter().cloned().map(Some).collect();
        let shown = format!(" {} {} ", words(shown), words(&self.lines.join("\n")));
        let mut given: Vec<String> = Vec::new();
        for (n, (i, placeholder)) in self.spots.iter().enumerate() {
            let Some(value) = answer.get(&(n + 1).to_string()).and_then(|v| v.as_str()) else { continue };
            let line = &self.lines[*i];
            let before = words(&line[..line.find(placeholder.as_str()).unwrap_or(0)]);
            let mut value = clean(value);
            // "System MUST System MUST ...": the words the line already has before the blank.
            let said = words(&value);
            let before: Vec<&str> = before.split(' ').filter(|w| !w.is_empty()).collect();
            let repeated = (1..=before.len())
                .rev()
                .find(|&n| said.starts_with(&format!("{} ", before[before.len() - n..].join(" "))));
            if let Some(skip) = repeated {
                value = value.split_whitespace().skip(skip).collect::<Vec<_>>().join(" ");
            }
            let said = words(&value);
            if copied(&said, &words(placeholder), &shown) || given.contains(&said) {
                value.clear();
            }
            given.push(said);
            match (&mut lines[*i], value.is_empty()) {
                (Some(_), true) => lines[*i] = None,
                (Some(line), false) => *line = line.replacen(placeholder.as_str(), &value, 1),
                (None, _) => {}
            }
        }
        drop_orphaned_subsections(&self.lines, &mut lines);
        drop_empty_headings(&mut lines);
        // One blank line where dropped lines leave several.
        let mut text = String::new();
        for line in lines.into_iter().flatten() {
            if !(line.trim().is_empty() && (text.is_empty() || text.ends_with("\n\n"))) {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    }
}

/// The placeholders of one line, in order (as [`document::placeholders`] finds them).
fn in_order(line: &str) -> Vec<String> {
    let found = document::placeholders(line);
    let mut spots: Vec<(usize, String)> = Vec::new();
    for placeholder in found {
        let mut from = 0;
        while let Some(at) = line[from..].find(&placeholder) {
            spots.push((from + at, placeholder.clone()));
            from += at + placeholder.len();
        }
    }
    spots.sort();
    spots.into_iter().map(|(_, p)| p).collect()
}

/// Lowercase words, one space apart.
fn words(text: &str) -> String {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `text` repeats four words in a row of `shown` (a model answering with its
/// instructions).
pub fn repeats(text: &str, shown: &str) -> bool {
    let shown = format!(" {} ", words(shown));
    words(text).split(' ').collect::<Vec<_>>().windows(4).any(|w| shown.contains(&format!(" {} ", w.join(" "))))
}

/// The value repeats the blank's description or its example, or four words in a row of
/// what the model was shown (its instructions, the template).
fn copied(value: &str, blank: &str, shown: &str) -> bool {
    let said: Vec<&str> = value.split(' ').collect();
    // A short value may rightly be one of the options a blank lists ("Python 3.11").
    let example = blank.split("e g ").nth(1).unwrap_or_default();
    (!value.is_empty() && value == blank)
        || (said.len() >= 4 && blank.contains(value))
        || value.contains("e g ")
        || (example.split(' ').count() >= 3 && value.contains(example))
        || said.windows(4).any(|w| shown.contains(&format!(" {} ", w.join(" "))))
}

/// Each line's heading level (0 for text, and for every line of a code fence, whose `#`
/// lines are comments).
fn levels(lines: &[Option<String>]) -> Vec<usize> {
    let mut fenced = false;
    lines
        .iter()
        .map(|line| {
            let line = line.as_deref().unwrap_or_default();
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return 0;
            }
            if fenced {
                0
            } else {
                line.chars().take_while(|c| *c == '#').count()
            }
        })
        .collect()
}

/// A value without the brackets or quotes a model may wrap it in.
fn clean(value: &str) -> String {
    let value = value.trim();
    let value = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    value.trim_matches('"').trim().to_string()
}

/// Where a heading line was dropped, the lines under it go too, up to the next heading
/// of its level or above.
fn drop_orphaned_subsections(original: &[String], lines: &mut [Option<String>]) {
    let depths = levels(&original.iter().cloned().map(Some).collect::<Vec<_>>());
    let mut dropping: Option<usize> = None;
    for i in 0..original.len() {
        if depths[i] > 0 {
            let depth = depths[i];
            dropping = match dropping {
                Some(d) if depth > d => Some(d),
                _ if lines[i].is_none() => Some(depth),
                _ => None,
            };
        }
        if dropping.is_some() {
            lines[i] = None;
        }
    }
}

/// Headings left with nothing under them, but for mandatory ones (whose emptiness the
/// document's checks report), and the template's "*Example ...*" captions.
fn drop_empty_headings(lines: &mut [Option<String>]) {
    for line in lines.iter_mut() {
        if line.as_deref().is_some_and(|l| l.trim().starts_with("*Example") && l.trim().ends_with('*')) {
            *line = None;
        }
    }
    let depths = levels(lines);
    // From the end, so that a heading whose sub-sections all went goes too.
    for i in (0..lines.len()).rev() {
        let Some(line) = lines[i].clone() else { continue };
        let depth = depths[i];
        if depth == 0 || line.contains("mandatory") {
            continue;
        }
        let body = (i + 1..lines.len())
            .filter(|&j| lines[j].is_some())
            .take_while(|&j| depths[j] == 0 || depths[j] > depth)
            .any(|j| depths[j] == 0 && !matches!(lines[j].as_deref().map(str::trim), Some("" | "---")));
        if !body {
            lines[i] = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECTION: &str = "## Stories\n\n### Story 1 - [Brief Title]\n\n[Describe it]\n\n- Given [state], When [action]\n\n### Story 2 - [Brief Title]\n\n[Describe it]\n\n## Edge `[ID]`\n\nText.\n";

    #[test]
    fn blanks_are_numbered_in_reading_order() {
        let blanks = Blanks::new(SECTION);
        assert_eq!(blanks.len(), 6);
        let numbered = blanks.numbered();
        assert!(numbered
            .contains("### Story 1 - <1: Brief Title>\n\n<2: Describe it>\n\n- Given <3: state>, When <4: action>"));
        assert!(numbered.contains("### Story 2 - <5: Brief Title>\n\n<6: Describe it>"));
        assert!(numbered.contains("`[ID]`"));
        let example = Blanks::new("- [capability, e.g., \"log in\"] and [how - e.g., \"by [action]\"]\n").numbered();
        assert_eq!(example, "- <1: capability> and <2: how>");
        assert_eq!(blanks.schema()["required"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn values_go_in_and_an_empty_heading_drops_its_sub_section() {
        let answer = serde_json::json!({"1": "JSON output", "2": "[A user asks for JSON]", "3": "a file", "4": "\"--json\"", "5": "", "6": "unused"});
        let filled = Blanks::new(SECTION).fill(answer.as_object().unwrap(), "");
        assert_eq!(
            filled,
            "## Stories\n\n### Story 1 - JSON output\n\nA user asks for JSON\n\n- Given a file, When --json\n\n## Edge `[ID]`\n\nText.\n"
        );
    }

    #[test]
    fn comments_in_code_fences_are_not_headings() {
        let section = "## Structure\n\n```text\n# [REMOVE IF UNUSED] Option 1\nsrc/\n# [REMOVE IF UNUSED] Option 2\napp/\n```\n\n**Decision**: [what]\n";
        let answer = serde_json::json!({"1": "Chosen:", "2": "", "3": "src/ only"});
        let filled = Blanks::new(section).fill(answer.as_object().unwrap(), "");
        assert_eq!(filled, "## Structure\n\n```text\n# Chosen: Option 1\nsrc/\napp/\n```\n\n**Decision**: src/ only\n");
    }

    #[test]
    fn a_blank_left_out_of_the_answer_stays() {
        let answer = serde_json::json!({"1": "T"});
        let filled = Blanks::new("# [A] and [B]\nbody\n").fill(answer.as_object().unwrap(), "");
        assert_eq!(filled, "# T and [B]\nbody\n");
    }

    #[test]
    fn copies_count_as_empty() {
        let section = "- [specific capability, e.g., \"allow users to create accounts\"]\n- [a]\n- [b]\n- [c]\n- **FR-5**: System MUST [d]\n";
        let answer = serde_json::json!({
            "1": "System MUST allow users to create accounts",
            "2": "Print the counts as JSON with --json",
            "3": "Print the counts as JSON with --json.",
            "4": "Write concrete text for this feature",
            "5": "System MUST exit with status 2 on a missing file",
        });
        let shown = "Rules: Write concrete text for this feature and this repository.";
        let filled = Blanks::new(section).fill(answer.as_object().unwrap(), shown);
        assert_eq!(
            filled,
            "- Print the counts as JSON with --json\n- **FR-5**: System MUST exit with status 2 on a missing file\n"
        );
    }
}
