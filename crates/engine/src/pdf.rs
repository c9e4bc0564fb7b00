//! A small document layout for the reports the engine prints (after-action reports of
//! incidents, statistical reports): headings, paragraphs, key–value blocks and tables that
//! wrap their text and break across A4 pages, with a running footer.
//!
//! Layout first, drawing second: [`Layout`] measures text with the shaper krilla draws
//! with (rustybuzz, on the same font bytes), places everything on pages as a display list,
//! and [`Layout::finish`] renders the list with krilla. Text is real, selectable text in the
//! embedded Be Vietnam Pro (Vietnamese diacritics included), so a report can be searched.

use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::Document;
use std::sync::{Arc, OnceLock};

const REGULAR: &[u8] = include_bytes!("../../../assets/fonts/BeVietnamPro-Regular.ttf");
const BOLD: &[u8] = include_bytes!("../../../assets/fonts/BeVietnamPro-SemiBold.ttf");

/// A4 in points.
pub const PAGE_W: f32 = 595.0;
pub const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 42.0;
const FOOTER: f32 = 28.0;

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Color(pub u8, pub u8, pub u8);

pub const BLACK: Color = Color(0x1b, 0x1f, 0x24);
pub const GREY: Color = Color(0x5a, 0x63, 0x6e);
pub const LINE: Color = Color(0xc8, 0xcf, 0xd6);
pub const HEAD: Color = Color(0xe8, 0xee, 0xf4);
pub const RED: Color = Color(0xfd, 0xd8, 0xd5);
pub const AMBER: Color = Color(0xff, 0xec, 0xc2);
pub const GREEN: Color = Color(0xd7, 0xf2, 0xdc);
pub const ACCENT: Color = Color(0x0b, 0x4f, 0x8a);

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        color: Color,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        fill: Color,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        color: Color,
    },
    /// An SVG picture (a chart), scaled into the box.
    Svg {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        svg: Arc<str>,
    },
    /// A JPEG or PNG picture (a camera's still), scaled into the box.
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        image: krilla::image::Image,
    },
}

struct Faces {
    regular: rustybuzz::Face<'static>,
    bold: rustybuzz::Face<'static>,
}

fn faces() -> &'static Faces {
    static FACES: OnceLock<Faces> = OnceLock::new();
    FACES.get_or_init(|| Faces {
        regular: rustybuzz::Face::from_slice(REGULAR, 0).expect("the embedded font parses"),
        bold: rustybuzz::Face::from_slice(BOLD, 0).expect("the embedded font parses"),
    })
}

/// How SVG charts are read: their text in the embedded font whatever family they name.
fn svg_options() -> usvg::Options<'static> {
    let mut o = usvg::Options::default();
    let db = o.fontdb_mut();
    db.load_font_data(REGULAR.to_vec());
    db.load_font_data(BOLD.to_vec());
    db.set_sans_serif_family("Be Vietnam Pro");
    db.set_serif_family("Be Vietnam Pro");
    o.font_family = "Be Vietnam Pro".into();
    o
}

/// The width of `text` in points, as krilla will draw it.
pub fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let f = faces();
    let face = if bold { &f.bold } else { &f.regular };
    let mut buf = rustybuzz::UnicodeBuffer::new();
    buf.push_str(text);
    buf.guess_segment_properties();
    let out = rustybuzz::shape(face, &[], buf);
    let upem = face.units_per_em() as f32;
    out.glyph_positions()
        .iter()
        .map(|p| p.x_advance as f32)
        .sum::<f32>()
        / upem
        * size
}

/// Breaks `text` into lines no wider than `width` (words longer than a line are cut).
pub fn wrap(text: &str, size: f32, bold: bool, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if text_width(&candidate, size, bold) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word wider than the line: cut it where it no longer fits.
            let mut piece = String::new();
            for ch in word.chars() {
                piece.push(ch);
                if text_width(&piece, size, bold) > width && piece.chars().count() > 1 {
                    piece.pop();
                    lines.push(std::mem::take(&mut piece));
                    piece.push(ch);
                }
            }
            line = piece;
        }
        lines.push(line);
    }
    lines
}

