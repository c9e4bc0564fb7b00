//! API errors: a status code and `{"error": "…"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ioc_engine::alerts::AlertError;
use ioc_engine::operate::OpError;
use ioc_engine::EngineError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("{}: {}", self.status, self.message);
        }
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let status = match &e {
            EngineError::Alert(AlertError::NotFound(_)) => StatusCode::NOT_FOUND,
            EngineError::Alert(AlertError::InvalidTransition { .. }) => StatusCode::CONFLICT,
            EngineError::Alert(AlertError::OutOfScope(_)) => StatusCode::FORBIDDEN,
            EngineError::Alert(AlertError::Invalid(_)) => StatusCode::BAD_REQUEST,
            EngineError::Op(OpError::NotFound(_)) => StatusCode::NOT_FOUND,
            EngineError::Op(OpError::Invalid(_)) => StatusCode::BAD_REQUEST,
            EngineError::Op(OpError::Conflict(_)) => StatusCode::CONFLICT,
            EngineError::Op(OpError::Forbidden(_) | OpError::OutOfScope(_)) => {
                StatusCode::FORBIDDEN
            }
            EngineError::Closed => StatusCode::SERVICE_UNAVAILABLE,
            EngineError::BadInput(_) => StatusCode::BAD_REQUEST,
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::Forbidden(_) => StatusCode::FORBIDDEN,
            EngineError::Busy(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}
