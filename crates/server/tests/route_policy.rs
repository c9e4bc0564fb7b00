//! Walks the server's whole route table (`ioc_server::routes::table()`, the one the router
//! and the access check are built from) and checks every route's policy with real requests
//! over a socket:
//!
//! - without a session, every route that is not public answers 401;
//! - a role that lacks the route's permission gets 403;
//! - a route for the province's people refuses an administrator of one commune;
//! - a route about one thing of a unit refuses someone of another unit, and serves
//!   someone of that unit (so the refusal is about the scope, not a wrong id);
//! - a list leaves out another unit's things, and shows them to that unit.
//!
//! Each route needs an example request here: a route added without one fails this test, and
//! so does a route added outside the table.

mod common;

use futures_util::StreamExt;
use ioc_engine::auth::{may, NewUser, Permission};
use ioc_engine::{Item, Obs};
use ioc_model::{Domain, Entity, Role};
use ioc_server::routes::{Access, Kind, Route, Scoping};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const A: &str = "16681";
const B: &str = "16684";
const PASSWORD: &str = "mật khẩu ca trực";

use common::start;

fn flooded_gauge(id: &str, unit: &str) -> Vec<Item> {
    let e = Entity::new(
        id,
        "WaterLevelGauge",
        &format!("Thủy văn {id}"),
        Domain::Water,
    )
    .at(105.5, 18.7)
    .in_unit(unit, &format!("Xã {unit}"))
    .with_attr("alarm_1", 3.0)
    .with_attr("alarm_2", 4.0)
    .with_attr("alarm_3", 5.0)
    // Watched by a camera (nothing answers there): the camera routes have a stream to check.
    .with_attr("rtsp_url", "rtsp://127.0.0.1:9/gauge")
    .with_attr("simulated", true);
    vec![
        Item::Unit(ioc_model::Unit {
            code: unit.into(),
            name: format!("Xã {unit}"),
            full_name: None,
            parent: None,
            lon: None,
            lat: None,
        }),
        Item::Entity(Box::new(e)),
        Item::Obs(Obs {
            entity: Arc::from(id),
            metric: Arc::from("water_level"),
            time: chrono::Utc::now() - chrono::Duration::seconds(5),
            value: 5.5,
        }),
    ]
}

#[derive(Clone)]
struct Client {
    addr: SocketAddr,
    token: Option<String>,
}

