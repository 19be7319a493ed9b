//! A GGUF's `tokenizer.chat_template` rendered as Hugging Face renders it: Jinja with
//! `trim_blocks` and `lstrip_blocks`, Python's string and dict methods, a `tojson` that
//! writes what Python's `json.dumps` writes, `raise_exception` and `strftime_now`.

use minijinja::value::{Kwargs, Serde, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde_json::json;

use crate::engine::request::{ChatMessage, ToolSpec};

/// Instructions a template may run for one rendering: enough for a thousand-message chat
/// with tools, and an end to a template that loops without one.
const FUEL: u64 = 50_000_000;

pub struct Jinja {
    env: Environment<'static>,
    bos: String,
    eos: String,
    source: String,
}

impl Jinja {
    pub fn new(source: String, bos: String, eos: String) -> Result<Jinja, String> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.set_fuel(Some(FUEL));
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function("raise_exception", |message: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_function("strftime_now", |format: String| strftime(&format, now_utc()));
        env.add_template_owned("chat", source.clone()).map_err(|e| format!("the chat template does not parse: {e}"))?;
        Ok(Jinja { env, bos, eos, source })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
        add_generation_prompt: bool,
    ) -> Result<String, String> {
        let messages: Vec<serde_json::Value> = messages.iter().map(message_value).collect();
        let tools: Option<Vec<serde_json::Value>> = (!tools.is_empty()).then(|| tools.iter().map(tool_value).collect());
        let template = self.env.get_template("chat").map_err(|e| e.to_string())?;
        let ctx = minijinja::context! {
            messages => Value::from(Serde(messages)),
            tools => Value::from(Serde(tools)),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos.clone(),
            eos_token => self.eos.clone(),
        };
        template.render(ctx).map_err(|e| {
            let mut text = e.to_string();
            if let Some(detail) = e.detail() {
                text = format!("{text}: {detail}");
            }
            text
        })
    }
}

/// A message as Hugging Face's chat format has it: tool-call arguments as objects, since
/// templates write them with `tojson`.
fn message_value(m: &ChatMessage) -> serde_json::Value {
    let mut v = json!({"role": m.role, "content": m.content});
    if !m.tool_calls.is_empty() {
        let calls: Vec<serde_json::Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                let arguments = serde_json::from_str::<serde_json::Value>(&c.arguments)
                    .unwrap_or_else(|_| serde_json::Value::String(c.arguments.clone()));
                json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": arguments}})
            })
            .collect();
        v["tool_calls"] = json!(calls);
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    if let Some(name) = &m.name {
        v["name"] = json!(name);
    }
    v
}

fn tool_value(t: &ToolSpec) -> serde_json::Value {
    let mut function = json!({"name": t.name});
    if let Some(d) = &t.description {
        function["description"] = json!(d);
    }
    function["parameters"] = t.parameters.clone();
    json!({"type": "function", "function": function})
}

/// Python's `json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=...)`, which
/// transformers puts behind `tojson`: `", "` and `": "` between items, no HTML escaping.
fn tojson(value: Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent.or(kwargs.get::<Option<Value>>("indent")?) {
        Some(v) if v.is_none() => None,
        Some(v) => Some(usize::try_from(v)?),
        None => None,
    };
    let sort_keys = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    let _ = kwargs.get::<Option<bool>>("ensure_ascii")?;
    let _ = kwargs.get::<Option<Value>>("separators")?;
    kwargs.assert_all_used()?;
    let value = serde_json::to_value(&value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("cannot serialize to JSON: {e}")))?;
    let mut out = String::new();
    write_python_json(&value, indent, sort_keys, 0, &mut out);
    Ok(Value::from_safe_string(out))
}

fn write_python_json(v: &serde_json::Value, indent: Option<usize>, sort: bool, level: usize, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        serde_json::Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_python_json(item, indent, sort, level + 1, out);
            }
            newline(out, level);
            out.push(']');
        }
        serde_json::Value::Object(map) if !map.is_empty() => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            if sort {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_python_json(item, indent, sort, level + 1, out);
            }
            newline(out, level);
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Seconds since the epoch, split into a civil date and time (UTC).
pub(crate) fn now_utc() -> (i64, u32, u32, u32, u32, u32) {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The `strftime` directives chat templates use (Llama 3's "%d %b %Y" among them).
fn strftime(format: &str, (year, month, day, hour, minute, second): (i64, u32, u32, u32, u32, u32)) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let name = MONTHS[(month as usize).clamp(1, 12) - 1];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('B') => out.push_str(name),
            Some('b') => out.push_str(&name[..3]),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('M') => out.push_str(&format!("{minute:02}")),
            Some('S') => out.push_str(&format!("{second:02}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_writes_what_python_writes() {
        let v = json!({"b": [1, 2.5, "é<>"], "a": {}, "c": [], "d": null, "e": "x\"\n"});
        let mut out = String::new();
        write_python_json(&v, None, false, 0, &mut out);
        assert_eq!(out, r#"{"b": [1, 2.5, "é<>"], "a": {}, "c": [], "d": null, "e": "x\"\n"}"#);
        let mut out = String::new();
        write_python_json(&json!({"a": [1, {"b": 2}]}), Some(2), true, 0, &mut out);
        assert_eq!(out, "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ]\n}");
    }

    #[test]
    fn strftime_formats_the_directives_templates_use() {
        assert_eq!(strftime("%d %b %Y", (2026, 12, 3, 9, 5, 1)), "03 Dec 2026");
        assert_eq!(strftime("%B %m %H:%M:%S %%", (2026, 7, 1, 9, 5, 1)), "July 07 09:05:01 %");
        let (year, month, day, ..) = now_utc();
        assert!(year >= 2026 && (1..=12).contains(&month) && (1..=31).contains(&day));
    }

    #[test]
    fn a_template_that_never_ends_runs_out_of_fuel() {
        let jinja = Jinja::new(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}".into(),
            String::new(),
            String::new(),
        )
        .unwrap();
        assert!(jinja.render(&[], &[], true).is_err());
    }

    #[test]
    fn raise_exception_fails_the_rendering_with_its_message() {
        let jinja = Jinja::new("{{ raise_exception('no system role') }}".into(), String::new(), String::new()).unwrap();
        assert!(jinja.render(&[], &[], true).unwrap_err().contains("no system role"));
    }
}
