//! A node's link to its provincial IOC (`[upstream]`): it pushes the operations made here
//! the IOC lacks, pulls the IOC's that this node lacks and may have, and says truthfully how
//! the link is (connected, catching up with how much, or offline since when). Every request
//! has a short timeout and the exchange repeats every second, so a cut shows within 5 s.

use super::wire::{self, DataPush, DataTaken, Held, PullReply, PullRequest, PushRequest};
use crate::clock::Clock;
use crate::pipeline::IngestSender;
use crate::store::Reader;
use chrono::{DateTime, Utc};
use ioc_model::{LinkState, UpstreamLink};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one request may take before the link counts as down.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Between two exchanges when all is sent and received.
const IDLE: Duration = Duration::from_secs(1);
/// The longest wait between two attempts while the IOC cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// The link as the rest of the engine sees it.
pub struct Link {
    state: Mutex<UpstreamLink>,
    /// Every screen is told when the link changes.
    hub: Arc<crate::hub::Hub>,
    /// What the IOC was known to hold of this node's operations.
    upstream_held: Mutex<u64>,
}

impl Link {
    pub fn new(url: &str, now: DateTime<Utc>, hub: Arc<crate::hub::Hub>) -> Link {
        let link = Link {
            hub,
            state: Mutex::new(UpstreamLink {
                state: LinkState::Offline,
                backlog: 0,
                since: now,
                url: url.to_string(),
                error: Some("not connected yet".into()),
                data_backlog: 0,
                last_sync: None,
            }),
            upstream_held: Mutex::new(0),
        };
        link.hub.publish_link(link.get());
        link
    }

    pub fn get(&self) -> UpstreamLink {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(
        &self,
        state: LinkState,
        (backlog, data_backlog): (u64, u64),
        error: Option<String>,
        now: DateTime<Utc>,
    ) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.state != state {
            s.since = now;
            match state {
                LinkState::Offline => tracing::warn!(
                    "upstream {}: offline ({})",
                    s.url,
                    error.as_deref().unwrap_or("?")
                ),
                _ => tracing::info!("upstream {}: {:?}, backlog {backlog}", s.url, state),
            }
        }
        let changed = s.state != state
            || s.backlog != backlog
            || s.data_backlog != data_backlog
            || s.error != error;
        s.state = state;
        s.backlog = backlog;
        s.data_backlog = data_backlog;
        s.error = error;
        if state != LinkState::Offline {
            s.last_sync = Some(now);
        }
        if changed {
            let now = s.clone();
            drop(s);
            self.hub.publish_link(now);
        }
    }
}

/// What the link task needs.
pub struct Ctx {
    pub url: String,
    pub token_file: std::path::PathBuf,
    pub node: Arc<str>,
    /// This data folder's incarnation, sent with every request.
    pub incarnation: Arc<str>,
    pub reader: Arc<Reader>,
    /// The database, for dropping from the outbox what the IOC took.
    pub db: crate::store::Location,
    /// The rules folder, where the province's shared rules are kept
    /// ([`crate::rules::files::PROVINCE_FILE`]).
    pub rules_dir: std::path::PathBuf,
    /// Where the province's SOP templates and KPI definitions are kept.
    pub province: Arc<crate::engine::province::Province>,
    pub sender: IngestSender,
    pub clock: Arc<dyn Clock>,
    pub link: Arc<Link>,
    pub cancel: CancellationToken,
}

/// Runs the link until cancelled.
pub async fn run(ctx: Ctx) {
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("upstream: cannot make an HTTP client: {e}");
            return;
        }
    };
    let mut backoff = Duration::from_millis(250);
    loop {
        let wait = match round(&ctx, &client).await {
            Ok((caught_up, progressed)) => {
                backoff = Duration::from_millis(250);
                // Straight on while there is more and it moves; a round that moved nothing
                // waits like an idle one, so a stuck exchange never spins.
                if caught_up || !progressed {
                    IDLE
                } else {
                    Duration::ZERO
                }
            }
            Err(e) => {
                let backlog = (own_backlog(&ctx).await, data_backlog(&ctx).await);
                ctx.link
                    .set(LinkState::Offline, backlog, Some(e), ctx.clock.now());
                backoff = (backoff * 2).min(MAX_BACKOFF);
                backoff
            }
        };
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Operations made here the IOC is not known to hold.
/// The version of the province's rules kept here (from the file's first line).
async fn province_version(path: &std::path::Path) -> Option<String> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    let first = text.lines().next()?;
    first
        .strip_prefix(crate::rules::files::PROVINCE_HEADER)
        .map(|v| v.trim().to_string())
}

/// Replaces the province's rules kept here with the IOC's current ones (the rules folder is
/// read again by the engine within a couple of seconds; a text that does not parse keeps
/// the last good rules running and is reported on the rules screen, as for any file).
async fn keep_province_rules(
    path: &std::path::Path,
    rules: &wire::SharedRules,
) -> Result<(), String> {
    let text = format!(
        "{}{}\n{}",
        crate::rules::files::PROVINCE_HEADER,
        rules.version,
        rules.text
    );
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    tokio::fs::write(&tmp, text)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(
        "upstream: the province's rules, version {}, kept in {}",
        rules.version,
        path.display()
    );
    Ok(())
}

async fn own_backlog(ctx: &Ctx) -> u64 {
    let held = *ctx
        .link
        .upstream_held
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    own_last(ctx).await.saturating_sub(held)
}

