//! Statistical reports: a domain's (or every domain's) KPIs over a day, a week or a month,
//! with the breakdown by commune, their course within the period, and what happened (alerts
//! by category and severity, incidents, directives) — as PDF, CSV or XLSX, on demand
//! (`ioc report`, the KPI screen) and on a schedule into a folder ([`schedule`]).
//!
//! The numbers are the KPIs' own ([`crate::kpi::value`] over the report's period), so a
//! report and `/api/kpis?period=…&date=…` always agree.

mod chart;
mod config;
mod pdf;
pub mod schedule;
mod xlsx;

use crate::kpi::{self, records::Record, KpiSet};
use crate::store::{Reader, StoreError};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
pub use config::{ReportsConfig, ScheduledReport};
use ioc_model::{Domain, KpiSeries, KpiValue, Period, ReportFormat, ReportRequest, Severity};
use std::collections::BTreeMap;

/// Alerts of a period, by category.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertRow {
    pub category: String,
    /// Critical, major, warning, info.
    pub by_severity: [u64; 4],
    pub acked: u64,
    /// Sum of minutes to acknowledge, over `acked`.
    pub ack_minutes: f64,
}

/// Everything a report says.
pub struct StatReport {
    pub organisation: String,
    pub tz: Tz,
    pub generated_at: DateTime<Utc>,
    pub request: ReportRequest,
    pub unit_name: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub kpis: Vec<KpiValue>,
    /// Each KPI within the period, one step finer (hours of a day, days of a week or month).
    pub trends: Vec<KpiSeries>,
    pub alerts: Vec<AlertRow>,
    /// Incidents opened, resolved, resolved with no step late.
    pub incidents: (u64, u64, u64),
    /// Directives due, done on time, done late, still open past their deadline.
    pub directives: (u64, u64, u64, u64),
}

/// How far a report is: percent, and what it is doing.
pub type Progress<'a> = &'a (dyn Fn(u8, &str) + Sync);

fn finer(p: Period) -> Period {
    match p {
        Period::Hour | Period::Day => Period::Hour,
        Period::Week | Period::Month => Period::Day,
    }
}

fn field<'a>(r: &'a Record, name: &str) -> Option<&'a cel::Value> {
    r.fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn truthy(r: &Record, name: &str) -> bool {
    matches!(field(r, name), Some(cel::Value::Bool(true)))
}

fn text(r: &Record, name: &str) -> String {
    match field(r, name) {
        Some(cel::Value::String(s)) => s.to_string(),
        _ => String::new(),
    }
}

fn in_domain(domain: Option<Domain>, d: Domain) -> bool {
    domain.is_none_or(|x| x == d)
}

