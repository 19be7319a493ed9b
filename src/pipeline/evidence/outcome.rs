//! A probe call's outcome: plain data, so that the run record, the ballot and the events
//! can hold it without depending on the probes.

use serde::{Deserialize, Serialize};

/// What one probe call did with a candidate's code. Saved and sent as the line it prints
/// ("[1, 2]; changes argument 1", "raises KeyError (crash)"), the form records and
/// progress events have always had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Outcome {
    /// It returned `value`, shown as Python prints it alike across processes, and changed
    /// the arguments numbered in `changed` (from 1).
    Returned { value: String, changed: Vec<u32> },
    /// It raised `exception`; a crash when the candidate's own code raised it, not a
    /// `raise` statement and not the probe's expression.
    Raised { exception: String, crash: bool },
}

const RAISES: &str = "raises ";
const CRASH: &str = " (crash)";
const CHANGES: &str = "; changes argument ";

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Returned { value, changed } if changed.is_empty() => write!(f, "{value}"),
            Outcome::Returned { value, changed } => {
                let changed: Vec<String> = changed.iter().map(u32::to_string).collect();
                write!(f, "{value}{CHANGES}{}", changed.join(", "))
            }
            Outcome::Raised { exception, crash } => write!(f, "{RAISES}{exception}{}", if *crash { CRASH } else { "" }),
        }
    }
}

impl From<Outcome> for String {
    fn from(outcome: Outcome) -> String {
        outcome.to_string()
    }
}

impl From<&str> for Outcome {
    fn from(line: &str) -> Outcome {
        if let Some(exception) = line.strip_prefix(RAISES) {
            return match exception.strip_suffix(CRASH) {
                Some(exception) => Outcome::Raised { exception: exception.into(), crash: true },
                None => Outcome::Raised { exception: exception.into(), crash: false },
            };
        }
        let changed = line.rsplit_once(CHANGES).and_then(|(value, list)| {
            let numbers: Option<Vec<u32>> = list.split(", ").map(|n| n.parse().ok()).collect();
            Some((value, numbers?))
        });
        match changed {
            Some((value, changed)) => Outcome::Returned { value: value.into(), changed },
            None => Outcome::Returned { value: line.into(), changed: Vec::new() },
        }
    }
}

impl From<String> for Outcome {
    fn from(line: String) -> Outcome {
        Outcome::from(line.as_str())
    }
}