/// Readings and device changes not taken by the IOC yet.
async fn data_backlog(ctx: &Ctx) -> u64 {
    let reader = ctx.reader.clone();
    tokio::task::spawn_blocking(move || reader.outbox_len().unwrap_or(0))
        .await
        .unwrap_or(0)
}

async fn own_last(ctx: &Ctx) -> u64 {
    let (reader, node) = (ctx.reader.clone(), ctx.node.clone());
    tokio::task::spawn_blocking(move || reader.last_seq_of(&node).unwrap_or(0))
        .await
        .unwrap_or(0)
}

async fn call<T: serde::de::DeserializeOwned>(
    ctx: &Ctx,
    req: reqwest::RequestBuilder,
) -> Result<T, String> {
    let req = req.header(crate::engine::INCARNATION_HEADER, &*ctx.incarnation);
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            "no answer in 3 s".to_string()
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else {
            e.to_string()
        }
    })?;
    let status = resp.status();
    let gzip = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .is_some_and(|v| v == "gzip");
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        let msg = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        return Err(format!("the IOC answered {status}: {msg}"));
    }
    wire::decode(&body, gzip)
}

/// One exchange: push, then pull, then devices and readings. (Nothing is left on either
/// side, something moved.)
async fn round(ctx: &Ctx, client: &reqwest::Client) -> Result<(bool, bool), String> {
    let token = tokio::fs::read_to_string(&ctx.token_file)
        .await
        .map_err(|e| format!("token file {}: {e}", ctx.token_file.display()))?;
    let token = token.trim();
    let base = ctx.url.trim_end_matches('/');
    let auth = format!("Bearer {token}");

    // Push what the IOC lacks of ours.
    let held: Held = call(
        ctx,
        client
            .get(format!("{base}/api/sync/held"))
            .header(reqwest::header::AUTHORIZATION, &auth),
    )
    .await?;
    let mut upstream_held = held.held;
    let (reader, node) = (ctx.reader.clone(), ctx.node.clone());
    let mine = tokio::task::spawn_blocking(move || reader.ops_after(&node, held.held, wire::BATCH))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let pushed_all = mine.len() < wire::BATCH;
    let mut progressed = !mine.is_empty();
    if !mine.is_empty() {
        let body = wire::encode(&PushRequest { ops: mine });
        let h: Held = call(
            ctx,
            client
                .post(format!("{base}/api/sync/push"))
                .header(reqwest::header::AUTHORIZATION, &auth)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                .body(body),
        )
        .await?;
        upstream_held = h.held;
    }
    *ctx.link
        .upstream_held
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = upstream_held;

    // Pull what we lack of theirs.
    let reader = ctx.reader.clone();
    let held_here = tokio::task::spawn_blocking(move || reader.vector())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let province = ctx.rules_dir.join(crate::rules::files::PROVINCE_FILE);
    let body = wire::encode(&PullRequest {
        held: held_here,
        limit: wire::BATCH,
        rules: province_version(&province).await,
        defs: ctx.province.version().await,
    });
    let reply: PullReply = call(
        ctx,
        client
            .post(format!("{base}/api/sync/pull"))
            .header(reqwest::header::AUTHORIZATION, &auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body),
    )
    .await?;
    let more = reply.more;
    if let Some(rules) = reply.rules {
        keep_province_rules(&province, &rules).await?;
    }
    if let Some(defs) = reply.defs {
        ctx.province.keep(defs).await?;
    }
    progressed |= !reply.ops.is_empty();
    if !reply.ops.is_empty() || !reply.upto.is_empty() {
        ctx.sender
            .merge(reply.ops, reply.upto)
            .await
            .map_err(|e| e.to_string())?;
    }
    // Devices and readings, a few batches a round so operations keep flowing.
    let mut data_left = true;
    for _ in 0..8 {
        let reader = ctx.reader.clone();
        let batch = tokio::task::spawn_blocking(move || reader.outbox(wire::DATA_BATCH))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let Some(upto) = batch.upto else {
            data_left = false;
            break;
        };
        progressed = true;
        let body = wire::encode(&DataPush {
            entities: batch.entities,
            obs: batch.obs,
            upto,
        });
        let taken: DataTaken = call(
            ctx,
            client
                .post(format!("{base}/api/sync/data"))
                .header(reqwest::header::AUTHORIZATION, &auth)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                .body(body),
        )
        .await?;
        if taken.refused > 0 {
            tracing::warn!(
                "upstream: the IOC left out {} devices or readings (outside this node's units, or refused: see its dead letters)",
                taken.refused
            );
        }
        let db = ctx.db.clone();
        tokio::task::spawn_blocking(move || {
            crate::store::connect_path(&db).and_then(|c| crate::store::outbox_trim(&c, taken.upto))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        // Progress as it goes, not only at the end of the round.
        let ops = own_last(ctx).await.saturating_sub(upstream_held);
        let data = data_backlog(ctx).await;
        ctx.link
            .set(LinkState::CatchingUp, (ops, data), None, ctx.clock.now());
    }
    let backlog = own_last(ctx).await.saturating_sub(upstream_held);
    let data = if data_left {
        data_backlog(ctx).await
    } else {
        0
    };
    let caught_up = pushed_all && !more && backlog == 0 && data == 0;
    let state = if caught_up {
        LinkState::Connected
    } else {
        LinkState::CatchingUp
    };
    ctx.link.set(state, (backlog, data), None, ctx.clock.now());
    Ok((caught_up, progressed))
}
