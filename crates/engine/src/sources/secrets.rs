//! A source's secrets (passwords, bearer tokens, API keys in headers, a password inside a
//! URL) are write-only: the admin screen and the API show whether each is set, never its
//! value, and the audit log records that it changed, not what to. Editing a source without
//! retyping a secret keeps it; setting it to `""` removes it.

use toml_edit::{DocumentMut, Item, Value};

/// Keys whose values are secrets wherever they appear in a source's table.
pub const SECRET_KEYS: &[&str] = &[
    "password",
    "bearer_token",
    "token",
    "secret",
    "client_secret",
    "api_key",
];

/// Tables whose every value is a secret (request headers usually carry keys).
pub const SECRET_TABLES: &[&str] = &["headers"];

pub use ioc_model::SecretState as Secret;

/// What is shown for a secret instead of its value.
pub const MASK: &str = "••••••";

/// A URL without the password in it (`mqtt://user:pw@host` → `mqtt://user:••••••@host`).
pub fn redact_url(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some(MASK));
            u.to_string()
        }
        _ => s.to_string(),
    }
}

/// Any text (an error message, a description) with the passwords of the URLs in it masked.
pub fn redact_text(s: &str) -> String {
    s.split_inclusive(char::is_whitespace)
        .map(|w| {
            let trimmed = w.trim_end();
            let tail = &w[trimmed.len()..];
            let core = trimmed.trim_matches(|c| matches!(c, '(' | ')' | '"' | '\'' | ','));
            if core.contains("://") && core.contains('@') {
                trimmed.replace(core, &redact_url(core)) + tail
            } else {
                w.to_string()
            }
        })
        .collect()
}

fn url_has_password(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| url::Url::parse(s).ok())
        .is_some_and(|u| u.password().is_some())
}

/// The source's TOML with its secrets taken out (a password inside a URL masked), and which
/// secrets were set.
pub fn redact(text: &str) -> (String, Vec<Secret>) {
    let Ok(mut doc) = text.parse::<DocumentMut>() else {
        // Not TOML: it never started; show nothing of it.
        return (String::new(), Vec::new());
    };
    let mut secrets = Vec::new();
    let table = doc.as_table_mut();
    for key in SECRET_KEYS {
        if let Some(item) = table.remove(key) {
            let set = item.as_str().is_none_or(|s| !s.is_empty());
            secrets.push(Secret {
                key: key.to_string(),
                set,
            });
        }
    }
    for t in SECRET_TABLES {
        if let Some(Item::Value(Value::InlineTable(inline))) = table.get_mut(t) {
            for (k, v) in inline.iter_mut() {
                secrets.push(Secret {
                    key: format!("{t}.{}", k.get()),
                    set: true,
                });
                *v = Value::from(MASK);
            }
        } else if let Some(Item::Table(sub)) = table.get_mut(t) {
            for (k, v) in sub.iter_mut() {
                secrets.push(Secret {
                    key: format!("{t}.{}", k.get()),
                    set: true,
                });
                *v = toml_edit::value(MASK);
            }
        }
    }
    for (k, v) in table.iter_mut() {
        if let Item::Value(val) = v {
            if url_has_password(val) {
                let masked = redact_url(val.as_str().unwrap_or_default());
                secrets.push(Secret {
                    key: k.get().to_string(),
                    set: true,
                });
                *v = toml_edit::value(masked);
            }
        }
    }
    (doc.to_string(), secrets)
}

