//! A drop folder (`kind = "file"`): files put in a directory (by hand, by an FTP/SFTP
//! upload, by another system's export job) are imported, then moved aside.
//!
//! ```toml
//! [[source]]
//! name = "drop"
//! kind = "file"
//! url = "file:///srv/ioc/drop"        # or path = "/srv/ioc/drop"
//! decoder = "auto"                    # by name and content: .xml CAP, .geojson, .csv,
//!                                     # other JSON NGSI-LD; or one decoder for all
//! pattern = "*.xml"                   # only these files (default: all)
//! interval = "5s"                     # how often the folder is looked at
//! settle = "2s"                       # a file changed this recently may still be written
//! [source.mapping]                    # for decoder = "json"/"csv"
//! ```
//!
//! A file is moved to `imported/` once everything taken from it is committed, or to
//! `failed/` when nothing in it could be used (the reasons are in the dead letters), each
//! under a name that starts with the time it was handled; a file is never deleted. Hidden
//! files (`.name`) and files still being written are left alone. Files are read whole up
//! to 256 MiB; anything larger goes to `failed/` with the reason.

use super::SourceCtx;
use crate::decode;
use crate::ingest::Item;
use crate::pipeline::ingest_file;
use ioc_model::SourceState;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn yes() -> bool {
    true
}
fn five() -> Duration {
    Duration::from_secs(5)
}
fn two() -> Duration {
    Duration::from_secs(2)
}
fn auto() -> String {
    "auto".into()
}

/// Files larger than this are not read.
pub const MAX_FILE: u64 = 256 * 1024 * 1024;

#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `file:///dir`; or `path`.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default = "auto")]
    pub decoder: String,
    #[serde(default)]
    pub mapping: Option<toml::Value>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default = "five", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "two", with = "humantime_serde")]
    pub settle: Duration,
}

impl FileConfig {
    /// The folder watched.
    pub fn dir(&self) -> Result<PathBuf, String> {
        match (&self.path, &self.url) {
            (Some(p), None) => Ok(p.clone()),
            (None, Some(u)) => url::Url::parse(u)
                .ok()
                .filter(|u| u.scheme() == "file")
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| format!("url {u:?}: not a file:///… URL of a folder")),
            (Some(_), Some(_)) => Err("give `url` or `path`, not both".into()),
            (None, None) => Err("missing `url` (file:///folder) or `path`".into()),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        let dir = self.dir()?;
        if !dir.is_absolute() {
            return Err(format!("path {}: not an absolute path", dir.display()));
        }
        if let Some(p) = &self.pattern {
            glob::Pattern::new(p).map_err(|e| format!("pattern {p:?}: {e}"))?;
        }
        if self.interval < Duration::from_millis(100) {
            return Err("interval: at least 100ms".into());
        }
        if self.decoder != "auto" {
            decode::build(&self.decoder, self.mapping.as_ref())?;
        }
        Ok(())
    }
}

