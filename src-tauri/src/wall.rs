//! The video wall on the desktop: a borderless full-screen window on every monitor, each at
//! `/wall?screen=N` so monitor N plays screen N of the wall's profile. Opened at start by
//! `--wall` (an unattended wall PC shows nothing else) or later from the console's wall
//! screen through `POST /api/desktop/wall`, which is why this is the server's `Desktop` hook.

use ioc_engine::Engine;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder};

/// What the wall windows need: the app (known once Tauri is set up) and the server (with
/// its engine, or a workstation's gateway whose windows share the signed-in cookie).
#[derive(Default)]
pub struct Walls {
    app: OnceLock<AppHandle>,
    server: OnceLock<(Option<Arc<Engine>>, SocketAddr)>,
}

impl Walls {
    pub fn serve_at(&self, engine: Option<Arc<Engine>>, addr: SocketAddr) {
        let _ = self.server.set((engine, addr));
    }

    pub fn attach(&self, app: AppHandle) {
        let _ = self.app.set(app);
    }

    /// Opens (or brings forward) one wall window per monitor; how many there are.
    pub fn open(&self) -> Result<usize, String> {
        let app = self.app.get().ok_or("the desktop app is still starting")?;
        let (engine, addr) = self.server.get().ok_or("the server is still starting")?;
        let monitors = app
            .available_monitors()
            .map_err(|e| format!("cannot list the monitors: {e}"))?;
        // No monitor reported (some virtual displays): one window where the system puts it.
        let places: Vec<Option<tauri::Monitor>> = if monitors.is_empty() {
            vec![None]
        } else {
            monitors.into_iter().map(Some).collect()
        };
        for (i, monitor) in places.iter().enumerate() {
            let screen = i + 1;
            let label = format!("wall-{screen}");
            if let Some(w) = app.get_webview_window(&label) {
                let _ = w.show();
                let _ = w.set_focus();
                continue;
            }
            let path = format!("/wall?screen={screen}");
            let url = match engine {
                Some(engine) => crate::with_session(engine, *addr, &path),
                None => format!("http://{addr}{path}"),
            };
            let url = url.parse().map_err(|e| format!("wall address: {e}"))?;
            let mut b = WebviewWindowBuilder::new(app, &label, WebviewUrl::External(url))
                .title(format!("IOC Console — màn hình {screen}"))
                .decorations(false)
                .fullscreen(true);
            if let Some(m) = monitor {
                let scale = m.scale_factor();
                let pos = m.position().to_logical::<f64>(scale);
                let size = m.size().to_logical::<f64>(scale);
                b = b.position(pos.x, pos.y).inner_size(size.width, size.height);
            }
            b.build()
                .map_err(|e| format!("cannot open wall screen {screen}: {e}"))?;
        }
        Ok(places.len())
    }
}

/// What the desktop app offers its own pages: the wall's windows, and the choice of server.
pub struct Hooks {
    pub walls: Arc<Walls>,
    pub choice: Arc<crate::choice::Choice>,
}

impl ioc_server::Desktop for Hooks {
    fn open_wall(&self) -> Result<usize, String> {
        self.walls.open()
    }

    fn set_upstream(&self, url: Option<String>) -> Result<(), String> {
        self.choice.remember(url.as_deref())?;
        let app = self
            .walls
            .app
            .get()
            .ok_or("the desktop app is still starting")?;
        self.choice.relaunch_after_exit();
        app.exit(0);
        Ok(())
    }
}
