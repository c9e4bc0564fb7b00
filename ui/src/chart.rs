//! Charts drawn with plotters into SVG: one metric of one entity over the last hours, the
//! 1-minute band (min–max) behind the average line, live values appended as they arrive,
//! and the entity's alarm levels where it has them.

use plotters::prelude::*;

pub struct Band {
    /// Milliseconds since the epoch.
    pub t: f64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
}

pub struct ChartSpec<'a> {
    pub bands: &'a [Band],
    /// Live points (t ms, value) newer than the last band.
    pub live: &'a [(f64, f64)],
    pub from: f64,
    pub to: f64,
    /// Horizontal reference lines: (value, label).
    pub thresholds: &'a [(f64, String)],
    pub uom: &'a str,
    /// Formats a time (ms) for the x axis.
    pub time_label: &'a dyn Fn(f64) -> String,
    pub width: u32,
    pub height: u32,
}

const AXIS: RGBColor = RGBColor(139, 148, 158);
const GRID: RGBColor = RGBColor(33, 41, 54);
const LINE: RGBColor = RGBColor(88, 166, 255);
const ALARM: [RGBColor; 3] = [
    RGBColor(255, 214, 10),
    RGBColor(255, 159, 10),
    RGBColor(255, 69, 58),
];

/// The SVG markup, or an empty string when there is nothing to draw.
pub fn render(spec: &ChartSpec) -> String {
    let mut svg = String::new();
    let points: Vec<(f64, f64)> = spec
        .bands
        .iter()
        .map(|b| (b.t, b.avg))
        .chain(spec.live.iter().copied())
        .collect();
    if points.is_empty() {
        return svg;
    }
    let mut lo = spec
        .bands
        .iter()
        .map(|b| b.min)
        .chain(points.iter().map(|p| p.1))
        .fold(f64::INFINITY, f64::min);
    let mut hi = spec
        .bands
        .iter()
        .map(|b| b.max)
        .chain(points.iter().map(|p| p.1))
        .fold(f64::NEG_INFINITY, f64::max);
    for (v, _) in spec.thresholds {
        // Show a threshold if it is near the data, so the operator sees the margin.
        if *v <= hi * 1.3 + 0.5 {
            hi = hi.max(*v);
            lo = lo.min(*v);
        }
    }
    let pad = ((hi - lo) * 0.1).max(0.5);
    let (lo, hi) = (
        (lo - pad).max(if lo >= 0.0 { 0.0 } else { f64::MIN }),
        hi + pad,
    );
    {
        let root = SVGBackend::with_string(&mut svg, (spec.width, spec.height)).into_drawing_area();
        let mut chart = match ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(44)
            .build_cartesian_2d(spec.from..spec.to, lo..hi)
        {
            Ok(c) => c,
            Err(_) => return String::new(),
        };
        let _ = chart
            .configure_mesh()
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 11).into_font().color(&AXIS))
            .x_labels(6)
            .y_labels(5)
            .x_label_formatter(&|x| (spec.time_label)(*x))
            .y_label_formatter(&|y| format_axis(*y))
            .y_desc(spec.uom)
            .draw();
        let _ = chart.draw_series(std::iter::once(Polygon::new(
            spec.bands
                .iter()
                .map(|b| (b.t, b.max))
                .chain(spec.bands.iter().rev().map(|b| (b.t, b.min)))
                .collect::<Vec<_>>(),
            LINE.mix(0.18).filled(),
        )));
        for (i, (v, label)) in spec.thresholds.iter().enumerate() {
            if *v < lo || *v > hi {
                continue;
            }
            let c = ALARM[i.min(2)];
            let _ = chart.draw_series(DashedLineSeries::new(
                [(spec.from, *v), (spec.to, *v)],
                4,
                4,
                c.stroke_width(1),
            ));
            let _ = chart.draw_series(std::iter::once(Text::new(
                label.clone(),
                (spec.from, *v),
                ("sans-serif", 10).into_font().color(&c),
            )));
        }
        // The newest value as a dot: where the line ends, and all there is of a series that
        // has only just started (one value draws no line).
        let last = points.last().copied();
        let _ = chart.draw_series(LineSeries::new(points, LINE.stroke_width(2)));
        let _ = chart.draw_series(last.map(|p| Circle::new(p, 4, LINE.filled())));
        let _ = root.present();
    }
    svg
}

