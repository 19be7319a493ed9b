//! A JSON schema checker that runs before llama.cpp's schema-to-grammar converter.
//!
//! The converter turns `minItems`/`maxItems`, `minLength`/`maxLength` and their kin into
//! grammar repetitions without checking them (`minItems` 5 with `maxItems` 2 became the
//! `{4,1}` that exhausted memory), recurses once per nesting level, and parses `pattern`
//! regexes recursively. The derived grammar is checked again by `grammar::check`.

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
    walk(schema, "#", 0, limits, &mut nodes)
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
/// size, group nesting and counts (the unrolled grammar is checked again afterwards).
fn check_pattern(pattern: &str, at: &str, limits: &Limits) -> Result<(), Refusal> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(Refusal::new(format!("{at}/pattern has more than {MAX_PATTERN_BYTES} bytes")));
    }
    let (mut depth, mut escaped) = (0usize, false);
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '(' => {
                depth += 1;
                if depth > limits.grammar_depth {
                    return Err(Refusal::new(format!(
                        "{at}/pattern nests groups deeper than {}",
                        limits.grammar_depth
                    )));
                }
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
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
}
