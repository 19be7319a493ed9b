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
    /// Nesting of a JSON schema (llama.cpp's converter recurses once per level).
    pub schema_depth: usize,
    /// Values in a JSON schema, all levels together.
    pub schema_nodes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            grammar_bytes: 64 * 1024,
            grammar_rules: 2000,
            grammar_depth: 64,
            grammar_repeat: 2000,
            grammar_elements: 200_000,
            schema_depth: 32,
            schema_nodes: 10_000,
        }
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

/// Random grammars and schemas built from the syntax's own pieces, for the fuzz tests
/// here and in `tests/it` (which feed what the checks accept to llama.cpp).
#[doc(hidden)]
pub mod fuzz {
    /// xorshift64*: reproducible from a seed, no dependency.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Rng {
            Rng(seed.max(1))
        }

        pub fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
        }

        pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const PIECES: &[&str] = &[
        "\"a\"", "\"bc\"", "[a-z]", "[^\\n]", ".", "x", "root", "(", ")", "|", "*", "+", "?", "{2}", "{0,3}", "{1,}",
        "{5,2}", "{3000}", "{0,2000}", " ", "\n", "\n  ", "# c\n", "\"\\x41\"", "\"\\u00e9\"", "\"", "[", "]", "<", ">", "::=",
        "\"é\"", "{", "}", ",", "\\",
    ];

    /// A grammar: mostly well-formed rules, with random pieces spliced in.
    pub fn grammar(rng: &mut Rng) -> String {
        let mut out = String::from("root ::= ");
        for _ in 0..rng.below(40) + 1 {
            out.push_str(rng.pick(PIECES));
        }
        if rng.below(2) == 0 {
            out.push_str("\nx ::= ");
            for _ in 0..rng.below(10) + 1 {
                out.push_str(rng.pick(PIECES));
            }
        }
        out
    }

    /// A JSON schema with random keywords and nesting.
    pub fn schema(rng: &mut Rng, depth: usize) -> serde_json::Value {
        use serde_json::json;
        let leaf = || json!({"type": "string"});
        if depth == 0 {
            return leaf();
        }
        let n = |rng: &mut Rng| [0u64, 1, 2, 5, 2000, 3000, 1_000_000][rng.below(7)];
        match rng.below(6) {
            0 => json!({"type": "array", "items": schema(rng, depth - 1), "minItems": n(rng), "maxItems": n(rng)}),
            1 => json!({"type": "string", "minLength": n(rng), "maxLength": n(rng)}),
            2 => json!({"type": "object", "properties": {"a": schema(rng, depth - 1), "b": schema(rng, depth - 1)}, "required": ["a"]}),
            3 => json!({"type": "string", "pattern": rng.pick(&["^a+$", "a{2,5}", "a{5,2}", "(ab|c)*", "[0-9]{3}"])}),
            4 => json!({"anyOf": [schema(rng, depth - 1), {"type": "integer", "minimum": 0, "maximum": n(rng)}]}),
            _ => leaf(),
        }
    }
}

#[cfg(test)]
mod fuzz_tests {
    use super::fuzz::{grammar, schema, Rng};
    use super::*;

    #[test]
    fn the_checks_terminate_on_any_input_and_bound_what_they_accept() {
        let limits = Limits::default();
        let mut rng = Rng::new(19);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let g = grammar(&mut rng);
            match check_grammar(&g, &limits) {
                Ok(()) => accepted += 1,
                Err(_) => refused += 1,
            }
            let depth = rng.below(6);
            let s = schema(&mut rng, depth);
            let _ = check_schema(&s, &limits);
        }
        // Both outcomes are exercised, so the generator is not degenerate.
        assert!(accepted > 100 && refused > 1000, "{accepted} accepted, {refused} refused");
        // Random bytes too.
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.below(256) as u8).collect();
            let _ = check_grammar(&String::from_utf8_lossy(&bytes), &limits);
        }
    }
}
