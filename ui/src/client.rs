//! The UI's one typed client of the server's API: a function per endpoint, taking and giving
//! the model's types. Every path is built here, its segments and query values encoded here,
//! so a route renamed on the server is changed in one file; links (downloads) come from here
//! too, through [`api::url`]. The transport (fetch, the error body, [`api::base`]) is
//! [`crate::api`]'s.
//!
//! Answers whose error body is itself meaningful (a refused rule, template or KPI definition
//! carries its problems; a refused dashboard its reason) are given as the status and body as
//! they are ([`Raw`]), for the screen to read.

use crate::api::{self, enc};
use chrono::{DateTime, Utc};

/// The status and body of an answer, as they are.
pub type Raw = (u16, String);

type Result<T> = std::result::Result<T, String>;

/// `from=…&to=…` of a time range.
fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    format!(
        "from={}&to={}",
        enc(&from.to_rfc3339()),
        enc(&to.to_rfc3339())
    )
}

/// What the server says about itself (time zone, language, state of the store).
pub async fn health() -> Result<ioc_model::Health> {
    api::get("/api/health").await
}

/// The administrative units (province, communes).
pub async fn units() -> Result<Vec<ioc_model::Unit>> {
    api::get("/api/units").await
}

/// What the map draws under the markers.
pub async fn basemap() -> Result<ioc_model::BasemapInfo> {
    api::get("/api/basemap").await
}

/// Signing in and out, and who is signed in.
pub mod auth {
    use super::*;
    use ioc_model::{AuthProviders, LoginRequest, LoginResponse, Me};

    pub async fn me() -> Result<Me> {
        api::get("/api/me").await
    }

    pub async fn providers() -> Result<AuthProviders> {
        api::get("/api/auth/providers").await
    }

    pub async fn login(body: &LoginRequest) -> Result<LoginResponse> {
        api::post("/api/login", body).await
    }

    /// Ends the session; the answer is as it is (the page reloads whatever it says).
    pub async fn logout() -> Result<Raw> {
        api::send_json("POST", "/api/logout", &serde_json::json!({})).await
    }

    /// The desktop app's choice of server: a provincial IOC's address, or `None` for its
    /// own engine. The app starts again on it.
    pub async fn choose_server(url: Option<String>) -> Result<Raw> {
        api::send_json(
            "POST",
            "/api/desktop/upstream",
            &serde_json::json!({ "url": url }),
        )
        .await
    }

    /// The link to the province's sign-in page (`login`, from the providers), coming back to
    /// `next`.
    pub fn sso_href(login: &str, next: &str) -> String {
        format!("{}?next={}", api::url(login), enc(next))
    }
}

/// Devices and their measurements.
pub mod entities {
    use super::*;
    use ioc_model::SeriesResponse;

