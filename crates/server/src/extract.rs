//! What handlers take from a request, refused the API's way: a body, query or path that
//! does not parse is a `{"error": …}` with a 4xx status (400 unreadable, 413 too large, 415
//! not JSON, 422 the wrong shape), like every other refusal, so a client (and the API's
//! schema) has one kind of error to read. Each also describes itself in the OpenAPI document.

use crate::ApiError;
use aide::generate::GenContext;
use aide::openapi::Operation;
use aide::OperationInput;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// A JSON request body.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

impl<T: JsonSchema> OperationInput for JsonBody<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::Json::<T>::operation_input(ctx, operation)
    }
}

/// An optional JSON body: none at all is `None`, a body must parse.
pub struct MaybeJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v == "0")
            || (!req.headers().contains_key(axum::http::header::CONTENT_TYPE)
                && !req
                    .headers()
                    .contains_key(axum::http::header::TRANSFER_ENCODING)
                && !req
                    .headers()
                    .contains_key(axum::http::header::CONTENT_LENGTH));
        if empty {
            return Ok(MaybeJson(None));
        }
        JsonBody::<T>::from_request(req, state)
            .await
            .map(|JsonBody(v)| MaybeJson(Some(v)))
    }
}

impl<T: JsonSchema> OperationInput for MaybeJson<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::Json::<T>::operation_input(ctx, operation);
        if let Some(aide::openapi::ReferenceOr::Item(b)) = operation.request_body.as_mut() {
            b.required = false;
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    let status = match &e {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
        JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
        JsonRejection::BytesRejection(b) => b.status(),
        _ => e.status(),
    };
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is too large".to_string()
    } else {
        e.body_text()
    };
    ApiError::new(status, message)
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> ApiError {
    ApiError::bad_request(e.body_text())
}

impl<T: JsonSchema> OperationInput for Query<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Query::<T>::operation_input(ctx, operation)
    }
}

/// Path parameters, by name (a struct whose fields are named like the route's `{…}`).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(path_rejection(e)),
        }
    }
}

fn path_rejection(e: PathRejection) -> ApiError {
    // A path that does not parse names nothing that exists.
    match e {
        PathRejection::FailedToDeserializePathParams(d) => ApiError::not_found(d.body_text()),
        e => ApiError::new(e.status(), e.body_text()),
    }
}

impl<T: JsonSchema> OperationInput for Path<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Path::<T>::operation_input(ctx, operation)
    }
}

/// `{id}` in a route: a number.
#[derive(serde::Deserialize, JsonSchema)]
pub struct Id {
    pub id: i64,
}

/// `{name}` in a route.
#[derive(serde::Deserialize, JsonSchema)]
pub struct Name {
    pub name: String,
}

/// `{id}/{action}` in a route.
#[derive(serde::Deserialize, JsonSchema)]
pub struct IdAction {
    pub id: i64,
    pub action: String,
}

/// `{id}` as a string (entities, KPIs, dashboards are named).
#[derive(serde::Deserialize, JsonSchema)]
pub struct Key {
    pub id: String,
}

/// The years a time given to the API may fall in. Anything else is a typo or a probe, and
/// arithmetic near chrono's limits (±262,000 years) would overflow.
pub const YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// A time from a request, refused (422) outside [`YEARS`].
pub fn time(
    name: &str,
    t: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    use chrono::Datelike;
    if YEARS.contains(&t.year()) {
        Ok(t)
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "`{name}`: a time between {} and {}",
                YEARS.start(),
                YEARS.end()
            ),
        ))
    }
}

/// A date from a request, refused (422) outside [`YEARS`].
pub fn date(name: &str, d: chrono::NaiveDate) -> Result<chrono::NaiveDate, ApiError> {
    use chrono::Datelike;
    if YEARS.contains(&d.year()) {
        Ok(d)
    } else {
        Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "`{name}`: a date between {} and {}",
                YEARS.start(),
                YEARS.end()
            ),
        ))
    }
}

/// An optional time, checked.
pub fn opt_time(
    name: &str,
    t: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    t.map(|t| time(name, t)).transpose()
}

/// Reads a streamed body up to `limit` bytes (413 past it).
pub async fn body_bytes(body: axum::body::Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {} MiB",
                limit / 1024 / 1024
            ),
        )
    })
}
