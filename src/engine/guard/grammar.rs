//! A GBNF checker that runs before llama.cpp's grammar parser sees a grammar.
//!
//! llama.cpp's parser trusts its input: `x{5,2}` makes it generate rules without end (the
//! count of optional copies is `max - min` in unsigned arithmetic) and deep nesting
//! recurses once per parenthesis. This parser follows the same syntax (rules, literals,
//! character classes, tokens, groups, `* + ? {m} {m,} {m,n}`, comments) closely enough to
//! bound what llama.cpp will build: nesting depth, repetition counts, the combinations of
//! counts that nested repetitions offer, and the number of
//! grammar elements after repetitions are expanded (its memory). A grammar it accepts may
//! still be refused by llama.cpp (an undefined rule, left recursion); that error comes
//! back from llama.cpp itself.

use std::collections::{HashMap, HashSet};

use super::{Limits, Refusal};

/// Checks `gbnf` against `limits`; the refusal names the rule that failed and where.
pub fn check(gbnf: &str, limits: &Limits) -> Result<(), Refusal> {
    if gbnf.len() > limits.grammar_bytes {
        return Err(Refusal::new(format!(
            "the grammar has {} bytes; at most {} are allowed",
            gbnf.len(),
            limits.grammar_bytes
        )));
    }
    if gbnf.contains('\0') {
        return Err(Refusal::new("the grammar contains a NUL byte"));
    }
    let mut parser = Parser { src: gbnf.as_bytes(), pos: 0, limits, expanded: 0, rules: 0, offers: HashMap::new() };
    parser.grammar()?;
    if limits.grammar_choices_across_rules {
        combined(&parser.offers, limits.grammar_choices)?;
    }
    Ok(())
}

/// The combinations of counts that repetitions nested inside one another offer, across
/// rules: llama.cpp keeps a parse stack for each combination that can be where the text
/// is and checks every candidate token against every stack, so nested counted
/// repetitions (`(("a"{0,50}){0,50}){0,50}`, or `x{0,2000}` of a rule `y{0,2000}`) held a
/// model's worker for minutes on one token, or its grammar's compile without end.
#[derive(Debug, Clone)]
struct Offers<'a> {
    /// What the item's own repetitions offer.
    own: u64,
    /// Per rule it names, what the repetitions around that name offer (the rule's own
    /// offers multiply them).
    around: Vec<(&'a [u8], u64)>,
}

impl<'a> Offers<'a> {
    fn one() -> Offers<'a> {
        Offers { own: 1, around: Vec::new() }
    }

    fn name(name: &'a [u8]) -> Offers<'a> {
        Offers { own: 1, around: vec![(name, 1)] }
    }

    /// The most of `self` and `other`, item by item.
    fn merge(&mut self, other: Offers<'a>) {
        self.own = self.own.max(other.own);
        for (name, n) in other.around {
            match self.around.iter_mut().find(|(known, _)| *known == name) {
                Some((_, m)) => *m = (*m).max(n),
                None => self.around.push((name, n)),
            }
        }
    }

    /// `self` repeated with `offered` counts; the largest product.
    fn times(&mut self, offered: u64) -> u64 {
        self.own = self.own.saturating_mul(offered);
        let mut most = self.own;
        for (_, n) in &mut self.around {
            *n = n.saturating_mul(offered);
            most = most.max(*n);
        }
        most
    }
}

