//! Answers that say in the OpenAPI document what they are: created things (201), files to
//! download, plain text, editor checks that refuse with their problems (400).

use aide::generate::GenContext;
use aide::openapi::{MediaType, Operation, Response as DocResponse, SchemaObject};
use aide::OperationOutput;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use indexmap::IndexMap;
use ioc_model::RuleCheck;
use schemars::JsonSchema;
use serde::Serialize;

fn json_doc<T: JsonSchema>(ctx: &mut GenContext, description: &str) -> DocResponse {
    let json_schema = ctx.schema.subschema_for::<T>();
    DocResponse {
        description: description.into(),
        content: IndexMap::from_iter([(
            "application/json".into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema,
                    example: None,
                    external_docs: None,
                }),
                ..Default::default()
            },
        )]),
        ..Default::default()
    }
}

/// A refused text: its problems with line and column, or (a body that is not JSON at all)
/// the API's plain error.
fn refused_doc(ctx: &mut GenContext) -> DocResponse {
    let check = ctx.schema.subschema_for::<RuleCheck>();
    let error = ctx.schema.subschema_for::<crate::error::ErrorBody>();
    let json_schema = schemars::json_schema!({ "anyOf": [check, error] });
    DocResponse {
        description: "refused, with every problem and its line and column".into(),
        content: IndexMap::from_iter([(
            "application/json".into(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema,
                    example: None,
                    external_docs: None,
                }),
                ..Default::default()
            },
        )]),
        ..Default::default()
    }
}

/// `201 Created` with the new thing.
pub struct Created<T>(pub T);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, Json(self.0)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Created<T> {
    type Inner = T;
    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![(Some(201), json_doc::<T>(ctx, "created"))]
    }
}

/// `202 Accepted`: started, look it up later.
pub struct Accepted<T>(pub T);

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, Json(self.0)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Accepted<T> {
    type Inner = T;
    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![(Some(202), json_doc::<T>(ctx, "started"))]
    }
}

/// `GET /api/ready`: `200` when ready, `503` when not, the same body either way (a check
/// that reads only the status works, one that reads the body learns which part is down).
pub struct Ready(pub ioc_model::Readiness);

impl IntoResponse for Ready {
    fn into_response(self) -> Response {
        let status = if self.0.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(self.0)).into_response()
    }
}

impl OperationOutput for Ready {
    type Inner = ioc_model::Readiness;
    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![
            (Some(200), json_doc::<ioc_model::Readiness>(ctx, "ready")),
            (
                Some(503),
                json_doc::<ioc_model::Readiness>(ctx, "not ready: stopping, or the store"),
            ),
        ]
    }
}

/// A saved text (rule, SOP, KPI definition), or `400` with every problem and its place.
pub struct Checked<T> {
    pub result: Result<T, RuleCheck>,
    pub status: StatusCode,
}

impl<T> Checked<T> {
    pub fn new(result: Result<T, RuleCheck>, status: StatusCode) -> Checked<T> {
        Checked { result, status }
    }
}

impl<T: Serialize> IntoResponse for Checked<T> {
    fn into_response(self) -> Response {
        match self.result {
            Ok(v) => (self.status, Json(v)).into_response(),
            Err(c) => (StatusCode::BAD_REQUEST, Json(c)).into_response(),
        }
    }
}

impl<T: JsonSchema> OperationOutput for Checked<T> {
    type Inner = T;
    fn inferred_responses(
        ctx: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![
            (Some(200), json_doc::<T>(ctx, "saved")),
            (Some(201), json_doc::<T>(ctx, "created")),
            (Some(400), refused_doc(ctx)),
        ]
    }
}

/// A file to save, never to show: `Content-Disposition: attachment`, with the name made
/// safe for a header (see [`safe_file_name`]).
pub struct Download {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

impl IntoResponse for Download {
    fn into_response(self) -> Response {
        let mut r = self.bytes.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&self.content_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        h.insert(
            header::CONTENT_DISPOSITION,
            content_disposition("attachment", &self.name),
        );
        r
    }
}

impl OperationOutput for Download {
    type Inner = ();
    fn inferred_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![(
            Some(200),
            DocResponse {
                description: "a file (Content-Disposition: attachment)".into(),
                content: IndexMap::from_iter([("*/*".into(), MediaType::default())]),
                ..Default::default()
            },
        )]
    }
}

/// JSON already serialized (the OpenAPI document, made once).
pub struct JsonText(pub std::sync::Arc<String>);

impl IntoResponse for JsonText {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.0.as_str().to_owned(),
        )
            .into_response()
    }
}

impl OperationOutput for JsonText {
    type Inner = ();
    fn inferred_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![(
            Some(200),
            DocResponse {
                description: "JSON".into(),
                content: IndexMap::from_iter([("application/json".into(), MediaType::default())]),
                ..Default::default()
            },
        )]
    }
}

/// A file served as it is (the basemap, its tiles), whatever its type.
pub struct Served(pub Response);

impl IntoResponse for Served {
    fn into_response(self) -> Response {
        self.0
    }
}

impl OperationOutput for Served {
    type Inner = ();
    fn inferred_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![
            (
                Some(200),
                DocResponse {
                    description: "the file".into(),
                    content: IndexMap::from_iter([("*/*".into(), MediaType::default())]),
                    ..Default::default()
                },
            ),
            (
                Some(204),
                DocResponse {
                    description: "nothing there (an empty tile)".into(),
                    ..Default::default()
                },
            ),
            (
                Some(206),
                DocResponse {
                    description: "a range of the file".into(),
                    content: IndexMap::from_iter([("*/*".into(), MediaType::default())]),
                    ..Default::default()
                },
            ),
        ]
    }
}

/// Plain text.
pub struct Text(pub String);

impl IntoResponse for Text {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.0,
        )
            .into_response()
    }
}

impl OperationOutput for Text {
    type Inner = ();
    fn inferred_responses(
        _: &mut GenContext,
        _: &mut Operation,
    ) -> Vec<(Option<u16>, DocResponse)> {
        vec![(
            Some(200),
            DocResponse {
                description: "text".into(),
                content: IndexMap::from_iter([("text/plain".into(), MediaType::default())]),
                ..Default::default()
            },
        )]
    }
}

/// A file name as it may go out in a header or a report: no path, no control characters,
/// no quotes or backslashes, not empty, at most 120 characters (`../../etc/passwd` becomes
/// `passwd`, a NUL byte goes).
pub fn safe_file_name(name: &str) -> String {
    let last = name
        .rsplit(['/', '\\'])
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '/' | ';'))
        .take(120)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_string();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266), so a
/// Vietnamese name survives and an odd one cannot break the header.
pub fn content_disposition(kind: &str, name: &str) -> HeaderValue {
    let name = safe_file_name(name);
    let ascii: String = deunicode_ascii(&name);
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

fn deunicode_ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("a\0b\r\n.txt"), "ab.txt");
        assert_eq!(safe_file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name("../"), "file");
        assert_eq!(safe_file_name(".htaccess"), "htaccess");
        assert_eq!(safe_file_name("ảnh hiện trường.jpg"), "ảnh hiện trường.jpg");
        assert_eq!(safe_file_name(&"x".repeat(500)).len(), 120);
        let h = content_disposition("attachment", "ảnh \"1\".jpg");
        let h = h.to_str().unwrap();
        assert!(
            h.starts_with("attachment; filename=\"_nh 1.jpg\"; filename*=UTF-8''"),
            "{h}"
        );
    }
}
