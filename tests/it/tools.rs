//! The codebase tools on a fixture repository (real files, real git, real pytest): what
//! each tool returns, every escape refused, and the REST routes. The MCP transports are
//! tested with the official MCP Python SDK in `tests/python/test_mcp.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

use quorum::api::{self, AppState};
use quorum::tools::{run_tests, TestCommand, ToolError, Tools, Workspace};
use serde_json::{json, Value};

use super::support::{smollm_config, temp_tasks};

const LIB_RS: &str = "//! The library.\n\n/// Parses the config.\npub fn parse_config(text: &str) -> Config {\n    Config { verbose: text.contains(\"verbose\") }\n}\n\npub struct Config {\n    pub verbose: bool,\n}\n\nimpl Config {\n    pub fn load() -> Config {\n        parse_config(\"\")\n    }\n}\n\npub enum Mode {\n    Fast,\n    Slow,\n}\n\npub trait Greeter {\n    fn greet(&self) -> String;\n}\n";
const MAIN_RS: &str = "fn main() {\n    // parse_config is called here, in a comment\n    let c = fixture::parse_config(\"verbose\");\n    println!(\"{}\", c.verbose);\n}\n";
const SERVICE_PY: &str = "import os\n\n\ndef parse_config(text):\n    \"\"\"parse_config in a docstring\"\"\"\n    return {\"verbose\": \"verbose\" in text}\n\n\nclass Service:\n    def run(self):\n        return parse_config(os.environ.get(\"X\", \"\"))\n\n    @staticmethod\n    def stop():\n        pass\n";
const INDEX_TS: &str = "export interface Props {\n  title: string;\n}\n\nexport class Widget {\n  render(props: Props): string {\n    return props.title;\n  }\n}\n\nexport const helper = () => new Widget();\n\nexport function parseConfig(text: string): boolean {\n  return text.length > 0;\n}\n";
const MAIN_GO: &str = "package main\n\ntype Server struct {\n\tPort int\n}\n\nfunc (s *Server) Start() error {\n\treturn nil\n}\n\nfunc main() {\n\ts := &Server{Port: 8080}\n\t_ = s.Start()\n}\n";
const TEST_PY: &str = "from app.service import parse_config\n\n\ndef test_verbose():\n    assert parse_config(\"verbose\")[\"verbose\"]\n\n\ndef test_quiet():\n    assert not parse_config(\"\")[\"verbose\"]\n\n\ndef test_broken():\n    assert parse_config(\"\")[\"verbose\"], \"deliberately failing\"\n";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git is installed (scripts/setup.sh)");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A small polyglot repository with two commits, a staged change, an unstaged change, an
/// untracked file, ignored files, a binary file and symlinks that point out of it.
pub fn fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let files: &[(&str, &str)] = &[
        ("Cargo.toml", "[package]\nname = \"fixture\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
        ("src/lib.rs", LIB_RS),
        ("src/main.rs", MAIN_RS),
        ("app/__init__.py", ""),
        ("conftest.py", "# Puts the repository root on sys.path for the tests.\n"),
        ("app/service.py", SERVICE_PY),
        ("web/index.ts", INDEX_TS),
        ("cmd/server/main.go", MAIN_GO),
        ("tests/test_app.py", TEST_PY),
        ("README.md", "# Fixture\n\nCall parse_config to read the config.\nSee also: Widget.\n"),
        (".gitignore", "ignored/\n*.log\n"),
        ("ignored/secret.txt", "parse_config secret\n"),
        ("debug.log", "parse_config in a log\n"),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(root.join("data.bin"), b"parse_config\0\x01\x02binary").unwrap();
    git(&root, &["init", "-q"]);
    git(&root, &["add", "."]);
    git(&root, &["commit", "-qm", "first"]);
    std::fs::write(
        root.join("README.md"),
        "# Fixture\n\nCall parse_config to read the config.\nSee also: Widget.\nMore.\n",
    )
    .unwrap();
    git(&root, &["commit", "-qam", "second"]);
    // Staged, unstaged, untracked.
    std::fs::write(root.join("src/main.rs"), MAIN_RS.replace("println!", "eprintln!")).unwrap();
    git(&root, &["add", "src/main.rs"]);
    std::fs::write(root.join("app/service.py"), SERVICE_PY.replace("pass", "return None")).unwrap();
    std::fs::write(root.join("notes.txt"), "untracked\n").unwrap();
    std::os::unix::fs::symlink("/etc", root.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("hostname-link")).unwrap();
    std::os::unix::fs::symlink("src/lib.rs", root.join("lib-link.rs")).unwrap();
    (dir, root)
}

fn tools(root: &Path) -> Tools {
    Tools::new(Workspace::new(root).unwrap())
}

async fn call(tools: &Tools, name: &str, args: Value) -> Value {
    tools.call(name, args).await.unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn refused(tools: &Tools, name: &str, args: Value) -> String {
    match tools.call(name, args.clone()).await {
        Err(ToolError::Refused(message)) => message,
        other => panic!("{name} {args}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn the_registry_publishes_six_tools_with_schemas() {
    let (_dir, root) = fixture();
    let list = tools(&root).list();
    let names: Vec<_> = list.iter().map(|t| t.name).collect();
    assert_eq!(names, ["read_file", "analyze_codebase", "search_docs", "find_references", "git_diff", "run_tests"]);
    for tool in &list {
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
        assert!(tool.description.len() > 40, "{}", tool.name);
    }
    let read = &list[0].input_schema;
    assert_eq!(read["required"], json!(["path"]));
    assert_eq!(read["properties"]["start_line"]["type"], json!(["integer", "null"]));
    let run = &list[5].input_schema;
    assert_eq!(
        run["properties"]["command"]["enum"],
        json!(["cargo test", "pytest", "npm test", "go test", null]),
        "{run}"
    );
}

#[tokio::test]
async fn read_file_reads_ranges_and_caps_output() {
    let (_dir, root) = fixture();
    let t = tools(&root);
    let whole = call(&t, "read_file", json!({"path": "src/lib.rs"})).await;
    assert_eq!(whole["content"], LIB_RS);
    assert_eq!(whole["total_lines"], LIB_RS.lines().count());
    assert_eq!(whole["truncated"], false);

    let range = call(&t, "read_file", json!({"path": "src/lib.rs", "start_line": 4, "end_line": 6})).await;
    let expected: Vec<&str> = LIB_RS.lines().skip(3).take(3).collect();
    assert_eq!(range["content"], format!("{}\n", expected.join("\n")));
    assert_eq!((range["start_line"].as_u64(), range["end_line"].as_u64()), (Some(4), Some(6)));

    let capped = call(&t, "read_file", json!({"path": "src/lib.rs", "max_bytes": 60})).await;
    assert_eq!(capped["truncated"], true);
    assert!(capped["content"].as_str().unwrap().len() <= 60);
    let note = capped["note"].as_str().unwrap();
    assert!(note.contains("truncated after line") && note.contains("start_line ="), "{note}");

    let beyond = call(&t, "read_file", json!({"path": "src/lib.rs", "start_line": 500})).await;
    assert_eq!(beyond["content"], "");
    assert!(beyond["note"].as_str().unwrap().contains("only"));

    // An absolute path inside the workspace and a symlink that stays inside are fine.
    let abs = call(&t, "read_file", json!({"path": root.join("README.md").display().to_string()})).await;
    assert_eq!(abs["path"], "README.md");
    assert_eq!(call(&t, "read_file", json!({"path": "lib-link.rs"})).await["content"], LIB_RS);

    assert!(refused(&t, "read_file", json!({"path": "data.bin"})).await.contains("binary"));
    assert!(
        matches!(t.call("read_file", json!({"path": "src"})).await, Err(ToolError::InvalidArguments(m)) if m.contains("directory"))
    );
    assert!(matches!(t.call("read_file", json!({"path": "nope.rs"})).await, Err(ToolError::NotFound(_))));
    assert!(matches!(
        t.call("read_file", json!({"path": "src/lib.rs", "start_line": 0})).await,
        Err(ToolError::InvalidArguments(_))
    ));
    assert!(
        matches!(t.call("read_file", json!({"file": "src/lib.rs"})).await, Err(ToolError::InvalidArguments(m)) if m.contains("unknown field"))
    );
    assert!(matches!(t.call("write_file", json!({})).await, Err(ToolError::UnknownTool(_))));
}

#[tokio::test]
async fn every_escape_from_the_workspace_is_refused() {
    let (dir, root) = fixture();
    std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
    let t = tools(&root);
    for path in [
        "../outside.txt",
        "src/../../outside.txt",
        "/etc/hostname",
        "escape/hostname",
        "hostname-link",
        ".git/config",
        "src/../.git/HEAD",
        "../repo/.git/config",
    ] {
        let message = refused(&t, "read_file", json!({"path": path})).await;
        assert!(message.contains(path) || message.contains("NUL"), "{path}: {message}");
    }
    assert!(refused(&t, "read_file", json!({"path": "src/lib.rs\0"})).await.contains("NUL"));
    // The same rule holds for every tool that takes a path.
    refused(&t, "search_docs", json!({"query": "x", "path": "../"})).await;
    refused(&t, "search_docs", json!({"query": "x", "path": "escape"})).await;
    refused(&t, "analyze_codebase", json!({"path": "/etc"})).await;
    refused(&t, "find_references", json!({"symbol": "x", "path": "escape"})).await;
    refused(&t, "git_diff", json!({"path": "../outside.txt"})).await;
    refused(&t, "run_tests", json!({"worktree": dir.path().display().to_string()})).await;
    refused(&t, "run_tests", json!({"worktree": "/tmp"})).await;
    // Options smuggled in as revisions or filters, and programs off the allow-list.
    let paths = ["../x", "../../etc/passwd", "refs/../../x", "HEAD..refs/../../x", "./README.md", "/etc/passwd"];
    let paths = paths.map(|p| json!({"from": p}));
    let options = [json!({"from": "--output=/tmp/pwned"}), json!({"from": "HEAD", "to": "-p"}), json!({"from": "a b"})];
    for bad in options.into_iter().chain(paths) {
        assert!(matches!(t.call("git_diff", bad.clone()).await, Err(ToolError::InvalidArguments(_))), "{bad}");
    }
    for bad in [
        json!({"command": "bash"}),
        json!({"command": "sh -c id"}),
        json!({"filter": "--help"}),
        json!({"filter": "-x"}),
    ] {
        assert!(matches!(t.call("run_tests", bad.clone()).await, Err(ToolError::InvalidArguments(_))), "{bad}");
    }
    assert!(!dir.path().join("../pwned").exists() && !Path::new("/tmp/pwned").exists());
}

#[tokio::test]
async fn analyze_codebase_maps_languages_builds_entries_and_symbols() {
    let (_dir, root) = fixture();
    let t = tools(&root);
    let out = call(&t, "analyze_codebase", json!({})).await;
    let tree: Vec<&str> = out["tree"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(tree.contains(&"src/") && tree.contains(&"src/lib.rs") && tree.contains(&"cmd/server/"), "{tree:?}");
    assert!(!tree.contains(&"cmd/server/main.go"), "depth 2 by default: {tree:?}");
    assert!(
        tree.iter().all(|p| !p.starts_with("ignored") && !p.ends_with(".log") && !p.starts_with(".git")),
        "{tree:?}"
    );
    let lang =
        |name: &str| out["languages"].as_array().unwrap().iter().find(|l| l["language"] == name).cloned().unwrap();
    assert_eq!(lang("Rust")["files"], 3, "lib.rs, main.rs and the symlink to lib.rs");
    assert_eq!(lang("Rust")["lines"], (2 * LIB_RS.lines().count() + MAIN_RS.lines().count()) as u64);
    assert_eq!(
        lang("Python")["lines"],
        (SERVICE_PY.lines().count() + TEST_PY.lines().count()) as u64 + 1,
        "with conftest.py"
    );
    assert_eq!(lang("TypeScript")["lines"], INDEX_TS.lines().count());
    assert_eq!(lang("Go")["files"], 1);
    assert_eq!(out["build_files"], json!(["Cargo.toml"]));
    assert_eq!(out["entry_points"], json!(["cmd/server/main.go", "src/lib.rs", "src/main.rs"]));
    assert_eq!(out["test_commands"], json!(["cargo test", "pytest"]));

    let symbols = |out: &Value| -> Vec<(String, String, Option<String>)> {
        out["symbols"][0]["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["kind"].as_str().unwrap().into(),
                    s["name"].as_str().unwrap().into(),
                    s["parent"].as_str().map(Into::into),
                )
            })
            .collect()
    };
    let s = |k: &str, n: &str, p: Option<&str>| (k.to_string(), n.to_string(), p.map(String::from));
    let rust = call(&t, "analyze_codebase", json!({"path": "src/lib.rs"})).await;
    assert_eq!(
        symbols(&rust),
        [
            s("function", "parse_config", None),
            s("struct", "Config", None),
            s("impl", "Config", None),
            s("method", "load", Some("Config")),
            s("enum", "Mode", None),
            s("trait", "Greeter", None),
            s("method", "greet", Some("Greeter")),
        ]
    );
    let python = call(&t, "analyze_codebase", json!({"path": "app/service.py"})).await;
    assert_eq!(
        symbols(&python),
        [
            s("function", "parse_config", None),
            s("class", "Service", None),
            s("method", "run", Some("Service")),
            s("method", "stop", Some("Service"))
        ]
    );
    let ts = call(&t, "analyze_codebase", json!({"path": "web/index.ts"})).await;
    assert_eq!(
        symbols(&ts),
        [
            s("interface", "Props", None),
            s("class", "Widget", None),
            s("method", "render", Some("Widget")),
            s("function", "helper", None),
            s("function", "parseConfig", None),
        ]
    );
    let go = call(&t, "analyze_codebase", json!({"path": "cmd/server/main.go"})).await;
    assert_eq!(symbols(&go), [s("type", "Server", None), s("method", "Start", None), s("function", "main", None)]);
    assert_eq!(go["symbols"][0]["symbols"][1]["line"], 7);
}

#[tokio::test]
async fn search_docs_finds_text_like_ripgrep() {
    let (_dir, root) = fixture();
    let t = tools(&root);
    let out = call(&t, "search_docs", json!({"query": "parse_config", "context": 0})).await;
    let places: Vec<String> = out["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}:{}", m["path"].as_str().unwrap(), m["line"]))
        .collect();
    assert!(places.contains(&"README.md:3".to_string()) && places.contains(&"src/lib.rs:4".to_string()), "{places:?}");
    // .gitignore'd and binary files are skipped.
    assert!(
        places.iter().all(|p| !p.starts_with("ignored/") && !p.starts_with("debug.log") && !p.starts_with("data.bin")),
        "{places:?}"
    );

    let ctx = call(&t, "search_docs", json!({"query": "pub struct Config", "context": 1})).await;
    let hit = &ctx["matches"][0];
    assert_eq!((hit["path"].as_str(), hit["line"].as_u64()), (Some("src/lib.rs"), Some(8)));
    assert_eq!(hit["before"], json!([""]));
    assert_eq!(hit["after"], json!(["    pub verbose: bool,"]));

    let regex = call(&t, "search_docs", json!({"query": r"fn \w+\(&self\)", "regex": true})).await;
    assert_eq!(regex["matches"][0]["text"], "    fn greet(&self) -> String;");
    let smart = call(&t, "search_docs", json!({"query": "widget", "glob": ["*.ts"]})).await;
    assert_eq!(smart["matches"].as_array().unwrap().len(), 2, "smart case: lower-case query ignores case");
    let exact = call(&t, "search_docs", json!({"query": "widget", "case_sensitive": true})).await;
    assert!(exact["matches"].as_array().unwrap().is_empty());
    let excluded = call(&t, "search_docs", json!({"query": "parse_config", "glob": ["!*.py", "!*.md"]})).await;
    assert!(excluded["matches"].as_array().unwrap().iter().all(|m| m["path"].as_str().unwrap().ends_with(".rs")));
    let capped = call(&t, "search_docs", json!({"query": "e", "max_results": 3})).await;
    assert_eq!(capped["matches"].as_array().unwrap().len(), 3);
    assert_eq!(capped["truncated"], true);
    let under = call(&t, "search_docs", json!({"query": "parse_config", "path": "app"})).await;
    assert!(under["matches"].as_array().unwrap().iter().all(|m| m["path"].as_str().unwrap().starts_with("app/")));
    assert!(matches!(
        t.call("search_docs", json!({"query": "(", "regex": true})).await,
        Err(ToolError::InvalidArguments(_))
    ));
}

#[tokio::test]
async fn find_references_tells_definitions_from_uses() {
    let (_dir, root) = fixture();
    let t = tools(&root);
    let out = call(&t, "find_references", json!({"symbol": "parse_config"})).await;
    let places = |key: &str| -> Vec<String> {
        out[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                format!(
                    "{}:{}:{}:{}",
                    l["path"].as_str().unwrap(),
                    l["line"],
                    l["via"].as_str().unwrap(),
                    l["kind"].as_str().unwrap_or("-")
                )
            })
            .collect()
    };
    assert_eq!(places("definitions"), ["app/service.py:4:syntax:function", "src/lib.rs:4:syntax:function"]);
    assert_eq!(
        places("references"),
        [
            "README.md:3:text:-",
            "app/service.py:11:syntax:-",
            "src/lib.rs:14:syntax:-",
            "src/main.rs:3:syntax:-",
            "tests/test_app.py:1:syntax:-",
            "tests/test_app.py:5:syntax:-",
            "tests/test_app.py:9:syntax:-",
            "tests/test_app.py:13:syntax:-",
        ],
        "comments, docstrings, ignored and binary files excluded"
    );
    assert_eq!(out["references"][3]["text"], "    let c = fixture::parse_config(\"verbose\");");
    assert_eq!(out["references"][3]["column"], 22);

    let widget = call(&t, "find_references", json!({"symbol": "Widget", "glob": ["*.ts"]})).await;
    assert_eq!(widget["definitions"][0]["kind"], "class");
    assert_eq!(widget["references"].as_array().unwrap().len(), 1);
    let server = call(&t, "find_references", json!({"symbol": "Server"})).await;
    assert_eq!(server["definitions"][0]["path"], "cmd/server/main.go");
    assert_eq!(server["definitions"][0]["kind"], "type");
    assert_eq!(server["references"].as_array().unwrap().len(), 2, "the receiver and the literal");
    assert!(matches!(t.call("find_references", json!({"symbol": "a b"})).await, Err(ToolError::InvalidArguments(_))));
}

#[tokio::test]
async fn git_diff_shows_working_staged_and_revision_changes() {
    let (_dir, root) = fixture();
    let t = tools(&root);
    let working = call(&t, "git_diff", json!({})).await;
    assert!(working["diff"].as_str().unwrap().contains("+        return None"), "{working}");
    assert_eq!(working["files"], json!([{"path": "app/service.py", "added": 1, "removed": 1}]));
    assert_eq!(working["untracked"], json!(["escape", "hostname-link", "lib-link.rs", "notes.txt"]));
    let staged = call(&t, "git_diff", json!({"mode": "staged"})).await;
    assert!(staged["diff"].as_str().unwrap().contains("+    eprintln!"));
    assert_eq!(staged["files"][0]["path"], "src/main.rs");
    let head = call(&t, "git_diff", json!({"mode": "head"})).await;
    assert_eq!(head["files"].as_array().unwrap().len(), 2);
    let revisions = call(&t, "git_diff", json!({"from": "HEAD~1", "to": "HEAD"})).await;
    assert_eq!(revisions["files"], json!([{"path": "README.md", "added": 1, "removed": 0}]));
    for range in ["HEAD~1..HEAD", "HEAD~1...HEAD", "HEAD^..HEAD"] {
        assert_eq!(call(&t, "git_diff", json!({"from": range})).await["files"], revisions["files"], "{range}");
    }
    let one_path = call(&t, "git_diff", json!({"mode": "head", "path": "src"})).await;
    assert_eq!(one_path["files"].as_array().unwrap().len(), 1);
    let capped = call(&t, "git_diff", json!({"mode": "head", "max_bytes": 50})).await;
    assert_eq!(capped["truncated"], true);
    assert!(matches!(t.call("git_diff", json!({"from": "no-such-branch"})).await, Err(ToolError::NotFound(_))));

    let plain = tempfile::tempdir().unwrap();
    let not_git = tools(plain.path()).call("git_diff", json!({})).await;
    assert!(matches!(not_git, Err(ToolError::Unavailable(m)) if m.contains("not a git repository")));
}

fn require_pytest() {
    let ok = Command::new("python3").args(["-m", "pytest", "--version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "pytest is missing: scripts/test.sh puts the test venv (with pytest) on PATH");
}

#[tokio::test]
async fn run_tests_runs_an_allowed_runner_and_counts() {
    require_pytest();
    let (dir, root) = fixture();
    let t = tools(&root);
    let out = call(&t, "run_tests", json!({"command": "pytest"})).await;
    assert_eq!((out["passed"].as_u64(), out["failed"].as_u64()), (Some(2), Some(1)), "{out}");
    assert_eq!(out["exit_code"], 1);
    assert_eq!(out["success"], false);
    assert_eq!(out["timed_out"], false);
    assert!(out["output_tail"].as_str().unwrap().contains("deliberately failing"));

    let filtered = call(&t, "run_tests", json!({"command": "pytest", "filter": "verbose or quiet"})).await;
    assert_eq!((filtered["passed"].as_u64(), filtered["failed"].as_u64()), (Some(2), Some(0)));
    assert_eq!(filtered["success"], true);

    // A git worktree of the workspace (as the pipeline makes for each candidate).
    let tree = dir.path().join("candidate");
    git(&root, &["worktree", "add", "-q", tree.to_str().unwrap()]);
    std::fs::write(
        tree.join("tests/test_app.py"),
        TEST_PY.replace("assert parse_config(\"\")[\"verbose\"], ", "assert True, "),
    )
    .unwrap();
    let in_tree = call(&t, "run_tests", json!({"command": "pytest", "worktree": tree.display().to_string()})).await;
    assert_eq!((in_tree["passed"].as_u64(), in_tree["failed"].as_u64()), (Some(3), Some(0)), "{in_tree}");

    let tail = call(&t, "run_tests", json!({"command": "pytest", "max_output_bytes": 300})).await;
    assert!(tail["output_tail"].as_str().unwrap().len() <= 300);
    assert_eq!(tail["truncated"], true);
}

#[tokio::test]
async fn a_bare_pytest_run_loads_no_installed_plugin_and_reads_no_addopts() {
    require_pytest();
    let (_dir, root) = fixture();
    // An installed plugin that breaks every run that loads it, and an option only it knows.
    let dist = root.join("boom-1.0.dist-info");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("METADATA"), "Metadata-Version: 2.1\nName: boom\nVersion: 1.0\n").unwrap();
    std::fs::write(dist.join("entry_points.txt"), "[pytest11]\nboom = boom_plugin\n").unwrap();
    std::fs::write(root.join("boom_plugin.py"), "raise RuntimeError('the boom plugin was loaded')\n").unwrap();
    std::fs::write(root.join("pytest.ini"), "[pytest]\naddopts = --boom-only-option\n").unwrap();
    let t = tools(&root);
    let args = |bare| run_tests::Args { command: Some(TestCommand::Pytest), bare, ..Default::default() };
    let full = t.run_tests(args(false)).await.unwrap();
    assert!(!full.success && full.output_tail.contains("boom plugin was loaded"), "{}", full.output_tail);
    let bare = t.run_tests(args(true)).await.unwrap();
    assert_eq!((bare.counts.passed, bare.counts.failed), (Some(2), Some(1)), "{}", bare.output_tail);
}

/// A pytest test that starts a long-lived child and writes its pid to `pid_file`.
fn slow_test(root: &Path, pid_file: &Path) {
    std::fs::write(
        root.join("tests/test_slow.py"),
        format!(
            "import os, subprocess, time\n\ndef test_slow():\n    child = subprocess.Popen(['sleep', '300'])\n    open({:?}, 'w').write(str(child.pid))\n    time.sleep(300)\n",
            pid_file.display().to_string()
        ),
    )
    .unwrap();
}

/// Whether the process is gone, or a zombie waiting for init to reap it.
fn not_running(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()).unwrap_or("gone");
    matches!(state, "gone" | "Z" | "X")
}

#[tokio::test]
async fn run_tests_kills_the_whole_run_at_the_timeout() {
    require_pytest();
    let (_dir, root) = fixture();
    let pid_file = root.join("sleeper.pid");
    slow_test(&root, &pid_file);
    let t = tools(&root);
    // The kill must come after the test has started its child; on a busy machine pytest
    // may take longer than a short timeout to get there, so the timeout doubles until it did.
    let mut timeout = 3;
    let out = loop {
        let out = call(&t, "run_tests", json!({"command": "pytest", "filter": "slow", "timeout_secs": timeout})).await;
        assert_eq!(out["timed_out"], true);
        assert_eq!(out["success"], false);
        assert!(out["output_tail"].as_str().unwrap().contains(&format!("killed after {timeout} s")));
        if pid_file.exists() || timeout >= 96 {
            break out;
        }
        timeout *= 2;
    };
    let pid = std::fs::read_to_string(&pid_file).expect("the test started its child within 96 s");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !not_running(&pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(not_running(&pid), "the runner's own child was killed too ({out})");
}

#[tokio::test]
async fn a_run_tests_call_that_is_dropped_kills_its_process_group() {
    require_pytest();
    let (_dir, root) = fixture();
    let pid_file = root.join("sleeper.pid");
    slow_test(&root, &pid_file);
    let t = tools(&root);
    let run = tokio::spawn({
        let t = t.clone();
        async move { t.call("run_tests", json!({"command": "pytest", "filter": "slow", "timeout_secs": 600})).await }
    });
    let started = std::time::Instant::now();
    while !pid_file.exists() {
        assert!(started.elapsed().as_secs() < 120, "the test never started its child");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Give the write a moment to complete before reading the pid.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    run.abort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !not_running(&pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(not_running(&pid), "dropping the call killed the test run's process group");
}

#[tokio::test]
async fn git_internals_never_leak_through_globs() {
    let (_dir, root) = fixture();
    let t = tools(&root);
    for glob in [json!([".git", "*"]), json!(["**"]), json!([".*"]), json!([".git/**"]), json!(["**/.git/**", "*"])] {
        let out = call(&t, "search_docs", json!({"query": "repositoryformatversion", "glob": glob})).await;
        assert_eq!(out["matches"].as_array().unwrap().len(), 0, "{glob}: {out}");
        let out = call(&t, "search_docs", json!({"query": "first", "glob": glob, "max_results": 1000})).await;
        assert!(
            out["matches"].as_array().unwrap().iter().all(|m| !m["path"].as_str().unwrap().contains(".git/")),
            "{glob}: {out}"
        );
        let out = call(&t, "find_references", json!({"symbol": "repositoryformatversion", "glob": glob})).await;
        assert_eq!(out["references"].as_array().unwrap().len(), 0, "{glob}: {out}");
    }
    // A submodule's or worktree's `.git` is a file; it is skipped too.
    std::fs::create_dir_all(root.join("vendor/sub")).unwrap();
    std::fs::write(
        root.join("vendor/sub/.git"),
        "gitdir: ../../.git/modules/sub token=repositoryformatversion
",
    )
    .unwrap();
    let out = call(&t, "search_docs", json!({"query": "repositoryformatversion", "glob": ["*", ".*"]})).await;
    assert_eq!(out["matches"].as_array().unwrap().len(), 0, "{out}");
    refused(&t, "read_file", json!({"path": "vendor/sub/.git"})).await;
}

#[tokio::test]
async fn bad_paths_and_revisions_are_the_callers_errors() {
    let (_dir, root) = fixture();
    let t = tools(&root);
    let long = "a/".repeat(2500);
    for path in [long.as_str(), "README.md/x", &format!("{}.txt", "x".repeat(300))] {
        let err = t.call("read_file", json!({"path": path})).await.unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_) | ToolError::NotFound(_)), "{path}: {err:?}");
    }
    for from in ["HEAD:../../etc/passwd", "HEAD:README.md", &"x".repeat(300), "HEAD\n"] {
        let err = t.call("git_diff", json!({"from": from})).await.unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments(_)), "{from}: {err:?}");
    }
    let err = t.call("git_diff", json!({"from": "no-such-branch"})).await.unwrap_err();
    assert!(matches!(err, ToolError::NotFound(_)), "{err:?}");
    let err = t.call("search_docs", json!({"query": "x", "glob": vec!["*"; 100]})).await.unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments(_)), "{err:?}");
}