    pub(super) fn series_path(
        id: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> String {
        format!(
            "/api/entities/{}/series?metric={}&{}",
            enc(id),
            enc(metric),
            range(from, to)
        )
    }

    /// A metric of a device over a time range, in buckets.
    pub async fn series(
        id: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<SeriesResponse> {
        api::get(&series_path(id, metric, from, to)).await
    }
}

/// Cameras' stills (their live video has its own socket, see `video.rs`).
pub mod cameras {
    use super::*;

    /// A camera's recent still; `n` tells one refresh from the next (nothing is cached).
    pub fn snapshot_url(id: &str, n: u32) -> String {
        api::url(&format!("/api/cameras/{}/snapshot?n={n}", enc(id)))
    }

    /// Saves an evidence clip of a camera around now (or `req.at`).
    pub async fn save_clip(id: &str, req: &ioc_model::ClipRequest) -> Result<ioc_model::ClipInfo> {
        api::post(&format!("/api/cameras/{}/clips", enc(id)), req).await
    }

    /// The clips saved for an alert.
    pub async fn clips_of_alert(alert: i64) -> Result<Vec<ioc_model::ClipInfo>> {
        api::get(&format!("/api/clips?alert={alert}")).await
    }

    /// The clips saved for an incident.
    pub async fn clips_of_incident(incident: i64) -> Result<Vec<ioc_model::ClipInfo>> {
        api::get(&format!("/api/clips?incident={incident}")).await
    }

    /// A saved clip's file (a download).
    pub fn clip_file_url(id: i64) -> String {
        api::url(&format!("/api/clips/{id}/file"))
    }
}

/// Alerts and their lifecycle.
pub mod alerts {
    use super::*;
    use ioc_model::{Alert, AlertActionRequest};

    /// One alert with its history.
    pub async fn get(id: i64) -> Result<Alert> {
        api::get(&format!("/api/alerts/{id}")).await
    }

    /// `ack`, `assign`, `start`, `comment`, `resolve`, `close`, `shelve`, `unshelve`…
    pub async fn act(id: i64, action: &str, body: &AlertActionRequest) -> Result<Alert> {
        api::post(&format!("/api/alerts/{id}/{}", enc(action)), body).await
    }
}

/// Silences of alerts.
pub mod silences {
    use super::*;
    use ioc_model::{Silence, SilenceRequest};

    pub async fn create(body: &SilenceRequest) -> Result<Silence> {
        api::post("/api/silences", body).await
    }

    /// Ends one.
    pub async fn end(id: i64) -> Result<()> {
        api::delete(&format!("/api/silences/{id}")).await
    }
}

/// Incidents, their steps and files.
pub mod incidents {
    use super::*;
    use ioc_model::{AttachmentInfo, Incident, IncidentActionRequest, OpenIncidentRequest};

    pub async fn open(body: &OpenIncidentRequest) -> Result<Incident> {
        api::post("/api/incidents", body).await
    }

    pub async fn get(id: i64) -> Result<Incident> {
        api::get(&format!("/api/incidents/{id}")).await
    }

    /// `comment`, `resolve`, `reopen`, `close`.
    pub async fn act(id: i64, action: &str, body: &IncidentActionRequest) -> Result<Incident> {
        api::post(&format!("/api/incidents/{id}/{}", enc(action)), body).await
    }

    pub(super) fn step_path(id: i64, step: &str, action: &str) -> String {
        format!("/api/incidents/{id}/steps/{}/{}", enc(step), enc(action))
    }

    /// `check` (an item of its checklist), `done`, `skip`.
    pub async fn step_act(
        id: i64,
        step: &str,
        action: &str,
        body: &IncidentActionRequest,
    ) -> Result<Incident> {
        api::post(&step_path(id, step, action), body).await
    }

    pub(super) fn attach_path(id: i64, name: &str, step: Option<&str>) -> String {
        let mut path = format!("/api/incidents/{id}/attachments?name={}", enc(name));
        if let Some(s) = step {
            path.push_str(&format!("&step={}", enc(s)));
        }
        path
    }

    /// Attaches a file (to a step, or to the incident).
    pub async fn attach(
        id: i64,
        name: &str,
        step: Option<&str>,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<AttachmentInfo> {
        api::post_file(&attach_path(id, name, step), bytes, content_type).await
    }

    /// The after-action report (a link).
    pub fn report_pdf_url(id: i64) -> String {
        api::url(&format!("/api/incidents/{id}/report.pdf"))
    }

    /// Its timeline as CSV (a link).
    pub fn report_csv_url(id: i64) -> String {
        api::url(&format!("/api/incidents/{id}/report.csv"))
    }

    /// A file attached to an incident (a link).
    pub fn attachment_url(id: i64) -> String {
        api::url(&format!("/api/attachments/{id}"))
    }
}

/// Directives to units.
pub mod directives {
    use super::*;
    use ioc_model::{Directive, DirectiveActionRequest, IssueDirectiveRequest};

    /// The last 200 done or cancelled (the open ones come with the feed).
    pub async fn finished() -> Result<Vec<Directive>> {
        api::get("/api/directives?state=done,cancelled&limit=200").await
    }

    pub async fn issue(body: &IssueDirectiveRequest) -> Result<Directive> {
        api::post("/api/directives", body).await
    }

    /// `ack`, `report`, `done`, `cancel`…
    pub async fn act(id: i64, action: &str, body: &DirectiveActionRequest) -> Result<Directive> {
        api::post(&format!("/api/directives/{id}/{}", enc(action)), body).await
    }
}

/// Data sources.
pub mod sources {
    use super::*;
    use ioc_model::SourceStatus;

    pub async fn list() -> Result<Vec<SourceStatus>> {
        api::get("/api/sources").await
    }

    /// Adds (or replaces) a managed source from its TOML.
    pub async fn save(toml: &str) -> Result<SourceStatus> {
        api::post_text("/api/sources", toml).await
    }

    pub async fn remove(name: &str) -> Result<()> {
        api::delete(&format!("/api/sources/{}", enc(name))).await
    }
}

/// Refused inputs.
pub mod deadletters {
    use super::*;
    use ioc_model::DeadLetter;

    /// Which letters: of one source, matching a text.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Filter {
        pub source: Option<String>,
        pub text: Option<String>,
    }

    impl Filter {
        fn query(&self) -> String {
            let mut q = String::new();
            if let Some(s) = &self.source {
                q.push_str(&format!("&source={}", enc(s)));
            }
            if let Some(t) = &self.text {
                q.push_str(&format!("&q={}", enc(t)));
            }
            q
        }
    }

    pub(super) fn list_path(f: &Filter) -> String {
        format!("/api/deadletters?limit=500{}", f.query())
    }

    /// The newest 500.
    pub async fn list(f: &Filter) -> Result<Vec<DeadLetter>> {
        api::get(&list_path(f)).await
    }

    /// Up to 100,000 of them as CSV (a link).
    pub fn csv_url(f: &Filter) -> String {
        api::url(&format!(
            "/api/deadletters?format=csv&limit=100000{}",
            f.query()
        ))
    }
}

/// Imports of files.
pub mod import {
    use super::*;
    use ioc_model::ImportReport;

    /// A file's bytes, its format found from its name and content.
    pub async fn file(name: &str, bytes: Vec<u8>) -> Result<ImportReport> {
        api::post_bytes(
            &format!("/api/import?format=auto&name={}", enc(name)),
            bytes,
        )
        .await
    }
}

/// Event rules.
pub mod rules {
    use super::*;
    use ioc_model::{BacktestRequest, RuleCheck, RuleText, RulesResponse, ValidateBody};

    pub async fn list() -> Result<RulesResponse> {
        api::get("/api/rules").await
    }

    pub async fn validate(body: &ValidateBody) -> Result<RuleCheck> {
        api::post("/api/rules/validate", body).await
    }

    /// Saves a new rule (`replacing`: none) or the rule of that name; 200/201 with its
    /// [`RuleCheck`], or a refusal with its problems.
    pub async fn save(replacing: Option<&str>, body: &RuleText) -> Result<Raw> {
        match replacing {
            Some(name) => api::send_json("PUT", &format!("/api/rules/{}", enc(name)), body).await,
            None => api::send_json("POST", "/api/rules", body).await,
        }
    }

    pub async fn remove(name: &str) -> Result<()> {
        api::delete(&format!("/api/rules/{}", enc(name))).await
    }

    /// 200 with a `BacktestResponse`, or a refusal with the rule's problems.
    pub async fn backtest(body: &BacktestRequest) -> Result<Raw> {
        api::send_json("POST", "/api/rules/backtest", body).await
    }
}

/// SOP templates.
pub mod sops {
    use super::*;
    use ioc_model::{RuleCheck, RuleText, SopInfo, ValidateBody};

    pub async fn list() -> Result<Vec<SopInfo>> {
        api::get("/api/sops").await
    }

    pub async fn validate(body: &ValidateBody) -> Result<RuleCheck> {
        api::post("/api/sops/validate", body).await
    }

    /// An earlier version's text.
    pub async fn version_text(name: &str, version: u32) -> Result<String> {
        api::get_text(&format!("/api/sops/{}/versions/{version}", enc(name))).await
    }

    /// Saves a new template or a new version of `replacing`; 200/201 with its [`SopInfo`], or
    /// a refusal with its problems.
    pub async fn save(replacing: Option<&str>, body: &RuleText) -> Result<Raw> {
        match replacing {
            Some(name) => api::send_json("PUT", &format!("/api/sops/{}", enc(name)), body).await,
            None => api::send_json("POST", "/api/sops", body).await,
        }
    }

    pub async fn remove(name: &str) -> Result<()> {
        api::delete(&format!("/api/sops/{}", enc(name))).await
    }
}

/// KPIs: values, series, what is behind them, definitions.
pub mod kpis {
    use super::*;
    use ioc_model::{KpiDefs, KpiItem, KpiSeries, KpiValue, RuleCheck, RuleText, ValidateBody};

    /// A KPI over a period (none: its own current one), of a unit (none: all the caller's).
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Over {
        /// `day`, `week` or `month`, with a date in it.
        pub period: Option<(String, String)>,
        pub unit: Option<String>,
    }

    impl Over {
        fn query(&self) -> String {
            let mut q = Vec::new();
            if let Some((p, d)) = &self.period {
                q.push(format!("period={}", enc(p)));
                q.push(format!("date={}", enc(d)));
            }
            if let Some(u) = &self.unit {
                q.push(format!("unit={}", enc(u)));
            }
            q.join("&")
        }
    }

    pub(super) fn value_path(id: &str, over: &Over) -> String {
        format!("/api/kpis/{}?{}", enc(id), over.query())
    }

    pub async fn value(id: &str, over: &Over) -> Result<KpiValue> {
        api::get(&value_path(id, over)).await
    }

    /// What is behind the number: stations, alerts, incidents…
    pub async fn detail(id: &str, over: &Over) -> Result<Vec<KpiItem>> {
        api::get(&format!("/api/kpis/{}/detail?{}", enc(id), over.query())).await
    }

    /// Every KPI over a period with a date in it.
    pub async fn all(period: &str, date: &str) -> Result<Vec<KpiValue>> {
        api::get(&format!(
            "/api/kpis?period={}&date={}",
            enc(period),
            enc(date)
        ))
        .await
    }

    pub(super) fn series_path(
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        period: Option<&str>,
        unit: Option<&str>,
    ) -> String {
        let mut path = format!("/api/kpis/{}/series?{}", enc(id), range(from, to));
        if let Some(p) = period {
            path.push_str(&format!("&period={}", enc(p)));
        }
        if let Some(u) = unit {
            path.push_str(&format!("&unit={}", enc(u)));
        }
        path
    }

    /// Its course over a time range, in periods (none: its own), of a unit (none: all).
    pub async fn series(
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        period: Option<&str>,
        unit: Option<&str>,
    ) -> Result<KpiSeries> {
        api::get(&series_path(id, from, to, period, unit)).await
    }

    pub async fn defs() -> Result<KpiDefs> {
        api::get("/api/kpi-defs").await
    }

    pub async fn validate_def(body: &ValidateBody) -> Result<RuleCheck> {
        api::post("/api/kpi-defs/validate", body).await
    }

    /// Saves a new definition or the one with id `replacing`; 200/201 with its `KpiDef`, or
    /// a refusal with its problems.
    pub async fn save_def(replacing: Option<&str>, body: &RuleText) -> Result<Raw> {
        match replacing {
            Some(id) => api::send_json("PUT", &format!("/api/kpi-defs/{}", enc(id)), body).await,
            None => api::send_json("POST", "/api/kpi-defs", body).await,
        }
    }
}

/// Statistical reports.
pub mod reports {
    use super::*;
    use ioc_model::{ReportJob, ReportRequest, Reports};

    /// Reports being made and made, and the reports folder's files.
    pub async fn list() -> Result<Reports> {
        api::get("/api/reports").await
    }

    pub async fn start(body: &ReportRequest) -> Result<ReportJob> {
        api::post("/api/reports", body).await
    }

    /// How far one is.
    pub async fn get(id: i64) -> Result<ReportJob> {
        api::get(&format!("/api/reports/{id}")).await
    }

    /// The file one made (a link).
    pub fn file_url(id: i64) -> String {
        api::url(&format!("/api/reports/{id}/file"))
    }

    /// A file of the reports folder (a link).
    pub fn folder_file_url(name: &str) -> String {
        api::url(&format!("/api/reports/files/{}", enc(name)))
    }
}

/// Dashboards and the video wall.
pub mod dashboards {
    use super::*;
    use ioc_model::{Dashboard, WallProfile};

    pub async fn list() -> Result<Vec<Dashboard>> {
        api::get("/api/dashboards").await
    }

    pub async fn create(body: &Dashboard) -> Result<Dashboard> {
        api::post("/api/dashboards", body).await
    }

    /// Saves an existing one; 200 with it, or a refusal with its reason.
    pub async fn replace(body: &Dashboard) -> Result<Raw> {
        api::send_json("PUT", &format!("/api/dashboards/{}", enc(&body.id)), body).await
    }

    pub async fn remove(id: &str) -> Result<()> {
        api::delete(&format!("/api/dashboards/{}", enc(id))).await
    }

    /// The wall's profile: which dashboard on which screen.
    pub async fn wall() -> Result<WallProfile> {
        api::get("/api/wall").await
    }

    /// Asks the desktop app to open its wall windows (an error where there is none).
    pub async fn open_desktop_wall() -> Result<serde_json::Value> {
        api::post("/api/desktop/wall", &serde_json::json!({})).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn paths_encode_their_parts() {
        assert_eq!(
            entities::series_path("urn:ngsi-ld:Device:a b", "pm25", t(1), t(7)),
            "/api/entities/urn%3Angsi-ld%3ADevice%3Aa%20b/series?metric=pm25\
             &from=2024-05-01T01%3A00%3A00%2B00%3A00&to=2024-05-01T07%3A00%3A00%2B00%3A00"
        );
        assert_eq!(
            incidents::step_path(7, "bước 1", "check"),
            "/api/incidents/7/steps/b%C6%B0%E1%BB%9Bc%201/check"
        );
        assert_eq!(
            incidents::attach_path(7, "a&b.pdf", Some("s1")),
            "/api/incidents/7/attachments?name=a%26b.pdf&step=s1"
        );
        assert_eq!(
            incidents::attach_path(7, "x.png", None),
            "/api/incidents/7/attachments?name=x.png"
        );
        assert_eq!(
            kpis::series_path("aqi-ok", t(0), t(1), Some("week"), Some("U 1")),
            "/api/kpis/aqi-ok/series?from=2024-05-01T00%3A00%3A00%2B00%3A00\
             &to=2024-05-01T01%3A00%3A00%2B00%3A00&period=week&unit=U%201"
        );
        assert_eq!(
            reports::folder_file_url("a b.pdf"),
            "/api/reports/files/a%20b.pdf"
        );
    }

    #[test]
    fn queries_are_as_before() {
        // The KPI page's own current period: no parameters (the `?` stays, as it was).
        assert_eq!(
            kpis::value_path("k", &kpis::Over::default()),
            "/api/kpis/k?"
        );
        let over = kpis::Over {
            period: Some(("day".into(), "2024-05-01".into())),
            unit: Some("40".into()),
        };
        assert_eq!(
            kpis::value_path("k", &over),
            "/api/kpis/k?period=day&date=2024-05-01&unit=40"
        );
        let f = deadletters::Filter {
            source: Some("mqtt a".into()),
            text: Some("limit=500".into()),
        };
        assert_eq!(
            deadletters::list_path(&f),
            "/api/deadletters?limit=500&source=mqtt%20a&q=limit%3D500"
        );
        assert_eq!(
            deadletters::csv_url(&f),
            "/api/deadletters?format=csv&limit=100000&source=mqtt%20a&q=limit%3D500"
        );
        assert_eq!(
            deadletters::csv_url(&Default::default()),
            "/api/deadletters?format=csv&limit=100000"
        );
    }
}
