//! The MCP adapter over the tool registry (the official `rmcp` SDK): stdio for
//! `quorum mcp`, and a Streamable HTTP service that the API mounts at `/mcp`. The
//! workspace's spec-kit commands are its prompts (`speckit.plan`, ...), their templates
//! filled with the client's `arguments`.
//!
//! Unknown tools are JSON-RPC errors (-32602); everything a tool reports, bad arguments
//! included, comes back as a result with `isError: true`, which a model can read and act on.
//!
//! A client that declares roots works on the first of them that is one of the server's
//! [`Workspaces`]; when none is, its tool calls are refused. A client without roots gets
//! the default workspace.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse,
    GetPromptResult, Implementation, JsonObject, ListPromptsResult, ListToolsResult, PaginatedRequestParams, Prompt,
    PromptArgument, PromptMessage, Role as MessageRole, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, Peer, RequestContext};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};

use super::{speckit, ToolError, ToolInfo, Tools, Workspaces};

const INSTRUCTIONS: &str = "Tools over a code workspace (the first of your roots that the server serves, \
else its default one): analyze_codebase for a map, search_docs and \
find_references to locate code, read_file to read it, git_diff for changes, run_tests to check them. \
Paths are relative to the workspace root and cannot leave it.";

/// The one argument of a spec-kit prompt.
const PROMPT_ARGUMENT: &str = "arguments";

/// How long a client may take to list its roots.
const ROOTS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One per MCP session.
struct Handler {
    workspaces: Workspaces,
    /// The session's workspace, or why it has none; found on the first tool call and
    /// again after the client says its roots changed.
    session: tokio::sync::Mutex<Option<Result<Tools, String>>>,
}

impl Handler {
    fn new(workspaces: Workspaces) -> Handler {
        Handler { workspaces, session: Default::default() }
    }

    async fn tools(&self, peer: &Peer<RoleServer>) -> Result<Tools, ToolError> {
        let mut session = self.session.lock().await;
        if session.is_none() {
            *session = Some(self.declared(peer).await);
        }
        session.clone().expect("set above").map_err(ToolError::Refused)
    }

    #[allow(deprecated)] // Roots are deprecated by SEP-2577, and still what clients send.
    async fn declared(&self, peer: &Peer<RoleServer>) -> Result<Tools, String> {
        let default = self.workspaces.default_tools().clone();
        if peer.peer_info().is_none_or(|info| info.capabilities.roots.is_none()) {
            return Ok(default);
        }
        let roots = match tokio::time::timeout(ROOTS_TIMEOUT, peer.list_roots()).await {
            Ok(Ok(list)) => list.roots,
            Ok(Err(e)) => return Err(format!("the client's roots could not be listed: {e}")),
            Err(_) => return Err("the client did not list its roots in time".into()),
        };
        if roots.is_empty() {
            return Ok(default);
        }
        let mut why = Vec::new();
        for root in &roots {
            match file_uri_path(&root.uri).map(|path| self.workspaces.open(&path)) {
                Some(Ok(tools)) => return Ok(tools),
                Some(Err(e)) => why.push(e.to_string()),
                None => why.push(format!("`{}` is not a file:// URI", root.uri)),
            }
        }
        Err(format!("none of the client's roots is a workspace of this server: {}", why.join("; ")))
    }
}

