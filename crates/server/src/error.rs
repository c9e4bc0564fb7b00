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

/// Every refusal's body.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// For a server error: the id under which it is in the server's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = self
            .status
            .is_server_error()
            .then(crate::security::incident_id);
        if let Some(id) = &id {
            tracing::error!(error_id = %id, "{}: {}", self.status, self.message);
        }
        let body = ErrorBody {
            error: if self.status.is_server_error() {
                format!(
                    "{} (error id {})",
                    self.message,
                    id.as_deref().unwrap_or("")
                )
            } else {
                self.message
            },
            id,
        };
        (self.status, Json(body)).into_response()
    }
}

impl aide::OperationOutput for ApiError {
    type Inner = ErrorBody;
    fn inferred_responses(
        ctx: &mut aide::generate::GenContext,
        op: &mut aide::openapi::Operation,
    ) -> Vec<(Option<u16>, aide::openapi::Response)> {
        <Json<ErrorBody> as aide::OperationOutput>::operation_response(ctx, op)
            .map(|mut r| {
                r.description = "refused: `{\"error\": …}` (401 not signed in, 403 outside the \
                                 role or the units, 404, 409, 413, 422, …)"
                    .into();
                vec![(None, r)]
            })
            .unwrap_or_default()
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
            EngineError::TooLarge(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EngineError::Unavailable(_) => StatusCode::BAD_GATEWAY,
            EngineError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}
