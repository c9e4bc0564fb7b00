//! `ioc import …`.

use crate::Common;
use clap::Subcommand;
use ioc_engine::clock::SystemClock;
use ioc_engine::store::{self, WriteBatch, Writer};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import the map's boundaries (GeoJSON or PMTiles); GeoJSON also registers the units.
    Basemap {
        /// A GeoJSON FeatureCollection of (multi)polygons, or a PMTiles vector archive.
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

pub async fn run(cmd: ImportCommand) -> anyhow::Result<()> {
    match cmd {
        ImportCommand::Basemap { file, common } => {
            let config = common.load()?;
            let data = config.data_dir();
            let imported = ioc_engine::basemap::import(&data, &file).await?;
            let units = imported.units.len();
            if units > 0 {
                let db = store::open(&data)?;
                let writer =
                    Writer::spawn(&db, 1024, config.store.raw_retention, Arc::new(SystemClock))?;
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
    }
}
