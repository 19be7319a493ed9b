//! A JSON schema checker that runs before llama.cpp's schema-to-grammar converter.
//!
//! The converter turns `minItems`/`maxItems`, `minLength`/`maxLength` and their kin into
//! grammar repetitions without checking them (`minItems` 5 with `maxItems` 2 became the
//! `{4,1}` that exhausted memory), recurses once per nesting level, and parses `pattern`
//! regexes recursively. The derived grammar is checked again by `grammar::check`.

use std::collections::HashSet;

use serde_json::Value;

use super::{Limits, Refusal};

/// Keywords that become repetition counts, with the keyword that must not be below them.
const BOUNDS: [(&str, &str); 4] = [
    ("minItems", "maxItems"),
    ("minLength", "maxLength"),
    ("minProperties", "maxProperties"),
    ("minContains", "maxContains"),
];

const MAX_PATTERN_BYTES: usize = 1024;

/// Checks `schema` against `limits`; the refusal names the keyword and where it is.
pub fn check(schema: &Value, limits: &Limits) -> Result<(), Refusal> {
    let mut nodes = 0usize;
    walk(schema, "#", 0, limits, &mut nodes)?;
    follow(schema, schema, 0, limits, &mut HashSet::new())
}

/// The converter's path through `value`: its nesting, and each `$ref`'s target where the
/// reference is first met (later ones name the rule made then). A chain of 4,000 `$ref`s
/// overflowed the converting thread's stack and took the process down.
fn follow<'a>(
    root: &'a Value,
    value: &'a Value,
    depth: usize,
    limits: &Limits,
    met: &mut HashSet<&'a str>,
) -> Result<(), Refusal> {
    if depth > limits.schema_ref_depth {
        return Err(Refusal::new(format!(
            "the schema is nested deeper than {} levels counting the $refs followed",
            limits.schema_ref_depth
        )));
    }
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                let target = reference.strip_prefix('#').and_then(|pointer| root.pointer(pointer));
                if let Some(target) = target.filter(|_| met.insert(reference)) {
                    follow(root, target, depth + 1, limits, met)?;
                }
            }
            // Definitions are visited where they are referenced.
            let children = object.iter().filter(|(key, _)| !matches!(key.as_str(), "$defs" | "definitions"));
            for (_, child) in children {
                follow(root, child, depth + 1, limits, met)?;
            }
        }
        Value::Array(items) => {
            for child in items {
                follow(root, child, depth + 1, limits, met)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn walk(value: &Value, at: &str, depth: usize, limits: &Limits, nodes: &mut usize) -> Result<(), Refusal> {
    *nodes += 1;
    if *nodes > limits.schema_nodes {
        return Err(Refusal::new(format!("the schema has more than {} values", limits.schema_nodes)));
    }
    if depth > limits.schema_depth {
        return Err(Refusal::new(format!("the schema is nested deeper than {} levels (at {at})", limits.schema_depth)));
    }
    match value {
        Value::Object(object) => {
            keywords(object, at, limits)?;
            for (key, child) in object {
                walk(child, &format!("{at}/{key}"), depth + 1, limits, nodes)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{at}/{i}"), depth + 1, limits, nodes)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn keywords(object: &serde_json::Map<String, Value>, at: &str, limits: &Limits) -> Result<(), Refusal> {
    let count = |key: &str| -> Result<Option<u64>, Refusal> {
        let Some(value) = object.get(key) else { return Ok(None) };
        // Only a schema's own keyword: a property named `minItems` is an object.
        if value.is_object() {
            return Ok(None);
        }
        let n = value
            .as_u64()
            .or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
            .ok_or_else(|| Refusal::new(format!("{at}/{key} must be a non-negative integer, not {value}")))?;
        if n > limits.grammar_repeat {
            return Err(Refusal::new(format!("{at}/{key} is {n}; at most {} is allowed", limits.grammar_repeat)));
        }
        Ok(Some(n))
    };
    for (min_key, max_key) in BOUNDS {
        if let (Some(min), Some(max)) = (count(min_key)?, count(max_key)?) {
            if min > max {
                return Err(Refusal::new(format!("{at}: {min_key} ({min}) is greater than {max_key} ({max})")));
            }
        }
    }
    if let Some(Value::Array(prefix)) = object.get("prefixItems") {
        if prefix.len() as u64 > limits.grammar_repeat {
            return Err(Refusal::new(format!("{at}/prefixItems has more than {} items", limits.grammar_repeat)));
        }
    }
    if let Some(Value::String(pattern)) = object.get("pattern") {
        check_pattern(pattern, at, limits)?;
    }
    if let Some(Value::String(reference)) = object.get("$ref") {
        if !reference.starts_with('#') {
            return Err(Refusal::new(format!(
                "{at}/$ref `{reference}`: only references inside the schema (#/...) are supported"
            )));
        }
    }
    Ok(())
}

/// Patterns are regexes that the converter parses recursively and unrolls: bounded in
/// size, group nesting and the combinations of counts that nested repetitions offer, as
/// `grammar::check` bounds them in a grammar (the unrolled grammar is checked again
/// afterwards).
fn check_pattern(pattern: &str, at: &str, limits: &Limits) -> Result<(), Refusal> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(Refusal::new(format!("{at}/pattern has more than {MAX_PATTERN_BYTES} bytes")));
    }
    // Per open group, the most combinations an item in it offers; `last`, the last item's.
    let (mut groups, mut last) = (vec![1u64], 1u64);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let offered = match c {
            '\\' => {
                chars.next();
                last = 1;
                None
            }
            '[' => {
                // A class is one item; `]` first in it is a character.
                let mut first = true;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        ']' if !first => break,
                        '^' if first => continue,
                        _ => {}
                    }
                    first = false;
                }
                last = 1;
                None
            }
            '(' => {
                groups.push(1);
                if groups.len() > limits.grammar_depth + 1 {
                    return Err(Refusal::new(format!(
                        "{at}/pattern nests groups deeper than {}",
                        limits.grammar_depth
                    )));
                }
                continue;
            }
            ')' => {
                last = if groups.len() > 1 { groups.pop().unwrap_or(1) } else { 1 };
                None
            }
            '*' | '+' | '?' => Some(2),
            '{' => {
                let spec: String = chars.by_ref().take_while(|&c| c != '}').collect();
                Some(counts_offered(&spec))
            }
            _ => {
                last = 1;
                None
            }
        };
        if let Some(offered) = offered {
            last = last.saturating_mul(offered);
            if last > limits.grammar_choices {
                return Err(Refusal::new(format!(
                    "{at}/pattern: nested repetitions offer more than {} combinations of counts",
                    limits.grammar_choices
                )));
            }
        }
        if let Some(most) = groups.last_mut() {
            *most = (*most).max(last);
        }
    }
    Ok(())
}

