//! `ioc import …`: files into the engine. When an engine already runs on the data folder (the
//! desktop app, `ioc serve`), the files go to it through its API, so what it shows stays
//! true; otherwise an engine is started here just for the import.

use crate::Common;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ioc_engine::clock::SystemClock;
use ioc_engine::store::{self, WriteBatch, Writer};
use ioc_engine::Engine;
use ioc_model::ImportReport;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct Files {
    /// Files to import.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Source name to record the data under (shown in /api/sources and the dead letters).
    #[arg(long, default_value = "import")]
    source: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct MappedFiles {
    /// The mapping (TOML: the keys of a `[source.mapping]` table).
    #[arg(long, value_name = "FILE")]
    mapping: PathBuf,
    #[command(flatten)]
    files: Files,
}

#[derive(Args)]
pub struct GeoJsonFiles {
    /// Entity type for every feature (default: the property "type", else "Asset").
    #[arg(long)]
    kind: Option<String>,
    /// Property holding the id (default: the feature id, then "id").
    #[arg(long)]
    id_field: Option<String>,
    /// Property holding the name (default "name").
    #[arg(long)]
    name_field: Option<String>,
    /// Domain (environment, water, traffic, safety, …).
    #[arg(long)]
    domain: Option<String>,
    /// Prepended to every id.
    #[arg(long)]
    id_prefix: Option<String>,
    #[command(flatten)]
    files: Files,
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// The map's boundaries (GeoJSON or PMTiles); GeoJSON also registers the units.
    Basemap {
        /// A GeoJSON FeatureCollection of (multi)polygons, or a PMTiles vector archive.
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// CAP 1.2 alerts (XML), one message per file.
    Cap(Files),
    /// NGSI-LD / FIWARE Smart Data Models entities (any form).
    #[command(alias = "ngsi-ld")]
    Ngsi(Files),
    /// GeoJSON features as entities (cameras, stations, assets).
    Geojson(GeoJsonFiles),
    /// JSON through a mapping (see `decode::json`).
    Json(MappedFiles),
    /// CSV time series through a mapping (see `decode::csv`), streamed with a progress bar.
    Csv(MappedFiles),
}

pub async fn run(cmd: ImportCommand) -> anyhow::Result<()> {
    match cmd {
        ImportCommand::Basemap { file, common } => basemap(file, common).await,
        ImportCommand::Cap(f) => files(f, "cap", None).await,
        ImportCommand::Ngsi(f) => files(f, "ngsi-ld", None).await,
        ImportCommand::Geojson(g) => {
            let mut t = toml::Table::new();
            for (k, v) in [
                ("kind", g.kind),
                ("id", g.id_field),
                ("name", g.name_field),
                ("domain", g.domain),
                ("id_prefix", g.id_prefix),
            ] {
                if let Some(v) = v {
                    t.insert(k.into(), toml::Value::String(v));
                }
            }
            files(g.files, "geojson", Some(toml::Value::Table(t))).await
        }
        ImportCommand::Json(m) => {
            let mapping = read_mapping(&m.mapping)?;
            files(m.files, "json", Some(mapping)).await
        }
        ImportCommand::Csv(m) => {
            let mapping = read_mapping(&m.mapping)?;
            files(m.files, "csv", Some(mapping)).await
        }
    }
}

fn read_mapping(path: &Path) -> anyhow::Result<toml::Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read mapping {}: {e}", path.display()))?;
    let v: toml::Value = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid mapping {}: {e}", path.display()))?;
    Ok(v)
}

fn bar(len: u64) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta} {msg}")
            .expect("valid template"),
    );
    pb
}

