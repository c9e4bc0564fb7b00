//! The HTTP half of the UI's only way to data: the transport to the server's JSON API, same
//! origin. What to ask for, and where, is [`crate::client`]'s: these functions take a path
//! (`/api/…`) it built and put [`base`] before it.

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

/// Where the API is: what comes before every path the UI asks for or links to. Empty: the
/// origin the page came from (the server serves the UI and the API together, and the session
/// cookie is same-origin). The one place to change to point the UI at another server; the
/// feed's address (`feed.rs`) is made from the page's location and would have to follow.
pub fn base() -> &'static str {
    ""
}

/// The address of an API path, for requests and for links (downloads).
pub fn url(path: &str) -> String {
    format!("{}{path}", base())
}

/// Sends (the session cookie goes with it, same origin); the status and body as they are.
async fn fetch(req: Request) -> Result<(u16, String), String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp = JsFuture::from(window.fetch_with_request(&req))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let resp: Response = resp.dyn_into().map_err(|_| "not a response")?;
    let text = JsFuture::from(resp.text().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|e| format!("{e:?}"))?
        .as_string()
        .unwrap_or_default();
    if resp.status() == 401 {
        crate::session::signed_out();
    }
    Ok((resp.status(), text))
}

/// What an action's error says when a workstation kept it to send later (the toast it
/// would make is replaced by the queue's own, see [`crate::session::on_queued`]).
pub const QUEUED: &str = "⏳ queued";

async fn send(req: Request) -> Result<String, String> {
    let (status, text) = fetch(req).await?;
    if status == 202 {
        // A workstation cut off from the IOC kept the action on disk to send later.
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if v.get("queued").is_some() {
                crate::session::queued(v["waiting"].as_u64().unwrap_or(1));
                return Err(QUEUED.to_string());
            }
        }
    }
    if !(200..300).contains(&status) {
        // The API answers errors as {"error": "…"}.
        let msg = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(format!("{status} {msg}"));
    }
    Ok(text)
}

pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let req = Request::new_with_str(&url(path)).map_err(|e| format!("{e:?}"))?;
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// GETs text as it is (a template's earlier version).
pub async fn get_text(path: &str) -> Result<String, String> {
    let req = Request::new_with_str(&url(path)).map_err(|e| format!("{e:?}"))?;
    send(req).await
}

pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, String> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(
        &serde_json::to_string(body)
            .map_err(|e| e.to_string())?
            .into(),
    );
    let req = Request::new_with_str_and_init(&url(path), &init).map_err(|e| format!("{e:?}"))?;
    req.headers()
        .set("Content-Type", "application/json")
        .map_err(|e| format!("{e:?}"))?;
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// POSTs raw bytes (a file) and reads a JSON answer.
pub async fn post_bytes<T: DeserializeOwned>(path: &str, body: Vec<u8>) -> Result<T, String> {
    post_file(path, body, "").await
}

/// POSTs a file's bytes with its content type (none when empty) and reads a JSON answer.
pub async fn post_file<T: DeserializeOwned>(
    path: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<T, String> {
    let init = RequestInit::new();
    init.set_method("POST");
    let array = js_sys::Uint8Array::from(body.as_slice());
    init.set_body(&array.into());
    let req = Request::new_with_str_and_init(&url(path), &init).map_err(|e| format!("{e:?}"))?;
    if !content_type.is_empty() {
        req.headers()
            .set("Content-Type", content_type)
            .map_err(|e| format!("{e:?}"))?;
    }
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// POSTs text and reads a JSON answer.
pub async fn post_text<T: DeserializeOwned>(path: &str, body: &str) -> Result<T, String> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&body.into());
    let req = Request::new_with_str_and_init(&url(path), &init).map_err(|e| format!("{e:?}"))?;
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Sends JSON with `method` and returns the status and body as they are, for answers whose
/// error body is itself meaningful (a refused rule carries its problems).
pub async fn send_json<B: Serialize>(
    method: &str,
    path: &str,
    body: &B,
) -> Result<(u16, String), String> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_body(
        &serde_json::to_string(body)
            .map_err(|e| e.to_string())?
            .into(),
    );
    let req = Request::new_with_str_and_init(&url(path), &init).map_err(|e| format!("{e:?}"))?;
    req.headers()
        .set("Content-Type", "application/json")
        .map_err(|e| format!("{e:?}"))?;
    fetch(req).await
}

/// DELETE; the answer's body is ignored.
pub async fn delete(path: &str) -> Result<(), String> {
    let init = RequestInit::new();
    init.set_method("DELETE");
    let req = Request::new_with_str_and_init(&url(path), &init).map_err(|e| format!("{e:?}"))?;
    send(req).await.map(|_| ())
}

/// Percent-encodes a path segment or query value as `encodeURIComponent` does: every byte of
/// the UTF-8 but letters, digits and `-_.!~*'()`. Plain Rust, so the paths the client builds
/// are tested natively.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn local_storage_get(key: &str) -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(key)
        .ok()?
}

pub fn local_storage_set(key: &str, value: &str) -> Option<()> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .set_item(key, value)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_encode_uri_component() {
        assert_eq!(enc("abc-XYZ_09.!~*'()"), "abc-XYZ_09.!~*'()");
        assert_eq!(enc("a b/c?d&e=f#g"), "a%20b%2Fc%3Fd%26e%3Df%23g");
        assert_eq!(
            enc("2024-05-01T10:00:00+07:00"),
            "2024-05-01T10%3A00%3A00%2B07%3A00"
        );
        assert_eq!(enc("Nghệ An"), "Ngh%E1%BB%87%20An");
        assert_eq!(enc("%"), "%25");
    }

    #[test]
    fn paths_are_same_origin() {
        assert_eq!(url("/api/health"), "/api/health");
    }
}