/// The full text to keep for an edit: the new text, with each secret it leaves out (or
/// shows masked) taken from the text before; a secret given as `""` is removed.
pub fn merge(new: &str, old: Option<&str>) -> Result<String, String> {
    let mut doc = new
        .parse::<DocumentMut>()
        .map_err(|e| e.to_string().trim().replace('\n', " "))?;
    let old_doc = old.and_then(|o| o.parse::<DocumentMut>().ok());
    let table = doc.as_table_mut();
    for key in SECRET_KEYS {
        match table.get(key).and_then(|i| i.as_str()) {
            Some("") => {
                table.remove(key);
            }
            Some(MASK) | None => {
                table.remove(key);
                if let Some(v) = old_doc.as_ref().and_then(|d| d.get(key)) {
                    table.insert(key, v.clone());
                }
            }
            Some(_) => {}
        }
    }
    for t in SECRET_TABLES {
        let old_t = old_doc.as_ref().and_then(|d| d.get(t));
        let old_value = |k: &str| -> Option<Value> {
            match old_t? {
                Item::Value(Value::InlineTable(i)) => i.get(k).cloned(),
                Item::Table(tb) => tb.get(k).and_then(|i| i.as_value()).cloned(),
                _ => None,
            }
        };
        let fix = |k: &str, v: &Value| -> Option<Option<Value>> {
            match v.as_str() {
                Some("") => Some(None),
                Some(MASK) => Some(old_value(k)),
                _ => None,
            }
        };
        match table.get_mut(t) {
            Some(Item::Value(Value::InlineTable(inline))) => {
                let keys: Vec<String> = inline.iter().map(|(k, _)| k.to_string()).collect();
                for k in keys {
                    if let Some(change) = inline.get(&k).and_then(|v| fix(&k, v)) {
                        match change {
                            Some(v) => {
                                inline.insert(&k, v);
                            }
                            None => {
                                inline.remove(&k);
                            }
                        }
                    }
                }
            }
            Some(Item::Table(sub)) => {
                let keys: Vec<String> = sub.iter().map(|(k, _)| k.to_string()).collect();
                for k in keys {
                    let change = sub
                        .get(&k)
                        .and_then(|i| i.as_value())
                        .and_then(|v| fix(&k, v));
                    match change {
                        Some(Some(v)) => {
                            sub.insert(&k, Item::Value(v));
                        }
                        Some(None) => {
                            sub.remove(&k);
                        }
                        None => {}
                    }
                }
            }
            // Left out entirely: the headers before stay.
            None => {
                if let Some(o) = old_t {
                    table.insert(t, o.clone());
                }
            }
            _ => {}
        }
    }
    // A URL shown with its password masked keeps the password it had.
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
    for k in keys {
        let Some(s) = table.get(&k).and_then(|i| i.as_str()).map(str::to_string) else {
            continue;
        };
        let Ok(mut u) = url::Url::parse(&s) else {
            continue;
        };
        let masked = u
            .password()
            .is_some_and(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy() == MASK);
        if masked {
            let old_pw = old_doc
                .as_ref()
                .and_then(|d| d.get(&k))
                .and_then(|i| i.as_str())
                .and_then(|o| url::Url::parse(o).ok())
                .and_then(|o| o.password().map(str::to_string));
            let _ = u.set_password(old_pw.as_deref());
            table.insert(&k, toml_edit::value(u.to_string()));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"name = "kho-du-lieu"
kind = "http"
url = "https://u:p4ss@data.nghean.gov.vn/api"
bearer_token = "tok-SECRET-1"
headers = { "X-Api-Key" = "key-SECRET-2", "Accept" = "application/json" }
interval = "1m"
"#;

    #[test]
    fn secrets_are_not_shown() {
        let (shown, secrets) = redact(FULL);
        for s in ["tok-SECRET-1", "key-SECRET-2", "p4ss"] {
            assert!(!shown.contains(s), "{s} in {shown}");
        }
        assert!(shown.contains("interval"));
        assert!(shown.contains("X-Api-Key"));
        let keys: Vec<&str> = secrets.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            ["bearer_token", "headers.X-Api-Key", "headers.Accept", "url"]
        );
        assert!(secrets.iter().all(|s| s.set));
    }

    #[test]
    fn an_edit_keeps_what_it_leaves_out_and_removes_what_it_empties() {
        let (shown, _) = redact(FULL);
        // Unchanged form sent back: every secret as before.
        let kept = merge(&shown.replace("1m", "5m"), Some(FULL)).unwrap();
        for s in ["tok-SECRET-1", "key-SECRET-2", "u:p4ss@", "5m"] {
            assert!(kept.contains(s), "{s} not in {kept}");
        }
        // A new token, the key removed.
        let edit = shown
            .replace("interval", "bearer_token = \"tok-NEW\"\ninterval")
            .replace(
                &format!("\"X-Api-Key\" = \"{MASK}\""),
                "\"X-Api-Key\" = \"\"",
            );
        let changed = merge(&edit, Some(FULL)).unwrap();
        assert!(
            changed.contains("tok-NEW") && !changed.contains("tok-SECRET-1"),
            "{changed}"
        );
        assert!(!changed.contains("X-Api-Key"), "{changed}");
        // A password cleared.
        let cleared = merge(
            "name = \"x\"\nkind = \"mqtt\"\npassword = \"\"\n",
            Some("password = \"pw\""),
        )
        .unwrap();
        assert!(!cleared.contains("password"));
    }

    #[test]
    fn urls_in_text_are_masked() {
        let t = "connection to mqtts://iot:hunter2@broker.local:8883 failed (refused)";
        let r = redact_text(t);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("broker.local"));
        assert_eq!(redact_text("no url here"), "no url here");
    }
}