/// Imports files with one decoder, through a running engine's API or a local engine.
async fn files(f: Files, format: &str, mapping: Option<toml::Value>) -> anyhow::Result<()> {
    let mut config = f.common.load()?;
    config.sources = Some(Vec::new());
    let data = config.data_dir();
    let total: u64 = f
        .files
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let pb = bar(total);
    let mut reports = Vec::new();
    if let Some(running) = ioc_engine::engine::running_server(&data) {
        let url = running.url;
        pb.println(format!(
            "an engine runs on {}: importing through {url}",
            data.display()
        ));
        let client = reqwest::Client::new();
        for path in &f.files {
            // Streamed from the file: the server reads a CSV as it arrives.
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
            let mut req = client.post(format!("{url}/api/import")).query(&[
                ("format", format),
                ("source", f.source.as_str()),
                ("name", &path.display().to_string()),
            ]);
            if let Some(m) = &mapping {
                req = req.query(&[("mapping", toml::to_string(m)?)]);
            }
            if let Some(k) = &running.admin_key {
                req = req.bearer_auth(k);
            }
            let resp = req.body(body).send().await?;
            if !resp.status().is_success() {
                let status = resp.status();
                anyhow::bail!(
                    "{}: {status}: {}",
                    path.display(),
                    resp.text().await.unwrap_or_default()
                );
            }
            reports.push((path.clone(), resp.json::<ImportReport>().await?));
            pb.inc(len);
        }
    } else {
        let engine = Engine::start(config).await?;
        for path in &f.files {
            let file = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    engine.shutdown().await;
                    anyhow::bail!("cannot read {}: {e}", path.display());
                }
            };
            // The bar moves as the file is read: a CSV is streamed, so that is as it goes.
            let report = engine
                .import_reader(
                    &f.source,
                    format,
                    mapping.clone(),
                    Some(path.display().to_string()),
                    pb.wrap_read(file),
                    ioc_engine::sources::file::MAX_FILE,
                )
                .await;
            match report {
                Ok(r) => reports.push((path.clone(), r)),
                Err(e) => {
                    engine.shutdown().await;
                    return Err(anyhow::anyhow!("{}: {e}", path.display()));
                }
            }
        }
        engine.shutdown().await;
    }
    pb.finish_and_clear();
    let mut refused = 0;
    for (path, r) in &reports {
        println!(
            "{}: {} accepted, {} refused ({})",
            path.display(),
            r.accepted,
            r.refused,
            r.format
        );
        if r.history > 0 {
            println!(
                "  {} observation(s) older than [alerts] history_after: history, \
                 stored but not evaluated by the live rules (the rules screen's backtest \
                 shows what they would have raised)",
                r.history
            );
        }
        for x in &r.rejected {
            if x.count > 1 {
                println!("  refused ×{}: {}", x.count, x.reason);
            } else {
                println!("  refused: {}", x.reason);
            }
            for s in &x.samples {
                println!("    also: {s}");
            }
        }
        refused += r.refused;
    }
    if refused > 0 {
        anyhow::bail!("{refused} item(s) refused (in the dead letters); see above");
    }
    Ok(())
}

/// The audit key of the configuration, if the chain is keyed.
pub fn audit_key(
    config: &ioc_engine::Config,
) -> anyhow::Result<Option<Arc<ioc_engine::audit::AuditKey>>> {
    Ok(match &config.audit.key_file {
        Some(p) => Some(Arc::new(
            ioc_engine::audit::AuditKey::load_or_create(p).map_err(|e| anyhow::anyhow!(e))?,
        )),
        None => None,
    })
}

async fn basemap(file: PathBuf, common: Common) -> anyhow::Result<()> {
    let config = common.load()?;
    let data = config.data_dir();
    let imported = ioc_engine::basemap::import(&data, &file).await?;
    let units = imported.units.len();
    if units > 0 {
        let db = store::open(&data)?;
        let writer = Writer::spawn(
            &db,
            &ioc_engine::store::StoreConfig {
                batch_max: 1024,
                ..config.store.clone()
            },
            Arc::new(SystemClock),
            config.tz(),
            audit_key(&config)?,
        )?;
        writer
            .write(WriteBatch {
                units: imported.units,
                ..Default::default()
            })
            .await?;
        tokio::task::spawn_blocking(move || writer.close()).await?;
    }
    let info = imported.info;
    println!(
        "basemap imported into {}: {:?}, bounds {:?}{}{}",
        data.display(),
        info.kind,
        info.bounds.unwrap_or_default(),
        info.features
            .map(|n| format!(", {n} polygons"))
            .unwrap_or_default(),
        if units > 0 {
            format!(", {units} units registered")
        } else {
            String::new()
        }
    );
    Ok(())
}
