//! API errors in OpenAI's shape: `{"error":{"message","type","param","code"}}`, with
//! the HTTP status that fits.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::engine::EngineError;
use crate::state::StateError;
use crate::tools::ToolError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>, param: Option<&'static str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: None,
        }
    }

    /// A failure of quorum's own (500).
    pub fn server(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    pub fn model_not_found(model: &str, available: &[String]) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("The model `{model}` does not exist. Available models: {}", available.join(", ")),
            kind: "invalid_request_error",
            param: Some("model"),
            code: Some("model_not_found"),
        }
    }

    pub fn not_found(message: impl Into<String>, code: &'static str) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: Some(code),
        }
    }

    pub fn task_not_found(id: &str) -> ApiError {
        ApiError::not_found(format!("No task with id `{id}` (GET /api/tasks lists them)."), "task_not_found")
    }

    pub fn loading() -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: "Models are still loading; retry in a moment (GET /health shows progress).".into(),
            kind: "server_error",
            param: None,
            code: Some("model_loading"),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let message = e.to_string();
        let (status, kind, param, code) = match e {
            EngineError::ContextLength { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", Some("messages"), Some("context_length_exceeded"))
            }
            EngineError::InvalidPrompt(_) | EngineError::Template(_) => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", Some("messages"), None)
            }
            EngineError::Samples(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", Some("n"), None),
            EngineError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", None, None),
            EngineError::Grammar(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", Some("grammar"), None),
            EngineError::Schema(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", Some("response_format"), None),
            EngineError::NoFim(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", Some("suffix"), None),
            EngineError::Tools(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", Some("tools"), None),
            EngineError::NoChatTemplate => (StatusCode::BAD_REQUEST, "invalid_request_error", Some("model"), None),
            EngineError::Recovering(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "server_error", None, Some("model_recovering"))
            }
            EngineError::Overloaded(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", None, Some("rate_limit_exceeded"))
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None, None),
        };
        ApiError { status, message, kind, param, code }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> ApiError {
        tracing::error!(error = %e, "state store failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("The state store failed: {e}"),
            kind: "server_error",
            param: None,
            code: Some("state_error"),
        }
    }
}

impl From<ToolError> for ApiError {
    fn from(e: ToolError) -> ApiError {
        let message = e.to_string();
        let (status, code) = match e {
            ToolError::UnknownTool(_) => (StatusCode::NOT_FOUND, "tool_not_found"),
            ToolError::InvalidArguments(_) => (StatusCode::BAD_REQUEST, "invalid_arguments"),
            ToolError::Refused(_) => (StatusCode::FORBIDDEN, "refused"),
            ToolError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ToolError::Unavailable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unavailable"),
            ToolError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "tool_failed"),
        };
        let kind = if status.is_server_error() { "server_error" } else { "invalid_request_error" };
        ApiError { status, message, kind, param: None, code: Some(code) }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let mut e = ApiError::invalid(format!("Invalid request body: {}", r.body_text()), None);
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            e.status = StatusCode::PAYLOAD_TOO_LARGE;
            e.code = Some("request_too_large");
        }
        e
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::invalid(format!("Invalid path: {}", r.body_text()), None)
    }
}

impl ApiError {
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS || self.code == Some("model_recovering") {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}