/// Horizontal alignment in a table column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table column: title, share of the width, alignment.
#[derive(Debug, Clone)]
pub struct Column {
    pub title: String,
    pub share: f32,
    pub align: Align,
}

impl Column {
    pub fn new(title: impl Into<String>, share: f32) -> Column {
        Column {
            title: title.into(),
            share,
            align: Align::Left,
        }
    }

    pub fn right(mut self) -> Column {
        self.align = Align::Right;
        self
    }
}

/// A table cell: text and an optional background.
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub text: String,
    pub fill: Option<Color>,
    pub bold: bool,
}

impl Cell {
    pub fn fill(mut self, c: Option<Color>) -> Cell {
        self.fill = c;
        self
    }

    pub fn bold(mut self) -> Cell {
        self.bold = true;
        self
    }
}

impl<T: Into<String>> From<T> for Cell {
    fn from(t: T) -> Cell {
        Cell {
            text: t.into(),
            fill: None,
            bold: false,
        }
    }
}

/// A document being laid out.
pub struct Layout {
    pages: Vec<Vec<Op>>,
    y: f32,
    footer: String,
    title: String,
}

impl Layout {
    /// A new document; `footer` runs at the bottom of every page with the page number.
    pub fn new(title: &str, footer: &str) -> Layout {
        Layout {
            pages: vec![Vec::new()],
            y: MARGIN,
            footer: footer.to_string(),
            title: title.to_string(),
        }
    }

    /// The width text may take.
    pub fn width(&self) -> f32 {
        PAGE_W - 2.0 * MARGIN
    }

    fn bottom(&self) -> f32 {
        PAGE_H - MARGIN - FOOTER
    }

    fn page(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("at least one page")
    }

    /// Starts a new page.
    pub fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Makes room for `h` points, starting a new page when they do not fit.
    fn need(&mut self, h: f32) {
        if self.y + h > self.bottom() && self.y > MARGIN {
            self.new_page();
        }
    }

    pub fn space(&mut self, h: f32) {
        self.y += h;
    }

    fn text_at(&mut self, x: f32, baseline: f32, size: f32, bold: bool, color: Color, text: &str) {
        if text.is_empty() {
            return;
        }
        self.page().push(Op::Text {
            x,
            y: baseline,
            size,
            bold,
            color,
            text: text.to_string(),
        });
    }

    /// Wrapped text.
    pub fn text(&mut self, text: &str, size: f32, bold: bool, color: Color) {
        let line_h = size * 1.35;
        for line in wrap(text, size, bold, self.width()) {
            self.need(line_h);
            let baseline = self.y + size;
            self.text_at(MARGIN, baseline, size, bold, color, &line);
            self.y += line_h;
        }
    }

    /// A title of `level` 1 (the document's), 2 or 3.
    pub fn heading(&mut self, text: &str, level: u8) {
        let size = match level {
            1 => 17.0,
            2 => 13.0,
            _ => 11.0,
        };
        // Keep a heading with what follows it.
        self.need(size * 1.4 + 40.0);
        self.space(if level == 1 { 0.0 } else { 8.0 });
        self.text(text, size, true, if level == 1 { ACCENT } else { BLACK });
        if level <= 2 {
            let y = self.y + 1.0;
            self.page().push(Op::Line {
                x1: MARGIN,
                y1: y,
                x2: PAGE_W - MARGIN,
                y2: y,
                color: LINE,
            });
            self.space(5.0);
        }
    }

    pub fn paragraph(&mut self, text: &str) {
        self.text(text, 9.5, false, BLACK);
        self.space(3.0);
    }