/// The counts a regex's `{m}`, `{m,}` or `{m,n}` offers (`{m,}` as `*` does).
fn counts_offered(spec: &str) -> u64 {
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match spec.split_once(',') {
        None => 1,
        Some((min, max)) => match (number(min), number(max)) {
            (Some(min), Some(max)) => max.saturating_sub(min).saturating_add(1),
            _ => 2,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refusal(schema: Value) -> String {
        check(&schema, &Limits::default()).unwrap_err().to_string()
    }

    #[test]
    fn ordinary_schemas_pass() {
        let schema = json!({
            "type": "object",
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "maxLength": 200}, "minItems": 1, "maxItems": 8},
                "minItems": {"type": "integer"},
                "name": {"type": "string", "pattern": "^[a-z]+(_[a-z]+)*$"},
                "next": {"$ref": "#/$defs/node"},
            },
            "required": ["files"],
        });
        assert_eq!(check(&schema, &Limits::default()), Ok(()));
    }

    #[test]
    fn bounds_must_be_ordered_and_small() {
        let message = refusal(json!({"type": "array", "minItems": 5, "maxItems": 2}));
        assert!(message.contains("minItems (5) is greater than maxItems (2)"), "{message}");
        let message = refusal(json!({"properties": {"s": {"type": "string", "minLength": 9, "maxLength": 3}}}));
        assert!(message.contains("#/properties/s: minLength"), "{message}");
        assert!(refusal(json!({"type": "array", "maxItems": 1_000_000_000u64})).contains("at most 2000"));
        assert!(refusal(json!({"type": "array", "minItems": -1})).contains("non-negative integer"));
    }

    #[test]
    fn depth_size_patterns_and_references_are_bounded() {
        let mut deep = json!({"type": "string"});
        for _ in 0..100 {
            deep = json!({"type": "array", "items": deep});
        }
        assert!(refusal(deep).contains("nested deeper than 32"));
        let wide: serde_json::Map<String, Value> =
            (0..6000).map(|i| (format!("p{i}"), json!({"type": "string"}))).collect();
        assert!(refusal(json!({"properties": wide})).contains("more than 10000 values"));
        let pattern = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(refusal(json!({"type": "string", "pattern": pattern})).contains("deeper than 64"));
        assert!(refusal(json!({"$ref": "https://example.com/s.json"})).contains("only references inside"));
    }

    fn chain(n: usize) -> Value {
        let mut defs: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("d{i}"), json!({"$ref": format!("#/$defs/d{}", i + 1)}))).collect();
        defs.insert(format!("d{n}"), json!({"type": "string"}));
        json!({"$defs": defs, "$ref": "#/$defs/d0"})
    }

    #[test]
    fn reference_chains_are_bounded_and_recursion_is_not() {
        assert_eq!(check(&chain(40), &Limits::default()), Ok(()));
        assert!(refusal(chain(4000)).contains("deeper than 128 levels counting the $refs"));
        let tree = json!({
            "$defs": {"node": {"type": "object", "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            }}},
            "$ref": "#/$defs/node",
        });
        assert_eq!(check(&tree, &Limits::default()), Ok(()));
    }

    #[test]
    fn nested_counted_repetitions_in_patterns_are_bounded() {
        let pattern = |p: &str| json!({"type": "string", "pattern": p});
        for fine in ["^(a{0,20}){0,20}$", "^[a-z]+(_[a-z]+)*$", "^\\d{3}-\\d{4}$", "^[{}()]{0,9}$", "^(a+)+$"] {
            assert_eq!(check(&pattern(fine), &Limits::default()), Ok(()), "{fine}");
        }
        for bomb in ["^((a{0,50}){0,50}){0,50}$", "^(a{1,1000}){1,1000}$", "^((((((((((a?)?)?)?)?)?)?)?)?)?)?$"] {
            assert!(refusal(pattern(bomb)).contains("combinations of counts"), "{bomb}");
        }
    }
}
