//! The federation's link, IOC side (see `ioc_engine::sync`): node accounts push their own
//! operations and pull what they lack and may have. Bodies are gzip-compressed JSON both
//! ways; only a node account may call these routes.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::body_bytes;
use crate::AppState;
use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as DocResponse};
use aide::OperationOutput;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use ioc_engine::sync::wire::{self, DataPush, PullRequest, PushRequest};

/// The most a compressed sync body may be.
const MAX_BODY: usize = 32 << 20;

/// A sync message, gzip-compressed JSON.
pub struct Gz(Vec<u8>);

impl Gz {
    fn of<T: serde::Serialize>(v: &T) -> Gz {
        Gz(wire::encode(v))
    }
}

impl IntoResponse for Gz {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
            ],
            self.0,
        )
            .into_response()
    }
}

impl OperationOutput for Gz {
    type Inner = ();
    fn inferred_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![(
            Some(200),
            DocResponse {
                description: "a sync message: JSON, Content-Encoding: gzip".into(),
                content: IndexMap::from_iter([("application/json".into(), MediaType::default())]),
                ..Default::default()
            },
        )]
    }
}

async fn read<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, ApiError> {
    let bytes = body_bytes(body, MAX_BODY).await?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v == "gzip");
    wire::decode(&bytes, gzip).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))
}

/// The caller's data folder must be the one first seen for it (see
/// `ioc_engine::store::incarnation`).
async fn same_folder(st: &AppState, c: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    let inc = headers
        .get(ioc_engine::engine::INCARNATION_HEADER)
        .and_then(|v| v.to_str().ok());
    Ok(st.engine.sync_incarnation(&c.who, inc).await?)
}

/// `GET /api/sync/held`.
pub async fn held(
    State(st): State<AppState>,
    c: Caller,
    headers: HeaderMap,
) -> Result<Gz, ApiError> {
    same_folder(&st, &c, &headers).await?;
    Ok(Gz::of(&st.engine.sync_held(&c.who).await?))
}

/// `POST /api/sync/push`.
pub async fn push(
    State(st): State<AppState>,
    c: Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Gz, ApiError> {
    same_folder(&st, &c, &headers).await?;
    let req: PushRequest = read(&headers, body).await?;
    Ok(Gz::of(&st.engine.sync_push(&c.who, req).await?))
}

/// `POST /api/sync/pull`.
pub async fn pull(
    State(st): State<AppState>,
    c: Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Gz, ApiError> {
    same_folder(&st, &c, &headers).await?;
    let req: PullRequest = read(&headers, body).await?;
    Ok(Gz::of(&st.engine.sync_pull(&c.who, req).await?))
}

/// `POST /api/sync/data`.
pub async fn data(
    State(st): State<AppState>,
    c: Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Gz, ApiError> {
    same_folder(&st, &c, &headers).await?;
    let push: DataPush = read(&headers, body).await?;
    Ok(Gz::of(&st.engine.sync_data(&c.who, push).await?))
}
