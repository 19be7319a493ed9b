//! Events in words: one line of progress per pipeline event, for terminals and for the
//! `reasoning_content` of the OpenAI stream.

use crate::state::TaskEvent;

/// One line of progress for an event, or none for events that say nothing new.
pub fn describe(e: &TaskEvent) -> Option<String> {
    let d = &e.data;
    let stage = e.stage.map(|s| s.to_string()).unwrap_or_default();
    Some(match e.kind.as_str() {
        "stage_started" => format!("▸ {stage}"),
        "context" => {
            format!("  context: {} file(s), {} tokens", d["files"].as_array().map_or(0, Vec::len), d["tokens"])
        }
        "plan" => {
            let steps: Vec<String> = d["plan"]["subtasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["description"].as_str())
                .map(String::from)
                .collect();
            format!("  plan: {}", steps.join(" | "))
        }
        "candidate" => match d["red_flag"].as_str() {
            Some(flag) => format!(
                "  candidate {} (t={:.1}): red flag: {flag}",
                d["index"].as_u64().unwrap_or(0) + 1,
                d["temperature"].as_f64().unwrap_or(0.0)
            ),
            None => format!(
                "  candidate {} (t={:.1}): {} diff lines",
                d["index"].as_u64().unwrap_or(0) + 1,
                d["temperature"].as_f64().unwrap_or(0.0),
                d["diff_lines"]
            ),
        },
        "more_candidates" => format!("  no choice leads yet: {} more candidates", d["adding"]),
        "vote" => format!("  vote {}: {}", d["vote"], d["letter"].as_str().unwrap_or("invalid")),
        "tally" => match d["winner"].as_str() {
            Some(w) => format!("  winner: {w} ({})", d["decided_by"].as_str().unwrap_or("")),
            None => format!("  no winner: {}", d["reason"].as_str().unwrap_or("")),
        },
        "verdict" if d["approved"] == true => "  review: approved".to_string(),
        "verdict" => format!(
            "  review: rejected: {}",
            d["problems"].as_array().into_iter().flatten().filter_map(|p| p.as_str()).collect::<Vec<_>>().join("; ")
        ),
        "resumed" => "resumed".to_string(),
        _ => return None,
    })
}
