//! The after-action report of an incident: what happened, who did what and when — its
//! alerts with their timelines, the SOP steps against their SLAs, the directives and their
//! answers — as one merged timeline, exported as CSV (one row per event) and as PDF.

use crate::pdf::{self, Cell, Column, Layout};
use chrono::{DateTime, Utc};
use ioc_model::{Alert, AlertEventKind, Incident, StepStatus};

/// One row of the merged timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `incident`, `alert #12`, `step verify`, `directive #3`.
    pub subject: String,
    /// What happened, as the event kind (`step_done`, `transition`…).
    pub what: String,
    pub detail: String,
}

/// A camera of the incident and its still when the report was made.
pub struct CameraStill {
    pub camera: String,
    pub name: String,
    pub still: Result<crate::video::snapshot::Still, String>,
}

/// Everything the report says.
pub struct AfterAction {
    pub incident: Incident,
    pub alerts: Vec<Alert>,
    pub organisation: String,
    pub tz: chrono_tz::Tz,
    pub generated_at: DateTime<Utc>,
    /// Its evidence clips (its own and its alerts').
    pub clips: Vec<ioc_model::ClipInfo>,
    /// Its cameras' stills, taken when the report was made.
    pub stills: Vec<CameraStill>,
}

fn minutes(d: chrono::Duration) -> String {
    let m = d.num_minutes();
    if m < 60 {
        format!("{m} phút")
    } else {
        format!("{} giờ {:02} phút", m / 60, m % 60)
    }
}

