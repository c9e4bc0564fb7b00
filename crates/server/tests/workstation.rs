//! Two control-room workstations on one provincial IOC, each through a link the test can
//! cut: an operator's act on one reaches the other's feed; cut off, a workstation keeps its
//! picture, says so within 5 s, answers reads from its cache and queues acts on disk; the
//! link back, the queue reaches the IOC once each and the other workstation sees it; an act
//! the IOC refuses meanwhile is kept and shown, not dropped. And the IOC side of it: an
//! action sent again with the same `Idempotency-Key` is answered, not done twice.

mod common;

use common::Proxy;
use futures_util::StreamExt;
use ioc_engine::auth::NewUser;
use ioc_engine::{Engine, Item, Obs};
use ioc_model::{Domain, Entity, Picture, Role, ServerMsg};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "mật khẩu ca trực";

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

fn operator(name: &str) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: None,
        role: Role::Operator,
        units: vec![],
        password: PASSWORD.into(),
    }
}

/// A browser on a workstation: its cookie, and the Origin its pages send.
struct Window {
    addr: SocketAddr,
    http: reqwest::Client,
    cookie: String,
}

impl Window {
    async fn sign_in(addr: SocketAddr, user: &str) -> Window {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("http://{addr}/api/login"))
            .header("origin", format!("http://{addr}"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let body: Value = r.json().await.unwrap();
        assert!(
            body["token"].is_null(),
            "the IOC's token never reaches the page"
        );
        assert_eq!(body["user"]["username"], user);
        Window { addr, http, cookie }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let url = format!("http://{}{path}", self.addr);
        let mut r = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url),
        }
        .header("cookie", &self.cookie)
        .header("origin", format!("http://{}", self.addr));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self.call(method, path, body).await;
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// The window's feed, applied to a picture the test can look at.
    async fn feed(&self) -> Arc<Mutex<Picture>> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("cookie", self.cookie.parse().unwrap());
        req.headers_mut()
            .insert("origin", format!("http://{}", self.addr).parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let picture = Arc::new(Mutex::new(Picture::default()));
        let p = picture.clone();
        tokio::spawn(async move {
            let (_sink, mut stream) = ws.split();
            while let Some(Ok(m)) = stream.next().await {
                if let Ok(t) = m.into_text() {
                    if let Ok(msg) = serde_json::from_str::<ServerMsg>(t.as_str()) {
                        p.lock().unwrap().apply(&msg);
                    }
                }
            }
        });
        picture
    }
}

async fn workstation(upstream: SocketAddr) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listener = ioc_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ioc_server::workstation::Options {
        upstream: format!("http://{upstream}"),
        data: dir.path().to_path_buf(),
        ui_dir: None,
        hosts: vec![],
    };
    tokio::spawn(ioc_server::workstation::serve(
        opts,
        listener,
        std::future::pending(),
        None,
    ));
    (addr, dir)
}

