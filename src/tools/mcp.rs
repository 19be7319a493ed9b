//! The MCP adapter over the tool registry (the official `rmcp` SDK): stdio for
//! `quorum mcp`, and a Streamable HTTP service that the API mounts at `/mcp`.
//!
//! Unknown tools are JSON-RPC errors (-32602); everything a tool reports, bad arguments
//! included, comes back as a result with `isError: true`, which a model can read and act on.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, JsonObject, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};

use super::{ToolError, ToolInfo, Tools};

const INSTRUCTIONS: &str = "Tools over one code workspace: analyze_codebase for a map, search_docs and \
find_references to locate code, read_file to read it, git_diff for changes, run_tests to check them. \
Paths are relative to the workspace root and cannot leave it.";

struct Handler {
    tools: Tools,
}

fn to_tool(info: &ToolInfo) -> Tool {
    let schema: JsonObject = info.input_schema.as_object().cloned().unwrap_or_default();
    Tool::new(info.name, info.description, Arc::new(schema))
}

impl ServerHandler for Handler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("quorum", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.list().iter().map(to_tool).collect()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.list().iter().find(|t| t.name == name).map(to_tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = serde_json::Value::Object(request.arguments.unwrap_or_default());
        match self.tools.call(&request.name, args).await {
            Ok(output) => Ok(CallToolResult::structured(output).into()),
            Err(ToolError::UnknownTool(name)) => {
                Err(McpError::invalid_params(format!("unknown tool `{name}`; tools/list names them"), None))
            }
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into()),
        }
    }
}

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn serve_stdio(tools: Tools) -> std::io::Result<()> {
    let running = Handler { tools }
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| std::io::Error::other(format!("MCP initialization failed: {e}")))?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// The Streamable HTTP endpoint. Requests must name one of `hosts` (`None`: any), so that
/// a web page cannot reach the workspace through DNS rebinding.
pub fn http_service(
    tools: Tools,
    hosts: Option<Vec<String>>,
) -> StreamableHttpService<impl ServerHandler, LocalSessionManager> {
    let config = match hosts {
        Some(hosts) => StreamableHttpServerConfig::default().with_allowed_hosts(hosts),
        None => StreamableHttpServerConfig::default().disable_allowed_hosts(),
    };
    // The server's access middleware checks `Origin` for every route, this one included.
    let config = config.disable_allowed_origins();
    StreamableHttpService::new(
        move || Ok(Handler { tools: tools.clone() }),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}