#[tokio::test]
async fn read_file_refuses_a_fifo_without_blocking() {
    let (_dir, root) = fixture();
    let fifo = root.join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    let t = tools(&root);
    let answer =
        tokio::time::timeout(std::time::Duration::from_secs(20), t.call("read_file", json!({"path": "pipe"}))).await;
    let err = answer.expect("read_file answered instead of waiting for a writer").unwrap_err();
    assert!(matches!(err, ToolError::Refused(ref m) if m.contains("not a regular file")), "{err:?}");
    // Walks pass it over too.
    call(&t, "search_docs", json!({"query": "parse_config", "glob": ["*"]})).await;
    call(&t, "analyze_codebase", json!({})).await;
}

#[tokio::test]
async fn the_rest_routes_serve_the_tools() {
    let (_dir, root) = fixture();
    let (tasks, _state_dir) = temp_tasks().await;
    let state = AppState::new(&smollm_config().profile, tasks, tools(&root), Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(api::serve(listener, state, std::future::pending()));
    let client = reqwest::Client::new();

    let list: Value = client.get(format!("{url}/api/mcp/tools")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["tools"].as_array().unwrap().len(), 6);
    assert_eq!(list["tools"][0]["input_schema"]["type"], "object");

    let post = |path: &str, body: Value| client.post(format!("{url}{path}")).json(&body).send();
    let res = post("/api/mcp/tool", json!({"name": "read_file", "arguments": {"path": "src/main.rs"}})).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["content"], MAIN_RS.replace("println!", "eprintln!"));
    let res = post("/api/tools/find_references", json!({"symbol": "Widget"})).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["definitions"][0]["path"], "web/index.ts");

    for (path, body, status, code) in [
        ("/api/tools/read_file", json!({"path": "../x"}), 403, "refused"),
        ("/api/tools/read_file", json!({"path": "missing.rs"}), 404, "not_found"),
        ("/api/tools/read_file", json!({"line": 1}), 400, "invalid_arguments"),
        ("/api/tools/format_disk", json!({}), 404, "tool_not_found"),
        ("/api/mcp/tool", json!({"name": "read_file"}), 400, "invalid_arguments"),
        ("/api/mcp/tool", json!({"tool": "read_file"}), 400, "-"),
    ] {
        let res = post(path, body.clone()).await.unwrap();
        assert_eq!(res.status(), status, "{path} {body}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        if code != "-" {
            assert_eq!(body["error"]["code"], code, "{body}");
        }
    }

    // Every route refuses Host names it does not serve (DNS rebinding).
    let rebound = client
        .post(format!("{url}/api/tools/read_file"))
        .header("host", "evil.example:8080")
        .json(&json!({"path": "src/lib.rs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    assert!(rebound.text().await.unwrap().contains("DNS-rebinding"));
    let localhost = client.get(format!("{url}/api/mcp/tools")).header("host", "localhost:1234").send().await.unwrap();
    assert_eq!(localhost.status(), 200);

    // /mcp refuses browsers from other origins and other Host names (DNS rebinding).
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let mcp = |origin: Option<&str>, host: Option<&str>| {
        let mut req =
            client.post(format!("{url}/mcp")).header("accept", "application/json, text/event-stream").json(&init);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        if let Some(host) = host {
            req = req.header("host", host);
        }
        req.send()
    };
    assert_eq!(mcp(None, None).await.unwrap().status(), 200);
    assert_eq!(mcp(Some("http://localhost:3000"), None).await.unwrap().status(), 200);
    assert_eq!(mcp(Some("http://evil.example"), None).await.unwrap().status(), 403);
    assert_eq!(mcp(None, Some("evil.example")).await.unwrap().status(), 403);
}