/// Gathers a report (blocking: reads the store).
#[allow(clippy::too_many_arguments)]
pub fn build(
    reader: &Reader,
    kpis: &KpiSet,
    request: &ReportRequest,
    organisation: &str,
    tz: Tz,
    now: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<StatReport, StoreError> {
    let (from, to) = kpi::period::of_date(request.period, request.date, tz);
    let units = request.unit.clone().map(|u| vec![u]);
    let unit = units.as_deref();
    let chosen: Vec<_> = kpis
        .kpis
        .iter()
        .filter(|k| in_domain(request.domain, k.config.domain))
        .cloned()
        .collect();
    let mut values = Vec::new();
    let mut trends = Vec::new();
    let n = chosen.len().max(1);
    for (i, k) in chosen.iter().enumerate() {
        progress((5 + 75 * i / n) as u8, &format!("KPI {}", k.config.id));
        values.push(kpi::value(reader, k, (from, to), request.period, unit, tz)?);
        trends.push(kpi::series(
            reader,
            k,
            from,
            to,
            Some(finer(request.period)),
            unit,
            tz,
        )?);
    }
    progress(82, "alerts");
    let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
    let mut alerts: BTreeMap<String, AlertRow> = BTreeMap::new();
    for r in reader.alert_records(f, t)? {
        if request
            .unit
            .as_deref()
            .is_some_and(|u| r.unit.as_deref() != Some(u))
        {
            continue;
        }
        let domain = Domain::parse(&text(&r, "domain")).unwrap_or(Domain::Other);
        if !in_domain(request.domain, domain) {
            continue;
        }
        let cat = text(&r, "category");
        let row = alerts.entry(cat.clone()).or_insert_with(|| AlertRow {
            category: cat,
            ..Default::default()
        });
        let sev = Severity::parse(&text(&r, "severity")).unwrap_or_default();
        let idx = match sev {
            Severity::Critical => 0,
            Severity::Major => 1,
            Severity::Warning => 2,
            Severity::Info => 3,
        };
        row.by_severity[idx] += 1;
        if truthy(&r, "acked") {
            row.acked += 1;
            if let Some(cel::Value::Float(m)) = field(&r, "ack_minutes") {
                row.ack_minutes += m;
            }
        }
    }
    progress(88, "incidents");
    let mut incidents = (0, 0, 0);
    for r in reader.incident_records(f, t)? {
        let domain = Domain::parse(&text(&r, "domain")).unwrap_or(Domain::Other);
        if request
            .unit
            .as_deref()
            .is_some_and(|u| r.unit.as_deref() != Some(u))
            || !in_domain(request.domain, domain)
        {
            continue;
        }
        incidents.0 += 1;
        if truthy(&r, "resolved") {
            incidents.1 += 1;
        }
        if truthy(&r, "on_time") {
            incidents.2 += 1;
        }
    }
    let mut directives = (0, 0, 0, 0);
    // Directives have no domain of their own: the IOC's, in every report and the all-domain one.
    if request.domain.is_none() || request.domain == Some(Domain::Other) {
        for r in reader.directive_records(f, t)? {
            if request
                .unit
                .as_deref()
                .is_some_and(|u| r.unit.as_deref() != Some(u))
                || text(&r, "state") == "cancelled"
            {
                continue;
            }
            directives.0 += 1;
            match (truthy(&r, "done"), truthy(&r, "on_time")) {
                (true, true) => directives.1 += 1,
                (true, false) => directives.2 += 1,
                (false, _) if r.at < now.timestamp_millis() => directives.3 += 1,
                _ => {}
            }
        }
    }
    let unit_name = match request.unit.as_deref() {
        None => None,
        Some(u) => Some(
            reader
                .units()?
                .into_iter()
                .find(|x| x.code == u)
                .map(|x| x.name)
                .unwrap_or_else(|| u.to_string()),
        ),
    };
    Ok(StatReport {
        organisation: organisation.to_string(),
        tz,
        generated_at: now,
        request: request.clone(),
        unit_name,
        from,
        to,
        kpis: values,
        trends,
        alerts: alerts.into_values().collect(),
        incidents,
        directives,
    })
}

/// Makes a report straight from a data folder (`ioc report`): no engine needed, and safe
/// beside a running one (it only reads). KPI definitions are the store's (the starter
/// catalogue if no engine ever ran there) and the config file's.
pub fn offline(
    config: &crate::Config,
    request: &ReportRequest,
    now: DateTime<Utc>,
    progress: Progress<'_>,
) -> Result<StatReport, String> {
    let tz = config.tz();
    let dir = config.data_dir();
    let db = crate::store::open_configured(&config.store, &dir).map_err(|e| e.to_string())?;
    let conn = crate::store::connect_path(&db).map_err(|e| e.to_string())?;
    crate::store::backfill_rollups(&conn, tz).map_err(|e| e.to_string())?;
    let reader = Reader::new(&db);
    let stored = match reader.meta("kpis_seeded").map_err(|e| e.to_string())? {
        Some(_) => reader.kpi_defs().map_err(|e| e.to_string())?,
        None => kpi::catalogue::starter(),
    };
    let set = KpiSet::build(&config.kpis, &stored);
    let mut request = request.clone();
    let (from, _) = kpi::period::of_date(request.period, request.date, tz);
    request.date = from.with_timezone(&tz).date_naive();
    build(
        &reader,
        &set,
        &request,
        &config.organisation.name,
        tz,
        now,
        progress,
    )
    .map_err(|e| e.to_string())
}

/// The file name of a report: `bao-cao-<domain|all>[-<unit>]-<period>-<start date>.<ext>`,
/// the start date being the first day of the period.
pub fn file_name(r: &ReportRequest) -> String {
    let domain = r.domain.map(|d| d.as_str()).unwrap_or("all");
    let unit = r
        .unit
        .as_deref()
        .map(|u| format!("-{u}"))
        .unwrap_or_default();
    format!(
        "bao-cao-{domain}{unit}-{}-{}.{}",
        r.period.as_str(),
        r.date.format("%Y-%m-%d"),
        r.format.as_str()
    )
}

/// The unit a report file is of, from its name (`None`: the whole province), so the
/// reports folder is shown to each person only with their units' files. Unit codes are
/// digits (the commune codes), domains and periods are words.
pub fn unit_of_file(name: &str) -> Option<String> {
    let rest = name.strip_prefix("bao-cao-")?;
    let mut parts = rest.split('-');
    let _domain = parts.next()?;
    let next = parts.next()?;
    (!next.is_empty()
        && next.chars().all(|c| c.is_ascii_alphanumeric())
        && ioc_model::Period::parse(next).is_none())
    .then(|| next.to_string())
}

/// A number as a report prints it.
pub fn number(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x.fract().abs() < 1e-9 && x.abs() < 1e12 => format!("{x:.0}"),
        Some(x) if x.abs() >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.1}"),
    }
}

