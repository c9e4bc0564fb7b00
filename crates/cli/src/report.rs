//! `ioc report`: a statistical report of a domain over a day, a week or a month, from the
//! data folder, as PDF, CSV or XLSX — the same numbers as `/api/kpis` for that period.

use clap::Args;
use ioc_model::{Domain, Period, ReportFormat, ReportRequest};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// `environment`, `water`, `traffic`, `safety`, `other` (the IOC itself)… or `all`.
    #[arg(long, default_value = "all")]
    domain: String,
    /// `day`, `week` or `month`.
    #[arg(long, default_value = "day")]
    period: String,
    /// A local date in the period (`YYYY-MM-DD`). Default: yesterday.
    #[arg(long)]
    date: Option<chrono::NaiveDate>,
    /// `pdf`, `csv` or `xlsx`. Default: from `--out`'s extension, else PDF.
    #[arg(long)]
    format: Option<String>,
    /// Only this unit (commune code).
    #[arg(long)]
    unit: Option<String>,
    /// Where to write it. Default: the report's own name in the current folder.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    common: crate::Common,
}

pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let config = a.common.load()?;
    let domain = match a.domain.as_str() {
        "all" => None,
        d => Some(Domain::parse(d).ok_or_else(|| {
            anyhow::anyhow!(
                "--domain {d:?}: all, {}",
                Domain::ALL.map(|d| d.as_str()).join(", ")
            )
        })?),
    };
    let period = Period::parse(&a.period)
        .filter(|p| *p != Period::Hour)
        .ok_or_else(|| anyhow::anyhow!("--period {:?}: day, week or month", a.period))?;
    let from_ext = a
        .out
        .as_ref()
        .and_then(|o| o.extension())
        .and_then(|e| ReportFormat::parse(&e.to_string_lossy()));
    let format = match a.format.as_deref() {
        Some(f) => ReportFormat::parse(f)
            .ok_or_else(|| anyhow::anyhow!("--format {f:?}: pdf, csv or xlsx"))?,
        None => from_ext.unwrap_or(ReportFormat::Pdf),
    };
    let now = chrono::Utc::now();
    let tz = config.tz();
    let date = a
        .date
        .unwrap_or_else(|| (now.with_timezone(&tz) - chrono::Duration::days(1)).date_naive());
    let request = ReportRequest {
        domain,
        period,
        date,
        unit: a.unit,
        format,
    };
    let bar = indicatif::ProgressBar::new(100);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos:>3}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let progress = |p: u8, stage: &str| {
        bar.set_position(u64::from(p));
        bar.set_message(stage.to_string());
    };
    let report = ioc_engine::report::offline(&config, &request, now, &progress)
        .map_err(|e| anyhow::anyhow!(e))?;
    bar.set_message("render");
    let bytes = report.render(format).map_err(|e| anyhow::anyhow!(e))?;
    let out = a.out.unwrap_or_else(|| PathBuf::from(report.file_name()));
    std::fs::write(&out, &bytes).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    bar.finish_and_clear();
    println!(
        "{} — {} KPIs, {} bytes: {}",
        report.title(),
        report.kpis.len(),
        bytes.len(),
        out.display()
    );
    Ok(())
}