impl AfterAction {
    pub fn new(
        incident: Incident,
        alerts: Vec<Alert>,
        organisation: String,
        tz: chrono_tz::Tz,
        generated_at: DateTime<Utc>,
    ) -> AfterAction {
        AfterAction {
            incident,
            alerts,
            organisation,
            tz,
            generated_at,
            clips: Vec::new(),
            stills: Vec::new(),
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%d/%m/%Y %H:%M:%S")
            .to_string()
    }

    /// The incident's events and its alerts' events, in time order.
    pub fn timeline(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for e in &self.incident.events {
            let subject = match (&e.step, e.alert, e.directive) {
                (Some(s), _, _) => format!("step {s}"),
                (_, Some(a), _) => format!("alert #{a}"),
                (_, _, Some(d)) => format!("directive #{d}"),
                _ => "incident".to_string(),
            };
            rows.push(Row {
                at: e.at,
                actor: e.actor.clone(),
                subject,
                what: e.kind.as_str().to_string(),
                detail: e.comment.clone().unwrap_or_default(),
            });
        }
        for a in &self.alerts {
            for e in &a.events {
                // Joining the incident is already on the incident's own timeline.
                if e.kind == AlertEventKind::Incident {
                    continue;
                }
                let what = match (e.kind, e.to) {
                    (AlertEventKind::Transition, Some(to)) => format!("→ {}", to.as_str()),
                    (k, _) => crate::store::event_kind_name(k).to_string(),
                };
                let mut detail = e.comment.clone().unwrap_or_default();
                if let (Some(v), AlertEventKind::Raised | AlertEventKind::Reactivated) =
                    (e.value, e.kind)
                {
                    let uom = a
                        .metric
                        .as_deref()
                        .map(ioc_model::metric::uom)
                        .unwrap_or_default();
                    detail = format!("{} = {v} {uom}", a.metric.as_deref().unwrap_or("value"))
                        .trim()
                        .to_string();
                }
                rows.push(Row {
                    at: e.at,
                    actor: e.actor.clone(),
                    subject: format!("alert #{}", a.id),
                    what,
                    detail,
                });
            }
        }
        // Stable: events of one moment keep the order they were written in.
        rows.sort_by_key(|r| r.at);
        rows
    }

    /// The timeline as CSV: time (UTC, RFC 3339), local time, actor, subject, event, detail.
    pub fn csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "incident",
            "time_utc",
            "time_local",
            "actor",
            "subject",
            "event",
            "detail",
        ]);
        let id = self.incident.id.to_string();
        for r in self.timeline() {
            let _ = w.write_record([
                id.as_str(),
                &r.at.to_rfc3339(),
                &self.local(r.at),
                &r.actor,
                &r.subject,
                &r.what,
                &r.detail,
            ]);
        }
        w.into_inner().unwrap_or_default()
    }

    /// People who acted, with how many actions each.
    pub fn actors(&self) -> Vec<(String, usize)> {
        let mut m: std::collections::BTreeMap<String, usize> = Default::default();
        for r in self.timeline() {
            *m.entry(r.actor).or_default() += 1;
        }
        m.into_iter().collect()
    }

    /// The report as PDF (Vietnamese).
    pub fn pdf(&self) -> Result<Vec<u8>, String> {
        let i = &self.incident;
        let title = format!("Báo cáo sau sự cố #{} — {}", i.id, i.title);
        let mut l = Layout::new(&title, &format!("{} · sự cố #{}", self.organisation, i.id));
        l.text(&self.organisation, 9.0, false, pdf::GREY);
        l.heading(&title, 1);
        let end = i.closed_at.or(i.resolved_at);
        let mut facts = vec![
            ("Trạng thái".to_string(), state_vi(i.state).to_string()),
            ("Mức độ".to_string(), severity_vi(i.severity).to_string()),
            ("Loại sự kiện".to_string(), category_vi(&i.category)),
            (
                "Địa bàn".to_string(),
                i.unit_name.clone().unwrap_or_else(|| "Toàn tỉnh".into()),
            ),
            (
                "Mở lúc".to_string(),
                format!("{} ({})", self.local(i.opened_at), i.opened_by),
            ),
        ];
        if let Some(t) = i.resolved_at {
            facts.push(("Xử lý xong lúc".into(), self.local(t)));
        }
        if let Some(t) = i.closed_at {
            facts.push((
                "Đóng lúc".into(),
                format!(
                    "{} ({})",
                    self.local(t),
                    i.closed_by.clone().unwrap_or_default()
                ),
            ));
        }
        if let Some(t) = end {
            facts.push(("Thời gian xử lý".into(), minutes(t - i.opened_at)));
        }
        if let Some(s) = &i.sop {
            facts.push((
                "Quy trình (SOP)".into(),
                format!("{} — {} (phiên bản {})", s.name, s.title, s.version),
            ));
        }
        let first_ack = self
            .alerts
            .iter()
            .filter_map(|a| a.acked_at.map(|t| t - a.raised_at))
            .min();
        if let Some(d) = first_ack {
            facts.push(("Xác nhận cảnh báo sau".into(), minutes(d)));
        }
        facts.push(("Lập báo cáo lúc".into(), self.local(self.generated_at)));
        l.facts(&facts);

        l.heading(&format!("Cảnh báo ({})", self.alerts.len()), 2);
        let rows: Vec<Vec<Cell>> = self
            .alerts
            .iter()
            .map(|a| {
                vec![
                    Cell::from(format!("#{}", a.id)),
                    Cell::from(severity_vi(a.severity)).fill(severity_fill(a.severity)),
                    Cell::from(format!("{} — {}", a.entity_name, a.message)),
                    Cell::from(self.local(a.raised_at)),
                    Cell::from(
                        a.acked_at
                            .map(|t| {
                                format!(
                                    "{} ({})",
                                    minutes(t - a.raised_at),
                                    a.acked_by.clone().unwrap_or_default()
                                )
                            })
                            .unwrap_or_else(|| "—".into()),
                    ),
                    Cell::from(alert_state_vi(a.state)),
                ]
            })
            .collect();
        l.table(
            &[
                Column::new("#", 0.6),
                Column::new("Mức độ", 1.1),
                Column::new("Cảnh báo", 4.0),
                Column::new("Phát sinh", 1.7),
                Column::new("Xác nhận sau", 1.6),
                Column::new("Trạng thái", 1.1),
            ],
            &rows,
        );

        if !i.steps.is_empty() {
            let on_time = i
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Done && !s.overdue)
                .count();
            let done = i
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Done)
                .count();
            l.heading(
                &format!("Các bước quy trình — {done} đã làm, {on_time} đúng hạn"),
                2,
            );
            let rows: Vec<Vec<Cell>> = i
                .steps
                .iter()
                .map(|s| {
                    let took = match (s.ready_at, s.done_at) {
                        (Some(a), Some(b)) if s.status == StepStatus::Done => minutes(b - a),
                        _ => "—".into(),
                    };
                    let sla = s
                        .sla_seconds
                        .map(|x| minutes(chrono::Duration::seconds(x as i64)))
                        .unwrap_or_else(|| "—".into());
                    let fill = match s.status {
                        StepStatus::Done if s.overdue => Some(pdf::AMBER),
                        StepStatus::Done => Some(pdf::GREEN),
                        StepStatus::Ready if s.overdue => Some(pdf::RED),
                        _ => None,
                    };
                    let mut what = s.title.clone();
                    if let Some(a) = &s.answer {
                        what.push_str(&format!(" → {a}"));
                    }
                    if let Some(c) = &s.comment {
                        what.push_str(&format!(" · {c}"));
                    }
                    vec![
                        Cell::from(s.id.clone()),
                        Cell::from(what),
                        Cell::from(s.role.as_str()),
                        Cell::from(step_vi(s.status, s.overdue)).fill(fill),
                        Cell::from(sla),
                        Cell::from(took),
                        Cell::from(s.done_by.clone().unwrap_or_default()),
                    ]
                })
                .collect();
            l.table(
                &[
                    Column::new("Bước", 1.6),
                    Column::new("Nội dung", 3.9),
                    Column::new("Vai trò", 1.1),
                    Column::new("Kết quả", 1.2),
                    Column::new("Hạn (SLA)", 1.0),
                    Column::new("Thực hiện", 1.0),
                    Column::new("Người làm", 1.1),
                ],
                &rows,
            );
        }

        if !i.directives.is_empty() {
            l.heading(&format!("Chỉ đạo ({})", i.directives.len()), 2);
            let rows: Vec<Vec<Cell>> = i
                .directives
                .iter()
                .map(|d| {
                    let status = match d.on_time() {
                        Some(true) => "Hoàn thành đúng hạn",
                        Some(false) => "Hoàn thành quá hạn",
                        None if d.overdue => "Quá hạn",
                        None => directive_vi(d.state),
                    };
                    let fill = match (d.on_time(), d.overdue) {
                        (Some(true), _) => Some(pdf::GREEN),
                        (_, true) => Some(pdf::RED),
                        _ => None,
                    };
                    vec![
                        Cell::from(format!("#{}", d.id)),
                        Cell::from(d.unit_name.clone()),
                        Cell::from(d.title.clone()),
                        Cell::from(self.local(d.deadline)),
                        Cell::from(status).fill(fill),
                        Cell::from(format!("{} %", d.progress)).fill(None),
                    ]
                })
                .collect();
            l.table(
                &[
                    Column::new("#", 0.6),
                    Column::new("Đơn vị", 1.8),
                    Column::new("Nội dung", 3.6),
                    Column::new("Hạn", 1.7),
                    Column::new("Kết quả", 1.7),
                    Column::new("Tiến độ", 0.9).right(),
                ],
                &rows,
            );
        }

        if !self.stills.is_empty() || !self.clips.is_empty() {
            l.heading("Camera và video bằng chứng", 2);
        }
        for c in &self.stills {
            match &c.still {
                Ok(s) => {
                    let when = self.local(s.taken);
                    let kind = if s.simulated {
                        " (ảnh mô phỏng)"
                    } else {
                        ""
                    };
                    l.text(
                        &format!("{} — ảnh lúc {when}{kind}", c.name),
                        9.0,
                        true,
                        pdf::Color(0x20, 0x20, 0x20),
                    );
                    let drawn = match s.mime {
                        "image/svg+xml" => {
                            l.svg_at(
                                String::from_utf8_lossy(&s.bytes).into_owned(),
                                (640, 360),
                                260.0,
                            );
                            Ok(())
                        }
                        m => l.image(s.bytes.to_vec(), m == "image/png", 260.0),
                    };
                    if let Err(e) = drawn {
                        l.paragraph(&format!("(không đọc được ảnh: {e})"));
                    }
                }
                Err(e) => l.paragraph(&format!("{}: không có ảnh ({e})", c.name)),
            }
        }
        if !self.clips.is_empty() {
            let rows: Vec<Vec<Cell>> = self
                .clips
                .iter()
                .map(|c| {
                    let span = match (c.from, c.to) {
                        (Some(f), Some(t)) => format!(
                            "{} – {}",
                            self.local(f),
                            t.with_timezone(&self.tz).format("%H:%M:%S")
                        ),
                        _ => self.local(c.at),
                    };
                    let state = match c.state {
                        ioc_model::ClipState::Saved => {
                            format!("{} ({:.1} MB)", c.file_name, c.size as f64 / 1_048_576.0)
                        }
                        ioc_model::ClipState::Recording => "đang ghi".into(),
                        ioc_model::ClipState::Failed => {
                            format!("không lưu được: {}", c.error.clone().unwrap_or_default())
                        }
                        ioc_model::ClipState::Expired => {
                            format!("đã xoá: {}", c.error.clone().unwrap_or_default())
                        }
                    };
                    vec![
                        Cell::from(format!("#{}", c.id)),
                        Cell::from(c.camera_name.clone()),
                        Cell::from(span),
                        Cell::from(state),
                        Cell::from(c.sha256.clone().unwrap_or_default()),
                    ]
                })
                .collect();
            l.table(
                &[
                    Column::new("#", 0.5),
                    Column::new("Camera", 1.6),
                    Column::new("Thời gian", 2.0),
                    Column::new("Tệp", 2.4),
                    Column::new("SHA-256", 2.8),
                ],
                &rows,
            );
        }

        let actors = self.actors();
        l.heading("Người tham gia", 2);
        l.paragraph(
            &actors
                .iter()
                .map(|(a, n)| format!("{a} ({n})"))
                .collect::<Vec<_>>()
                .join(", "),
        );

        l.heading("Diễn biến", 2);
        let rows: Vec<Vec<Cell>> = self
            .timeline()
            .into_iter()
            .map(|r| {
                vec![
                    Cell::from(self.local(r.at)),
                    Cell::from(r.actor),
                    Cell::from(r.subject),
                    Cell::from(r.what),
                    Cell::from(r.detail),
                ]
            })
            .collect();
        l.table(
            &[
                Column::new("Thời gian", 1.6),
                Column::new("Người", 1.1),
                Column::new("Đối tượng", 1.3),
                Column::new("Sự kiện", 1.4),
                Column::new("Chi tiết", 4.0),
            ],
            &rows,
        );
        l.finish(
            "vi-VN",
            self.generated_at.with_timezone(&self.tz).fixed_offset(),
        )
    }
}

