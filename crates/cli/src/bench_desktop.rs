//! `ioc bench desktop`: the desktop app's memory on the demo (the Nghệ An simulator and the
//! province's basemap), every process of it counted: the app with its engine, and WebKit's
//! web and network processes. Sampled once it has settled, as a control room leaves it.
//! Baselines, in the same run: the same engine alone (`ioc serve` on the demo, no window),
//! so what the window costs shows apart; and the same app showing an empty page instead of
//! the console (its own UI folder holding one blank `index.html`): WebKit's three processes
//! and the engine with nothing on the page, the floor under any page the window could show.
//!
//! Memory is PSS (`/proc/PID/smaps_rollup`): a page shared by several of the processes
//! (WebKit's libraries) counts once in their sum, as it is once in the machine's memory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct DesktopBench {
    /// How long each program runs before it is sampled.
    pub settle: Duration,
    /// The basemap both import (a `.pmtiles` file).
    pub basemap: PathBuf,
    /// The `ioc-desktop` program (default: beside this one).
    pub desktop: Option<PathBuf>,
}

/// PSS of one process, in KiB (0 once it is gone).
fn pss_kib(pid: u32) -> u64 {
    crate::bench_api::proc_kib(pid, "smaps_rollup", "Pss:")
}

/// Every process's parent: `/proc/PID/stat` after the command's closing parenthesis (a
/// command may hold spaces and parentheses itself) is `state ppid …`.
fn parents() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// `root` and all its descendants, each with its command name.
fn tree(root: u32) -> Vec<(u32, String)> {
    let all = parents();
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        let p = pids[i];
        pids.extend(all.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    pids.into_iter()
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            (p, comm.trim().to_string())
        })
        .collect()
}

/// The processes of `root`'s tree by name, PSS in MiB, largest first, and their sum.
fn sample(root: u32) -> (Vec<(String, f64)>, f64) {
    let mut by_name: std::collections::BTreeMap<String, u64> = Default::default();
    for (pid, name) in tree(root) {
        *by_name.entry(name).or_default() += pss_kib(pid);
    }
    let mut v: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, k)| *k > 0)
        .map(|(n, k)| (n, k as f64 / 1024.0))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    let sum = v.iter().map(|(_, m)| m).sum();
    (v, sum)
}

/// Kills the program (and with it WebKit's processes) when the bench ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn import_basemap(data: &Path, basemap: &Path) -> anyhow::Result<()> {
    let status = Command::new(std::env::current_exe()?)
        .args(["import", "basemap"])
        .arg(basemap)
        .arg("--data")
        .arg(data)
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "ioc import basemap {}", basemap.display());
    Ok(())
}

/// A UI folder holding one blank page, and a configuration that serves it in place of the
/// console (everything else default: the demo runs as in the app's own measurement).
fn empty_page(dir: &Path) -> anyhow::Result<PathBuf> {
    let ui = dir.join("empty-ui");
    std::fs::create_dir_all(&ui)?;
    std::fs::write(
        ui.join("index.html"),
        "<!doctype html><html lang=\"vi\"><meta charset=\"utf-8\"><title>IOC</title><body></body></html>\n",
    )?;
    let config = dir.join("empty-page.toml");
    let mut table = toml::Table::new();
    let mut server = toml::Table::new();
    server.insert("ui_dir".into(), ui.to_string_lossy().into_owned().into());
    table.insert("server".into(), server.into());
    std::fs::write(&config, toml::to_string(&table)?)?;
    Ok(config)
}

