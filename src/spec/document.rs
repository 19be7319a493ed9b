//! A spec-kit document against the template it was made from: the template's sections
//! (each written by a model), the fields quorum fills itself (date, feature name and
//! directory, the user's words), and the checks a finished document must pass: every
//! mandatory section kept, no placeholder of the template left, no more
//! `NEEDS CLARIFICATION` markers than the command allows.

use std::collections::BTreeSet;

/// One `## ` section of a template (the text before the first is the preamble, whose
/// heading is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub heading: String,
    pub text: String,
}

/// The template's sections, in order; headings inside code fences do not split.
pub fn sections(template: &str) -> Vec<Section> {
    let mut out = vec![Section { heading: String::new(), text: String::new() }];
    let mut fenced = false;
    for line in template.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with("## ") {
            out.push(Section { heading: line.to_string(), text: String::new() });
        }
        let last = out.last_mut().expect("one section at least");
        last.text.push_str(line);
        last.text.push('\n');
    }
    out.retain(|s| !s.text.trim().is_empty());
    out
}

/// Drops HTML comments (a template's instructions to the writer) and the front matter
/// some templates carry.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start..].find("-->") {
            Some(end) => rest = &rest[start + end + 3..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    let out = match out.trim_start().strip_prefix("---\n") {
        Some(front) => front.split_once("\n---").map(|(_, body)| body.to_string()).unwrap_or(out),
        None => out,
    };
    // Blank runs left where comments were.
    let mut text = String::new();
    let mut blank = 0;
    for line in out.trim().lines() {
        blank = if line.trim().is_empty() { blank + 1 } else { 0 };
        if blank < 2 {
            text.push_str(line.trim_end());
            text.push('\n');
        }
    }
    text
}

/// Placeholders written over two lines ("[Document the ...\n directories ...]") on one,
/// so that each is one blank.
pub fn unwrap_placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            // A newline inside a bracket opened on its own line joins the two lines.
            '\n' if depth > 0 && !out.ends_with('\n') => {
                let line_start = out.rfind('\n').map(|i| i + 1).unwrap_or(0);
                let open_line = out[line_start..].matches('[').count() > out[line_start..].matches(']').count();
                if open_line {
                    out.push(' ');
                    continue;
                }
                depth = 0;
            }
            '\n' => depth = 0,
            _ => {}
        }
        out.push(c);
    }
    out
}

/// Replaces each `(placeholder, value)` pair wherever it appears.
pub fn fill(text: &str, fields: &[(&str, String)]) -> String {
    fields.iter().fold(text.to_string(), |text, (placeholder, value)| text.replace(placeholder, value))
}

/// The bracketed placeholders of a text (`[FEATURE NAME]`, `[Describe ...]`), outside
/// inline code (where brackets spell a format, as in `[ID] [P?] [Story]`), links and
/// checkboxes, and the markers tasks use (`[P]`, `[US1]`).
pub fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, span) in text.split('`').enumerate() {
        if i % 2 == 1 {
            continue;
        }
        let mut rest = span;
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            // The outermost brackets: a placeholder may hold another ("[... [X] by 50%]").
            let mut depth = 1;
            let Some(close) = after.char_indices().find_map(|(i, c)| {
                depth += match c {
                    '[' => 1,
                    ']' => -1,
                    _ => 0,
                };
                (depth == 0).then_some(i)
            }) else {
                break;
            };
            let inner = &after[..close];
            let link = after[close + 1..].starts_with('(');
            if !link && is_placeholder(inner) {
                found.insert(format!("[{inner}]"));
            }
            rest = &after[close + 1..];
        }
    }
    found
}

fn is_placeholder(inner: &str) -> bool {
    let marker = matches!(inner, "" | " " | "x" | "X" | "P" | "P?" | "ID" | "Story")
        || inner.strip_prefix("US").is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        || inner.starts_with('^');
    !marker && inner.chars().any(|c| c.is_alphabetic() || c == '#') && inner.len() <= 200
}

/// What is wrong with a document made from `template`; empty when it is done.
pub fn problems(doc: &str, template: &str, clarification_limit: usize) -> Vec<String> {
    let mut problems = Vec::new();
    for heading in mandatory_headings(template) {
        match section_body(doc, &heading) {
            None => problems.push(format!("the mandatory section \"{heading}\" is missing")),
            Some(body) if body.lines().all(|l| l.trim().is_empty() || l.starts_with('#') || l.trim() == "---") => {
                problems.push(format!("the mandatory section \"{heading}\" is empty"))
            }
            Some(_) => {}
        }
    }
    let left: Vec<String> = placeholders(template).intersection(&placeholders(doc)).cloned().collect();
    if !left.is_empty() {
        problems.push(format!("template placeholders left unfilled: {}", left.join(", ")));
    }
    for literal in ["[###-", "$ARGUMENTS", "[FEATURE NAME]", "[DATE]"] {
        if doc.contains(literal) && !left.iter().any(|p| p.starts_with(literal)) {
            problems.push(format!("`{literal}` left unfilled"));
        }
    }
    let markers = doc.matches("NEEDS CLARIFICATION").count();
    if markers > clarification_limit {
        problems.push(format!(
            "{markers} NEEDS CLARIFICATION markers, more than the command's limit of {clarification_limit}"
        ));
    }
    problems
}

