//! How a coder answers: edit blocks ([`blocks`]) for long files, whole files
//! ([`whole_files`]) for short ones, and whole-definition rewrites ([`rewrite`]) that an
//! edit block may carry. Each format is a [`Format`]: what the coder is told, a grammar
//! that keeps a small model's answer well-formed, and how an answer is applied, salvaged
//! when it was cut off at the token limit.

pub mod blocks;
pub mod rewrite;
pub mod whole_files;

use std::path::Path;

use crate::pipeline::models::Ending;

pub use self::blocks::{EditBlocks, EditError};
pub use self::whole_files::WholeFiles;

/// Why an answer changed nothing in the tree.
#[derive(Debug)]
pub enum Refused {
    /// It hit the token limit with nothing whole to salvage before the cut.
    CutOff,
    /// The deadline cut it before its first edit was complete.
    Unfinished,
    Edit(EditError),
}

impl From<EditError> for Refused {
    fn from(e: EditError) -> Refused {
        Refused::Edit(e)
    }
}

pub trait Format: Send + Sync {
    /// The format's part of the coder's system prompt.
    fn instructions(&self) -> &'static str;
    /// The line that ends the coder's request.
    fn request(&self) -> &'static str;
    /// A GBNF grammar that every answer in the format matches, and that ends.
    fn grammar(&self) -> String;
    /// Where an answer ends although its grammar would go on.
    fn stops(&self) -> &'static [&'static str] {
        &[]
    }
    /// Applies `answer`, which ended as `ending` says, to the tree at `root`. An answer
    /// that hit the token limit counts only where what was cut only repeats what came
    /// before; one cut at the deadline, by its complete edits (the model may have been
    /// about to write more, but what it wrote whole stands on its own).
    fn apply(&self, root: &Path, answer: &str, ending: Ending) -> Result<(), Refused>;
}
