//! spec-kit commands from the HTTP interfaces: a chat message to `model: "quorum"` that
//! starts with `/speckit.NAME`, or the same as the task of `POST /api/workflow`. The
//! command runs in the background; its progress lines and then its report come as a
//! stream. A client that goes away leaves it running to its end (documents are written
//! whole or not at all, and `implement` ticks a task only once it is applied).

use futures::{Stream, StreamExt};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::error::ApiError;
use super::state::AppState;
use crate::spec::{Progress, Report, SpecError, SpecKit};
use crate::tools::Tools;

/// What a running command says: a line of progress, then its end.
pub enum Said {
    Progress(String),
    Done(Result<Report, String>),
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> ApiError {
        match e {
            SpecError::Tool(e) => e.into(),
            SpecError::Refused(m) | SpecError::Document(m) => ApiError::invalid(m, None),
            other => ApiError::server(other.to_string()),
        }
    }
}

/// Starts `/speckit.NAME arguments` on the workspace of `tools`; fails at once where the
/// workspace has no such command.
pub fn start(
    state: &AppState,
    tools: Tools,
    name: String,
    arguments: String,
    options: serde_json::Value,
) -> Result<impl Stream<Item = Said> + Send + 'static, ApiError> {
    crate::tools::speckit::find(tools.workspace().root(), &name)?;
    let kit = SpecKit::new(state.pipeline()?.clone());
    let (progress, lines) = Progress::channel();
    let run = tokio::spawn(async move { kit.run(&tools, &name, &arguments, options, &progress).await });
    let end = futures::stream::once(async move {
        let result = match run.await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the command stopped: {e}")),
        };
        Said::Done(result)
    });
    Ok(UnboundedReceiverStream::new(lines).map(Said::Progress).chain(end))
}