/// The lines under the heading that names `title`, up to the next heading of its level
/// or above.
fn section_body<'a>(doc: &'a str, title: &str) -> Option<&'a str> {
    let level = |l: &str| l.chars().take_while(|c| *c == '#').count();
    let mut offset = 0;
    let mut start: Option<(usize, usize)> = None;
    for line in doc.split_inclusive('\n') {
        let depth = level(line);
        match start {
            None if depth > 0 && line.contains(title) => start = Some((offset + line.len(), depth)),
            Some((from, d)) if depth > 0 && depth <= d => return Some(&doc[from..offset]),
            _ => {}
        }
        offset += line.len();
    }
    start.map(|(from, _)| &doc[from..])
}

/// The titles of the template's sections marked `*(mandatory)*`.
fn mandatory_headings(template: &str) -> Vec<String> {
    template
        .lines()
        .filter(|line| line.starts_with('#') && line.contains("(mandatory)"))
        .map(|line| {
            line.trim_start_matches('#').replace("*(mandatory)*", "").replace("(mandatory)", "").trim().to_string()
        })
        .collect()
}

/// The limit a command's text sets on `[NEEDS CLARIFICATION]` markers ("Maximum 3"), or 3.
pub fn clarification_limit(command: &str) -> usize {
    for line in command.lines().filter(|l| l.contains("NEEDS CLARIFICATION")) {
        let lower = line.to_lowercase();
        if let Some(at) = lower.find("maximum ") {
            let digits: String = lower[at + 8..].chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(n) = digits.parse() {
                return n;
            }
        }
    }
    3
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "# Feature Specification: [FEATURE NAME]\n\n**Created**: [DATE]\n\n## User Scenarios & Testing *(mandatory)*\n\n<!-- Prioritise the stories. -->\n\n### User Story 1 - [Brief Title] (Priority: P1)\n\n[Describe this user journey]\n\n```text\n## not a section\n```\n\n## Requirements *(mandatory)*\n\n- **FR-001**: System MUST [specific capability]\n\n## Format: `[ID] [P?] [Story] Description`\n\n- [ ] T001 [P] [US1] Create [file] in [README](README.md)\n";

    #[test]
    fn sections_split_at_second_level_headings_outside_fences() {
        let all = sections(TEMPLATE);
        let headings: Vec<&str> = all.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(
            headings,
            [
                "",
                "## User Scenarios & Testing *(mandatory)*",
                "## Requirements *(mandatory)*",
                "## Format: `[ID] [P?] [Story] Description`"
            ]
        );
        assert!(all[1].text.contains("## not a section"));
        assert_eq!(all.iter().map(|s| s.text.as_str()).collect::<String>(), TEMPLATE);
    }

    #[test]
    fn placeholders_skip_code_links_and_task_markers() {
        let found = placeholders(TEMPLATE);
        let expected = [
            "[Brief Title]",
            "[DATE]",
            "[Describe this user journey]",
            "[FEATURE NAME]",
            "[file]",
            "[specific capability]",
        ];
        assert_eq!(found.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_filled_document_passes_and_an_unfilled_one_says_what_is_left() {
        let filled = "# Feature Specification: JSON output\n\n## User Scenarios & Testing *(mandatory)*\n\n### User Story 1 - Script output (Priority: P1)\n\nA user pipes the output to jq.\n\n## Requirements\n\n- **FR-001**: System MUST print JSON with --json. [NEEDS CLARIFICATION: indent?]\n";
        assert_eq!(problems(filled, TEMPLATE, 3), Vec::<String>::new());
        assert_eq!(problems(filled, TEMPLATE, 0).len(), 1);
        let empty =
            filled.replace("- **FR-001**: System MUST print JSON with --json. [NEEDS CLARIFICATION: indent?]\n", "");
        assert_eq!(problems(&empty, TEMPLATE, 3), vec!["the mandatory section \"Requirements\" is empty"]);
        let unfilled = "# Feature Specification: [FEATURE NAME]\n\n## Requirements\n\n- [specific capability] for `specs/[###-feature-name]/`\n";
        let found = problems(unfilled, TEMPLATE, 3);
        assert!(found[0].contains("User Scenarios & Testing"), "{found:?}");
        assert!(found[1].contains("[FEATURE NAME], [specific capability]"), "{found:?}");
        assert!(found[2].contains("[###-"), "{found:?}");
    }

    #[test]
    fn a_placeholder_over_two_lines_becomes_one() {
        let text =
            "**Decision**: [Document the structure and the real\ndirectories above]\n- [ ] T001 x\n[unclosed\nnext]\n";
        let out = unwrap_placeholders(text);
        assert!(
            out.starts_with("**Decision**: [Document the structure and the real directories above]\n- [ ] T001 x\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 3);
    }

    #[test]
    fn comments_and_front_matter_are_dropped() {
        let text = "---\ndescription: x\n---\n# T\n<!--\n  say\n-->\n\n\n\nbody <!-- inline --> end\n";
        assert_eq!(strip_comments(text), "# T\n\nbody  end\n");
    }

    #[test]
    fn the_clarification_limit_comes_from_the_command() {
        assert_eq!(clarification_limit("- **LIMIT: Maximum 2 [NEEDS CLARIFICATION] markers total**"), 2);
        assert_eq!(clarification_limit("nothing said"), 3);
    }
}
