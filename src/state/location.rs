//! Where the state lives: `--state PATH` or `--state redis://...`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::StateError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    File(PathBuf),
    Redis(String),
}

impl StateLocation {
    /// `~/.local/share/quorum/state.redb` on Linux, the platform's data directory elsewhere.
    pub fn default_file() -> StateLocation {
        let base = dirs::data_dir().unwrap_or_else(|| PathBuf::from("."));
        StateLocation::File(base.join("quorum").join("state.redb"))
    }
}

impl FromStr for StateLocation {
    type Err = StateError;

    fn from_str(s: &str) -> Result<StateLocation, StateError> {
        if s.starts_with("redis://") || s.starts_with("rediss://") || s.starts_with("redis+unix://") {
            Ok(StateLocation::Redis(s.to_string()))
        } else if s.is_empty() || s.contains("://") {
            Err(StateError::Location(s.to_string()))
        } else if let (Some(rest), Some(home)) = (s.strip_prefix("~/"), dirs::home_dir()) {
            // Config files are not expanded by a shell.
            Ok(StateLocation::File(home.join(rest)))
        } else {
            Ok(StateLocation::File(PathBuf::from(s)))
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::File(path) => write!(f, "{}", path.display()),
            StateLocation::Redis(url) => f.write_str(url),
        }
    }
}
