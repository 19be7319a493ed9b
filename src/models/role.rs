//! The five roles of the MAKER pipeline. A role is what a model is *for*; which
//! GGUF serves it is the profile's business.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Preprocessor,
    Planner,
    Coder,
    Voter,
    Reviewer,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Preprocessor, Role::Planner, Role::Coder, Role::Voter, Role::Reviewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Preprocessor => "preprocessor",
            Role::Planner => "planner",
            Role::Coder => "coder",
            Role::Voter => "voter",
            Role::Reviewer => "reviewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role `{0}` (expected one of: preprocessor, planner, coder, voter, reviewer)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str().eq_ignore_ascii_case(s)).ok_or_else(|| UnknownRole(s.to_string()))
    }
}
