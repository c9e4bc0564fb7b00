//! Evidence clips on the engine: saved around a moment for an alert or incident (by an
//! operator's key, or an alert's rule), written to `clips/` in the data folder, recorded in
//! the store, put on the alert's and incident's timelines, and removed by the retention
//! limits (`[video] clips_max_mb`, `clips_keep`), which leave the record and its fingerprint.

use super::{Engine, EngineError};
use crate::operate::Actor;
use crate::store::{ClipFilter, WriteBatch};
use crate::video::clip;
use chrono::{DateTime, Utc};
use ioc_model::{ClipInfo, ClipRequest, ClipState};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The longest a clip may reach past its moment.
pub const MAX_AFTER_S: u32 = 300;

impl Engine {
    fn clips_dir(&self) -> PathBuf {
        self.data_dir.join("clips")
    }

    fn clip_path(&self, id: i64) -> PathBuf {
        self.clips_dir().join(format!("{id}.mp4"))
    }

    /// Saves a clip of `camera` around a moment: answers at once with the clip `recording`;
    /// it is written when the video after the moment has come.
    pub async fn save_clip(
        self: &Arc<Self>,
        camera: &str,
        req: ClipRequest,
        actor: Actor,
    ) -> Result<ClipInfo, EngineError> {
        let Some(entity) = self.hub.entity(camera) else {
            return Err(EngineError::NotFound(format!("no camera {camera:?}")));
        };
        let Some(feed) = self.video.feed_now(&self.hub, camera) else {
            return Err(EngineError::BadInput(format!(
                "{camera:?} has no video stream (rtsp_url): nothing to save"
            )));
        };
        if let Some(a) = req.alert {
            if self.alert(a).await?.is_none() {
                return Err(EngineError::NotFound(format!("no alert {a}")));
            }
        }
        if let Some(i) = req.incident {
            if self.incident(i).await?.is_none() {
                return Err(EngineError::NotFound(format!("no incident {i}")));
            }
        }
        let cfg = self.video.config();
        let now = self.clock.now();
        let keep_s = cfg.keep.as_secs() as u32;
        let before_s = req
            .before_s
            .unwrap_or(cfg.clip_before.as_secs() as u32)
            .min(keep_s);
        let after_s = req
            .after_s
            .unwrap_or(cfg.clip_after.as_secs() as u32)
            .min(MAX_AFTER_S);
        let at = req.at.unwrap_or(now);
        if at < now - chrono::Duration::seconds(i64::from(keep_s)) {
            return Err(EngineError::BadInput(format!(
                "the engine keeps only the last {keep_s} s of video: that moment is gone"
            )));
        }
        if at > now + chrono::Duration::seconds(60) {
            return Err(EngineError::BadInput("that moment is in the future".into()));
        }
        let id = self.clip_ids.fetch_add(1, Ordering::SeqCst) + 1;
        let local = at.with_timezone(&self.config.tz());
        let safe: String = camera
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let info = ClipInfo {
            id,
            camera: camera.to_string(),
            camera_name: entity.name.clone(),
            unit: entity.unit.clone(),
            alert: req.alert,
            incident: req.incident,
            at,
            before_s,
            after_s,
            from: None,
            to: None,
            state: ClipState::Recording,
            error: None,
            size: 0,
            sha256: None,
            file_name: format!("{safe}-{}.mp4", local.format("%Y%m%d-%H%M%S")),
            created_by: actor.name.clone(),
            created_at: now,
        };
        self.writer
            .write(WriteBatch {
                clips: vec![info.clone()],
                ..Default::default()
            })
            .await?;
        let engine = self.clone();
        let started = info.clone();
        let stall = cfg.stall;
        tokio::spawn(async move {
            let cut = clip::collect(
                &feed,
                at,
                Duration::from_secs(u64::from(before_s)),
                Duration::from_secs(u64::from(after_s)),
                stall,
            )
            .await;
            engine.finish_clip(started, cut, actor).await;
        });
        Ok(info)
    }

