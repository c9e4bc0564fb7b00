//! Times and numbers as operators read them: in the console's time zone
//! (Asia/Ho_Chi_Minh unless configured), through the browser's own Intl support.

use crate::i18n::{I18n, Lang};
use chrono::{DateTime, Utc};
use wasm_bindgen::JsValue;

fn options(tz: &str, fields: &[(&str, &str)]) -> js_sys::Object {
    let o = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&o, &"timeZone".into(), &tz.into());
    let _ = js_sys::Reflect::set(&o, &"hourCycle".into(), &"h23".into());
    for (k, v) in fields {
        let _ = js_sys::Reflect::set(&o, &(*k).into(), &(*v).into());
    }
    o
}

fn date(t: DateTime<Utc>) -> js_sys::Date {
    js_sys::Date::new(&JsValue::from_f64(t.timestamp_millis() as f64))
}

/// `14:05:09`
pub fn time(t: DateTime<Utc>, tz: &str, lang: Lang) -> String {
    let o = options(
        tz,
        &[
            ("hour", "2-digit"),
            ("minute", "2-digit"),
            ("second", "2-digit"),
        ],
    );
    date(t)
        .to_locale_time_string_with_options(lang.locale(), &o)
        .into()
}

/// `14:05`
pub fn hm(t: DateTime<Utc>, tz: &str, lang: Lang) -> String {
    let o = options(tz, &[("hour", "2-digit"), ("minute", "2-digit")]);
    date(t)
        .to_locale_time_string_with_options(lang.locale(), &o)
        .into()
}

/// `26/11/2026 14:05`
pub fn date_time(t: DateTime<Utc>, tz: &str, lang: Lang) -> String {
    let o = options(
        tz,
        &[
            ("day", "2-digit"),
            ("month", "2-digit"),
            ("year", "numeric"),
            ("hour", "2-digit"),
            ("minute", "2-digit"),
        ],
    );
    date(t).to_locale_string(lang.locale(), &o).into()
}

/// "3 phút trước" / "3 min ago".
pub fn ago(i18n: &I18n, t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    if s < 60 {
        i18n.tr("ago-now")
    } else if s < 3600 {
        i18n.tr_n("ago-min", "n", s / 60)
    } else if s < 86_400 {
        i18n.tr_n("ago-hour", "n", s / 3600)
    } else {
        i18n.tr_n("ago-day", "n", s / 86_400)
    }
}

/// A value with its metric's decimals and unit, e.g. `151.3 µg/m³`.
pub fn value(metric: &str, v: f64) -> String {
    let uom = ioc_model::metric::uom(metric);
    let n = ioc_model::metric::format_value(metric, v);
    if uom.is_empty() {
        n
    } else {
        format!("{n} {uom}")
    }
}

/// Milliseconds since the epoch, now, by the browser's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_ms() as i64).unwrap_or_default()
}

/// `26/11`
pub fn day_month(t: DateTime<Utc>, tz: &str, lang: Lang) -> String {
    let o = options(tz, &[("day", "2-digit"), ("month", "2-digit")]);
    date(t).to_locale_date_string(lang.locale(), &o).into()
}