/// Each rule's offers with the rules it names multiplied in (a rule that names one being
/// worked out, recursion, counts once), depth first without recursing.
fn combined(rules: &HashMap<&[u8], Offers<'_>>, limit: u64) -> Result<(), Refusal> {
    let mut done: HashMap<&[u8], u64> = HashMap::new();
    let mut active: HashSet<&[u8]> = HashSet::new();
    for &start in rules.keys() {
        if done.contains_key(start) {
            continue;
        }
        active.insert(start);
        let mut stack: Vec<(&[u8], usize)> = vec![(start, 0)];
        while let Some((name, next)) = stack.last_mut() {
            let offers = &rules[*name];
            if let Some(&(named, _)) = offers.around.get(*next) {
                *next += 1;
                if rules.contains_key(named) && !done.contains_key(named) && active.insert(named) {
                    stack.push((named, 0));
                }
                continue;
            }
            let total = offers
                .around
                .iter()
                .map(|(named, n)| n.saturating_mul(done.get(named).copied().unwrap_or(1)))
                .fold(offers.own, u64::max);
            let name = *name;
            if total > limit {
                return Err(Refusal::new(format!(
                    "grammar: rule `{}`: nested repetitions offer more than {limit} combinations of counts",
                    String::from_utf8_lossy(name)
                )));
            }
            done.insert(name, total);
            active.remove(name);
            stack.pop();
        }
    }
    Ok(())
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    /// Elements llama.cpp will hold once every repetition is expanded.
    expanded: u64,
    rules: usize,
    /// Per rule, what its repetitions offer.
    offers: HashMap<&'a [u8], Offers<'a>>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn fail<T>(&self, what: impl std::fmt::Display) -> Result<T, Refusal> {
        Err(Refusal::new(format!("grammar: {what} at byte {}", self.pos)))
    }

    fn space(&mut self, newline_ok: bool) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' => self.pos += 1,
                b'\r' | b'\n' if newline_ok => self.pos += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\r' && c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn is_word(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
    }

    fn name(&mut self) -> Result<&'a [u8], Refusal> {
        let start = self.pos;
        while self.peek().is_some_and(Self::is_word) {
            self.pos += 1;
        }
        if self.pos == start {
            return self.fail("expecting a rule name");
        }
        Ok(&self.src[start..self.pos])
    }

    fn grammar(&mut self) -> Result<(), Refusal> {
        self.space(true);
        while self.peek().is_some() {
            self.rule()?;
            self.space(true);
        }
        if self.rules == 0 {
            return self.fail("no rules (expecting `root ::= ...`)");
        }
        Ok(())
    }

    fn rule(&mut self) -> Result<(), Refusal> {
        self.rules += 1;
        if self.rules > self.limits.grammar_rules {
            return self.fail(format_args!("more than {} rules", self.limits.grammar_rules));
        }
        let name = self.name()?;
        self.space(false);
        if !self.src[self.pos..].starts_with(b"::=") {
            return self.fail("expecting `::=`");
        }
        self.pos += 3;
        self.space(true);
        let offers = self.alternates(0)?;
        self.offers.entry(name).or_insert_with(Offers::one).merge(offers);
        match self.peek() {
            None | Some(b'\r') | Some(b'\n') => Ok(()),
            Some(_) => self.fail("expecting a newline or the end"),
        }
    }

    /// The most that repetitions nested in one alternative offer.
    fn alternates(&mut self, depth: usize) -> Result<Offers<'a>, Refusal> {
        let mut most = self.sequence(depth)?;
        while self.peek() == Some(b'|') {
            self.pos += 1;
            self.space(true);
            most.merge(self.sequence(depth)?);
            self.add(2)?;
        }
        Ok(most)
    }

    /// A repetition offering `offered` counts of an item that offers `item` ([`Offers`]).
    fn nest(&self, item: &mut Offers<'a>, offered: u64) -> Result<(), Refusal> {
        if item.times(offered) > self.limits.grammar_choices {
            return self.fail(format_args!(
                "nested repetitions offer more than {} combinations of counts",
                self.limits.grammar_choices
            ));
        }
        Ok(())
    }

    /// Adds `n` elements to the expanded size.
    fn add(&mut self, n: u64) -> Result<(), Refusal> {
        self.expanded = self.expanded.saturating_add(n);
        if self.expanded > self.limits.grammar_elements {
            return self.fail(format_args!(
                "the grammar expands to more than {} elements once its repetitions are unrolled",
                self.limits.grammar_elements
            ));
        }
        Ok(())
    }

    /// The most that one item's nested repetitions offer.
    fn sequence(&mut self, depth: usize) -> Result<Offers<'a>, Refusal> {
        let nested = depth > 0;
        // The elements of the item a repetition applies to (as llama.cpp copies them), and
        // the combinations of counts its own repetitions offer.
        let mut last: Option<u64> = None;
        let (mut choices, mut most) = (Offers::one(), Offers::one());
        while let Some(c) = self.peek() {
            match c {
                b'"' => {
                    self.pos += 1;
                    let mut n = 0u64;
                    while self.peek() != Some(b'"') {
                        self.char()?;
                        n += 1;
                    }
                    self.pos += 1;
                    self.add(n)?;
                    last = Some(n);
                    choices = Offers::one();
                }
                b'[' => {
                    self.pos += 1;
                    if self.peek() == Some(b'^') {
                        self.pos += 1;
                    }
                    let mut n = 0u64;
                    while self.peek() != Some(b']') {
                        self.char()?;
                        n += 1;
                        if self.peek() == Some(b'-') && self.src.get(self.pos + 1).is_some_and(|&c| c != b']') {
                            self.pos += 1;
                            self.char()?;
                            n += 1;
                        }
                    }
                    self.pos += 1;
                    self.add(n)?;
                    last = Some(n);
                    choices = Offers::one();
                }
                b'<' | b'!' => {
                    self.token()?;
                    self.add(1)?;
                    last = Some(1);
                    choices = Offers::one();
                }
                b'.' => {
                    self.pos += 1;
                    self.add(1)?;
                    last = Some(1);
                    choices = Offers::one();
                }
                c if Self::is_word(c) => {
                    let name = self.name()?;
                    self.add(1)?;
                    last = Some(1);
                    choices = Offers::name(name);
                }
                b'(' => {
                    if depth + 1 > self.limits.grammar_depth {
                        return self.fail(format_args!("groups nested deeper than {}", self.limits.grammar_depth));
                    }
                    self.pos += 1;
                    self.space(true);
                    let inner = self.alternates(depth + 1)?;
                    if self.peek() != Some(b')') {
                        return self.fail("expecting `)`");
                    }
                    self.pos += 1;
                    // A group becomes a rule of its own and one reference to it.
                    self.add(2)?;
                    last = Some(1);
                    choices = inner;
                }
                b'*' | b'+' | b'?' => {
                    let Some(size) = last else { return self.fail("a repetition with nothing before it") };
                    self.pos += 1;
                    // One recursive rule holding a copy of the item.
                    self.add(size + 3)?;
                    last = Some(size * 2 + 1);
                    self.nest(&mut choices, 2)?;
                }
                b'{' => {
                    let Some(size) = last else { return self.fail("a repetition with nothing before it") };
                    let at = self.pos;
                    let (min, max) = self.bounds()?;
                    if let Some(max) = max {
                        if min > max {
                            self.pos = at;
                            return self
                                .fail(format_args!("repetition {{{min},{max}}}: the minimum is above the maximum"));
                        }
                    }
                    let cap = self.limits.grammar_repeat;
                    if min > cap || max.is_some_and(|m| m > cap) {
                        self.pos = at;
                        return self.fail(format_args!("a repetition count above {cap}"));
                    }
                    let copies = max.unwrap_or(min + 1).max(1);
                    self.add(size.saturating_mul(copies).saturating_add(3 * copies))?;
                    last = Some(size.saturating_mul(copies));
                    self.nest(&mut choices, max.map_or(2, |max| max - min + 1))?;
                }
                _ => break,
            }
            most.merge(choices.clone());
            self.space(nested);
        }
        Ok(most)
    }

    /// `{m}`, `{m,}` or `{m,n}`.
    fn bounds(&mut self) -> Result<(u64, Option<u64>), Refusal> {
        self.pos += 1;
        self.space(false);
        let min = self.int()?;
        self.space(false);
        match self.peek() {
            Some(b'}') => {
                self.pos += 1;
                Ok((min, Some(min)))
            }
            Some(b',') => {
                self.pos += 1;
                self.space(false);
                let max = if self.peek().is_some_and(|c| c.is_ascii_digit()) { Some(self.int()?) } else { None };
                self.space(false);
                if self.peek() != Some(b'}') {
                    return self.fail("expecting `}`");
                }
                self.pos += 1;
                Ok((min, max))
            }
            _ => self.fail("expecting `,` or `}`"),
        }
    }

    fn int(&mut self) -> Result<u64, Refusal> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return self.fail("expecting a number");
        }
        let digits = std::str::from_utf8(&self.src[start..self.pos]).unwrap_or("");
        // Longer numbers are above any cap; saturate rather than fail to parse.
        Ok(digits.parse().unwrap_or(u64::MAX))
    }

    /// One character of a literal or class: itself, or an escape.
    fn char(&mut self) -> Result<(), Refusal> {
        match self.peek() {
            None => self.fail("unexpected end of the grammar"),
            Some(b'\\') => {
                let hex = match self.src.get(self.pos + 1) {
                    Some(b'x') => 2,
                    Some(b'u') => 4,
                    Some(b'U') => 8,
                    Some(b'"' | b'[' | b']' | b'\\' | b'n' | b'r' | b't' | b'-' | b'^') => 0,
                    _ => return self.fail("an unknown escape"),
                };
                self.pos += 2;
                for _ in 0..hex {
                    if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                        return self.fail("expecting hex digits");
                    }
                    self.pos += 1;
                }
                Ok(())
            }
            Some(c) => {
                // A whole UTF-8 character.
                let len = match c {
                    0xF0.. => 4,
                    0xE0.. => 3,
                    0xC0.. => 2,
                    _ => 1,
                };
                self.pos = (self.pos + len).min(self.src.len());
                Ok(())
            }
        }
    }

    /// `<name>`, `<[id]>`, `!<...>`: a token of the model's vocabulary.
    fn token(&mut self) -> Result<(), Refusal> {
        if self.peek() == Some(b'!') {
            self.pos += 1;
        }
        if self.peek() != Some(b'<') {
            return self.fail("expecting `<`");
        }
        match self.src[self.pos..].iter().take(256).position(|&c| c == b'>') {
            Some(end) => {
                self.pos += end + 1;
                Ok(())
            }
            None => self.fail("a token without `>` within 256 bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(g: &str) -> bool {
        check(g, &Limits::default()).is_ok()
    }

    fn refusal(g: &str) -> String {
        check(g, &Limits::default()).unwrap_err().to_string()
    }

    #[test]
    fn ordinary_grammars_pass() {
        assert!(ok(r#"root ::= "yes" | "no""#));
        assert!(ok("root ::= [A-E]"));
        assert!(ok("# a comment\nroot ::= item+ (\",\" item)*\nitem ::= [a-z0-9_]{1,32} # trailing\n"));
        assert!(ok("root ::= (\n  \"a\" |\n  \"b\"\n)?"));
        assert!(ok(r#"root ::= "\x41\u00e9\n" [^"\\] . <think> !<[42]>"#));
        assert!(ok("root ::= \"é\"{3} x{2,} y{0,5}\nx ::= \"x\"\ny ::= \"y\""));
    }

    #[test]
    fn a_minimum_above_the_maximum_is_refused() {
        let message = refusal(r#"root ::= "a"{5,2}"#);
        assert!(message.contains("{5,2}") && message.contains("minimum is above the maximum"), "{message}");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing_into_it() {
        let g = format!("root ::= {}\"a\"{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(refusal(&g).contains("nested deeper than 64"));
        let fine = format!("root ::= {}\"a\"{}", "(".repeat(60), ")".repeat(60));
        assert!(ok(&fine));
    }

    #[test]
    fn counts_and_their_products_are_bounded() {
        assert!(refusal(r#"root ::= "a"{100000}"#).contains("count above 2000"));
        assert!(refusal(r#"root ::= "a"{99999999999999999999999}"#).contains("count above"));
        assert!(refusal(r#"root ::= "a"{1000}{1000}"#).contains("expands to more than"));
        let many = format!("root ::= {}", "\"ab\"{2000} ".repeat(200));
        assert!(refusal(&many).contains("expands to more than"));
    }

    #[test]
    fn nested_repetitions_are_bounded_by_the_combinations_they_offer() {
        assert!(ok(r#"root ::= ("a"{0,20}){0,20} ("b"{0,50} "c"{0,50}){2}"#));
        assert!(ok(r#"root ::= ("a"+ | "b"*)+ ("x"{3}){5}"#));
        for bomb in [r#"root ::= (("a"{0,50}){0,50}){0,50}"#, r#"root ::= ("x" | ("a"{0,40})?){1,40}"#] {
            assert!(refusal(bomb).contains("combinations of counts"), "{bomb}");
        }
    }

    #[test]
    fn in_written_grammars_repetitions_of_rules_multiply_theirs_and_recursion_does_not() {
        let written = |g: &str| check(g, &Limits::written());
        assert!(written("root ::= a{0,30}\na ::= b{0,30}\nb ::= \"x\"").is_ok());
        let message = written("root ::= a{0,40}\na ::= b{0,40}\nb ::= \"x\"").unwrap_err().to_string();
        assert!(message.contains("rule `root`: nested repetitions offer more than 1024"), "{message}");
        let bomb = "root ::= x{0,2000}\nx ::= y{0,2000}\ny ::= \"a\"{0,2000}";
        assert!(written(bomb).unwrap_err().to_string().contains("combinations"));
        // A converted schema's array of strings: delimited, checked rule by rule.
        assert!(ok("root ::= item{0,20}\nitem ::= \"\\\"\" [a-z]{0,300} \"\\\"\""));
        let json = "root ::= value\nvalue ::= array | object | [0-9]{1,16}\n\
                    array ::= \"[\" (value (\",\" value)*)? \"]\"\n\
                    object ::= \"{\" (pair (\",\" pair)*)? \"}\"\npair ::= [a-z]{1,20} \":\" value";
        assert!(written(json).is_ok());
    }

    #[test]
    fn size_and_syntax_errors_say_where() {
        let big = format!("root ::= \"{}\"", "a".repeat(70_000));
        assert!(refusal(&big).contains("at most 65536"));
        assert!(refusal("root ::= (\"a\"").contains("expecting `)`"));
        assert!(refusal("root := \"a\"").contains("expecting `::=`"));
        assert!(refusal("root ::= *").contains("nothing before it"));
        assert!(refusal("root ::= \"a").contains("unexpected end"));
        assert!(refusal("").contains("no rules"));
        assert!(refusal("root ::= \"\\q\"").contains("unknown escape"));
    }
}
