//! A statistical report as PDF: the KPIs against their targets, each KPI's course within
//! the period, the communes doing worst, and what happened.

use super::{chart, domain_vi, number, StatReport};
use crate::pdf::{self, Cell, Column, Layout};
use ioc_model::{KpiStatus, Period};

fn status_fill(s: KpiStatus) -> Option<pdf::Color> {
    Some(match s {
        KpiStatus::Green => pdf::GREEN,
        KpiStatus::Amber => pdf::AMBER,
        KpiStatus::Red => pdf::RED,
    })
}

fn status_vi(s: KpiStatus, no_data: bool) -> &'static str {
    match (s, no_data) {
        (_, true) => "Chưa có số liệu",
        (KpiStatus::Green, _) => "Đạt",
        (KpiStatus::Amber, _) => "Cần chú ý",
        (KpiStatus::Red, _) => "Không đạt",
    }
}

fn with_uom(v: Option<f64>, uom: &str) -> String {
    match v {
        None => "—".into(),
        Some(_) if uom.is_empty() => number(v),
        Some(_) => format!("{} {uom}", number(v)),
    }
}

pub fn render(r: &StatReport) -> Result<Vec<u8>, String> {
    let title = r.title();
    let mut l = Layout::new(&title, &format!("{} · {}", r.organisation, title));
    l.text(&r.organisation, 9.0, false, pdf::GREY);
    l.heading(&title, 1);
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&r.tz).format("%d/%m/%Y %H:%M").to_string()
    };
    l.facts(&[
        ("Lĩnh vực".into(), domain_vi(r.request.domain).into()),
        (
            "Kỳ báo cáo".into(),
            format!("{} — {}", local(r.from), local(r.to)),
        ),
        (
            "Địa bàn".into(),
            r.unit_name.clone().unwrap_or_else(|| "Toàn tỉnh".into()),
        ),
        ("Lập lúc".into(), local(r.generated_at)),
    ]);

    l.heading(&format!("Chỉ số (KPI) — {}", r.kpis.len()), 2);
    let met = r
        .kpis
        .iter()
        .filter(|k| !k.no_data && k.status == KpiStatus::Green)
        .count();
    l.paragraph(&format!(
        "{met}/{} chỉ số đạt ngưỡng; giá trị tính trên toàn kỳ báo cáo, so với kỳ trước.",
        r.kpis.len()
    ));
    let rows: Vec<Vec<Cell>> = r
        .kpis
        .iter()
        .map(|k| {
            let change = match (k.value, k.previous) {
                (Some(v), Some(p)) => {
                    format!("{}{}", if v >= p { "+" } else { "" }, number(Some(v - p)))
                }
                _ => "—".into(),
            };
            vec![
                Cell::from(k.name.clone()),
                Cell::from(with_uom(k.value, &k.uom)).bold(),
                Cell::from(with_uom(Some(k.target), &k.uom)),
                Cell::from(status_vi(k.status, k.no_data)).fill(if k.no_data {
                    None
                } else {
                    status_fill(k.status)
                }),
                Cell::from(with_uom(k.previous, &k.uom)),
                Cell::from(change),
                Cell::from(k.owner.clone().unwrap_or_default()),
            ]
        })
        .collect();
    l.table(
        &[
            Column::new("Chỉ số", 3.6),
            Column::new("Giá trị", 1.2).right(),
            Column::new("Mục tiêu", 1.1).right(),
            Column::new("Đánh giá", 1.2),
            Column::new("Kỳ trước", 1.1).right(),
            Column::new("Thay đổi", 0.9).right(),
            Column::new("Đơn vị chủ trì", 1.9),
        ],
        &rows,
    );

    // Each KPI's course, and where it is worst.
    let step = match r.request.period {
        Period::Hour | Period::Day => "theo giờ",
        _ => "theo ngày",
    };
    for (k, s) in r.kpis.iter().zip(&r.trends) {
        l.heading(&k.name, 3);
        let bars = k.uom.is_empty();
        match chart::svg(s, bars, r.tz) {
            Some(svg) => {
                l.paragraph(&format!(
                    "Diễn biến {step} (đường đứt: mục tiêu {}).",
                    with_uom(Some(k.target), &k.uom)
                ));
                l.svg(svg, chart::SIZE);
            }
            None => l.paragraph("Chưa có số liệu trong kỳ."),
        }
        if k.by_unit.len() > 1 {
            let worst: Vec<Vec<Cell>> = k
                .by_unit
                .iter()
                .take(8)
                .map(|u| {
                    vec![
                        Cell::from(u.unit_name.clone()),
                        Cell::from(with_uom(u.value, &k.uom)),
                        Cell::from(status_vi(u.status, u.value.is_none()))
                            .fill(status_fill(u.status)),
                    ]
                })
                .collect();
            l.paragraph(&format!(
                "Các xã, phường thấp nhất ({} trên {} có số liệu):",
                worst.len(),
                k.by_unit.len()
            ));
            l.table(
                &[
                    Column::new("Xã, phường", 3.0),
                    Column::new("Giá trị", 1.2).right(),
                    Column::new("Đánh giá", 1.2),
                ],
                &worst,
            );
        }
    }

    l.heading("Cảnh báo trong kỳ", 2);
    if r.alerts.is_empty() {
        l.paragraph("Không có cảnh báo.");
    } else {
        let mut total = [0u64; 4];
        let rows: Vec<Vec<Cell>> = r
            .alerts
            .iter()
            .map(|a| {
                for (t, v) in total.iter_mut().zip(a.by_severity) {
                    *t += v;
                }
                let all: u64 = a.by_severity.iter().sum();
                let mtta = (a.acked > 0).then(|| a.ack_minutes / a.acked as f64);
                vec![
                    Cell::from(crate::operate::report::category_vi(&a.category)),
                    Cell::from(a.by_severity[0].to_string())
                        .fill((a.by_severity[0] > 0).then_some(pdf::RED)),
                    Cell::from(a.by_severity[1].to_string()),
                    Cell::from(a.by_severity[2].to_string()),
                    Cell::from(a.by_severity[3].to_string()),
                    Cell::from(all.to_string()).bold(),
                    Cell::from(format!("{} / {}", a.acked, all)),
                    Cell::from(
                        mtta.map(|m| format!("{} phút", number(Some(m))))
                            .unwrap_or_else(|| "—".into()),
                    ),
                ]
            })
            .collect();
        let mut rows = rows;
        rows.push(vec![
            Cell::from("Tổng").bold(),
            Cell::from(total[0].to_string()).bold(),
            Cell::from(total[1].to_string()).bold(),
            Cell::from(total[2].to_string()).bold(),
            Cell::from(total[3].to_string()).bold(),
            Cell::from(total.iter().sum::<u64>().to_string()).bold(),
            Cell::from(""),
            Cell::from(""),
        ]);
        l.table(
            &[
                Column::new("Loại", 2.2),
                Column::new("Nghiêm trọng", 1.1).right(),
                Column::new("Cao", 0.8).right(),
                Column::new("Cảnh giác", 1.0).right(),
                Column::new("Thông tin", 1.0).right(),
                Column::new("Tổng", 0.8).right(),
                Column::new("Đã xác nhận", 1.2).right(),
                Column::new("Xác nhận TB", 1.2).right(),
            ],
            &rows,
        );
    }
    let (opened, resolved, on_time) = r.incidents;
    let (due, ok, late, open) = r.directives;
    l.heading("Sự cố và chỉ đạo", 2);
    l.facts(&[
        ("Sự cố mới".into(), opened.to_string()),
        (
            "Đã xử lý xong".into(),
            format!("{resolved} (đúng hạn quy trình: {on_time})"),
        ),
        ("Chỉ đạo đến hạn".into(), due.to_string()),
        ("Hoàn thành đúng hạn".into(), ok.to_string()),
        ("Hoàn thành quá hạn".into(), late.to_string()),
        ("Quá hạn chưa hoàn thành".into(), open.to_string()),
    ]);
    l.finish("vi-VN", r.generated_at.with_timezone(&r.tz).fixed_offset())
}
