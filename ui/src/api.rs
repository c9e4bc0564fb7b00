//! The HTTP half of the UI's only way to data: the server's JSON API, same origin.

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

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

async fn send(req: Request) -> Result<String, String> {
    let (status, text) = fetch(req).await?;
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

pub async fn get<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let req = Request::new_with_str(url).map_err(|e| format!("{e:?}"))?;
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// GETs text as it is (a template's earlier version).
pub async fn get_text(url: &str) -> Result<String, String> {
    let req = Request::new_with_str(url).map_err(|e| format!("{e:?}"))?;
    send(req).await
}

pub async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: &B) -> Result<T, String> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(
        &serde_json::to_string(body)
            .map_err(|e| e.to_string())?
            .into(),
    );
    let req = Request::new_with_str_and_init(url, &init).map_err(|e| format!("{e:?}"))?;
    req.headers()
        .set("Content-Type", "application/json")
        .map_err(|e| format!("{e:?}"))?;
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// POSTs raw bytes (a file) and reads a JSON answer.
pub async fn post_bytes<T: DeserializeOwned>(url: &str, body: Vec<u8>) -> Result<T, String> {
    post_file(url, body, "").await
}

/// POSTs a file's bytes with its content type (none when empty) and reads a JSON answer.
pub async fn post_file<T: DeserializeOwned>(
    url: &str,
    body: Vec<u8>,
    content_type: &str,
) -> Result<T, String> {
    let init = RequestInit::new();
    init.set_method("POST");
    let array = js_sys::Uint8Array::from(body.as_slice());
    init.set_body(&array.into());
    let req = Request::new_with_str_and_init(url, &init).map_err(|e| format!("{e:?}"))?;
    if !content_type.is_empty() {
        req.headers()
            .set("Content-Type", content_type)
            .map_err(|e| format!("{e:?}"))?;
    }
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// POSTs text and reads a JSON answer.
pub async fn post_text<T: DeserializeOwned>(url: &str, body: &str) -> Result<T, String> {
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&body.into());
    let req = Request::new_with_str_and_init(url, &init).map_err(|e| format!("{e:?}"))?;
    let text = send(req).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Sends JSON with `method` and returns the status and body as they are, for answers whose
/// error body is itself meaningful (a refused rule carries its problems).
pub async fn send_json<B: Serialize>(
    method: &str,
    url: &str,
    body: &B,
) -> Result<(u16, String), String> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_body(
        &serde_json::to_string(body)
            .map_err(|e| e.to_string())?
            .into(),
    );
    let req = Request::new_with_str_and_init(url, &init).map_err(|e| format!("{e:?}"))?;
    req.headers()
        .set("Content-Type", "application/json")
        .map_err(|e| format!("{e:?}"))?;
    fetch(req).await
}

/// DELETE; the answer's body is ignored.
pub async fn delete(url: &str) -> Result<(), String> {
    let init = RequestInit::new();
    init.set_method("DELETE");
    let req = Request::new_with_str_and_init(url, &init).map_err(|e| format!("{e:?}"))?;
    send(req).await.map(|_| ())
}

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
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