/// An alert category as the console shows it in Vietnamese.
pub fn category_vi(c: &str) -> String {
    match c {
        "air_quality" => "Chất lượng không khí",
        "flood" => "Lũ, ngập lụt",
        "rain" => "Mưa lớn",
        "traffic" => "Giao thông",
        "camera" => "Camera giám sát",
        other => other,
    }
    .to_string()
}

fn alert_state_vi(s: ioc_model::AlertState) -> &'static str {
    use ioc_model::AlertState::*;
    match s {
        New => "Mới",
        Acknowledged => "Đã xác nhận",
        Assigned => "Đã giao",
        InProgress => "Đang xử lý",
        Shelved => "Tạm gác",
        Resolved => "Đã xử lý",
        Closed => "Đã đóng",
    }
}

fn severity_fill(s: ioc_model::Severity) -> Option<pdf::Color> {
    match s {
        ioc_model::Severity::Critical => Some(pdf::RED),
        ioc_model::Severity::Major => Some(pdf::AMBER),
        _ => None,
    }
}

fn severity_vi(s: ioc_model::Severity) -> &'static str {
    match s {
        ioc_model::Severity::Critical => "Nghiêm trọng",
        ioc_model::Severity::Major => "Cao",
        ioc_model::Severity::Warning => "Cảnh giác",
        ioc_model::Severity::Info => "Thông tin",
    }
}

fn state_vi(s: ioc_model::IncidentState) -> &'static str {
    match s {
        ioc_model::IncidentState::Open => "Đang xử lý",
        ioc_model::IncidentState::Resolved => "Đã xử lý xong",
        ioc_model::IncidentState::Closed => "Đã đóng",
    }
}

fn step_vi(s: StepStatus, overdue: bool) -> &'static str {
    match (s, overdue) {
        (StepStatus::Done, false) => "Đúng hạn",
        (StepStatus::Done, true) => "Quá hạn",
        (StepStatus::Ready, true) => "Đang quá hạn",
        (StepStatus::Ready, false) => "Đang làm",
        (StepStatus::Waiting, _) => "Chờ",
        (StepStatus::Skipped, _) => "Bỏ qua",
    }
}

fn directive_vi(s: ioc_model::DirectiveState) -> &'static str {
    match s {
        ioc_model::DirectiveState::Issued => "Đã gửi",
        ioc_model::DirectiveState::Acknowledged => "Đã nhận",
        ioc_model::DirectiveState::InProgress => "Đang thực hiện",
        ioc_model::DirectiveState::Done => "Hoàn thành",
        ioc_model::DirectiveState::Cancelled => "Đã hủy",
    }
}