/// The files ready to be imported, oldest first.
fn ready(
    dir: &Path,
    pattern: Option<&glob::Pattern>,
    settle: Duration,
) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("folder {}: {e}", dir.display()))?;
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || pattern.is_some_and(|p| !p.matches(&name)) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(now);
        if now.duration_since(modified).unwrap_or_default() < settle {
            continue; // may still be being written
        }
        files.push((modified, entry.path()));
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// Moves a handled file into `dir/<sub>/`, its name prefixed with the time.
fn move_aside(file: &Path, sub: &str) -> Result<PathBuf, String> {
    let parent = file.parent().unwrap_or(Path::new("."));
    let to_dir = parent.join(sub);
    std::fs::create_dir_all(&to_dir).map_err(|e| format!("{}: {e}", to_dir.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let to = to_dir.join(format!("{stamp}-{name}"));
    std::fs::rename(file, &to)
        .map_err(|e| format!("moving {} to {}: {e}", file.display(), to.display()))?;
    Ok(to)
}

/// Imports one file; where it went.
async fn import(cfg: &FileConfig, ctx: &SourceCtx, file: &Path) -> Result<&'static str, String> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let origin = file.display().to_string();
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let (items, payload): (Vec<Item>, Vec<u8>) = if size > MAX_FILE {
        (
            vec![Item::Rejected(format!(
                "file of {size} bytes is larger than the {MAX_FILE} byte limit"
            ))],
            Vec::new(),
        )
    } else {
        let payload = tokio::fs::read(file)
            .await
            .map_err(|e| format!("{origin}: {e}"))?;
        let format = if cfg.decoder == "auto" {
            decode::detect(Some(&name), &payload)
        } else {
            cfg.decoder.as_str()
        };
        let items = match decode::build(format, cfg.mapping.as_ref()) {
            Ok(d) => {
                let dctx = decode::DecodeCtx {
                    source: &ctx.name,
                    origin: Some(&name),
                    received_at: ctx.clock.now(),
                };
                d.decode(&payload, &dctx)
                    .unwrap_or_else(|reason| vec![Item::Rejected(reason)])
            }
            Err(reason) => vec![Item::Rejected(reason)],
        };
        (items, payload)
    };
    ctx.health.message(ctx.clock.now());
    let report = ingest_file(
        &ctx.sender,
        &ctx.name,
        Some(&name),
        items,
        Arc::from(payload),
    )
    .await
    .map_err(|e| e.to_string())?;
    let sub = if report.accepted == 0 && !report.refused.is_empty() {
        "failed"
    } else {
        "imported"
    };
    tracing::info!(
        "file {origin}: {} taken, {} refused → {sub}/",
        report.accepted,
        report.refused.total()
    );
    move_aside(file, sub)?;
    Ok(sub)
}

pub async fn run(cfg: FileConfig, ctx: SourceCtx) {
    let dir = match cfg.dir() {
        Ok(d) => d,
        Err(e) => return ctx.health.error(SourceState::Error, e),
    };
    let pattern = cfg
        .pattern
        .as_deref()
        .and_then(|p| glob::Pattern::new(p).ok());
    // Files that could not be moved aside: not imported again on every look.
    let mut stuck: std::collections::HashSet<PathBuf> = Default::default();
    loop {
        match ready(&dir, pattern.as_ref(), cfg.settle) {
            Ok(files) => {
                let mut error = None;
                for file in files {
                    if stuck.contains(&file) {
                        continue;
                    }
                    if ctx.cancel.is_cancelled() {
                        break;
                    }
                    if let Err(e) = import(&cfg, &ctx, &file).await {
                        tracing::warn!("file source {:?}: {e}", cfg.name);
                        stuck.insert(file);
                        error = Some(e);
                    }
                }
                match error {
                    Some(e) => ctx.health.error(SourceState::Error, e),
                    None => ctx.health.set_state(SourceState::Connected),
                }
            }
            Err(e) => ctx.health.error(SourceState::Error, e),
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            _ = tokio::time::sleep(cfg.interval) => {}
        }
    }
    ctx.health.set_state(SourceState::Disconnected);
}

impl super::Source for FileConfig {
    fn name(&self) -> &str {
        &self.name
    }
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn max_age(&self) -> Option<std::time::Duration> {
        None
    }
    fn validate(&self) -> Result<(), String> {
        FileConfig::validate(self)
    }
    fn detail(&self) -> Option<String> {
        self.dir().ok().map(|d| {
            let pattern = self.pattern.as_deref().unwrap_or("*");
            format!("{}/{pattern}", d.display())
        })
    }
    fn spawn(&self, ctx: SourceCtx) -> tokio::task::JoinHandle<()> {
        let c = self.clone();
        tokio::spawn(async move { run(c, ctx).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<FileConfig, String> {
        let c: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn config() {
        let c = cfg("name = \"d\"\nurl = \"file:///srv/drop\"").unwrap();
        assert_eq!(c.dir().unwrap(), PathBuf::from("/srv/drop"));
        assert!(cfg("name = \"d\"").unwrap_err().contains("missing `url`"));
        assert!(cfg("name = \"d\"\npath = \"drop\"")
            .unwrap_err()
            .contains("absolute"));
        assert!(cfg("name = \"d\"\nurl = \"http://x/\"")
            .unwrap_err()
            .contains("file:///"));
        assert!(cfg("name = \"d\"\npath = \"/d\"\ndecoder = \"csv\"")
            .unwrap_err()
            .contains("mapping"));
        assert!(cfg("name = \"d\"\npath = \"/d\"\npattern = \"[\"")
            .unwrap_err()
            .contains("pattern"));
    }

    #[test]
    fn only_settled_visible_matching_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.xml"), "x").unwrap();
        std::fs::write(dir.path().join(".part.xml"), "x").unwrap();
        std::fs::write(dir.path().join("b.csv"), "x").unwrap();
        std::fs::create_dir(dir.path().join("imported")).unwrap();
        let all = ready(dir.path(), None, Duration::ZERO).unwrap();
        assert_eq!(all.len(), 2);
        let p = glob::Pattern::new("*.xml").unwrap();
        let xml = ready(dir.path(), Some(&p), Duration::ZERO).unwrap();
        assert_eq!(xml, [dir.path().join("a.xml")]);
        assert!(ready(dir.path(), None, Duration::from_secs(60))
            .unwrap()
            .is_empty());
        let moved = move_aside(&dir.path().join("a.xml"), "imported").unwrap();
        assert!(moved.starts_with(dir.path().join("imported")));
        assert!(moved
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-a.xml"));
    }
}