    /// Label and value pairs, two columns.
    pub fn facts(&mut self, rows: &[(String, String)]) {
        let size = 9.5;
        let label_w = 150.0;
        let value_w = self.width() - label_w;
        for (k, v) in rows {
            let lines = wrap(v, size, false, value_w);
            let h = lines.len().max(1) as f32 * size * 1.35;
            self.need(h);
            self.text_at(MARGIN, self.y + size, size, true, GREY, k);
            for (n, l) in lines.iter().enumerate() {
                let y = self.y + size + n as f32 * size * 1.35;
                self.text_at(MARGIN + label_w, y, size, false, BLACK, l);
            }
            self.y += h;
        }
        self.space(4.0);
    }

    /// A table with a header row (repeated on every page it runs onto).
    pub fn table(&mut self, columns: &[Column], rows: &[Vec<Cell>]) {
        let size = 8.5;
        let pad = 3.5;
        let line_h = size * 1.3;
        let total: f32 = columns
            .iter()
            .map(|c| c.share)
            .sum::<f32>()
            .max(f32::EPSILON);
        let widths: Vec<f32> = columns
            .iter()
            .map(|c| c.share / total * self.width())
            .collect();
        let header: Vec<Cell> = columns
            .iter()
            .map(|c| Cell::from(c.title.clone()).bold().fill(Some(HEAD)))
            .collect();
        let lay_row = |cells: &[Cell]| -> (Vec<Vec<String>>, f32) {
            let wrapped: Vec<Vec<String>> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| wrap(&c.text, size, c.bold, w - 2.0 * pad))
                .collect();
            let n = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
            (wrapped, n as f32 * line_h + 2.0 * pad)
        };
        let (head_lines, head_h) = lay_row(&header);
        let draw = |me: &mut Layout, cells: &[Cell], lines: &[Vec<String>], h: f32| {
            let mut x = MARGIN;
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if let Some(fill) = c.fill {
                    let y = me.y;
                    me.page().push(Op::Rect {
                        x,
                        y,
                        w: *w,
                        h,
                        fill,
                    });
                }
                for (n, l) in lines[i].iter().enumerate() {
                    let lw = text_width(l, size, c.bold);
                    let tx = match columns[i].align {
                        Align::Left => x + pad,
                        Align::Right => x + w - pad - lw,
                    };
                    let baseline = me.y + pad + size + n as f32 * line_h;
                    me.text_at(tx, baseline, size, c.bold, BLACK, l);
                }
                x += w;
            }
            let y = me.y + h;
            me.page().push(Op::Line {
                x1: MARGIN,
                y1: y,
                x2: PAGE_W - MARGIN,
                y2: y,
                color: LINE,
            });
            me.y += h;
        };
        self.need(head_h + line_h * 2.0);
        draw(self, &header, &head_lines, head_h);
        for row in rows {
            let (lines, h) = lay_row(row);
            if self.y + h > self.bottom() {
                self.new_page();
                draw(self, &header, &head_lines, head_h);
            }
            draw(self, row, &lines, h);
        }
        self.space(6.0);
    }

    /// An SVG picture of `size` (its own pixels) across the text width.
    pub fn svg(&mut self, svg: String, size: (u32, u32)) {
        let w = self.width();
        let h = w * size.1 as f32 / size.0.max(1) as f32;
        self.need(h + 4.0);
        let y = self.y;
        self.page().push(Op::Svg {
            x: MARGIN,
            y,
            w,
            h,
            svg: Arc::from(svg),
        });
        self.y += h + 4.0;
    }

    /// A JPEG or PNG picture at `width` points wide (at most the text width), or an error
    /// when it cannot be read.
    pub fn image(&mut self, bytes: Vec<u8>, png: bool, width: f32) -> Result<(), String> {
        let data = krilla::Data::from(bytes);
        let image = if png {
            krilla::image::Image::from_png(data, true)
        } else {
            krilla::image::Image::from_jpeg(data, true)
        }?;
        let (pw, ph) = image.size();
        let w = width.min(self.width());
        let h = w * ph as f32 / pw.max(1) as f32;
        self.need(h + 4.0);
        let y = self.y;
        self.page().push(Op::Image {
            x: MARGIN,
            y,
            w,
            h,
            image,
        });
        self.y += h + 4.0;
        Ok(())
    }

    /// An SVG picture at `width` points wide (at most the text width).
    pub fn svg_at(&mut self, svg: String, size: (u32, u32), width: f32) {
        let w = width.min(self.width());
        let h = w * size.1 as f32 / size.0.max(1) as f32;
        self.need(h + 4.0);
        let y = self.y;
        self.page().push(Op::Svg {
            x: MARGIN,
            y,
            w,
            h,
            svg: Arc::from(svg),
        });
        self.y += h + 4.0;
    }

    /// How many pages so far.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Renders the document. `language`: a BCP 47 tag (`vi-VN`).
    pub fn finish(
        self,
        language: &str,
        created: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<Vec<u8>, String> {
        use chrono::{Datelike, Timelike};
        let regular = Font::new(Arc::new(REGULAR.to_vec()).into(), 0).ok_or("the embedded font")?;
        let bold = Font::new(Arc::new(BOLD.to_vec()).into(), 0).ok_or("the embedded font")?;
        let mut doc = Document::new();
        let offset = created.offset().local_minus_utc();
        doc.set_metadata(
            krilla::metadata::Metadata::new()
                .title(self.title.clone())
                .language(language.to_string())
                .creator("IOC Console".to_string())
                .creation_date(
                    krilla::metadata::DateTime::new(created.year() as u16)
                        .month(created.month() as u8)
                        .day(created.day() as u8)
                        .hour(created.hour() as u8)
                        .minute(created.minute() as u8)
                        .second(created.second() as u8)
                        .utc_offset_hour((offset / 3600) as i8)
                        .utc_offset_minute(((offset % 3600) / 60).unsigned_abs() as u8),
                ),
        );
        let fill = |c: Color| Fill {
            paint: rgb::Color::new(c.0, c.1, c.2).into(),
            opacity: NormalizedF32::ONE,
            rule: FillRule::NonZero,
        };
        let count = self.pages.len();
        let svg_options = svg_options();
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("page size")?;
        for (n, ops) in self.pages.iter().enumerate() {
            let mut page = doc.start_page_with(settings.clone());
            let mut s = page.surface();
            let footer = format!("{} · {}/{}", self.footer, n + 1, count);
            let footer_op = Op::Text {
                x: MARGIN,
                y: PAGE_H - MARGIN + 6.0,
                size: 7.5,
                bold: false,
                color: GREY,
                text: footer,
            };
            for op in ops.iter().chain(std::iter::once(&footer_op)) {
                match op {
                    Op::Text {
                        x,
                        y,
                        size,
                        bold: b,
                        color,
                        text,
                    } => {
                        s.set_stroke(None);
                        s.set_fill(Some(fill(*color)));
                        let font = if *b { bold.clone() } else { regular.clone() };
                        s.draw_text(
                            Point::from_xy(*x, *y),
                            font,
                            *size,
                            text,
                            false,
                            TextDirection::Auto,
                        );
                    }
                    Op::Rect {
                        x,
                        y,
                        w,
                        h,
                        fill: c,
                    } => {
                        let mut pb = PathBuilder::new();
                        if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                            pb.push_rect(r);
                        }
                        if let Some(path) = pb.finish() {
                            s.set_stroke(None);
                            s.set_fill(Some(fill(*c)));
                            s.draw_path(&path);
                        }
                    }
                    Op::Svg { x, y, w, h, svg } => {
                        use krilla_svg::SurfaceExt;
                        let tree = usvg::Tree::from_str(svg, &svg_options)
                            .map_err(|e| format!("a chart: {e}"))?;
                        let size = krilla::geom::Size::from_wh(*w, *h).ok_or("chart size")?;
                        s.push_transform(&krilla::geom::Transform::from_translate(*x, *y));
                        let drawn = s.draw_svg(&tree, size, krilla_svg::SvgSettings::default());
                        s.pop();
                        drawn.ok_or("a chart could not be drawn")?;
                    }
                    Op::Image { x, y, w, h, image } => {
                        let size = krilla::geom::Size::from_wh(*w, *h).ok_or("picture size")?;
                        s.push_transform(&krilla::geom::Transform::from_translate(*x, *y));
                        s.draw_image(image.clone(), size);
                        s.pop();
                    }
                    Op::Line {
                        x1,
                        y1,
                        x2,
                        y2,
                        color,
                    } => {
                        let mut pb = PathBuilder::new();
                        pb.move_to(*x1, *y1);
                        pb.line_to(*x2, *y2);
                        if let Some(path) = pb.finish() {
                            s.set_fill(None);
                            s.set_stroke(Some(Stroke {
                                paint: rgb::Color::new(color.0, color.1, color.2).into(),
                                width: 0.6,
                                ..Default::default()
                            }));
                            s.draw_path(&path);
                        }
                    }
                }
            }
            s.finish();
            page.finish();
        }
        doc.finish().map_err(|e| format!("PDF: {e:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::basemap::missing;

    /// A small PNG (a gradient), made here: zlib-compressed rows behind their chunks.
    fn png(w: u32, h: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
        }
        let mut raw = Vec::new();
        for y in 0..h {
            raw.push(0); // no filter
            for x in 0..w {
                raw.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut z, &raw).unwrap();
        let idat = z.finish().unwrap();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &idat);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn a_camera_still_goes_into_the_pdf_as_a_picture() {
        let mut l = Layout::new("Ảnh", "chân trang");
        l.image(png(64, 36), true, 200.0).unwrap();
        assert!(l.image(b"not a picture".to_vec(), false, 200.0).is_err());
        let pdf = l
            .finish("vi-VN", chrono::Utc::now().fixed_offset())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pdf");
        std::fs::write(&path, &pdf).unwrap();
        if let Some(out) = missing::run_tool(
            std::process::Command::new("pdfimages")
                .arg("-list")
                .arg(&path),
            "Debian package poppler-utils",
        ) {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.lines()
                    .any(|l| l.contains(" 64 ") && l.contains(" 36 ")),
                "a 64×36 picture in the PDF:\n{text}"
            );
        }
    }

    #[test]
    fn text_is_measured_and_wrapped() {
        let a = text_width("Nghệ An", 10.0, false);
        assert!(a > 25.0 && a < 50.0, "{a}");
        assert!(text_width("Nghệ An", 20.0, false) > 1.9 * a);
        assert!(text_width("Nghệ An", 10.0, true) > a, "semibold is wider");
        let lines = wrap(
            "Trung tâm Điều hành thông minh tỉnh Nghệ An",
            10.0,
            false,
            80.0,
        );
        assert!(lines.len() >= 3, "{lines:?}");
        assert!(lines.iter().all(|l| text_width(l, 10.0, false) <= 80.0));
        assert_eq!(
            lines.join(" "),
            "Trung tâm Điều hành thông minh tỉnh Nghệ An"
        );
        let long = wrap(&"x".repeat(200), 10.0, false, 50.0);
        assert!(long.len() > 3 && long.iter().all(|l| text_width(l, 10.0, false) <= 50.0));
    }

    #[test]
    fn long_tables_run_onto_more_pages() {
        let mut l = Layout::new("Thử", "IOC");
        l.heading("Báo cáo", 1);
        let rows: Vec<Vec<Cell>> = (0..200)
            .map(|i| {
                vec![
                    Cell::from(format!("{i}")),
                    Cell::from("Đã xác nhận cảnh báo"),
                ]
            })
            .collect();
        l.table(
            &[Column::new("#", 1.0).right(), Column::new("Việc", 4.0)],
            &rows,
        );
        assert!(l.page_count() >= 4, "{}", l.page_count());
        let pdf = l
            .finish("vi-VN", chrono::Utc::now().fixed_offset())
            .unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
}
