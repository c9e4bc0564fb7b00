//! A KPI's course within a report's period as an SVG chart (plotters), embedded in the PDF:
//! the values as a line with points (bars for counts), the target as a dashed line.

use chrono_tz::Tz;
use ioc_model::{KpiSeries, Period};
use plotters::prelude::*;

/// The chart's size in SVG pixels (the PDF scales it to the page).
pub const SIZE: (u32, u32) = (760, 200);

fn label(p: Period, t: chrono::DateTime<chrono::Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    match p {
        Period::Hour => l.format("%H:00").to_string(),
        _ => l.format("%d/%m").to_string(),
    }
}

/// The SVG of a series; `None` when it has no value at all.
pub fn svg(s: &KpiSeries, bars: bool, tz: Tz) -> Option<String> {
    let values: Vec<(usize, f64)> = s
        .points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.value.map(|v| (i, v)))
        .collect();
    if values.is_empty() {
        return None;
    }
    let n = s.points.len();
    let top = values
        .iter()
        .map(|(_, v)| *v)
        .fold(s.target, f64::max)
        .max(1e-9);
    let bottom = values.iter().map(|(_, v)| *v).fold(0.0_f64, f64::min);
    let pad = (top - bottom).abs() * 0.12 + 1e-9;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(48)
            .build_cartesian_2d(
                -0.5f64..(n as f64 - 0.5),
                (bottom - if bottom < 0.0 { pad } else { 0.0 })..(top + pad),
            )
            .ok()?;
        let points = s.points.clone();
        let period = s.period;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 238, 242))
            .bold_line_style(RGBColor(220, 224, 230))
            .axis_style(RGBColor(170, 176, 184))
            .label_style(("sans-serif", 12).into_font().color(&RGBColor(90, 99, 110)))
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if i < 0.0 || (i as usize) >= points.len() || (x - i).abs() > 1e-6 {
                    return String::new();
                }
                label(period, points[i as usize].from, tz)
            })
            .y_label_formatter(&|y| super::number(Some(*y)))
            .draw()
            .ok()?;
        let blue = RGBColor(11, 79, 138);
        if bars {
            chart
                // A count of 0 is no bar: a rectangle of no height is an invalid SVG shape
                // (usvg warns once per bar, a flood in the log for a quiet month).
                .draw_series(values.iter().filter(|(_, v)| *v != 0.0).map(|(i, v)| {
                    let x = *i as f64;
                    Rectangle::new([(x - 0.35, 0.0), (x + 0.35, *v)], blue.filled())
                }))
                .ok()?;
        } else {
            chart
                .draw_series(LineSeries::new(
                    values.iter().map(|(i, v)| (*i as f64, *v)),
                    blue.stroke_width(2),
                ))
                .ok()?;
            chart
                .draw_series(
                    values
                        .iter()
                        .map(|(i, v)| Circle::new((*i as f64, *v), 3, blue.filled())),
                )
                .ok()?;
        }
        let red = RGBColor(200, 60, 50);
        chart
            .draw_series(DashedLineSeries::new(
                [(-0.5, s.target), (n as f64 - 0.5, s.target)],
                6,
                4,
                red.stroke_width(1),
            ))
            .ok()?;
        root.present().ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::{KpiPoint, KpiStatus};

    /// A month with a few counts and many zeros: a bar per count, no rectangle of no height.
    #[test]
    fn zero_counts_draw_no_bar() {
        let t0: chrono::DateTime<chrono::Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let points = (0..30)
            .map(|d| KpiPoint {
                from: t0 + chrono::Duration::days(d),
                to: t0 + chrono::Duration::days(d + 1),
                value: Some(if d % 10 == 3 { 2.0 } else { 0.0 }),
                status: KpiStatus::Green,
                numerator: 0.0,
                denominator: 0.0,
            })
            .collect();
        let s = KpiSeries {
            id: "critical-alerts".into(),
            period: Period::Day,
            uom: String::new(),
            target: 1.0,
            unit: None,
            points,
        };
        let svg = svg(&s, true, chrono_tz::Asia::Ho_Chi_Minh).unwrap();
        let tree = usvg::Tree::from_str(&svg, &usvg::Options::default()).unwrap();
        assert!(tree.root().has_children());
        let blue = svg.matches("fill=\"#0B4F8A\"").count();
        assert_eq!(blue, 3, "one bar per day with a count");
        assert!(!svg.contains("height=\"0\""), "a bar of no height");
    }
}
