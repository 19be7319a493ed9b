//! Tool failures. Each names what was wrong and what would work instead; the API maps
//! them to HTTP statuses and MCP reports them as tool results with `isError: true`.

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("unknown tool `{0}`; GET /api/mcp/tools lists them")]
    UnknownTool(String),
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// A path outside the workspace, `.git` internals, a program not on the allow-list.
    #[error("refused: {0}")]
    Refused(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The workspace cannot answer (not a git repository, no test command detected, ...).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Io(String),
}

impl ToolError {
    pub fn invalid(message: impl Into<String>) -> ToolError {
        ToolError::InvalidArguments(message.into())
    }

    pub fn refused(message: impl Into<String>) -> ToolError {
        ToolError::Refused(message.into())
    }
}