/// A KPI's series: a line with its points (bars for a count), the target dashed, each
/// point coloured by its status. `large`: the wall's bigger type.
pub fn kpi(
    points: &[(f64, Option<f64>, &str)],
    target: f64,
    bars: bool,
    time_label: &dyn Fn(f64) -> String,
    (width, height): (u32, u32),
    large: bool,
) -> String {
    let mut svg = String::new();
    let values: Vec<(f64, f64, &str)> = points
        .iter()
        .filter_map(|(t, v, s)| v.map(|v| (*t, v, *s)))
        .collect();
    if values.is_empty() || points.len() < 2 {
        return svg;
    }
    let (from, to) = (points[0].0, points[points.len() - 1].0);
    let step = (to - from) / (points.len() - 1).max(1) as f64;
    let hi = values.iter().map(|v| v.1).fold(target, f64::max);
    let lo = values
        .iter()
        .map(|v| v.1)
        .fold(0.0_f64.min(target), f64::min);
    let pad = ((hi - lo) * 0.12).max(0.5);
    let font = if large { 18 } else { 11 };
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let Ok(mut chart) = ChartBuilder::on(&root)
            .margin(6)
            .x_label_area_size(if large { 30 } else { 20 })
            .y_label_area_size(if large { 60 } else { 40 })
            .build_cartesian_2d((from - step / 2.0)..(to + step / 2.0), lo..(hi + pad))
        else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", font).into_font().color(&AXIS))
            .x_labels(6)
            .y_labels(4)
            .x_label_formatter(&|x| time_label(*x))
            .y_label_formatter(&|y| format_axis(*y))
            .draw();
        let color = |s: &str| match s {
            "green" => RGBColor(48, 209, 88),
            "amber" => RGBColor(255, 159, 10),
            _ => RGBColor(255, 69, 58),
        };
        if bars {
            let _ = chart.draw_series(values.iter().map(|(t, v, s)| {
                Rectangle::new(
                    [(t - step * 0.35, 0.0), (t + step * 0.35, *v)],
                    color(s).filled(),
                )
            }));
        } else {
            let _ = chart.draw_series(LineSeries::new(
                values.iter().map(|(t, v, _)| (*t, *v)),
                LINE.stroke_width(if large { 3 } else { 2 }),
            ));
            let _ = chart.draw_series(values.iter().map(|(t, v, s)| {
                Circle::new((*t, *v), if large { 5 } else { 3 }, color(s).filled())
            }));
        }
        let _ = chart.draw_series(DashedLineSeries::new(
            [(from - step / 2.0, target), (to + step / 2.0, target)],
            6,
            4,
            RGBColor(230, 237, 243).mix(0.6).stroke_width(1),
        ));
        let _ = root.present();
    }
    svg
}

fn format_axis(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_line_and_thresholds() {
        let bands: Vec<Band> = (0..60)
            .map(|i| Band {
                t: i as f64 * 60_000.0,
                min: 1.0,
                max: 3.0,
                avg: 2.0 + (i as f64 / 10.0).sin(),
            })
            .collect();
        let label = |t: f64| format!("{}", t / 60_000.0);
        let svg = render(&ChartSpec {
            bands: &bands,
            live: &[(3_600_000.0, 2.5)],
            from: 0.0,
            to: 3_600_000.0,
            thresholds: &[(3.5, "BĐ I".into())],
            uom: "m",
            time_label: &label,
            width: 400,
            height: 200,
        });
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("polyline"), "a line");
        assert!(svg.contains("BĐ I"), "threshold label");
        assert!(render(&ChartSpec {
            bands: &[],
            live: &[],
            ..ChartSpec {
                bands: &bands,
                live: &[],
                from: 0.0,
                to: 1.0,
                thresholds: &[],
                uom: "",
                time_label: &label,
                width: 10,
                height: 10
            }
        })
        .is_empty());
    }
}
