//! The codebase tools on a generated repository of 10,000 files (Rust, Python, TypeScript,
//! Go and Markdown in 100 directories, committed with git, then 20 files changed): the
//! time of one call of each tool but run_tests. The bar is well under a second each.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use quorum::tools::{Tools, Workspace};
use serde_json::json;
use tokio::runtime::Runtime;

const FILES: usize = 10_000;

fn source(ext: &str, n: usize) -> String {
    let mut s = String::new();
    for f in 0..8 {
        let name = format!("func_{n}_{f}");
        // About one file in a hundred calls the shared helper.
        let call = if n.is_multiple_of(100) && f == 0 { "shared_helper()" } else { "0" };
        match ext {
            "rs" => writeln!(
                s,
                "/// Doc for {name}.\npub fn {name}(x: u32) -> u32 {{\n    let y = x + {f};\n    y * {call}\n}}\n"
            ),
            "py" => writeln!(
                s,
                "def {name}(x):\n    \"\"\"Doc for {name}.\"\"\"\n    y = x + {f}\n    return y * {call}\n\n"
            ),
            "ts" => writeln!(
                s,
                "export function {name}(x: number): number {{\n  const y = x + {f};\n  return y * {call};\n}}\n"
            ),
            "go" => writeln!(s, "func {name}(x int) int {{\n\ty := x + {f}\n\treturn y * {call}\n}}\n"),
            _ => writeln!(s, "## {name}\n\nThis section documents {name} and how it relates to module {n}.\n"),
        }
        .unwrap();
    }
    if ext == "go" {
        s.insert_str(0, "package gen\n\n");
    }
    s
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "git {args:?} failed");
}

fn generate(root: &Path) {
    let exts = ["rs", "py", "ts", "go", "md"];
    for n in 0..FILES {
        let ext = exts[n % exts.len()];
        let dir = root.join(format!("pkg{:02}/mod{}", n % 100, n % 7));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("file{n}.{ext}")), source(ext, n)).unwrap();
    }
    std::fs::write(root.join("lib.rs"), "pub fn shared_helper() -> u32 {\n    1\n}\n").unwrap();
    std::fs::write(root.join("Cargo.toml"), "[package]\nname = \"gen\"\nversion = \"0.1.0\"\n").unwrap();
    std::fs::write(root.join(".gitignore"), "target/\n").unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "."]);
    git(root, &["commit", "-qm", "generated"]);
    for n in (0..FILES).step_by(FILES / 20) {
        let ext = exts[n % exts.len()];
        let path = root.join(format!("pkg{:02}/mod{}/file{n}.{ext}", n % 100, n % 7));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(path, text.replace("+ 1", "+ 100")).unwrap();
    }
}

fn tools(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    eprintln!("generating {FILES} files and committing them...");
    generate(dir.path());
    let tools = Tools::new(Workspace::new(dir.path()).unwrap());
    let rt = Runtime::new().unwrap();
    let calls = [
        ("read_file", json!({"path": "pkg42/mod0/file42.ts"})),
        ("analyze_codebase", json!({})),
        ("search_docs (50 hits, stops early)", json!({"query": "doc for"})),
        ("search_docs (rare, every file read)", json!({"query": "func_9999_7", "context": 2})),
        (
            "search_docs (regex, every file read)",
            json!({"query": r"func_\d+_7\(x: u32\)", "regex": true, "max_results": 1000}),
        ),
        ("find_references", json!({"symbol": "shared_helper"})),
        ("git_diff", json!({})),
    ];
    let mut group = c.benchmark_group("tools/10k-files");
    for (label, args) in calls {
        let name = label.split(' ').next().unwrap();
        // Check once that the call does what it is timed for.
        let out = rt.block_on(tools.call(name, args.clone())).unwrap_or_else(|e| panic!("{label}: {e}"));
        match name {
            "analyze_codebase" => {
                assert_eq!(out["files"], FILES as u64 + 2, "lib.rs and Cargo.toml; hidden .gitignore skipped")
            }
            "find_references" => assert_eq!(out["references"].as_array().unwrap().len(), FILES / 100),
            "git_diff" => assert_eq!(out["files"].as_array().unwrap().len(), 20),
            _ => {}
        }
        group.bench_function(label, |b| b.iter(|| rt.block_on(tools.call(name, args.clone())).unwrap()));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = tools
}
criterion_main!(benches);
