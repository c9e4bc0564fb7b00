//! How WebKit draws the window: without a GPU, without its compositor.
//!
//! WebKitGTK composites a page's layers with OpenGL. On a workstation without a GPU render
//! node (a virtual machine, a thin client, Xvfb) that OpenGL is Mesa's llvmpipe on the CPU:
//! the compositor then costs the web process 180–240 MB (measured on the demo: 651 MB with
//! it, 462 MB without) and CPU time for nothing a software path does not do as well. So
//! without `/dev/dri/renderD*` the app turns compositing off before WebKit starts, unless
//! `WEBKIT_DISABLE_COMPOSITING_MODE` is already set (`=0` keeps the compositor on).
//! The map's WebGL canvas and camera video work either way (the desktop e2e tests run
//! without a GPU).

use std::ffi::OsStr;
use std::path::Path;

const VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";

/// Whether a render node (a GPU the page's OpenGL can use) is under `dri`.
fn has_render_node(dri: &Path) -> bool {
    std::fs::read_dir(dri).is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Whether to turn the compositor off: only when nobody said (`set` is the variable's
/// value) and there is no GPU.
fn compositing_off(dri: &Path, set: Option<&OsStr>) -> bool {
    set.is_none() && !has_render_node(dri)
}

/// Chooses before WebKit (or any thread) starts; says what it chose in the log.
pub fn choose() {
    let set = std::env::var_os(VAR);
    if compositing_off(Path::new("/dev/dri"), set.as_deref()) {
        // Called first thing in main, while this is the only thread.
        std::env::set_var(VAR, "1");
        tracing::info!("no GPU render node: WebKit draws without its compositor ({VAR}=1)");
    } else if let Some(v) = set {
        tracing::info!("{VAR}={} (as set)", v.to_string_lossy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compositor_goes_off_only_without_a_gpu_and_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let dri = dir.path().join("dri");
        // No /dev/dri at all (Xvfb in a container).
        assert!(compositing_off(&dri, None));
        std::fs::create_dir(&dri).unwrap();
        std::fs::write(dri.join("card0"), "").unwrap();
        // A display card without a render node is no GPU for OpenGL.
        assert!(compositing_off(&dri, None));
        std::fs::write(dri.join("renderD128"), "").unwrap();
        assert!(!compositing_off(&dri, None));
        // Whatever the user set wins, on or off.
        std::fs::remove_file(dri.join("renderD128")).unwrap();
        assert!(!compositing_off(&dri, Some(OsStr::new("0"))));
        assert!(!compositing_off(&dri, Some(OsStr::new("1"))));
    }
}
