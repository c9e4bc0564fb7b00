//! A statistical report as an Excel workbook (rust_xlsxwriter): a sheet of KPIs, one by
//! commune, one of the course within the period, one of alerts — the same numbers as the
//! CSV, unrounded, with the dates as dates.

use super::StatReport;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

fn local(r: &StatReport, t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&r.tz).format("%Y-%m-%d %H:%M").to_string()
}

fn write(r: &StatReport) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let head = Format::new().set_bold().set_background_color("#E8EEF4");
    let num = Format::new().set_num_format("0.0");

    let ws = wb.add_worksheet().set_name("KPI")?;
    ws.write_string(0, 0, r.title())?;
    for (c, h) in [
        "Mã",
        "Chỉ số",
        "Giá trị",
        "Mục tiêu",
        "Đánh giá",
        "Đơn vị đo",
        "Kỳ trước",
        "Tử số",
        "Mẫu số",
        "Từ",
        "Đến",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string_with_format(2, c as u16, *h, &head)?;
    }
    for (i, k) in r.kpis.iter().enumerate() {
        let row = 3 + i as u32;
        ws.write_string(row, 0, &k.id)?;
        ws.write_string(row, 1, &k.name)?;
        if let Some(v) = k.value {
            ws.write_number_with_format(row, 2, v, &num)?;
        }
        ws.write_number(row, 3, k.target)?;
        ws.write_string(row, 4, k.status.as_str())?;
        ws.write_string(row, 5, &k.uom)?;
        if let Some(p) = k.previous {
            ws.write_number_with_format(row, 6, p, &num)?;
        }
        ws.write_number(row, 7, k.numerator)?;
        ws.write_number(row, 8, k.denominator)?;
        ws.write_string(row, 9, local(r, k.from))?;
        ws.write_string(row, 10, local(r, k.to))?;
    }
    ws.set_column_width(1, 60)?;

    let ws = wb.add_worksheet().set_name("Theo xã phường")?;
    for (c, h) in ["Mã KPI", "Mã xã", "Xã, phường", "Giá trị", "Đánh giá"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, c as u16, *h, &head)?;
    }
    let mut row = 1;
    for k in &r.kpis {
        for u in &k.by_unit {
            ws.write_string(row, 0, &k.id)?;
            ws.write_string(row, 1, &u.unit)?;
            ws.write_string(row, 2, &u.unit_name)?;
            if let Some(v) = u.value {
                ws.write_number_with_format(row, 3, v, &num)?;
            }
            ws.write_string(row, 4, u.status.as_str())?;
            row += 1;
        }
    }
    ws.set_column_width(2, 30)?;

    let ws = wb.add_worksheet().set_name("Diễn biến")?;
    for (c, h) in ["Mã KPI", "Từ", "Đến", "Giá trị", "Đánh giá"]
        .iter()
        .enumerate()
    {
        ws.write_string_with_format(0, c as u16, *h, &head)?;
    }
    let mut row = 1;
    for s in &r.trends {
        for p in &s.points {
            ws.write_string(row, 0, &s.id)?;
            ws.write_string(row, 1, local(r, p.from))?;
            ws.write_string(row, 2, local(r, p.to))?;
            if let Some(v) = p.value {
                ws.write_number_with_format(row, 3, v, &num)?;
            }
            ws.write_string(row, 4, p.status.as_str())?;
            row += 1;
        }
    }

    let ws = wb.add_worksheet().set_name("Cảnh báo")?;
    for (c, h) in [
        "Loại",
        "Nghiêm trọng",
        "Cao",
        "Cảnh giác",
        "Thông tin",
        "Đã xác nhận",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string_with_format(0, c as u16, *h, &head)?;
    }
    for (i, a) in r.alerts.iter().enumerate() {
        let row = 1 + i as u32;
        ws.write_string(row, 0, &a.category)?;
        for (j, v) in a.by_severity.iter().enumerate() {
            ws.write_number(row, 1 + j as u16, *v as f64)?;
        }
        ws.write_number(row, 5, a.acked as f64)?;
    }
    wb.save_to_buffer()
}

pub fn render(r: &StatReport) -> Result<Vec<u8>, String> {
    write(r).map_err(|e| format!("XLSX: {e}"))
}