    async fn finish_clip(&self, mut info: ClipInfo, cut: clip::Cut, actor: Actor) {
        let written = match clip::mp4(&cut.frames) {
            None => Err("no video was kept around that moment (was the camera live?)".to_string()),
            Some(bytes) => self.write_clip_file(info.id, &bytes).await.map(|()| bytes),
        };
        match written {
            Ok(bytes) => {
                info.state = ClipState::Saved;
                info.size = bytes.len() as u64;
                info.sha256 = Some(format!("{:x}", Sha256::digest(&bytes)));
                info.from = cut.frames.first().map(|f| f.received);
                info.to = cut.frames.last().map(|f| f.received);
                if cut.short {
                    info.error =
                        Some("the recorder fell behind the stream: the clip ends early".into());
                }
            }
            Err(e) => {
                tracing::warn!(clip = info.id, camera = %info.camera, "evidence clip: {e}");
                info.state = ClipState::Failed;
                info.error = Some(e);
            }
        }
        let audit = crate::audit::AuditEntry {
            at: self.clock.now().timestamp_millis(),
            actor: format!("user:{}", actor.name),
            action: "clip.save".into(),
            target: format!("clip:{}", info.id),
            before: None,
            after: Some(serde_json::json!({
                "camera": info.camera, "state": info.state.as_str(), "sha256": info.sha256,
                "alert": info.alert, "incident": info.incident,
            })),
        };
        if let Err(e) = self
            .writer
            .write(WriteBatch {
                clips: vec![info.clone()],
                audit: vec![audit],
                ..Default::default()
            })
            .await
        {
            tracing::error!(clip = info.id, "evidence clip: its record: {e}");
            return;
        }
        if info.state == ClipState::Saved {
            self.note_clip(&info, &actor).await;
            self.enforce_clip_retention().await;
        }
    }

