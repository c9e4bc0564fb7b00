//! Reports on a schedule: after each day, week or month ends, its report (of a domain, or
//! all) is written into the reports folder — once: a file already there is not made again,
//! so a restart (or a folder someone tidied) never loses or doubles one. A report that
//! fails (a full disk) is tried again later and the failure is visible in the log and on
//! the KPI screen's report list.

use super::ScheduledReport;
use crate::kpi::period;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use ioc_model::ReportRequest;
use std::path::Path;

/// The reports due at `now`: for each scheduled one, the last period that has ended, when
/// its file is not in `folder` yet.
pub fn due(
    schedule: &[ScheduledReport],
    now: DateTime<Utc>,
    tz: Tz,
    folder: &Path,
    file_name: impl Fn(&ReportRequest) -> String,
) -> Vec<ReportRequest> {
    schedule
        .iter()
        .filter_map(|s| {
            let (current, _) = period::containing(s.period, now, tz);
            let (last, _) = period::previous(s.period, current, tz);
            let req = ReportRequest {
                domain: s.domain,
                period: s.period,
                date: last.with_timezone(&tz).date_naive(),
                unit: s.unit.clone(),
                format: s.format,
            };
            (!folder.join(file_name(&req)).exists()).then_some(req)
        })
        .collect()
}

/// Writes a report's bytes into the folder without ever leaving half a file under the
/// report's name.
pub fn save(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<std::path::PathBuf> {
    std::fs::create_dir_all(folder)?;
    let path = folder.join(name);
    let tmp = folder.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::{Period, ReportFormat};

    #[test]
    fn the_last_period_that_ended_once() {
        let dir = tempfile::tempdir().unwrap();
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let s = vec![
            ScheduledReport {
                period: Period::Day,
                domain: None,
                unit: None,
                format: ReportFormat::Pdf,
            },
            ScheduledReport {
                period: Period::Month,
                domain: Some(ioc_model::Domain::Environment),
                unit: None,
                format: ReportFormat::Csv,
            },
        ];
        // 00:10 on 1 Dec 2026 in Nghệ An.
        let now: DateTime<Utc> = "2026-11-30T17:10:00Z".parse().unwrap();
        let name = |r: &ReportRequest| format!("{}-{}", r.period.as_str(), r.date);
        let d = due(&s, now, tz, dir.path(), name);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].date.to_string(), "2026-11-30");
        assert_eq!(
            d[1].date.to_string(),
            "2026-11-01",
            "November, which just ended"
        );
        save(dir.path(), &name(&d[0]), b"%PDF-").unwrap();
        let d = due(&s, now, tz, dir.path(), name);
        assert_eq!(d.len(), 1, "not again");
        assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".part")));
    }
}
