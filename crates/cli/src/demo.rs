//! `ioc demo places`: derives the demo's table of communes (code, name, a point inside each)
//! from an official boundaries file. The output is committed as
//! `assets/demo/nghe-an-communes.csv`; the boundaries themselves are not.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum DemoCommand {
    /// Print the commune table (CSV) for a GeoJSON of commune boundaries.
    Places { geojson: PathBuf },
}

pub fn run(cmd: DemoCommand) -> anyhow::Result<()> {
    match cmd {
        DemoCommand::Places { geojson } => {
            let text = std::fs::read_to_string(&geojson)?;
            let imported = ioc_engine::basemap::read_geojson(&geojson, &text)?;
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(["code", "name", "full_name", "lon", "lat"])?;
            let mut units = imported.units;
            units.sort_by(|a, b| a.code.cmp(&b.code));
            for u in units {
                w.write_record([
                    u.code,
                    u.name,
                    u.full_name.unwrap_or_default(),
                    format!("{:.6}", u.lon.unwrap_or_default()),
                    format!("{:.6}", u.lat.unwrap_or_default()),
                ])?;
            }
            w.flush()?;
            Ok(())
        }
    }
}
