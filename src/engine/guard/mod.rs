//! Checks that run before a grammar or JSON schema reaches llama.cpp, whose grammar parser
//! and schema converter trust their input (see `grammar`). Pure logic, no FFI: the
//! engine calls it on every grammar it is given, and the API calls it first to name the
//! request field that failed.

mod grammar;
mod schema;

pub use grammar::check as check_grammar;
pub use schema::check as check_schema;

/// What a grammar or schema may ask llama.cpp to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of GBNF (a schema's derived grammar included).
    pub grammar_bytes: usize,
    /// Rules of a grammar.
    pub grammar_rules: usize,
    /// Parentheses nested in one rule (llama.cpp's parser recurses once per level).
    pub grammar_depth: usize,
    /// Any count in `{m}`, `{m,}`, `{m,n}` (llama.cpp's own repetition threshold).
    pub grammar_repeat: u64,
    /// Grammar elements once every repetition is unrolled, as llama.cpp stores them.
    pub grammar_elements: u64,
    /// Combinations of counts that repetitions nested inside one another may offer (a
    /// parse stack each in llama.cpp's grammar, checked against every candidate token).
    pub grammar_choices: u64,
    /// Whether a rule's repetitions multiply the offers of the rules they repeat: for
    /// grammars that clients write. The schema converter's grammars repeat delimited
    /// rules (a quoted string in an array), whose counts do not combine into stacks.
    pub grammar_choices_across_rules: bool,
    /// Nesting of a JSON schema (llama.cpp's converter recurses once per level).
    pub schema_depth: usize,
    /// Values in a JSON schema, all levels together.
    pub schema_nodes: usize,
    /// Nesting of a JSON schema counting the `$ref`s followed on the way (the converter
    /// visits a reference's target inside the visit of the schema that names it).
    pub schema_ref_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            grammar_bytes: 64 * 1024,
            grammar_rules: 2000,
            grammar_depth: 64,
            grammar_repeat: 2000,
            grammar_elements: 200_000,
            grammar_choices: 1024,
            grammar_choices_across_rules: false,
            schema_depth: 32,
            schema_nodes: 10_000,
            schema_ref_depth: 128,
        }
    }
}

impl Limits {
    /// The limits of a grammar that a request gives itself.
    pub fn written() -> Limits {
        Limits { grammar_choices_across_rules: true, ..Limits::default() }
    }
}

/// Why a grammar or schema was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(String);

impl Refusal {
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal(message.into())
    }
}
