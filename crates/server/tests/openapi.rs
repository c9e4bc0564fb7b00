//! The OpenAPI 3.1 document is made from the code (the route table and the handlers' types),
//! served at `/api/openapi.json`, and kept in `docs/openapi.json` for integrators. This test
//! fails when the two differ; `UPDATE_OPENAPI=1 cargo test -p ioc-server --test openapi`
//! writes the current one.

mod common;

use serde_json::Value;

fn document() -> Value {
    serde_json::to_value(ioc_server::openapi()).unwrap()
}

#[test]
fn the_document_describes_every_route_with_its_policy() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    let table = ioc_server::routes::table();
    let mut described = 0;
    for r in &table {
        if r.path.contains("{*") {
            continue; // the catch-all "no such route"
        }
        let op = &paths
            .get(r.path)
            .unwrap_or_else(|| panic!("{} is not in the document", r.path))
            [r.method.to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} is not in the document",
            r.method,
            r.path
        );
        let policy = op
            .get("x-ioc-permission")
            .or_else(|| op.get("x-ioc-access"))
            .unwrap_or_else(|| panic!("{} {} has no policy in the document", r.method, r.path));
        assert!(policy.is_string());
        assert!(op["x-ioc-scope"].is_string(), "{} {}", r.method, r.path);
        assert!(op["responses"].as_object().is_some_and(|m| !m.is_empty()));
        described += 1;
    }
    assert!(described > 70, "{described}");
    // Bodies and answers have schemas, by reference to the components.
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for name in [
        "Alert",
        "Incident",
        "Entity",
        "ErrorBody",
        "SourceStatus",
        "KpiValue",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }
}

#[test]
fn the_published_copy_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let current = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == current,
        "docs/openapi.json is not the API as built: run \
         `UPDATE_OPENAPI=1 cargo test -p ioc-server --test openapi` and commit it"
    );
}

#[tokio::test]
async fn the_server_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ioc_engine::Config::default().without_demo();
    config.paths.data = Some(dir.path().to_owned());
    let engine = std::sync::Arc::new(ioc_engine::Engine::start(config).await.unwrap());
    let addr = common::serve(engine.clone()).await;
    let served: Value = reqwest::get(format!("http://{addr}/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, document());
}