/// Runs `cmd` for `settle`, then samples its tree three times a second apart and keeps the
/// median sum (and that sample's processes).
async fn measure(
    cmd: &mut Command,
    settle: Duration,
    what: &str,
) -> anyhow::Result<(Vec<(String, f64)>, f64)> {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    let running = Running(child);
    let pid = running.0.id();
    tokio::time::sleep(settle).await;
    let mut samples = Vec::new();
    for _ in 0..3 {
        samples.push(sample(pid));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    samples.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (procs, sum) = samples.swap_remove(1);
    anyhow::ensure!(
        !procs.is_empty() && sum > 0.0,
        "{what} was not running after {} s",
        settle.as_secs()
    );
    drop(running);
    Ok((procs, sum))
}

pub async fn run(b: DesktopBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()),
        "no display for the window: run it under Xvfb \
         (xvfb-run -a -s \"-screen 0 1600x900x24\" ioc bench desktop)"
    );
    anyhow::ensure!(
        b.basemap.is_file(),
        "{} not found (--basemap: the province's basemap, a .pmtiles file)",
        b.basemap.display()
    );
    let desktop = match b.desktop {
        Some(d) => d,
        None => std::env::current_exe()?.with_file_name("ioc-desktop"),
    };
    anyhow::ensure!(
        desktop.is_file(),
        "{} not found: build it beside this program (cargo build --release -p ioc-desktop) \
         or say where it is with --desktop",
        desktop.display()
    );
    let dir = tempfile::tempdir()?;
    let (serve_data, desktop_data) = (dir.path().join("serve"), dir.path().join("desktop"));
    let empty_data = dir.path().join("empty");
    for data in [&serve_data, &desktop_data, &empty_data] {
        import_basemap(data, &b.basemap)?;
    }
    let empty_config = empty_page(dir.path())?;

    let (engine, engine_mb) = measure(
        Command::new(std::env::current_exe()?)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&serve_data),
        b.settle,
        "ioc serve",
    )
    .await?;
    let (app, app_mb) = measure(
        Command::new(&desktop).arg("--data").arg(&desktop_data),
        b.settle,
        "ioc-desktop",
    )
    .await?;
    let (empty, empty_mb) = measure(
        Command::new(&desktop)
            .arg("--data")
            .arg(&empty_data)
            .arg("--config")
            .arg(&empty_config),
        b.settle,
        "ioc-desktop on an empty page",
    )
    .await?;
    let list = |v: &[(String, f64)]| {
        v.iter()
            .map(|(n, m)| format!("{n} {m:.0} MB"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("desktop: engine alone: {}", list(&engine));
    println!("desktop: empty page: {}", list(&empty));
    println!("desktop: app: {}", list(&app));
    println!(
        "desktop: idle after {} s, all processes {app_mb:.0} MB (target ≤ 250), engine alone \
         {engine_mb:.0} MB, ratio {:.2}, empty page {empty_mb:.0} MB",
        b.settle.as_secs(),
        app_mb / engine_mb
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The empty page's configuration is one the app takes (the engine's own parser, which
    /// refuses unknown keys), and its UI folder holds the blank page and nothing else.
    #[test]
    fn the_empty_page_configuration_is_one_the_app_takes() {
        let dir = tempfile::tempdir().unwrap();
        let config = ioc_engine::Config::load(Some(&empty_page(dir.path()).unwrap())).unwrap();
        let ui = config.server.ui_dir.expect("ui_dir set");
        let page = std::fs::read_to_string(ui.join("index.html")).unwrap();
        assert!(page.contains("<body></body>"), "{page}");
        assert_eq!(
            std::fs::read_dir(&ui).unwrap().count(),
            1,
            "only the blank page"
        );
    }

    /// This process's tree holds a child it starts, and its memory is counted.
    #[test]
    fn a_child_counts_in_the_tree() {
        let child = Command::new("sleep").arg("5").spawn().unwrap();
        let running = Running(child);
        let me = std::process::id();
        let pids: Vec<u32> = tree(me).into_iter().map(|(p, _)| p).collect();
        assert!(pids.contains(&me));
        assert!(pids.contains(&running.0.id()), "{pids:?}");
        let (procs, sum) = sample(me);
        assert!(procs.iter().any(|(n, _)| n == "sleep"), "{procs:?}");
        assert!(sum > 1.0, "{sum}");
    }
}
