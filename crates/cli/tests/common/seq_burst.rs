//! The burst the CLI's kill tests send through NATS JetStream: `n` readings of one device,
//! `seq-1`, whose metric `seq` counts 0, 1, … so the store shows what is missing or twice;
//! each a second apart, ending an hour ago. Returns once JetStream has acknowledged all.
//! One file, included by path by each test that needs it.

#![allow(dead_code)]

use async_nats::jetstream::{self, message::PublishMessage};

pub async fn publish(js: &jetstream::Context, n: usize) {
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(n as i64 + 3600);
    let mut acks = Vec::new();
    for i in 0..n {
        let t = (t0 + chrono::Duration::seconds(i as i64)).to_rfc3339();
        let body = format!(
            r#"{{"id": "seq-1", "type": "Device", "location": {{"type": "Point", "coordinates": [105.68, 18.67]}}, "dateObserved": "{t}", "seq": {i}}}"#
        );
        let m = PublishMessage::build().payload(body.into());
        acks.push(js.send_publish("ioc.seq", m).await.unwrap());
        if acks.len() == 500 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
}