    async fn write_clip_file(&self, id: i64, bytes: &[u8]) -> Result<(), String> {
        let dir = self.clips_dir();
        let path = self.clip_path(id);
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            let tmp = path.with_extension("mp4.tmp");
            std::fs::write(&tmp, &bytes)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "cannot write the clip to {}: {e}",
                self.clips_dir().display()
            )
        })
    }

    /// Puts the saved clip on its alert's and incident's timelines.
    async fn note_clip(&self, info: &ClipInfo, actor: &Actor) {
        let tz = self.config.tz();
        let span = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.with_timezone(&tz).format("%H:%M:%S").to_string())
                .unwrap_or_default()
        };
        let text = format!(
            "🎞 Video #{}: {} {}–{} ({})",
            info.id,
            info.camera_name,
            span(info.from),
            span(info.to),
            info.file_name
        );
        if let Some(a) = info.alert {
            let scope = (!actor.units.is_empty()).then(|| actor.units.clone());
            if let Err(e) = self
                .alert_act(
                    a,
                    crate::alerts::AlertAction::Comment,
                    &actor.name,
                    Some(text.clone()),
                    scope,
                )
                .await
            {
                tracing::info!(
                    clip = info.id,
                    alert = a,
                    "clip not noted on the alert: {e}"
                );
            }
        }
        if let Some(i) = info.incident {
            let op = crate::pipeline::Op::Comment {
                incident: i,
                comment: Some(text),
            };
            if let Err(e) = self.operate(op, actor.clone()).await {
                tracing::info!(
                    clip = info.id,
                    incident = i,
                    "clip not noted on the incident: {e}"
                );
            }
        }
    }

    /// Saves clips of new alerts' cameras for the rules that ask (`clip = true`): checked
    /// every second, from the alerts raised after it started (started once per engine).
    pub fn watch_alert_clips(self: &Arc<Self>) {
        if self.clip_watch.swap(true, Ordering::SeqCst) {
            return;
        }
        let engine = self.clone();
        let cancel = self.cancel.child_token();
        tokio::spawn(async move {
            let mut seen: std::collections::HashSet<i64> =
                engine.hub.open_alerts().iter().map(|a| a.id).collect();
            let mut every = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = every.tick() => {}
                }
                let open = engine.hub.open_alerts();
                let fresh: Vec<ioc_model::Alert> = open
                    .iter()
                    .filter(|a| !seen.contains(&a.id))
                    .cloned()
                    .collect();
                seen = open.iter().map(|a| a.id).collect();
                if fresh.is_empty() {
                    continue;
                }
                let rules: std::collections::HashMap<String, (bool, Vec<String>)> = engine
                    .rules
                    .lock()
                    .await
                    .configs()
                    .into_iter()
                    .map(|r| (r.name, (r.clip, r.cameras)))
                    .collect();
                for a in fresh {
                    let Some((true, named)) = rules.get(&a.rule) else {
                        continue;
                    };
                    for cam in engine.alert_cameras(&a, named.clone()).await {
                        let req = ClipRequest {
                            alert: Some(a.id),
                            incident: a.incident,
                            at: Some(a.raised_at),
                            ..Default::default()
                        };
                        if let Err(e) = engine.save_clip(&cam, req, Actor::system()).await {
                            tracing::warn!(alert = a.id, camera = %cam, "evidence clip for the alert: {e}");
                        }
                    }
                }
            }
        });
    }

    /// An alert's cameras with a stream: named by its rule, its category's SOP and its
    /// device, then the device itself and the nearest (as the console shows them).
    async fn alert_cameras(&self, a: &ioc_model::Alert, mut named: Vec<String>) -> Vec<String> {
        if let Some(t) = crate::operate::sop::for_category(&*self.sops.lock().await, &a.category) {
            named.extend(t.config.cameras.iter().cloned());
        }
        let entities: std::collections::HashMap<String, ioc_model::Entity> = self
            .hub
            .entities()
            .into_iter()
            .map(|e| (e.id.clone(), e))
            .collect();
        if let Some(e) = a.entity.as_ref().and_then(|id| entities.get(id)) {
            named.extend(ioc_model::camera::named_by(e));
        }
        ioc_model::camera::related_cameras(&entities, a.entity.as_deref(), &named, 2, 3000.0)
            .into_iter()
            .filter(|(_, live)| *live)
            .map(|(c, _)| c)
            .collect()
    }

    /// Removes the oldest saved clips beyond `[video] clips_max_mb` and those older than
    /// `clips_keep`; their records stay, marked expired.
    pub async fn enforce_clip_retention(&self) {
        let cfg = self.video.config();
        let saved = match self.clips(ClipFilter {
            state: Some(ClipState::Saved),
            limit: Some(usize::MAX >> 1),
            ..Default::default()
        }) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!("clip retention: {e}");
                return;
            }
        };
        let max = cfg.clips_max_mb.saturating_mul(1 << 20);
        let oldest_kept =
            self.clock.now() - chrono::Duration::from_std(cfg.clips_keep).unwrap_or_default();
        let mut total: u64 = saved.iter().map(|c| c.size).sum();
        let mut expired = Vec::new();
        // Newest first from the store: walk from the oldest.
        for c in saved.iter().rev() {
            let too_old = c.created_at < oldest_kept;
            if !(too_old || total > max) {
                continue;
            }
            total = total.saturating_sub(c.size);
            if let Err(e) = std::fs::remove_file(self.clip_path(c.id)) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(clip = c.id, "clip retention: cannot remove the file: {e}");
                    continue;
                }
            }
            let why = if too_old {
                format!(
                    "removed by retention: older than {}",
                    humantime::format_duration(cfg.clips_keep)
                )
            } else {
                format!("removed by retention: clips over {} MB", cfg.clips_max_mb)
            };
            tracing::info!(clip = c.id, camera = %c.camera, "{why}");
            expired.push(ClipInfo {
                state: ClipState::Expired,
                error: Some(why),
                ..c.clone()
            });
        }
        if expired.is_empty() {
            return;
        }
        let now = self.clock.now().timestamp_millis();
        let audit = expired
            .iter()
            .map(|c| crate::audit::AuditEntry {
                at: now,
                actor: "system".into(),
                action: "clip.expire".into(),
                target: format!("clip:{}", c.id),
                before: None,
                after: Some(serde_json::json!({"sha256": c.sha256, "reason": c.error})),
            })
            .collect();
        if let Err(e) = self
            .writer
            .write(WriteBatch {
                clips: expired,
                audit,
                ..Default::default()
            })
            .await
        {
            tracing::error!("clip retention: {e}");
        }
    }

    /// Clips that were recording when the engine last stopped: failed, saying so.
    pub(super) async fn fail_interrupted_clips(&self) -> Result<(), EngineError> {
        let stuck = self.clips(ClipFilter {
            state: Some(ClipState::Recording),
            ..Default::default()
        })?;
        if stuck.is_empty() {
            return Ok(());
        }
        let clips = stuck
            .into_iter()
            .map(|c| ClipInfo {
                state: ClipState::Failed,
                error: Some("the engine stopped before the clip was written".into()),
                ..c
            })
            .collect();
        self.writer
            .write(WriteBatch {
                clips,
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// Evidence clips, newest first.
    pub fn clips(&self, f: ClipFilter) -> Result<Vec<ClipInfo>, EngineError> {
        Ok(self.reader.clips(&f)?)
    }

    pub fn clip(&self, id: i64) -> Result<ClipInfo, EngineError> {
        self.clips(ClipFilter {
            id: Some(id),
            ..Default::default()
        })?
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::NotFound(format!("no clip {id}")))
    }

    /// A saved clip's file.
    pub async fn clip_file(&self, id: i64) -> Result<(ClipInfo, Vec<u8>), EngineError> {
        let c = self.clip(id)?;
        if c.state != ClipState::Saved {
            return Err(EngineError::Conflict(format!(
                "clip {id} has no file: {}{}",
                c.state.as_str(),
                c.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )));
        }
        let path = self.clip_path(id);
        let data = tokio::fs::read(&path)
            .await
            .map_err(|e| EngineError::Internal(format!("clip {id}: {}: {e}", path.display())))?;
        Ok((c, data))
    }
}
