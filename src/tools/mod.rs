//! Codebase tools over one workspace: read_file, analyze_codebase, search_docs,
//! find_references, git_diff and run_tests. [`Tools`] is the registry every interface uses
//! (REST, MCP); each tool takes JSON arguments checked against its input type (whose JSON
//! schema is published) and returns JSON. Inside the process the same functions are called
//! with their own types ([`Tools::analyze`], [`Tools::read`], [`Tools::references`],
//! [`Tools::run_tests`]), so no result is read back by field name.

pub mod analyze;
mod cancel;
mod definitions;
mod error;
mod git;
mod lang;
pub mod mcp;
mod project;
pub mod read;
pub mod references;
pub mod run_tests;
pub mod search;
pub mod speckit;
mod symbols;
mod walk;
mod workspace;
mod workspaces;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use self::definitions::{definitions, Definition};
pub use self::error::ToolError;
pub use self::project::{is_generated, is_test_file, test_commands, TestCommand};
pub use self::symbols::syntax_error;
pub use self::workspace::Workspace;
pub use self::workspaces::Workspaces;

type Run = dyn Fn(&Workspace, Value) -> Result<Value, ToolError> + Send + Sync;

/// A tool's published face: what MCP's `tools/list` and `GET /api/mcp/tools` show.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: Value,
}

struct Tool {
    info: ToolInfo,
    run: Box<Run>,
}

impl Tool {
    /// A tool whose arguments deserialize into `A` (unknown fields refused) and whose
    /// schema is derived from the same type, so the two cannot drift apart.
    fn new<A, R>(name: &'static str, description: &'static str, f: fn(&Workspace, A) -> Result<R, ToolError>) -> Tool
    where
        A: DeserializeOwned + JsonSchema + 'static,
        R: Serialize + 'static,
    {
        let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
        let mut input_schema =
            serde_json::to_value(settings.into_generator().into_root_schema_for::<A>()).expect("schemas serialize");
        if let Some(object) = input_schema.as_object_mut() {
            // Clients show the tool's own description; the type's name adds nothing.
            object.remove("title");
            object.remove("$schema");
        }
        let run = move |ws: &Workspace, args: Value| {
            let args = if args.is_null() { Value::Object(Default::default()) } else { args };
            let args: A = serde_json::from_value(args).map_err(|e| ToolError::invalid(e.to_string()))?;
            let result = f(ws, args)?;
            Ok(serde_json::to_value(result).expect("tool results serialize"))
        };
        Tool { info: ToolInfo { name, description, input_schema }, run: Box::new(run) }
    }
}

/// The registry: cheap to clone, shared by every interface.
#[derive(Clone)]
pub struct Tools(Arc<Inner>);

struct Inner {
    workspace: Workspace,
    tools: Vec<Tool>,
}

impl Tools {
    pub fn new(workspace: Workspace) -> Tools {
        let tools = vec![
            Tool::new("read_file", read::DESCRIPTION, read::run),
            Tool::new("analyze_codebase", analyze::DESCRIPTION, analyze::run),
            Tool::new("search_docs", search::DESCRIPTION, search::run),
            Tool::new("find_references", references::DESCRIPTION, references::run),
            Tool::new("git_diff", git::DESCRIPTION, git::run),
            Tool::new("run_tests", run_tests::DESCRIPTION, run_tests::run),
        ];
        Tools(Arc::new(Inner { workspace, tools }))
    }

    pub fn workspace(&self) -> &Workspace {
        &self.0.workspace
    }

    pub fn list(&self) -> Vec<ToolInfo> {
        self.0.tools.iter().map(|t| t.info.clone()).collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.tools.iter().any(|t| t.info.name == name)
    }

    /// Runs a tool by name with JSON arguments: the face REST and MCP call.
    pub async fn call(&self, name: &str, args: Value) -> Result<Value, ToolError> {
        if !self.has(name) {
            return Err(ToolError::UnknownTool(name.to_string()));
        }
        let inner = self.0.clone();
        let name = name.to_string();
        self.blocking(move |_| {
            let tool = inner.tools.iter().find(|t| t.info.name == name).expect("checked above");
            (tool.run)(&inner.workspace, args)
        })
        .await
    }

    pub async fn analyze(&self, args: analyze::Args) -> Result<analyze::Output, ToolError> {
        self.blocking(move |ws| analyze::run(ws, args)).await
    }

    pub async fn read(&self, args: read::Args) -> Result<read::Output, ToolError> {
        self.blocking(move |ws| read::run(ws, args)).await
    }

    pub async fn search(&self, args: search::Args) -> Result<search::Output, ToolError> {
        self.blocking(move |ws| search::run(ws, args)).await
    }

    pub async fn references(&self, args: references::Args) -> Result<references::Output, ToolError> {
        self.blocking(move |ws| references::run(ws, args)).await
    }

    pub async fn run_tests(&self, args: run_tests::Args) -> Result<run_tests::Output, ToolError> {
        self.blocking(move |ws| run_tests::run(ws, args)).await
    }

    /// Runs a tool on the blocking pool (tools read files and wait for processes). When the
    /// returned future is dropped (a cancelled task, a client gone), the tool is told to
    /// stop: `run_tests` kills its process group.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Workspace) -> Result<T, ToolError> + Send + 'static,
    ) -> Result<T, ToolError> {
        let inner = self.0.clone();
        let stop = cancel::Stop::default();
        let _stop_on_drop = stop.on_drop();
        tokio::task::spawn_blocking(move || cancel::with(stop, || f(&inner.workspace)))
            .await
            .map_err(|e| ToolError::Io(format!("the tool failed: {e}")))?
    }
}
