//! Sign-in, roles and unit scopes over real sockets: the server refuses (401 without a
//! session, 403 outside the role or the units), not only the UI; every change is in a
//! verifiable audit log.

mod common;

use futures_util::StreamExt;
use ioc_engine::auth::NewUser;
use ioc_engine::{Item, Obs};
use ioc_model::{Domain, Entity, Role};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::start;

/// A gauge in a commune, over its third alarm level (the demo rules raise a critical alert).
fn flooded_gauge(id: &str, unit: &str) -> Vec<Item> {
    let e = Entity::new(
        id,
        "WaterLevelGauge",
        &format!("Thủy văn {id}"),
        Domain::Water,
    )
    .at(105.5, 18.7)
    .in_unit(unit, unit)
    .with_attr("alarm_1", 3.0)
    .with_attr("alarm_2", 4.0)
    .with_attr("alarm_3", 5.0);
    vec![
        Item::Entity(Box::new(e)),
        Item::Obs(Obs {
            entity: Arc::from(id),
            metric: Arc::from("water_level"),
            time: chrono::Utc::now() - chrono::Duration::seconds(5),
            value: 5.5,
        }),
    ]
}

struct Client {
    addr: SocketAddr,
    token: Option<String>,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let c = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let mut r = match method {
            "GET" => c.get(url),
            "PUT" => c.put(url),
            "DELETE" => c.delete(url),
            _ => c.post(url),
        };
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn call_text(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let c = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let mut r = match method {
            "PUT" => c.put(url),
            _ => c.post(url),
        };
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        let r = r.body(body.to_string()).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn login(addr: SocketAddr, user: &str) -> Client {
        let anon = Client { addr, token: None };
        let (s, v) = anon
            .call(
                "POST",
                "/api/login",
                Some(json!({"username": user, "password": "mật khẩu ca trực", "token": true})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        Client {
            addr,
            token: Some(v["token"].as_str().unwrap().to_string()),
        }
    }
}

/// A WebSocket request to the feed with a bearer token.
fn ws_request(
    addr: SocketAddr,
    token: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

fn user(name: &str, role: Role, units: &[&str]) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: None,
        role,
        units: units.iter().map(|u| u.to_string()).collect(),
        password: "mật khẩu ca trực".into(),
    }
}

/// A load balancer and systemd see a node is up and ready without a token, once accounts
/// exist and everything else needs a session; they learn nothing more; a stopping node is
/// not ready (503), so the balancer drains it.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_answers_without_a_token_and_says_nothing_else() {
    let (_dir, engine, addr) = start().await;
    let now = chrono::Utc::now().timestamp_millis();
    engine
        .auth()
        .add_user(&user("admin", Role::Admin, &[]), "test", now)
        .unwrap();
    let anon = Client { addr, token: None };
    assert_eq!(anon.call("GET", "/api/health", None).await.0, 401);
    let (s, r) = anon.call("GET", "/api/ready", None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r, json!({"up": true, "ready": true, "store": true}));
    engine.shutdown().await;
    let (s, r) = anon.call("GET", "/api/ready", None).await;
    assert_eq!(s, 503, "{r}");
    assert_eq!(r["up"], true);
    assert_eq!(r["ready"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_key_is_taken_from_this_machine_but_not_through_a_proxy() {
    let (_dir, engine, addr) = start().await;
    let now = chrono::Utc::now().timestamp_millis();
    engine
        .auth()
        .add_user(&user("admin", Role::Admin, &[]), "test", now)
        .unwrap();
    let key = engine.auth().admin_key().to_string();
    let call = |forwarded: Option<&'static str>| {
        let mut r = reqwest::Client::new()
            .get(format!("http://{addr}/api/health"))
            .bearer_auth(&key);
        if let Some(f) = forwarded {
            r = r.header("x-forwarded-for", f);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(call(None).await, 200, "from loopback");
    // A standby node on this machine forwarding a request from elsewhere says so.
    assert_eq!(call(Some("10.20.0.7")).await, 401, "through a proxy");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_and_unit_scopes_are_enforced_by_the_server() {
    let (_dir, engine, addr) = start().await;
    let mut items = flooded_gauge("wl-vinh", "16681");
    items.extend(flooded_gauge("wl-cua-lo", "16684"));
    engine.sender().ingest("t", items).await.unwrap();
    let anon = Client { addr, token: None };

    // No account yet: the console is open (the demo, a fresh install).
    let (s, me) = anon.call("GET", "/api/me", None).await;
    assert_eq!(s, 200);
    assert_eq!(me["sign_in_required"], false);

    let auth = engine.auth();
    let now = chrono::Utc::now().timestamp_millis();
    auth.add_user(&user("admin", Role::Admin, &[]), "test", now)
        .unwrap();
    auth.add_user(&user("lan", Role::Operator, &[]), "test", now)
        .unwrap();
    auth.add_user(&user("oc-vinh", Role::OcStaff, &["16681"]), "test", now)
        .unwrap();
    auth.add_user(&user("lanh-dao", Role::Leader, &[]), "test", now)
        .unwrap();

    // Now every route but the login needs a session.
    assert_eq!(anon.call("GET", "/api/alerts", None).await.0, 401);
    assert_eq!(anon.call("GET", "/api/health", None).await.0, 401);
    let bad = Client {
        addr,
        token: Some("not-a-token".into()),
    };
    assert_eq!(bad.call("GET", "/api/entities", None).await.0, 401);
    let (s, _) = anon
        .call(
            "POST",
            "/api/login",
            Some(json!({"username": "lan", "password": "sai"})),
        )
        .await;
    assert_eq!(s, 401);
    // The WebSocket too: refused without a session, accepted with one (a header; a
    // token in the address would end up in logs and is not taken).
    let ws = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    assert!(ws.is_err(), "the feed needs a session");

    let lan = Client::login(addr, "lan").await;
    let oc = Client::login(addr, "oc-vinh").await;
    let leader = Client::login(addr, "lanh-dao").await;
    let admin = Client::login(addr, "admin").await;
    let ws = tokio_tungstenite::connect_async(format!(
        "ws://{addr}/ws?token={}",
        oc.token.as_deref().unwrap()
    ))
    .await;
    assert!(ws.is_err(), "no token in the query");
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request(addr, oc.token.as_deref()))
        .await
        .unwrap();
    assert!(ws.next().await.unwrap().is_ok());

    let (_, alerts) = lan.call("GET", "/api/alerts", None).await;
    let alerts = alerts.as_array().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let id_of = |unit: &str| {
        alerts.iter().find(|a| a["unit"] == unit).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (vinh, cua_lo) = (id_of("16681"), id_of("16684"));

    // The OC's staff see and work only their commune's alerts.
    let (_, mine) = oc.call("GET", "/api/alerts", None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (s, v) = oc
        .call("POST", &format!("/api/alerts/{cua_lo}/ack"), None)
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = oc
        .call("POST", &format!("/api/alerts/{vinh}/ack"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["acked_by"], "oc-vinh");
    // …and may not close, nor touch sources or accounts.
    let (s, _) = oc
        .call("POST", &format!("/api/alerts/{vinh}/close"), None)
        .await;
    assert_eq!(s, 403);
    // A well-formed source (an admin may add it), so that only the role can be the reason.
    let source =
        "name = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\ndecoder = \"ngsi-ld\"\n";
    let (s, v) = oc.call_text("POST", "/api/sources", source).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = admin.call_text("POST", "/api/sources", source).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(admin.call("DELETE", "/api/sources/x", None).await.0, 204);
    let (s, _) = oc.call("GET", "/api/users", None).await;
    assert_eq!(s, 403);

    // A leader watches and directs, does not work the queue.
    let (s, _) = leader
        .call("POST", &format!("/api/alerts/{cua_lo}/ack"), None)
        .await;
    assert_eq!(s, 403);
    assert_eq!(leader.call("GET", "/api/alerts", None).await.0, 200);

    // An operator works any alert through its lifecycle.
    let path = |a: &str| format!("/api/alerts/{cua_lo}/{a}");
    let (s, v) = lan
        .call(
            "POST",
            &path("assign"),
            Some(json!({"to": "đội cứu hộ Cửa Lò"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "assigned");
    assert_eq!(lan.call("POST", &path("start"), None).await.0, 200);
    let (s, _) = lan.call("POST", &path("comment"), Some(json!({}))).await;
    assert_eq!(s, 400, "a comment needs text");
    let (s, _) = lan
        .call(
            "POST",
            &path("comment"),
            Some(json!({"comment": "nước đang rút"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = lan.call("POST", &path("close"), None).await;
    assert_eq!(s, 409, "not resolved yet");
    assert_eq!(lan.call("POST", &path("resolve"), None).await.0, 200);
    let (s, v) = lan.call("POST", &path("close"), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "closed");
    let (s, v) = lan.call("POST", &path("dance"), None).await;
    assert_eq!(s, 404, "{v}");
    let (_, a) = lan
        .call("GET", &format!("/api/alerts/{cua_lo}"), None)
        .await;
    let events: Vec<(String, String)> = a["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(events[0], ("system".into(), "raised".into()));
    assert!(
        events.contains(&("lan".into(), "comment".into())),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap().0, "lan");

    // Rules: everyone reads them; only a supervisor or admin validates, saves, backtests.
    let rule = json!({"text": "name = \"x\"\nwhen = \"value > 1.0\"\nseverity = \"major\"\nmessage = \"m\"\n"});
    let (s, list) = lan.call("GET", "/api/rules", None).await;
    assert_eq!(s, 200);
    assert!(!list["rules"].as_array().unwrap().is_empty());
    for (method, path) in [
        ("POST", "/api/rules"),
        ("POST", "/api/rules/validate"),
        ("POST", "/api/rules/backtest"),
        ("PUT", "/api/rules/x"),
        ("DELETE", "/api/rules/x"),
    ] {
        assert_eq!(
            lan.call(method, path, Some(rule.clone())).await.0,
            403,
            "{method} {path}"
        );
    }
    let (s, v) = admin
        .call("POST", "/api/rules/validate", Some(rule.clone()))
        .await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = admin.call("POST", "/api/rules", Some(rule.clone())).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = admin.call("POST", "/api/rules", Some(rule.clone())).await;
    assert_eq!(s, 400, "the name is taken: {v}");
    assert_eq!(v["problems"][0]["line"], 1);
    let (s, v) = admin
        .call("POST", "/api/rules/backtest", Some(rule.clone()))
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["firings"].is_array());
    assert_eq!(admin.call("DELETE", "/api/rules/x", None).await.0, 204);
    assert_eq!(admin.call("DELETE", "/api/rules/x", None).await.0, 404);

    // Shelving needs a time.
    let (s, _) = admin
        .call("POST", &format!("/api/alerts/{vinh}/shelve"), None)
        .await;
    assert_eq!(s, 400);

    // The audit log: readable by an admin, not an operator; intact.
    assert_eq!(lan.call("GET", "/api/audit", None).await.0, 403);
    let (s, log) = admin
        .call("GET", &format!("/api/audit?target=alert:{cua_lo}"), None)
        .await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"alert.comment"), "{actions:?}");
    let conn = ioc_engine::store::connect_path(engine.store()).unwrap();
    let n = ioc_engine::audit::verify(&conn).unwrap();
    assert!(n >= 10, "{n}");

    // Signing out ends the session.
    assert_eq!(lan.call("POST", "/api/logout", None).await.0, 204);
    assert_eq!(lan.call("GET", "/api/alerts", None).await.0, 401);
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.next()).await;
}