enum Body {
    None,
    Json(Value),
    Text(&'static str),
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: &Body) -> (u16, String) {
        let c = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = c.request(m, url);
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r = match body {
            Body::None => r,
            Body::Json(v) => r.json(v),
            Body::Text(t) => r.body(*t),
        };
        let r = r.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    async fn login(addr: SocketAddr, user: &str) -> Client {
        let (s, v) = Client { addr, token: None }
            .call(
                "POST",
                "/api/login",
                &Body::Json(json!({"username": user, "password": PASSWORD, "token": true})),
            )
            .await;
        assert_eq!(s, 200, "{user}: {v}");
        let v: Value = serde_json::from_str(&v).unwrap();
        Client {
            addr,
            token: Some(v["token"].as_str().unwrap().to_string()),
        }
    }

    /// The answer's bytes as they are (the sync routes answer gzip).
    async fn call_bytes(&self, method: &str, path: &str, body: &Body) -> (u16, Vec<u8>) {
        let c = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = c.request(m, url);
        if let Some(t) = &self.token {
            // A node syncs from one data folder (its incarnation): here, one per token.
            r = r.bearer_auth(t).header(
                "x-ioc-incarnation",
                t.chars().rev().take(16).collect::<String>(),
            );
        }
        if let Body::Json(v) = body {
            r = r.json(v);
        }
        let r = r.send().await.unwrap();
        (
            r.status().as_u16(),
            r.bytes().await.unwrap_or_default().to_vec(),
        )
    }

    /// The live feed's first message (a snapshot), as JSON.
    async fn feed(&self) -> Result<Value, u16> {
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(t) = &self.token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((mut ws, _)) => {
                let m = ws.next().await.unwrap().unwrap().into_text().unwrap();
                Ok(serde_json::from_str(&m).unwrap())
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
            Err(e) => panic!("feed: {e}"),
        }
    }
}

/// The things of unit A the checks ask about.
struct Fixtures {
    entity: String,
    alert: i64,
    incident: i64,
    attachment: i64,
    clip: i64,
    directive: i64,
    silence: i64,
    report: i64,
    report_file: String,
    kpi: String,
    dashboard: String,
    step: String,
}

/// A request for a route: its path with ids of unit A's things, and a body.
fn example(r: &Route, f: &Fixtures) -> Option<(String, Body)> {
    let j = Body::Json;
    let text = "name = \"x\"\nwhen = \"value > 1.0\"\nseverity = \"major\"\nmessage = \"m\"\n";
    let p = match (r.method, r.path) {
        ("POST", "/api/login") => (
            r.path.into(),
            j(json!({"username": "nobody", "password": "x"})),
        ),
        ("GET", "/api/session/desktop") => ("/api/session/desktop?ticket=x".into(), Body::None),
        ("GET", "/api/auth/oidc/callback") => {
            ("/api/auth/oidc/callback?code=x&state=y".into(), Body::None)
        }
        ("GET", "/api/entities/{id}") => (format!("/api/entities/{}", f.entity), Body::None),
        ("GET", "/api/cameras/{id}")
        | ("GET", "/api/cameras/{id}/live")
        | ("GET", "/api/cameras/{id}/snapshot") => (r.path.replace("{id}", &f.entity), Body::None),
        ("PUT", "/api/cameras/{id}/credentials") => (
            r.path.replace("{id}", &f.entity),
            j(json!({"username": "u", "password": "p"})),
        ),
        ("GET", "/api/entities/{id}/series") => (
            format!("/api/entities/{}/series?metric=water_level", f.entity),
            Body::None,
        ),
        ("GET", "/api/basemap/tiles/{z}/{x}/{y}") => {
            ("/api/basemap/tiles/0/0/0".into(), Body::None)
        }
        ("GET", "/api/alerts") => ("/api/alerts?state=all".into(), Body::None),
        ("GET", "/api/alerts/{id}") => (format!("/api/alerts/{}", f.alert), Body::None),
        ("GET", "/api/alerts/{id}/cap") => (format!("/api/alerts/{}/cap", f.alert), Body::None),
        ("POST", "/api/alerts/{id}/{action}") => (
            format!("/api/alerts/{}/comment", f.alert),
            j(json!({"comment": "đã xem"})),
        ),
        ("POST", "/api/users") => (
            r.path.into(),
            j(json!({"username": "new-user", "role": "operator", "password": "đủ dài rồi nhé"})),
        ),
        ("POST", "/api/sources") => (
            r.path.into(),
            Body::Text("name = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n"),
        ),
        ("DELETE", "/api/sources/{name}") => ("/api/sources/none".into(), Body::None),
        ("POST", "/api/import") => ("/api/import?format=geojson".into(), Body::Text("{}")),
        ("GET", "/api/sync/held") => (r.path.into(), Body::None),
        ("POST", "/api/sync/push") => (r.path.into(), j(json!({"ops": []}))),
        ("POST", "/api/sync/pull") => (r.path.into(), j(json!({"held": {}, "limit": 100}))),
        ("POST", "/api/sync/data") => (
            r.path.into(),
            j(json!({"entities": [], "obs": [], "upto": 0})),
        ),
        ("POST", "/api/rules") | ("POST", "/api/rules/validate") => {
            (r.path.into(), j(json!({ "text": text })))
        }
        ("POST", "/api/rules/backtest") => (r.path.into(), j(json!({ "text": text }))),
        ("PUT", "/api/rules/{name}") => ("/api/rules/x".into(), j(json!({ "text": text }))),
        ("DELETE", "/api/rules/{name}") => ("/api/rules/x".into(), Body::None),
        ("GET", "/api/incidents") => ("/api/incidents?state=all".into(), Body::None),
        ("POST", "/api/incidents") => (r.path.into(), j(json!({"alerts": [f.alert]}))),
        ("GET", "/api/incidents/{id}") => (format!("/api/incidents/{}", f.incident), Body::None),
        ("POST", "/api/incidents/{id}/attachments") => (
            format!("/api/incidents/{}/attachments?name=a.txt", f.incident),
            Body::Text("hello"),
        ),
        ("GET", "/api/incidents/{id}/{action}") => (
            format!("/api/incidents/{}/report.csv", f.incident),
            Body::None,
        ),
        ("POST", "/api/incidents/{id}/{action}") => (
            format!("/api/incidents/{}/comment", f.incident),
            j(json!({"comment": "đang xử lý"})),
        ),
        ("POST", "/api/incidents/{id}/steps/{step}/{action}") => (
            format!("/api/incidents/{}/steps/{}/skip", f.incident, f.step),
            j(json!({"comment": "bỏ qua"})),
        ),
        ("POST", "/api/cameras/{id}/clips") => (
            r.path.replace("{id}", &f.entity),
            j(json!({"alert": f.alert, "before_s": 0, "after_s": 0})),
        ),
        ("GET", "/api/clips") => ("/api/clips".into(), Body::None),
        ("GET", "/api/clips/{id}") | ("GET", "/api/clips/{id}/file") => {
            (r.path.replace("{id}", &f.clip.to_string()), Body::None)
        }
        ("GET", "/api/attachments/{id}") => {
            (format!("/api/attachments/{}", f.attachment), Body::None)
        }
        ("GET", "/api/directives") => ("/api/directives?state=all".into(), Body::None),
        ("POST", "/api/directives") => (
            r.path.into(),
            j(json!({"unit": A, "title": "Sơ tán", "body": "Ngay", "within": "2h"})),
        ),
        ("GET", "/api/directives/{id}") => (format!("/api/directives/{}", f.directive), Body::None),
        ("POST", "/api/directives/{id}/{action}") => (
            format!("/api/directives/{}/report", f.directive),
            j(json!({"text": "đang làm", "progress": 10})),
        ),
        ("GET", "/api/silences") => ("/api/silences?all=true".into(), Body::None),
        ("POST", "/api/silences") => (
            r.path.into(),
            j(json!({"unit": A, "duration": "1h", "comment": "bảo trì"})),
        ),
        ("DELETE", "/api/silences/{id}") => (format!("/api/silences/{}", f.silence), Body::None),
        ("POST", "/api/sops") | ("POST", "/api/sops/validate") => {
            (r.path.into(), j(json!({"text": "name = \"x\""})))
        }
        ("PUT", "/api/sops/{name}") => ("/api/sops/x".into(), j(json!({"text": "name = \"x\""}))),
        ("DELETE", "/api/sops/{name}") => ("/api/sops/x".into(), Body::None),
        ("GET", "/api/sops/{name}/versions/{version}") => {
            ("/api/sops/x/versions/1".into(), Body::None)
        }
        ("GET", "/api/kpis") => (format!("/api/kpis?unit={A}"), Body::None),
        ("GET", "/api/kpis/{id}") => (format!("/api/kpis/{}?unit={A}", f.kpi), Body::None),
        ("GET", "/api/kpis/{id}/series") => {
            (format!("/api/kpis/{}/series?unit={A}", f.kpi), Body::None)
        }
        ("GET", "/api/kpis/{id}/detail") => {
            (format!("/api/kpis/{}/detail?unit={A}", f.kpi), Body::None)
        }
        ("POST", "/api/kpi-defs") | ("POST", "/api/kpi-defs/validate") => {
            (r.path.into(), j(json!({"text": "id = \"x\""})))
        }
        ("PUT", "/api/kpi-defs/{id}") => {
            ("/api/kpi-defs/x".into(), j(json!({"text": "id = \"x\""})))
        }
        ("DELETE", "/api/kpi-defs/{id}") => ("/api/kpi-defs/x".into(), Body::None),
        ("POST", "/api/dashboards") => (
            r.path.into(),
            j(
                json!({"id": "", "name": "x", "owner": "", "panels": [], "updated_at": "2026-12-01T00:00:00Z"}),
            ),
        ),
        ("GET", "/api/dashboards/{id}") | ("DELETE", "/api/dashboards/{id}") => {
            (format!("/api/dashboards/{}", f.dashboard), Body::None)
        }
        ("PUT", "/api/dashboards/{id}") => (
            format!("/api/dashboards/{}", f.dashboard),
            j(
                json!({"id": "", "name": "x", "owner": "", "panels": [], "updated_at": "2026-12-01T00:00:00Z"}),
            ),
        ),
        ("PUT", "/api/wall") => (r.path.into(), j(json!({"screens": []}))),
        ("POST", "/api/reports") => (
            r.path.into(),
            j(json!({"period": "day", "date": "2026-12-01", "unit": A, "format": "csv"})),
        ),
        ("GET", "/api/reports/files/{name}") => {
            (format!("/api/reports/files/{}", f.report_file), Body::None)
        }
        ("GET", "/api/reports/{id}") => (format!("/api/reports/{}", f.report), Body::None),
        ("GET", "/api/reports/{id}/file") => {
            (format!("/api/reports/{}/file", f.report), Body::None)
        }
        (_, "/api/{*rest}") => ("/api/no/such/route".into(), Body::None),
        (_, path) if !path.contains('{') => (path.into(), Body::None),
        _ => return None,
    };
    Some(p)
}

fn refused(s: u16) -> bool {
    s == 403 || s == 404
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_declares_and_enforces_its_policy() {
    let (dir, engine, addr) = start().await;
    let mut items = flooded_gauge("wl-a", A);
    items.extend(flooded_gauge("wl-b", B));
    engine.sender().ingest("t", items).await.unwrap();

    let now = chrono::Utc::now().timestamp_millis();
    let users: &[(&str, Role, &[&str])] = &[
        ("admin", Role::Admin, &[]),
        ("sup", Role::Supervisor, &[]),
        ("op", Role::Operator, &[]),
        ("leader", Role::Leader, &[]),
        ("oc-prov", Role::OcStaff, &[]),
        ("admin-a", Role::Admin, &[A]),
        ("admin-b", Role::Admin, &[B]),
    ];
    for (name, role, units) in users {
        engine
            .auth()
            .add_user(
                &NewUser {
                    username: name.to_string(),
                    display_name: None,
                    role: *role,
                    units: units.iter().map(|u| u.to_string()).collect(),
                    password: PASSWORD.into(),
                },
                "test",
                now,
            )
            .unwrap();
    }
    let admin = Client::login(addr, "admin").await;
    let admin_a = Client::login(addr, "admin-a").await;
    let admin_b = Client::login(addr, "admin-b").await;
    // Node accounts of unit A and of unit B (the federation's link).
    let node = |name: &str, unit: &str| {
        let conn = ioc_engine::store::connect_path(engine.store()).unwrap();
        let token = ioc_engine::auth::add_node(&conn, name, &[unit.to_string()], "test", now, None)
            .unwrap();
        Client {
            addr,
            token: Some(token),
        }
    };
    let (node_a, node_b) = (node("node-a", A), node("node-b", B));
    let mut by_role = Vec::new();
    for (name, role) in [
        ("oc-prov", Role::OcStaff),
        ("leader", Role::Leader),
        ("op", Role::Operator),
        ("sup", Role::Supervisor),
    ] {
        by_role.push((role, Client::login(addr, name).await));
    }
    let anon = Client { addr, token: None };

    // Unit A's things.
    let ok = |(s, v): (u16, String), what: &str| -> Value {
        assert!((200..300).contains(&s), "{what}: {s} {v}");
        serde_json::from_str(&v).unwrap_or(Value::Null)
    };
    let alerts = ok(
        admin.call("GET", "/api/alerts", &Body::None).await,
        "alerts",
    );
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["unit"] == A)
        .expect("unit A's alert")["id"]
        .as_i64()
        .unwrap();
    // The flood alert opened its incident by itself (its rule names an SOP).
    let incidents = ok(
        admin.call("GET", "/api/incidents", &Body::None).await,
        "incidents",
    );
    let incident = incidents
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["unit"] == A)
        .unwrap_or_else(|| panic!("unit A's incident: {incidents}"))["id"]
        .as_i64()
        .unwrap();
    let inc = ok(
        admin
            .call("GET", &format!("/api/incidents/{incident}"), &Body::None)
            .await,
        "incident",
    );
    let step = inc["steps"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the flood incident works through an SOP: {inc}"))
        .to_string();
    let attachment = ok(
        admin
            .call(
                "POST",
                &format!("/api/incidents/{incident}/attachments?name=anh.txt"),
                &Body::Text("ảnh hiện trường"),
            )
            .await,
        "attachment",
    )["id"]
        .as_i64()
        .unwrap();
    // A clip of the gauge's camera for the alert (nothing answers there: it fails, and is
    // kept as a record all the same).
    let clip = ok(
        admin
            .call(
                "POST",
                "/api/cameras/wl-a/clips",
                &Body::Json(json!({"alert": alert, "before_s": 0, "after_s": 0})),
            )
            .await,
        "clip",
    )["id"]
        .as_i64()
        .unwrap();
    let directive = ok(
        admin
            .call(
                "POST",
                "/api/directives",
                &Body::Json(json!({"unit": A, "title": "Sơ tán", "body": "Ngay", "within": "2h"})),
            )
            .await,
        "directive",
    )["id"]
        .as_i64()
        .unwrap();
    let silence = ok(
        admin
            .call(
                "POST",
                "/api/silences",
                &Body::Json(json!({"unit": A, "duration": "1h", "comment": "bảo trì"})),
            )
            .await,
        "silence",
    )["id"]
        .as_i64()
        .unwrap();
    let report = ok(
        admin
            .call(
                "POST",
                "/api/reports",
                &Body::Json(
                    json!({"period": "day", "date": "2026-12-01", "unit": A, "format": "csv"}),
                ),
            )
            .await,
        "report",
    )["id"]
        .as_i64()
        .unwrap();
    for _ in 0..200 {
        let j = ok(
            admin
                .call("GET", &format!("/api/reports/{report}"), &Body::None)
                .await,
            "report job",
        );
        if j["state"] == "done" {
            break;
        }
        assert_ne!(j["state"], "failed", "{j}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let report_file = format!("bao-cao-all-{A}-day-2026-11-30.csv");
    let folder = engine.config().reports_dir();
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join(&report_file), "kpi,value\n").unwrap();
    let kpis = ok(admin.call("GET", "/api/kpis", &Body::None).await, "kpis");
    let kpi = kpis[0]["id"].as_str().expect("a KPI").to_string();
    let dashboard = ok(
        admin_a
            .call(
                "POST",
                "/api/dashboards",
                &Body::Json(json!({"id": "", "name": "x", "owner": "", "panels": [], "updated_at": "2026-12-01T00:00:00Z"})),
            )
            .await,
        "dashboard",
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let f = Fixtures {
        entity: "wl-a".into(),
        alert,
        incident,
        attachment,
        clip,
        directive,
        silence,
        report,
        report_file,
        kpi,
        dashboard,
        step,
    };

    let table = ioc_server::routes::table();
    assert!(table.len() > 60, "the whole table: {}", table.len());
    let mut checked = (0, 0, 0, 0);
    let mut missing = Vec::new();
    for r in &table {
        let Some((path, body)) = example(r, &f) else {
            missing.push(format!("{} {}", r.method, r.path));
            continue;
        };
        let what = format!("{} {path}", r.method);
        if r.path == "/ws" {
            assert_eq!(anon.feed().await.err(), Some(401), "{what}");
            let a = admin_a.feed().await.unwrap();
            let b = admin_b.feed().await.unwrap();
            assert!(a.to_string().contains(A), "{what}: unit A's feed shows A");
            assert!(
                !b.to_string().contains(A),
                "{what}: unit B's feed shows no A: {b}"
            );
            checked.3 += 1;
            continue;
        }
        match r.access {
            Access::Public => {
                // Answered by the route itself (a wrong password is its own 401).
                let (_, v) = anon.call(r.method, &path, &body).await;
                assert!(!v.contains("sign in first"), "{what} is public: {v}");
                continue;
            }
            Access::Role(perm) => {
                let (s, v) = anon.call(r.method, &path, &body).await;
                assert_eq!(s, 401, "{what} without a session: {v}");
                checked.0 += 1;
                if let Some((role, c)) = by_role.iter().find(|(role, _)| !may(*role, perm)) {
                    let (s, v) = c.call(r.method, &path, &body).await;
                    assert_eq!(s, 403, "{what} as a {role:?}, without {perm:?}: {v}");
                    checked.1 += 1;
                }
            }
        }
        match r.scoping {
            Scoping::Unscoped(_) => {}
            Scoping::Nodes(_) => {
                let (s, v) = admin_a.call(r.method, &path, &body).await;
                assert_eq!(s, 403, "{what} is for node accounts: {v}");
                let (sa, a) = node_a.call_bytes(r.method, &path, &body).await;
                let (sb, b) = node_b.call_bytes(r.method, &path, &body).await;
                assert_eq!((sa, sb), (200, 200), "{what} as a node");
                if r.path == "/api/sync/pull" {
                    let read = |b: &[u8]| {
                        ioc_engine::sync::wire::decode::<ioc_engine::sync::wire::PullReply>(b, true)
                            .unwrap()
                    };
                    let (a, b) = (read(&a), read(&b));
                    let units = |r: &ioc_engine::sync::wire::PullReply| {
                        r.ops
                            .iter()
                            .filter_map(|o| match &o.change {
                                ioc_engine::sync::Change::Alert {
                                    op: ioc_engine::sync::AlertOp::Opened { alert },
                                    ..
                                } => alert.unit.clone(),
                                _ => None,
                            })
                            .collect::<Vec<_>>()
                    };
                    assert!(
                        units(&a).contains(&A.to_string()),
                        "{what}: A's node gets A's"
                    );
                    assert!(
                        !units(&b).contains(&A.to_string()),
                        "{what}: B's node gets none of A's"
                    );
                }
                checked.2 += 1;
            }
            Scoping::Province(_) => {
                let (s, v) = admin_b.call(r.method, &path, &body).await;
                assert_eq!(s, 403, "{what} is for the province's people: {v}");
                checked.2 += 1;
            }
            Scoping::Item(_) | Scoping::UnitParam(_) | Scoping::Body(_) => {
                let (s, v) = admin_b.call(r.method, &path, &body).await;
                assert!(refused(s), "{what}: unit B's admin gets {s}: {v}");
                let (s, v) = admin_a.call(r.method, &path, &body).await;
                assert!(
                    !refused(s) && s != 401,
                    "{what}: unit A's admin is let through, got {s}: {v}"
                );
                checked.2 += 1;
            }
            Scoping::List(kind) => {
                let (s, a) = admin_a.call(r.method, &path, &body).await;
                assert_eq!(s, 200, "{what}: {a}");
                let (s, b) = admin_b.call(r.method, &path, &body).await;
                assert_eq!(s, 200, "{what}: {b}");
                let marker = match kind {
                    Kind::Report => A.to_string(),
                    _ => format!("\"{A}\""),
                };
                assert!(a.contains(&marker), "{what}: unit A sees its own: {a}");
                assert!(!b.contains(&marker), "{what}: unit B sees A's: {b}");
                checked.2 += 1;
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without an example request in this test: {missing:?}"
    );
    // Every check the table calls for ran.
    let roles = table
        .iter()
        .filter(|r| r.path != "/ws" && matches!(r.access, Access::Role(_)))
        .count();
    let narrower = table
        .iter()
        .filter(|r| r.path != "/ws")
        .filter(|r| matches!(r.access, Access::Role(p) if p != Permission::View))
        .count();
    let scoped = table
        .iter()
        .filter(|r| r.path != "/ws" && matches!(r.access, Access::Role(_)))
        .filter(|r| !matches!(r.scoping, Scoping::Unscoped(_)))
        .count();
    assert_eq!(checked, (roles, narrower, scoped, 1));
    assert!(roles > 60 && narrower > 25 && scoped > 40, "{checked:?}");
    drop(dir);
}

/// Routes are only ever added through the table: no `.route(` elsewhere in the server, but
/// a standby node's one route of its own, its readiness check, which the table declares
/// public (everything else a standby is asked goes to the active node and its table).
#[test]
fn routes_are_added_through_the_table_only() {
    let ready = ioc_server::routes::table()
        .into_iter()
        .find(|r| r.path == "/api/ready")
        .expect("readiness in the table");
    assert!(matches!(ready.access, Access::Public));
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offenders = Vec::new();
    let mut files = 0;
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            files += 1;
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let mut text = std::fs::read_to_string(&p).unwrap();
            if name == "standby.rs" {
                text = text.replacen(".route(\"/api/ready\", get(ready))", "", 1);
            }
            for needle in [
                ".route(",
                ".nest(",
                ".merge(",
                "route_service(",
                ".api_route(",
            ] {
                if text.contains(needle) && !(name == "routes.rs" && needle == ".api_route(") {
                    offenders.push(format!("{name}: {needle}"));
                }
            }
        }
    }
    assert!(files > 5);
    assert!(
        offenders.is_empty(),
        "routes outside the table: {offenders:?}"
    );
}

/// Every permission a route needs exists for some role, and no role is refused
/// everything: a typo in the matrix would show here.
#[test]
fn the_permission_matrix_is_sane() {
    // Everything is the administrator's, but the federation's link, which is a node's only.
    for p in Permission::ALL {
        assert_eq!(may(Role::Admin, p), p != Permission::Sync, "{p:?}");
        assert_eq!(may(Role::Node, p), p == Permission::Sync, "{p:?}");
    }
    for r in [
        Role::Supervisor,
        Role::Operator,
        Role::Leader,
        Role::OcStaff,
    ] {
        assert!(may(r, Permission::View));
    }
}
