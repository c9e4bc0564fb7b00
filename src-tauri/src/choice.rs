//! Which server this desktop works with, remembered in `desktop.json` in its data folder:
//! its own engine (the default: a commune OC, a standalone console, the demo), or a
//! provincial IOC as a control-room workstation. `--upstream URL` and `--local` choose and
//! remember; the sign-in screen chooses too (`POST /api/desktop/upstream`), and the app
//! starts again on the choice once the engine has committed what it accepted.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Serialize, Deserialize, Default, Debug, PartialEq)]
struct Saved {
    /// The provincial IOC's address, or none for this computer's engine.
    #[serde(default)]
    upstream: Option<String>,
}

pub struct Choice {
    file: PathBuf,
    relaunch: AtomicBool,
}

impl Choice {
    pub fn new(data_dir: &std::path::Path) -> Choice {
        Choice {
            file: data_dir.join("desktop.json"),
            relaunch: AtomicBool::new(false),
        }
    }

    /// The remembered IOC, if any (an unreadable file says so and means none).
    pub fn upstream(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.file).ok()?;
        match serde_json::from_str::<Saved>(&text) {
            Ok(s) => s.upstream.filter(|u| !u.trim().is_empty()),
            Err(e) => {
                tracing::warn!("{}: {e}; using this computer's engine", self.file.display());
                None
            }
        }
    }

    /// Remembers the choice (written whole, then renamed: never half a file).
    pub fn remember(&self, upstream: Option<&str>) -> Result<(), String> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&Saved {
            upstream: upstream.map(str::to_string),
        })
        .expect("serializes");
        let tmp = self.file.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.file).map_err(|e| format!("{}: {e}", self.file.display()))
    }

    /// Start again when the app exits (after a new choice).
    pub fn relaunch_after_exit(&self) {
        self.relaunch.store(true, Ordering::SeqCst);
    }

    /// Called last on exit: starts the app again, without the command line's own choice
    /// (the remembered one is the new one).
    pub fn relaunch_if_asked(&self) {
        if !self.relaunch.load(Ordering::SeqCst) {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            tracing::error!("cannot find this program to start it again");
            return;
        };
        let mut args = Vec::new();
        let mut skip = false;
        for a in std::env::args().skip(1) {
            if skip {
                skip = false;
                continue;
            }
            if a == "--upstream" {
                skip = true;
                continue;
            }
            if a.starts_with("--upstream=") || a == "--local" {
                continue;
            }
            args.push(a);
        }
        if let Err(e) = std::process::Command::new(exe).args(args).spawn() {
            tracing::error!("cannot start again: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_choice_is_remembered_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let c = Choice::new(dir.path());
        assert_eq!(c.upstream(), None);
        c.remember(Some("https://ioc.nghean.example")).unwrap();
        assert_eq!(
            Choice::new(dir.path()).upstream().as_deref(),
            Some("https://ioc.nghean.example")
        );
        c.remember(None).unwrap();
        assert_eq!(Choice::new(dir.path()).upstream(), None);
        std::fs::write(dir.path().join("desktop.json"), "{not json").unwrap();
        assert_eq!(
            c.upstream(),
            None,
            "a damaged file means this computer's engine"
        );
    }
}