/// Waits (up to `limit`) for `ok` on a picture; how long it took.
async fn until(
    what: &str,
    limit: Duration,
    p: &Arc<Mutex<Picture>>,
    ok: impl Fn(&Picture) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        if ok(&p.lock().unwrap()) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ioc() -> (tempfile::TempDir, Arc<Engine>, SocketAddr, Vec<i64>) {
    let (dir, engine, addr) = common::start().await;
    let mut items = flooded_gauge("wl-vinh", "16681");
    items.extend(flooded_gauge("wl-cua-lo", "16684"));
    items.extend(flooded_gauge("wl-do-luong", "17377"));
    engine.sender().ingest("t", items).await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    engine
        .auth()
        .add_user(&operator("lan"), "test", now)
        .unwrap();
    engine
        .auth()
        .add_user(&operator("binh"), "test", now)
        .unwrap();
    let start = Instant::now();
    let ids = loop {
        let open = engine
            .alerts(vec![ioc_model::AlertState::New], 100)
            .await
            .unwrap();
        if open.len() == 3 {
            let mut ids: Vec<i64> = open.iter().map(|a| a.id).collect();
            ids.sort();
            break ids;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "three open alerts"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (dir, engine, addr, ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workstations_share_the_iocs_queue_through_a_cut() {
    let (_ioc_dir, engine, ioc_addr, ids) = ioc().await;
    let (a, b, c) = (ids[0], ids[1], ids[2]);
    let link_1 = Proxy::to(ioc_addr).await;
    let link_2 = Proxy::to(ioc_addr).await;
    let (ws1, _d1) = workstation(link_1.addr).await;
    let (ws2, _d2) = workstation(link_2.addr).await;
    let lan = Window::sign_in(ws1, "lan").await;
    let binh = Window::sign_in(ws2, "binh").await;
    let seen_1 = lan.feed().await;
    let seen_2 = binh.feed().await;
    let has_three = |p: &Picture| p.alerts.len() == 3;
    until(
        "the IOC's picture on workstation 1",
        Duration::from_secs(10),
        &seen_1,
        has_three,
    )
    .await;
    until(
        "the IOC's picture on workstation 2",
        Duration::from_secs(10),
        &seen_2,
        has_three,
    )
    .await;
    let connected = |p: &Picture| {
        p.link
            .as_ref()
            .is_some_and(|l| l.state == ioc_model::LinkState::Connected)
    };
    until(
        "workstation 1 says connected",
        Duration::from_secs(5),
        &seen_1,
        connected,
    )
    .await;

    // An ack on one workstation reaches the other's feed.
    let (s, v) = lan
        .json("POST", &format!("/api/alerts/{a}/ack"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "acknowledged");
    let took = until(
        "workstation 2 sees lan's ack",
        Duration::from_secs(3),
        &seen_2,
        |p| {
            p.alerts
                .get(&a)
                .is_some_and(|x| x.state == ioc_model::AlertState::Acknowledged)
        },
    )
    .await;
    eprintln!("an ack on workstation 1 reached workstation 2's feed in {took:?}");

    // A read passes through and is kept.
    let (s, list) = lan.json("GET", "/api/alerts", None).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");

    // Cut workstation 1 off.
    link_1.cut();
    let took = until(
        "workstation 1 says offline",
        Duration::from_secs(5),
        &seen_1,
        |p| {
            p.link
                .as_ref()
                .is_some_and(|l| l.state == ioc_model::LinkState::Offline)
        },
    )
    .await;
    eprintln!("the cut showed on workstation 1's feed in {took:?}");
    assert_eq!(seen_1.lock().unwrap().alerts.len(), 3, "the picture stays");
    let r = lan.call("GET", "/api/alerts", None).await;
    assert_eq!(r.status(), 200, "reads come from the cache while cut off");
    assert!(r.headers().contains_key("x-ioc-cached"));
    let health: Value = lan
        .call("GET", "/api/health", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["upstream"]["state"], "offline", "{health}");
    // Not a read it ever made: said so, not made up.
    let (s, _) = lan.json("GET", "/api/incidents", None).await;
    assert_eq!(s, 503);

    // Acts are queued, in order, on disk.
    let r = lan
        .call(
            "POST",
            &format!("/api/alerts/{b}/comment"),
            Some(json!({"comment": "Đã gọi trạm thủy văn"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-ioc-queued"], "1");
    let r = lan
        .call("POST", &format!("/api/alerts/{b}/ack"), None)
        .await;
    assert_eq!(r.status(), 202);
    // Meanwhile at the IOC, binh resolves alert c; lan's ack of it will be refused.
    let (s, v) = binh
        .json("POST", &format!("/api/alerts/{c}/resolve"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let r = lan
        .call("POST", &format!("/api/alerts/{c}/ack"), None)
        .await;
    assert_eq!(r.status(), 202);
    until(
        "the banner counts what waits",
        Duration::from_secs(2),
        &seen_1,
        |p| p.link.as_ref().is_some_and(|l| l.backlog == 3),
    )
    .await;
    let (_, waiting) = lan.json("GET", "/api/workstation/outbox", None).await;
    assert_eq!(waiting.as_array().map(Vec::len), Some(3), "{waiting}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_ioc = engine.alert(b).await.unwrap().unwrap();
    assert_eq!(
        at_ioc.state,
        ioc_model::AlertState::New,
        "nothing leaked through the cut"
    );

    // The link back: the queue drains, once each; the other workstation sees it.
    link_1.restore();
    until(
        "workstation 2 sees lan's queued ack",
        Duration::from_secs(15),
        &seen_2,
        |p| {
            p.alerts
                .get(&b)
                .is_some_and(|x| x.state == ioc_model::AlertState::Acknowledged)
        },
    )
    .await;
    until(
        "workstation 1 connected, nothing waiting",
        Duration::from_secs(10),
        &seen_1,
        |p| {
            p.link.as_ref().is_some_and(|l| {
                l.state == ioc_model::LinkState::Connected && l.backlog == 0 && l.error.is_some()
            })
        },
    )
    .await;
    let at_ioc = engine.alert(b).await.unwrap().unwrap();
    let comments = at_ioc
        .events
        .iter()
        .filter(|e| e.comment.as_deref() == Some("Đã gọi trạm thủy văn"))
        .count();
    assert_eq!(
        comments, 1,
        "the queued comment landed once: {:?}",
        at_ioc.events
    );
    let by_lan = at_ioc.events.iter().filter(|e| e.actor == "lan").count();
    assert_eq!(by_lan, 2, "comment and ack, as lan: {:?}", at_ioc.events);
    // The refused one is kept, with the IOC's reason.
    let (_, left) = lan.json("GET", "/api/workstation/outbox", None).await;
    let left = left.as_array().unwrap().clone();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["state"], "refused");
    assert!(left[0]["path"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{c}/ack")));
    let id = left[0]["id"].as_i64().unwrap();
    assert_eq!(
        lan.call("DELETE", &format!("/api/workstation/outbox/{id}"), None)
            .await
            .status(),
        204
    );
    until("the banner clears", Duration::from_secs(3), &seen_1, |p| {
        p.link.as_ref().is_some_and(|l| l.error.is_none())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_action_sent_again_with_its_key_is_answered_not_done_twice() {
    let (_dir, engine, addr, ids) = ioc().await;
    let http = reqwest::Client::new();
    let token = {
        let r: Value = http
            .post(format!("http://{addr}/api/login"))
            .json(&json!({"username": "lan", "password": PASSWORD, "token": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["token"].as_str().unwrap().to_string()
    };
    let send = |key: &'static str, note: &'static str| {
        http.post(format!("http://{addr}/api/alerts/{}/comment", ids[0]))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"comment": note}))
            .send()
    };
    let first = send("k-1", "một lần").await.unwrap();
    assert_eq!(first.status(), 200);
    let again = send("k-1", "một lần").await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let other = send("k-2", "một lần").await.unwrap();
    assert!(other.headers().get("idempotent-replayed").is_none());
    let a = engine.alert(ids[0]).await.unwrap().unwrap();
    let n = a
        .events
        .iter()
        .filter(|e| e.comment.as_deref() == Some("một lần"))
        .count();
    assert_eq!(n, 2, "k-1 once, k-2 once: {:?}", a.events);
    let bad = http
        .post(format!("http://{addr}/api/alerts/{}/ack", ids[0]))
        .bearer_auth(&token)
        .header("idempotency-key", "")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}
