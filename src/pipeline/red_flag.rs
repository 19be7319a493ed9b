//! Red flags (MAKER): what disqualifies a candidate before the vote. A red-flagged
//! candidate never stands on the ballot; its flag is recorded and shown.

use serde::{Deserialize, Deserializer, Serialize};

use super::answer::blocks::EditError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "flag", rename_all = "snake_case")]
pub enum RedFlag {
    /// Cut off at its token limit with no complete answer before it.
    #[error("exceeds its token limit ({tokens} tokens)")]
    TokenLimit { tokens: u32 },
    /// Cut at the time budget's deadline before its first edit was complete.
    #[error("cut by the time budget before its first edit was complete ({tokens} tokens)")]
    Unfinished { tokens: u32 },
    /// The answer does not follow its format.
    #[error("malformed: {detail}")]
    Malformed { detail: String },
    /// Its edits cannot be made (no such text, a path it may not write).
    #[error("does not apply: {detail}")]
    DoesNotApply { detail: String },
    /// Its edits leave the files as they were.
    #[error("changes nothing")]
    NoChange,
    /// A file it wrote does not parse.
    #[error("breaks the build: {path} does not parse (line {line})")]
    DoesNotParse { path: String, line: u64 },
    /// It could not be judged (git failed on its worktree).
    #[error("could not be judged: {detail}")]
    Unjudged { detail: String },
    /// A call the task writes as its example still returns what the task reports as the
    /// bug, or crashes.
    #[error("{call}, the task's own example, {seen}")]
    FailsExample { call: String, seen: String },
    /// At the plan's last step, fewer than half of the tests that passed before pass: the
    /// code no longer imports or builds, or the change undoes what most of them check.
    #[error("breaks most tests: {passed} of the {before} that passed before pass")]
    BreaksTests {
        before: u64,
        /// Absent from records written when only a change that broke every test was flagged.
        #[serde(default)]
        passed: u64,
    },
}

impl RedFlag {
    /// The kind of flag, in a word or two: what the coders hear of earlier rounds.
    pub fn reason(&self) -> &'static str {
        match self {
            RedFlag::TokenLimit { .. } => "token limit",
            RedFlag::Unfinished { .. } => "cut by the time budget",
            RedFlag::Malformed { .. } => "malformed",
            RedFlag::DoesNotApply { .. } => "does not apply",
            RedFlag::NoChange => "changes nothing",
            RedFlag::DoesNotParse { .. } => "breaks the build",
            RedFlag::Unjudged { .. } => "not judged",
            RedFlag::FailsExample { .. } => "fails the task's example",
            RedFlag::BreaksTests { .. } => "breaks most tests",
        }
    }
}

/// Reads a saved flag: tagged, or a message (task records written before flags were
/// typed, which still disqualify).
pub fn saved<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RedFlag>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Saved {
        Tagged(RedFlag),
        Message(String),
    }
    Ok(Option::<Saved>::deserialize(d)?.map(|saved| match saved {
        Saved::Tagged(flag) => flag,
        Saved::Message(detail) => RedFlag::Unjudged { detail },
    }))
}

impl From<EditError> for RedFlag {
    fn from(e: EditError) -> RedFlag {
        match e {
            EditError::Malformed(detail) => RedFlag::Malformed { detail },
            EditError::DoesNotApply(detail) => RedFlag::DoesNotApply { detail },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_as_before_and_keep_their_kind() {
        let flag = RedFlag::from(EditError::DoesNotApply("no such text in calc.py".into()));
        assert_eq!(flag.to_string(), "does not apply: no such text in calc.py");
        assert_eq!(flag.reason(), "does not apply");
        assert_eq!(RedFlag::NoChange.to_string(), "changes nothing");
        let tagged = serde_json::to_value(RedFlag::TokenLimit { tokens: 512 }).unwrap();
        assert_eq!(tagged, serde_json::json!({"flag": "token_limit", "tokens": 512}));
        assert_eq!(saved(tagged).unwrap(), Some(RedFlag::TokenLimit { tokens: 512 }));
        let old = saved(serde_json::json!("malformed: no FILE line")).unwrap();
        assert_eq!(old, Some(RedFlag::Unjudged { detail: "malformed: no FILE line".into() }));
        assert_eq!(saved(serde_json::Value::Null).unwrap(), None);
    }
}