/// A domain as people read it.
pub fn domain_vi(d: Option<Domain>) -> &'static str {
    match d {
        None => "Tất cả lĩnh vực",
        Some(Domain::Environment) => "Môi trường",
        Some(Domain::Water) => "Tài nguyên nước, phòng chống lũ",
        Some(Domain::Traffic) => "Giao thông",
        Some(Domain::Safety) => "An ninh, an toàn",
        Some(Domain::Health) => "Y tế",
        Some(Domain::Education) => "Giáo dục",
        Some(Domain::Tourism) => "Du lịch",
        Some(Domain::Agriculture) => "Nông nghiệp",
        Some(Domain::Planning) => "Quy hoạch",
        Some(Domain::Other) => "Hoạt động của IOC",
    }
}

fn period_vi(p: Period) -> &'static str {
    match p {
        Period::Hour => "giờ",
        Period::Day => "ngày",
        Period::Week => "tuần",
        Period::Month => "tháng",
    }
}

impl StatReport {
    pub fn title(&self) -> String {
        let when = match self.request.period {
            Period::Week => kpi::period::label(Period::Week, self.from, self.tz),
            p => format!(
                "{} {}",
                period_vi(p),
                kpi::period::label(p, self.from, self.tz)
            ),
        };
        let place = self
            .unit_name
            .as_deref()
            .map(|u| format!(" — {u}"))
            .unwrap_or_default();
        format!(
            "Báo cáo thống kê {when} — {}{place}",
            domain_vi(self.request.domain)
        )
    }

    /// The file name it is saved as.
    pub fn file_name(&self) -> String {
        file_name(&self.request)
    }

    /// The report in its requested format.
    pub fn render(&self, format: ReportFormat) -> Result<Vec<u8>, String> {
        match format {
            ReportFormat::Pdf => pdf::render(self),
            ReportFormat::Csv => Ok(self.csv()),
            ReportFormat::Xlsx => xlsx::render(self),
        }
    }

    /// One flat table: `section` is `kpi` (a KPI over the period), `kpi_unit` (by commune),
    /// `trend` (within the period), `alerts` (count by category and severity), `incidents`,
    /// `directives`. Values are unrounded, as the API gives them.
    pub fn csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "section",
            "id",
            "name",
            "unit",
            "unit_name",
            "from",
            "to",
            "value",
            "target",
            "status",
            "uom",
            "numerator",
            "denominator",
            "previous",
        ]);
        let f = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
        for k in &self.kpis {
            let _ = w.write_record([
                "kpi",
                &k.id,
                &k.name,
                self.request.unit.as_deref().unwrap_or(""),
                self.unit_name.as_deref().unwrap_or(""),
                &k.from.to_rfc3339(),
                &k.to.to_rfc3339(),
                &f(k.value),
                &k.target.to_string(),
                k.status.as_str(),
                &k.uom,
                &k.numerator.to_string(),
                &k.denominator.to_string(),
                &f(k.previous),
            ]);
            for u in &k.by_unit {
                let _ = w.write_record([
                    "kpi_unit",
                    &k.id,
                    &k.name,
                    &u.unit,
                    &u.unit_name,
                    &k.from.to_rfc3339(),
                    &k.to.to_rfc3339(),
                    &f(u.value),
                    &k.target.to_string(),
                    u.status.as_str(),
                    &k.uom,
                    &u.numerator.to_string(),
                    &u.denominator.to_string(),
                    "",
                ]);
            }
        }
        for s in &self.trends {
            for p in &s.points {
                let _ = w.write_record([
                    "trend",
                    &s.id,
                    "",
                    s.unit.as_deref().unwrap_or(""),
                    "",
                    &p.from.to_rfc3339(),
                    &p.to.to_rfc3339(),
                    &f(p.value),
                    &s.target.to_string(),
                    p.status.as_str(),
                    &s.uom,
                    &p.numerator.to_string(),
                    &p.denominator.to_string(),
                    "",
                ]);
            }
        }
        let (from, to) = (self.from.to_rfc3339(), self.to.to_rfc3339());
        for a in &self.alerts {
            for (i, sev) in ["critical", "major", "warning", "info"].iter().enumerate() {
                let _ = w.write_record([
                    "alerts",
                    &a.category,
                    sev,
                    "",
                    "",
                    &from,
                    &to,
                    &a.by_severity[i].to_string(),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]);
            }
        }
        let (o, r, ot) = self.incidents;
        for (name, v) in [("opened", o), ("resolved", r), ("on_time", ot)] {
            let _ = w.write_record([
                "incidents",
                name,
                "",
                "",
                "",
                &from,
                &to,
                &v.to_string(),
                "",
                "",
                "",
                "",
                "",
                "",
            ]);
        }
        let (due, ok, late, open) = self.directives;
        for (name, v) in [
            ("due", due),
            ("done_on_time", ok),
            ("done_late", late),
            ("overdue_open", open),
        ] {
            let _ = w.write_record([
                "directives",
                name,
                "",
                "",
                "",
                &from,
                &to,
                &v.to_string(),
                "",
                "",
                "",
                "",
                "",
                "",
            ]);
        }
        w.into_inner().unwrap_or_default()
    }
}