fn to_tool(info: &ToolInfo) -> Tool {
    let schema: JsonObject = info.input_schema.as_object().cloned().unwrap_or_default();
    Tool::new(info.name, info.description, Arc::new(schema))
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_prompts().build())
            .with_server_info(Implementation::new("quorum", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.workspaces.default_tools().list().iter().map(to_tool).collect()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.workspaces.default_tools().list().iter().find(|t| t.name == name).map(to_tool)
    }

    /// The workspace's spec-kit commands, which clients offer as slash commands.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let tools = self.tools(&context.peer).await.map_err(|e| McpError::invalid_request(e.to_string(), None))?;
        let commands =
            speckit::list(tools.workspace().root()).map_err(|e| McpError::internal_error(e.to_string(), None))?;
        let argument = PromptArgument::new(PROMPT_ARGUMENT).with_description("What the command's $ARGUMENTS get");
        let prompts = commands
            .iter()
            .map(|c| {
                Prompt::new(format!("speckit.{}", c.name), Some(c.description.clone()), Some(vec![argument.clone()]))
            })
            .collect();
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    /// A command's template with its arguments filled in, for the client's model to carry out.
    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let tools = self.tools(&context.peer).await.map_err(|e| McpError::invalid_request(e.to_string(), None))?;
        let command = speckit::find(tools.workspace().root(), &request.name)
            .map_err(|e| McpError::invalid_params(e.to_string(), None))?;
        let arguments = request.arguments.unwrap_or_default();
        let text = arguments.get(PROMPT_ARGUMENT).and_then(|v| v.as_str()).unwrap_or_default();
        let message = PromptMessage::new_text(MessageRole::User, command.fill(text));
        Ok(GetPromptResult::new(vec![message]).with_description(command.description).into())
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        *self.session.lock().await = None;
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let result = match self.tools(&context.peer).await {
            Ok(tools) => tools.call(&request.name, args).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(output) => Ok(CallToolResult::structured(output).into()),
            Err(ToolError::UnknownTool(name)) => {
                Err(McpError::invalid_params(format!("unknown tool `{name}`; tools/list names them"), None))
            }
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into()),
        }
    }
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn serve_stdio(workspaces: Workspaces) -> std::io::Result<()> {
    let running = Handler::new(workspaces)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| std::io::Error::other(format!("MCP initialization failed: {e}")))?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// MCP sessions open at once: each holds a worker and its channels until it is closed or
/// idle for five minutes, and one client's `initialize`s in a loop grew the process by a
/// gigabyte in 19 s.
pub const MAX_SESSIONS: usize = 256;

/// How many MCP sessions are open.
#[derive(Clone)]
pub struct Sessions(Arc<LocalSessionManager>);

impl Sessions {
    pub async fn open(&self) -> usize {
        self.0.sessions.read().await.len()
    }
}

/// The Streamable HTTP endpoint, and its count of sessions. Requests must name one of
/// `hosts` (`None`: any), so that a web page cannot reach the workspace through DNS
/// rebinding.
pub fn http_service(
    workspaces: Workspaces,
    hosts: Option<Vec<String>>,
) -> (StreamableHttpService<impl ServerHandler, LocalSessionManager>, Sessions) {
    let config = match hosts {
        Some(hosts) => StreamableHttpServerConfig::default().with_allowed_hosts(hosts),
        None => StreamableHttpServerConfig::default().disable_allowed_hosts(),
    };
    // The server's access middleware checks `Origin` for every route, this one included.
    let config = config.disable_allowed_origins();
    let sessions = Arc::new(LocalSessionManager::default());
    let service = StreamableHttpService::new(move || Ok(Handler::new(workspaces.clone())), sessions.clone(), config);
    (service, Sessions(sessions))
}

/// The local path of a `file://` URI (percent-decoded); `None` for anything else.
fn file_uri_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file://")?;
    // `file:///p` has an empty host; `file://localhost/p` names this machine.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::file_uri_path;

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(file_uri_path("file:///home/me/src/app").as_deref(), Some("/home/me/src/app"));
        assert_eq!(file_uri_path("file://localhost/tmp/a%20b").as_deref(), Some("/tmp/a b"));
        assert_eq!(file_uri_path("file:///tmp/%C3%A9t%C3%A9").as_deref(), Some("/tmp/été"));
        assert_eq!(file_uri_path("file://server/share"), None);
        assert_eq!(file_uri_path("https://example.com/x"), None);
        assert_eq!(file_uri_path("file:///bad%zz").as_deref(), Some("/bad%zz"));
    }
}
