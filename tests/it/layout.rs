//! The source's dependency arrows: layers point one way (api -> spec -> pipeline ->
//! engine/state/tools, never back), and the pipeline's own modules form no circle.
//! Read from the source text (`use` paths and `crate::`/`super::` mentions), outside
//! test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The file's text before its test module.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("#[cfg(test)]").next().unwrap().to_string()
}

/// The paths a mention names: `a::b::{c, d::e}` is `a::b::c` and `a::b::d::e`.
fn expand(mention: &str) -> Vec<String> {
    let head: String = mention.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    let rest = &mention[head.len()..];
    let head = head.trim_end_matches(':');
    if !rest.starts_with('{') {
        return vec![head.to_string()];
    }
    let mut depth = 0;
    let end = rest
        .char_indices()
        .find(|&(_, c)| {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            depth == 0
        })
        .map_or(rest.len(), |(i, _)| i);
    let mut out = Vec::new();
    let (mut item, mut nested) = (String::new(), 0);
    for c in rest[1..end].chars().chain([',']) {
        match c {
            '{' | '}' => {
                nested += if c == '{' { 1 } else { -1 };
                item.push(c);
            }
            ',' if nested == 0 => {
                let item = std::mem::take(&mut item);
                let item = item.trim();
                if !item.is_empty() {
                    let joined = if head.is_empty() { item.to_string() } else { format!("{head}::{item}") };
                    out.extend(expand(&joined));
                }
            }
            _ => item.push(c),
        }
    }
    out
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn lower_layers_never_reach_up() {
    let lower = ["engine", "state", "tools", "models", "media", "git.rs"];
    for layer in lower {
        let path = src().join(layer);
        for file in if path.is_file() { vec![path] } else { sources(&path) } {
            let text = code(&file);
            for upper in ["crate::api", "crate::spec", "crate::pipeline", "crate::cli", "crate::eval", "crate::app"] {
                assert!(!text.contains(upper), "{} mentions {upper}", file.display());
            }
        }
    }
    for file in sources(&src().join("pipeline")) {
        let text = code(&file);
        for upper in ["crate::api", "crate::spec", "crate::cli"] {
            assert!(!text.contains(upper), "{} reaches up to {upper}", file.display());
        }
    }
    for file in sources(&src().join("spec")) {
        let text = code(&file);
        for upper in ["crate::api", "crate::cli", "crate::app", "crate::eval"] {
            assert!(!text.contains(upper), "{} reaches up to {upper}", file.display());
        }
    }
}

/// The pipeline module a file is (`stages::code`, `run`, ...), `None` for the facade.
fn module_of(file: &Path, root: &Path) -> Option<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [one] if one == "mod" => None,
        [dir, last] if last == "mod" => Some(dir.clone()),
        _ => Some(parts.join("::")),
    }
}

#[test]
fn the_pipelines_modules_form_no_circle() {
    let root = src().join("pipeline");
    let files = sources(&root);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f, &root)).collect();
    // A mention of `pipeline::a::b` or `super::a` (from a top-level file) names the module
    // `a::b` when that exists, else `a`.
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(me) = module_of(file, &root) else { continue };
        let text = code(file);
        let top_level = !me.contains("::") && !file.ends_with("mod.rs");
        let mut mentions: Vec<String> = Vec::new();
        for (i, _) in text.match_indices("crate::pipeline::") {
            mentions.push(text[i + "crate::pipeline::".len()..].to_string());
        }
        if top_level {
            for (i, _) in text.match_indices("super::") {
                mentions.push(text[i + "super::".len()..].to_string());
            }
        }
        for path in mentions.iter().flat_map(|m| expand(m)) {
            if let Some(target) = resolve(&path) {
                // A module reaching into its own children, or a stage into another, is fine.
                if target != me && !target.starts_with(&format!("{me}::")) && !me.starts_with(&format!("{target}::")) {
                    edges.entry(me.clone()).or_default().insert(target);
                }
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in &modules {
        if let Some(circle) = visit(module, &edges, &mut Vec::new(), &mut done) {
            panic!("an import circle: {}", circle.join(" -> "));
        }
    }
    // The check sees the arrows that matter.
    assert!(edges["runner"].contains("run") && edges["stages::code"].contains("evidence"), "{edges:?}");
}
