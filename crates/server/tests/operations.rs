//! The operations API over real sockets, as people with different roles and units use it:
//! incidents and their steps, attachments, after-action reports, directives, silences and
//! SOP templates. Each refusal is the server's (403 outside the role or the units), not the
//! UI's.

mod common;

use futures_util::StreamExt;
use ioc_engine::auth::NewUser;
use ioc_engine::{Item, Obs};
use ioc_model::{Domain, Entity, Role, ServerMsg, Unit};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "mật khẩu ca trực";

use common::start;

/// A commune and a gauge in it over its third alarm level: the demo rule `water-alarm-3`
/// raises a critical alert and opens an incident through the flood SOP.
fn flooded(id: &str, unit: &str, unit_name: &str) -> Vec<Item> {
    let e = Entity::new(
        id,
        "WaterLevelGauge",
        &format!("Thủy văn {id}"),
        Domain::Water,
    )
    .at(105.5, 18.7)
    .in_unit(unit, unit_name)
    .with_attr("alarm_1", 3.0)
    .with_attr("alarm_2", 4.0)
    .with_attr("alarm_3", 5.0);
    vec![
        Item::Unit(Unit {
            code: unit.into(),
            name: unit_name.into(),
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

struct Client {
    addr: SocketAddr,
    token: String,
}

impl Client {
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let c = reqwest::Client::new();
        let url = format!("http://{}{path}", self.addr);
        let mut r = match method {
            "GET" => c.get(url),
            "PUT" => c.put(url),
            "DELETE" => c.delete(url),
            _ => c.post(url),
        }
        .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self.send(method, path, body).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn login(addr: SocketAddr, user: &str) -> Client {
        let r = reqwest::Client::new()
            .post(format!("http://{addr}/api/login"))
            .json(&json!({"username": user, "password": PASSWORD, "token": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{user}");
        let v: Value = r.json().await.unwrap();
        Client {
            addr,
            token: v["token"].as_str().unwrap().to_string(),
        }
    }
}

fn user(name: &str, role: Role, units: &[&str]) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: None,
        role,
        units: units.iter().map(|u| u.to_string()).collect(),
        password: PASSWORD.into(),
    }
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test(flavor = "multi_thread")]
async fn incidents_directives_silences_and_templates_by_role_and_unit() {
    let (_dir, engine, addr) = start().await;
    let mut items = flooded("wl-vinh", "16681", "Phường Thành Vinh");
    items.extend(flooded("wl-cua-lo", "16684", "Phường Cửa Lò"));
    engine.sender().ingest("t", items).await.unwrap();
    let auth = engine.auth();
    let now = chrono::Utc::now().timestamp_millis();
    for (name, role, units) in [
        ("sup", Role::Supervisor, &[][..]),
        ("lan", Role::Operator, &[]),
        ("oc-vinh", Role::OcStaff, &["16681"]),
        ("oc-cualo", Role::OcStaff, &["16684"]),
        ("lanh-dao", Role::Leader, &[]),
    ] {
        auth.add_user(&user(name, role, units), "test", now)
            .unwrap();
    }
    let sup = Client::login(addr, "sup").await;
    let lan = Client::login(addr, "lan").await;
    let oc = Client::login(addr, "oc-vinh").await;
    let oc_cualo = Client::login(addr, "oc-cualo").await;
    let leader = Client::login(addr, "lanh-dao").await;

    // Two incidents opened by themselves; each commune's staff see their own.
    let incidents = until("two incidents", || {
        let v = engine.hub().incidents();
        (v.len() == 2).then_some(v)
    })
    .await;
    let id_of = |unit: &str| {
        incidents
            .iter()
            .find(|i| i.unit.as_deref() == Some(unit))
            .unwrap()
            .id
    };
    let (vinh, cualo) = (id_of("16681"), id_of("16684"));
    let (_, all) = lan.call("GET", "/api/incidents", None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, mine) = oc.call("GET", "/api/incidents", None).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], vinh);
    assert_eq!(
        oc.call("GET", &format!("/api/incidents/{cualo}"), None)
            .await
            .0,
        403
    );
    let (s, detail) = oc
        .call("GET", &format!("/api/incidents/{vinh}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(detail["sop"]["name"], "flood-warning");
    assert!(detail["events"].as_array().unwrap().len() >= 3);

    // Steps: by role and by unit.
    let step = |id: i64, s: &str, a: &str| format!("/api/incidents/{id}/steps/{s}/{a}");
    let (s, v) = oc_cualo
        .call(
            "POST",
            &step(vinh, "verify", "check"),
            Some(json!({"item": 0})),
        )
        .await;
    assert_eq!(s, 403, "another commune's incident: {v}");
    let (s, v) = oc
        .call(
            "POST",
            &step(vinh, "verify", "check"),
            Some(json!({"item": 0})),
        )
        .await;
    assert_eq!(s, 403, "an operator's step: {v}");
    for item in 0..3 {
        let (s, v) = lan
            .call(
                "POST",
                &step(vinh, "verify", "check"),
                Some(json!({"item": item})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = lan
        .call("POST", &step(vinh, "verify", "done"), Some(json!({})))
        .await;
    assert_eq!(s, 400, "the step needs a comment: {v}");
    let (s, v) = lan
        .call(
            "POST",
            &step(vinh, "verify", "done"),
            Some(json!({"comment": "Đã đối chiếu trạm Bến Thủy"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = lan
        .call(
            "POST",
            &step(vinh, "assess", "done"),
            Some(json!({"answer": "Sơ tán dân", "comment": "x"})),
        )
        .await;
    assert_eq!(s, 403, "the supervisor's question");
    let (s, v) = sup
        .call(
            "POST",
            &step(vinh, "assess", "done"),
            Some(json!({"answer": "Theo dõi tăng cường", "comment": "Mưa ngớt"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = lan.call("POST", &step(vinh, "assess", "dance"), None).await;
    assert_eq!(s, 404);

    // A file on a step: only the incident's people read it; too big is refused.
    let photo = vec![0x89, b'P', b'N', b'G', 13, 10, 26, 10, 1, 2, 3, 4];
    let r = reqwest::Client::new()
        .post(format!(
            "http://{addr}/api/incidents/{vinh}/attachments?name=muc-nuoc.png&step=monitor"
        ))
        .bearer_auth(&lan.token)
        .header("Content-Type", "image/png")
        .body(photo.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let att: Value = r.json().await.unwrap();
    let att_path = format!("/api/attachments/{}", att["id"]);
    assert_eq!(
        oc_cualo
            .send("GET", &att_path, None)
            .await
            .status()
            .as_u16(),
        403
    );
    let r = oc.send("GET", &att_path, None).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), photo);
    let r = reqwest::Client::new()
        .post(format!(
            "http://{addr}/api/incidents/{vinh}/attachments?name=big.bin"
        ))
        .bearer_auth(&lan.token)
        .body(vec![0u8; 21 * 1024 * 1024])
        .send()
        .await;
    // The server answers 413 as soon as the limit is passed and stops reading; the client
    // may see the answer or, still sending, the connection closed under it.
    match r {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    let (_, inc) = lan
        .call("GET", &format!("/api/incidents/{vinh}"), None)
        .await;
    assert!(
        !inc.to_string().contains("big.bin"),
        "nothing over the limit is kept"
    );

    // Directives: the IOC issues, the commune answers.
    let (s, _) = lan
        .call(
            "POST",
            "/api/directives",
            Some(json!({"unit": "16681", "title": "x", "within": "1h"})),
        )
        .await;
    assert_eq!(s, 403, "an operator does not direct");
    let (s, d) = leader
        .call(
            "POST",
            "/api/directives",
            Some(json!({"unit": "16681", "title": "Cử lực lượng trực tại cầu Bến Thủy", "within": "2h", "incident": vinh})),
        )
        .await;
    assert_eq!(s, 201, "{d}");
    let did = d["id"].as_i64().unwrap();
    let (s, _) = leader
        .call(
            "POST",
            "/api/directives",
            Some(json!({"unit": "nowhere", "title": "x", "within": "1h"})),
        )
        .await;
    assert_eq!(s, 400);
    let (_, listed) = oc_cualo.call("GET", "/api/directives", None).await;
    assert!(listed.as_array().unwrap().is_empty(), "not theirs");
    let dpath = |a: &str| format!("/api/directives/{did}/{a}");
    assert_eq!(oc_cualo.call("POST", &dpath("ack"), None).await.0, 403);
    assert_eq!(
        leader.call("POST", &dpath("ack"), None).await.0,
        403,
        "the issuer does not answer"
    );
    let (s, v) = oc
        .call("POST", &dpath("ack"), Some(json!({"text": "Đã nhận"})))
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("acknowledged")), "{v}");
    let (s, v) = oc
        .call(
            "POST",
            &dpath("report"),
            Some(json!({"progress": 50, "text": "Đã cử 4 người"})),
        )
        .await;
    assert_eq!((s, v["progress"].as_i64()), (200, Some(50)), "{v}");
    assert_eq!(
        oc.call("POST", &dpath("cancel"), Some(json!({"text": "x"})))
            .await
            .0,
        403
    );
    let (s, v) = oc
        .call("POST", &dpath("done"), Some(json!({"text": "Đã bố trí"})))
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("done")), "{v}");

    // Resolving and closing: an operator resolves, only a supervisor closes.
    let act = |id: i64, a: &str| format!("/api/incidents/{id}/{a}");
    assert_eq!(
        leader
            .call("POST", &act(vinh, "comment"), Some(json!({"comment": "x"})))
            .await
            .0,
        403
    );
    let (s, v) = lan.call("POST", &act(vinh, "resolve"), None).await;
    assert_eq!(s, 409, "steps left: {v}");
    let (s, v) = sup
        .call(
            "POST",
            &act(vinh, "resolve"),
            Some(json!({"comment": "Nước đã rút, kết thúc sớm"})),
        )
        .await;
    assert_eq!(s, 200, "a supervisor may, saying why: {v}");
    assert_eq!(lan.call("POST", &act(vinh, "close"), None).await.0, 403);
    let (s, v) = sup
        .call(
            "POST",
            &act(vinh, "close"),
            Some(json!({"comment": "Đóng"})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("closed")), "{v}");

    // The after-action report, as PDF and CSV; not for another commune's staff.
    let r = oc_cualo.send("GET", &act(vinh, "report.pdf"), None).await;
    assert_eq!(r.status().as_u16(), 403);
    let r = lan.send("GET", &act(vinh, "report.pdf"), None).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(out.join("after-action.pdf"), &pdf);
    let csv = lan
        .send("GET", &act(vinh, "report.csv"), None)
        .await
        .text()
        .await
        .unwrap();
    for needle in [
        "step_done",
        "Theo dõi tăng cường",
        "directive_done",
        "muc-nuoc.png",
        "closed",
    ] {
        assert!(csv.contains(needle), "{needle}:\n{csv}");
    }

    // Silences and templates are a supervisor's.
    let silence =
        json!({"unit": "16684", "category": "flood", "duration": "2h", "comment": "Bảo trì trạm"});
    assert_eq!(
        lan.call("POST", "/api/silences", Some(silence.clone()))
            .await
            .0,
        403
    );
    let (s, v) = oc_cualo
        .call("POST", "/api/silences", Some(silence.clone()))
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = sup.call("POST", "/api/silences", Some(silence)).await;
    assert_eq!(s, 201, "{v}");
    let (_, live) = oc.call("GET", "/api/silences", None).await;
    assert!(
        live.as_array().unwrap().is_empty(),
        "another commune's silence"
    );
    let (_, live) = oc_cualo.call("GET", "/api/silences", None).await;
    assert_eq!(live.as_array().unwrap().len(), 1);
    let sid = v["id"].as_i64().unwrap();
    assert_eq!(
        lan.call("DELETE", &format!("/api/silences/{sid}"), None)
            .await
            .0,
        403
    );
    let (s, v) = sup
        .call("DELETE", &format!("/api/silences/{sid}"), None)
        .await;
    assert_eq!((s, v["ended_by"].as_str()), (200, Some("sup")), "{v}");

    let (s, sops) = lan.call("GET", "/api/sops", None).await;
    assert_eq!(s, 200);
    let text = sops[0]["text"].as_str().unwrap().to_string();
    let name = sops[0]["name"].as_str().unwrap().to_string();
    assert_eq!(
        lan.call(
            "PUT",
            &format!("/api/sops/{name}"),
            Some(json!({"text": text}))
        )
        .await
        .0,
        403
    );
    let (s, v) = sup
        .call(
            "POST",
            "/api/sops/validate",
            Some(json!({"text": "name = 1", "replacing": name})),
        )
        .await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(false)), "{v}");
    let (s, v) = sup
        .call(
            "PUT",
            &format!("/api/sops/{name}"),
            Some(json!({"text": text})),
        )
        .await;
    assert_eq!((s, v["version"].as_i64()), (200, Some(2)), "{v}");
    let r = lan
        .send("GET", &format!("/api/sops/{name}/versions/1"), None)
        .await;
    assert_eq!(r.text().await.unwrap(), text);

    // The feed of a commune's staff carries only their commune's operations.
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", oc_cualo.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let first = ws.next().await.unwrap().unwrap().into_text().unwrap();
    let ServerMsg::Snapshot {
        alerts,
        incidents,
        entities,
        ..
    } = serde_json::from_str(&first).unwrap()
    else {
        panic!("a snapshot first")
    };
    // Their commune's alerts and devices, and there are some: an empty list would pass the
    // "all in scope" check without showing anything.
    assert!(
        !alerts.is_empty(),
        "the commune's own alerts are in the feed"
    );
    assert!(
        alerts.iter().all(|a| a.unit.as_deref() == Some("16684")),
        "{alerts:?}"
    );
    assert!(
        !entities.is_empty(),
        "the commune's own devices are in the feed"
    );
    assert!(
        entities.iter().all(|e| e.unit.as_deref() == Some("16684")),
        "{:?}",
        entities
            .iter()
            .map(|e| (&e.id, &e.unit))
            .collect::<Vec<_>>()
    );
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].id, cualo);

    let conn = ioc_engine::store::connect_path(engine.store()).unwrap();
    ioc_engine::audit::verify(&conn).unwrap();
}
