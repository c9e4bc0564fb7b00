//! Every route of the server, each with its policy: who may call it ([`Access`]) and what
//! unit scope means for it ([`Scoping`]). The router, the access check and the OpenAPI
//! document are all built from this one table, so a route cannot exist without a policy,
//! and the test that walks the table (`tests/route_policy.rs`) reaches every route.

use crate::{api, auth, basemap, cameras, lead, operate, rules, sops, ws, AppState};
use aide::axum::routing::{delete_with, get_with, post_with, put_with};
use aide::axum::ApiRouter;
use aide::transform::TransformOperation;
use axum::http::Method;
use ioc_engine::auth::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: signing in, the API's description.
    Public,
    /// Anyone signed in whose role has this permission (`View`: every role).
    Role(Permission),
}

/// What the things a route reads or changes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Entity,
    Alert,
    Incident,
    Attachment,
    Clip,
    Directive,
    Silence,
    Kpi,
    Report,
    ReportFile,
    Feed,
}

/// How unit scope applies to a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoping {
    /// Nothing of a unit: the province's configuration everyone reads, or one's own things.
    Unscoped(&'static str),
    /// Only for people of the whole province (a commune's staff get 403).
    Province(&'static str),
    /// One thing, named by the path: out of scope it is refused.
    Item(Kind),
    /// A list: out-of-scope things are left out.
    List(Kind),
    /// Numbers of a `unit` given as a parameter (refused outside the scope) or, without
    /// one, of the caller's units.
    UnitParam(Kind),
    /// Acts on what the body names (alerts, a unit): the operations books refuse what is
    /// outside the actor's units.
    Body(Kind),
    /// The federation's link: a node account's units bound what it receives (left out) and
    /// what it sends (left out and counted).
    Nodes(&'static str),
}

/// One route and its policy.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub scoping: Scoping,
}

impl Route {
    pub fn method(&self) -> Method {
        Method::from_bytes(self.method.as_bytes()).expect("a method")
    }
}

/// Collects the router and the table as routes are added.
pub struct Routes {
    pub api: ApiRouter<AppState>,
    pub table: Vec<Route>,
}

/// A route's method, for [`Routes::add`].
#[derive(Clone, Copy)]
pub enum M {
    Get,
    Post,
    Put,
    Delete,
}

fn tag_of(path: &str) -> &'static str {
    let seg = path
        .trim_start_matches("/api/")
        .split('/')
        .next()
        .unwrap_or("");
    match seg {
        "entities" | "units" | "basemap" => "map",
        "cameras" | "clips" => "cameras",
        "alerts" => "alerts",
        "incidents" | "attachments" => "incidents",
        "directives" => "directives",
        "silences" => "silences",
        "rules" => "rules",
        "sops" => "sops",
        "kpis" | "kpi-defs" | "dashboards" | "wall" | "desktop" => "lead",
        "reports" => "reports",
        "sources" | "deadletters" | "import" => "data",
        "login" | "logout" | "me" | "users" | "session" | "auth" | "audit" => "access",
        "sync" => "federation",
        "/ws" => "feed",
        _ => "system",
    }
}

fn scoping_str(s: Scoping) -> String {
    match s {
        Scoping::Unscoped(why) => format!("unscoped: {why}"),
        Scoping::Province(why) => format!("province only: {why}"),
        Scoping::Item(k) => format!("item: {k:?}").to_lowercase(),
        Scoping::List(k) => format!("list: {k:?}").to_lowercase(),
        Scoping::UnitParam(k) => format!("unit parameter: {k:?}").to_lowercase(),
        Scoping::Body(k) => format!("body: {k:?}").to_lowercase(),
        Scoping::Nodes(why) => format!("node units: {why}"),
    }
}

impl Routes {
    fn new() -> Routes {
        Routes {
            api: ApiRouter::new(),
            table: Vec::new(),
        }
    }

    /// Adds a route with its policy; `docs` describes it further (a summary at least).
    pub fn add<H, I, O, T>(
        mut self,
        m: M,
        path: &'static str,
        access: Access,
        scoping: Scoping,
        handler: H,
        summary: &'static str,
    ) -> Self
    where
        H: axum::handler::Handler<T, AppState> + aide::operation::OperationHandler<I, O>,
        I: aide::OperationInput,
        O: aide::OperationOutput,
        T: 'static,
    {
        let method = match m {
            M::Get => "GET",
            M::Post => "POST",
            M::Put => "PUT",
            M::Delete => "DELETE",
        };
        self.table.push(Route {
            method,
            path,
            access,
            scoping,
        });
        let d = docs(summary, path, access, scoping);
        let mr = match m {
            M::Get => get_with(handler, d),
            M::Post => post_with(handler, d),
            M::Put => put_with(handler, d),
            M::Delete => delete_with(handler, d),
        };
        self.api = self.api.api_route(path, mr);
        self
    }
}

/// A route's description: summary, tag, and its policy.
fn docs(
    summary: &'static str,
    path: &'static str,
    access: Access,
    scoping: Scoping,
) -> impl for<'a> FnOnce(TransformOperation<'a>) -> TransformOperation<'a> {
    move |op| {
        let op = op
            .summary(summary)
            .tag(tag_of(path))
            .hidden(path.contains("{*"));
        describe(op, access, scoping)
    }
}

/// The policy in the document: the security requirement and `x-ioc-*` extensions.
fn describe(
    mut op: TransformOperation<'_>,
    access: Access,
    scoping: Scoping,
) -> TransformOperation<'_> {
    let o = op.inner_mut();
    match access {
        Access::Public => {
            o.security = vec![Default::default()];
            o.extensions
                .insert("x-ioc-access".into(), serde_json::json!("public"));
        }
        Access::Role(p) => {
            o.extensions
                .insert("x-ioc-permission".into(), serde_json::json!(p.as_str()));
        }
    }
    o.extensions.insert(
        "x-ioc-scope".into(),
        serde_json::json!(scoping_str(scoping)),
    );
    op
}

use Access::{Public, Role};
use Kind as K;
use Permission as P;
use Scoping::{Body, Item, List, Nodes, Province, UnitParam, Unscoped};
use M::{Delete, Get, Post, Put};

/// The whole API.
pub fn build() -> Routes {
    const CONFIG: &str = "the province's configuration";
    Routes::new()
        // Access
        .add(
            Post,
            "/api/login",
            Public,
            Unscoped("signing in"),
            auth::login,
            "Sign in with a local account (sets the session cookie)",
        )
        .add(
            Get,
            "/api/session/desktop",
            Public,
            Unscoped("the desktop app's one-time ticket"),
            auth::desktop_session,
            "The desktop window's sign-in (a one-time ticket)",
        )
        .add(
            Get,
            "/api/auth/providers",
            Public,
            Unscoped("how to sign in"),
            auth::providers,
            "How one may sign in here (local accounts, the province's SSO)",
        )
        .add(
            Get,
            "/api/auth/oidc/login",
            Public,
            Unscoped("signing in"),
            auth::sso_login,
            "Sign in through the province's OpenID Connect provider (a redirect)",
        )
        .add(
            Get,
            "/api/auth/oidc/callback",
            Public,
            Unscoped("signing in"),
            auth::sso_callback,
            "Back from the provider: sets the session cookie",
        )
        .add(
            Get,
            "/api/openapi.json",
            Public,
            Unscoped("the API's description"),
            openapi,
            "This document",
        )
        .add(
            Post,
            "/api/logout",
            Role(P::View),
            Unscoped("one's own session"),
            auth::logout,
            "Sign out",
        )
        .add(
            Get,
            "/api/me",
            Role(P::View),
            Unscoped("one's own account"),
            auth::me,
            "Who is signed in",
        )
        .add(
            Get,
            "/api/users",
            Role(P::ManageUsers),
            Province("accounts"),
            auth::users,
            "Accounts",
        )
        .add(
            Post,
            "/api/users",
            Role(P::ManageUsers),
            Province("accounts"),
            auth::add_user,
            "Add an account",
        )
        .add(
            Get,
            "/api/audit",
            Role(P::Audit),
            Province("the whole log"),
            api::audit,
            "The audit log, newest first",
        )
        // The engine and the map
        .add(
            Get,
            "/api/ready",
            Public,
            Unscoped("up, ready and store reachable, nothing else"),
            api::ready,
            "Liveness and readiness for load balancers and systemd (503 when not ready)",
        )
        .add(
            Get,
            "/api/health",
            Role(P::View),
            Unscoped("the engine's own state"),
            api::health,
            "Health of the engine",
        )
        .add(
            Get,
            "/api/units",
            Role(P::View),
            Unscoped("the list of units"),
            api::units,
            "Units (communes) of the province",
        )
        .add(
            Get,
            "/api/entities",
            Role(P::View),
            List(K::Entity),
            api::entities,
            "Devices with their latest values",
        )
        .add(
            Get,
            "/api/entities/{id}",
            Role(P::View),
            Item(K::Entity),
            api::entity,
            "One device",
        )
        .add(
            Get,
            "/api/entities/{id}/series",
            Role(P::View),
            Item(K::Entity),
            api::series,
            "A device's metric over time",
        )
        .add(
            Get,
            "/api/cameras",
            Role(P::View),
            List(K::Entity),
            cameras::list,
            "Cameras' video streams and how each is doing",
        )
        .add(
            Get,
            "/api/cameras/{id}",
            Role(P::View),
            Item(K::Entity),
            cameras::one,
            "One camera's video stream",
        )
        .add(
            Put,
            "/api/cameras/{id}/credentials",
            Role(P::EditSources),
            Item(K::Entity),
            cameras::credentials,
            "Set a camera's credentials (write-only; an empty password removes them)",
        )
        .add(
            Get,
            "/api/cameras/{id}/live",
            Role(P::View),
            Item(K::Entity),
            cameras::live,
            "A camera's live video (WebSocket): its state as text, fragmented MP4 as binary",
        )
        .add(
            Get,
            "/api/cameras/{id}/snapshot",
            Role(P::View),
            Item(K::Entity),
            cameras::snapshot,
            "A camera's recent still (asked of the camera at most once per interval)",
        )
        .add(
            Post,
            "/api/cameras/{id}/clips",
            Role(P::WorkAlerts),
            Item(K::Entity),
            cameras::save_clip,
            "Save an evidence clip of a camera around a moment, for an alert or incident",
        )
        .add(
            Get,
            "/api/clips",
            Role(P::View),
            List(K::Clip),
            cameras::clips,
            "Evidence clips (of an alert, an incident or a camera)",
        )
        .add(
            Get,
            "/api/clips/{id}",
            Role(P::View),
            Item(K::Clip),
            cameras::clip,
            "One evidence clip",
        )
        .add(
            Get,
            "/api/clips/{id}/file",
            Role(P::View),
            Item(K::Clip),
            cameras::clip_file,
            "An evidence clip's MP4 file (a download)",
        )
        .add(
            Get,
            "/api/basemap",
            Role(P::View),
            Unscoped("the province's map"),
            basemap::info,
            "The imported basemap",
        )
        .add(
            Get,
            "/api/basemap/file",
            Role(P::View),
            Unscoped("the province's map"),
            basemap::file,
            "The basemap file (GeoJSON or PMTiles)",
        )
        .add(
            Get,
            "/api/basemap/tiles/{z}/{x}/{y}",
            Role(P::View),
            Unscoped("the province's map"),
            basemap::tile,
            "A basemap tile",
        )
        // Alerts
        .add(
            Get,
            "/api/alerts",
            Role(P::View),
            List(K::Alert),
            api::alerts,
            "Alerts (open ones live, or by state)",
        )
        .add(
            Get,
            "/api/alerts/{id}",
            Role(P::View),
            Item(K::Alert),
            api::alert,
            "One alert with its timeline",
        )
        .add(
            Get,
            "/api/alerts/{id}/cap",
            Role(P::View),
            Item(K::Alert),
            api::alert_cap,
            "One alert as CAP 1.2 XML",
        )
        .add(
            Post,
            "/api/alerts/{id}/{action}",
            Role(P::WorkAlerts),
            Item(K::Alert),
            api::alert_action,
            "Act on an alert: ack, assign, start, comment, resolve, close, shelve, unshelve",
        )
        // Data
        .add(
            Get,
            "/api/sources",
            Role(P::Sources),
            Province("the engine's sources"),
            api::sources,
            "Data sources and their health (secrets shown as set or not)",
        )
        .add(
            Post,
            "/api/sources",
            Role(P::EditSources),
            Province("the engine's sources"),
            api::put_source,
            "Add or change a source (TOML; secrets are write-only)",
        )
        .add(
            Delete,
            "/api/sources/{name}",
            Role(P::EditSources),
            Province("the engine's sources"),
            api::delete_source,
            "Remove a source",
        )
        .add(
            Get,
            "/api/deadletters",
            Role(P::Sources),
            Province("what the sources refused"),
            api::dead_letters,
            "What was refused, with the reason",
        )
        .add(
            Post,
            "/api/import",
            Role(P::Import),
            Province("data of any unit"),
            api::import,
            "Import a file (CAP, NGSI-LD, GeoJSON, JSON, CSV)",
        )
        // The federation's link (node accounts only)
        .add(
            Get,
            "/api/sync/held",
            Role(P::Sync),
            Nodes("the calling node's own operations only"),
            crate::sync::held,
            "What this IOC holds of the calling node's operations",
        )
        .add(
            Post,
            "/api/sync/push",
            Role(P::Sync),
            Nodes("operations on alerts outside its units are left out"),
            crate::sync::push,
            "A node's own operations (gzip JSON); those outside its units are left out",
        )
        .add(
            Post,
            "/api/sync/pull",
            Role(P::Sync),
            Nodes("only alerts of its units are sent"),
            crate::sync::pull,
            "Operations the node lacks, of its units only (gzip JSON)",
        )
        .add(
            Post,
            "/api/sync/data",
            Role(P::Sync),
            Nodes("devices and readings outside its units are left out"),
            crate::sync::data,
            "Devices and readings a node stored (gzip JSON), history included",
        )
        // Rules
        .add(
            Get,
            "/api/rules",
            Role(P::View),
            Unscoped(CONFIG),
            rules::list,
            "Rules",
        )
        .add(
            Post,
            "/api/rules",
            Role(P::EditRules),
            Province(CONFIG),
            rules::create,
            "Add a rule",
        )
        .add(
            Post,
            "/api/rules/validate",
            Role(P::EditRules),
            Province(CONFIG),
            rules::validate,
            "Check a rule's text",
        )
        .add(
            Post,
            "/api/rules/backtest",
            Role(P::EditRules),
            Province("history of every unit"),
            rules::backtest,
            "Run a rule over stored history",
        )
        .add(
            Put,
            "/api/rules/{name}",
            Role(P::EditRules),
            Province(CONFIG),
            rules::replace,
            "Change a rule",
        )
        .add(
            Delete,
            "/api/rules/{name}",
            Role(P::EditRules),
            Province(CONFIG),
            rules::delete,
            "Remove a rule",
        )
        // Incidents
        .add(
            Get,
            "/api/incidents",
            Role(P::View),
            List(K::Incident),
            operate::incidents,
            "Incidents (open ones live, or by state)",
        )
        .add(
            Post,
            "/api/incidents",
            Role(P::WorkAlerts),
            Body(K::Alert),
            operate::open_incident,
            "Open an incident from alerts",
        )
        .add(
            Get,
            "/api/incidents/{id}",
            Role(P::View),
            Item(K::Incident),
            operate::incident,
            "One incident with its timeline, directives and files",
        )
        .add(
            Post,
            "/api/incidents/{id}/attachments",
            Role(P::WorkAlerts),
            Item(K::Incident),
            operate::attach,
            "Attach a file to an incident",
        )
        .add(
            Get,
            "/api/incidents/{id}/{action}",
            Role(P::View),
            Item(K::Incident),
            operate::report,
            "The after-action report (report.pdf, report.csv)",
        )
        .add(
            Post,
            "/api/incidents/{id}/{action}",
            Role(P::WorkAlerts),
            Item(K::Incident),
            operate::incident_action,
            "Act on an incident: comment, resolve, reopen, close, alerts, review",
        )
        .add(
            Post,
            "/api/incidents/{id}/steps/{step}/{action}",
            Role(P::WorkAlerts),
            Item(K::Incident),
            operate::step_action,
            "Work an SOP step: done, check, skip",
        )
        .add(
            Get,
            "/api/attachments/{id}",
            Role(P::View),
            Item(K::Attachment),
            operate::attachment,
            "An incident's file (always as a download)",
        )
        // Directives and silences
        .add(
            Get,
            "/api/directives",
            Role(P::View),
            List(K::Directive),
            operate::directives,
            "Directives (open ones live, or by state)",
        )
        .add(
            Post,
            "/api/directives",
            Role(P::Direct),
            Body(K::Directive),
            operate::issue,
            "Issue a directive to a unit",
        )
        .add(
            Get,
            "/api/directives/{id}",
            Role(P::View),
            Item(K::Directive),
            operate::directive,
            "One directive with its reports",
        )
        .add(
            Post,
            "/api/directives/{id}/{action}",
            Role(P::View),
            Item(K::Directive),
            operate::directive_action,
            "Answer a directive: ack, report, done; or cancel it",
        )
        .add(
            Get,
            "/api/silences",
            Role(P::View),
            List(K::Silence),
            operate::silences,
            "Silences and maintenance windows",
        )
        .add(
            Post,
            "/api/silences",
            Role(P::EditRules),
            Body(K::Silence),
            operate::silence,
            "Silence alerts for a while",
        )
        .add(
            Delete,
            "/api/silences/{id}",
            Role(P::EditRules),
            Item(K::Silence),
            operate::end_silence,
            "End a silence now",
        )
        // SOP templates
        .add(
            Get,
            "/api/sops",
            Role(P::View),
            Unscoped(CONFIG),
            sops::list,
            "SOP templates",
        )
        .add(
            Post,
            "/api/sops",
            Role(P::EditRules),
            Province(CONFIG),
            sops::create,
            "Add an SOP template",
        )
        .add(
            Post,
            "/api/sops/validate",
            Role(P::EditRules),
            Province(CONFIG),
            sops::validate,
            "Check an SOP template's text",
        )
        .add(
            Put,
            "/api/sops/{name}",
            Role(P::EditRules),
            Province(CONFIG),
            sops::replace,
            "Save a new version of an SOP template",
        )
        .add(
            Delete,
            "/api/sops/{name}",
            Role(P::EditRules),
            Province(CONFIG),
            sops::delete,
            "Remove an SOP template",
        )
        .add(
            Get,
            "/api/sops/{name}/versions/{version}",
            Role(P::View),
            Unscoped(CONFIG),
            sops::version,
            "An earlier version's text",
        )
        // KPIs, dashboards, the wall, reports
        .add(
            Get,
            "/api/kpis",
            Role(P::View),
            UnitParam(K::Kpi),
            lead::kpis,
            "Every KPI's value (over the caller's units)",
        )
        .add(
            Get,
            "/api/kpis/{id}",
            Role(P::View),
            UnitParam(K::Kpi),
            lead::kpi,
            "One KPI's value",
        )
        .add(
            Get,
            "/api/kpis/{id}/series",
            Role(P::View),
            UnitParam(K::Kpi),
            lead::series,
            "A KPI over time",
        )
        .add(
            Get,
            "/api/kpis/{id}/detail",
            Role(P::View),
            UnitParam(K::Kpi),
            lead::detail,
            "What is behind a KPI's number",
        )
        .add(
            Get,
            "/api/kpi-defs",
            Role(P::View),
            Unscoped(CONFIG),
            lead::defs,
            "KPI definitions",
        )
        .add(
            Post,
            "/api/kpi-defs",
            Role(P::EditKpis),
            Province(CONFIG),
            lead::create_def,
            "Add a KPI definition",
        )
        .add(
            Post,
            "/api/kpi-defs/validate",
            Role(P::EditKpis),
            Province(CONFIG),
            lead::validate_def,
            "Check a KPI definition",
        )
        .add(
            Put,
            "/api/kpi-defs/{id}",
            Role(P::EditKpis),
            Province(CONFIG),
            lead::replace_def,
            "Change a KPI definition",
        )
        .add(
            Delete,
            "/api/kpi-defs/{id}",
            Role(P::EditKpis),
            Province(CONFIG),
            lead::delete_def,
            "Remove a KPI definition",
        )
        .add(
            Get,
            "/api/dashboards",
            Role(P::View),
            Unscoped("one's own and shared dashboards; their panels read scoped routes"),
            lead::dashboards,
            "Dashboards one may see",
        )
        .add(
            Post,
            "/api/dashboards",
            Role(P::View),
            Unscoped("one's own dashboards"),
            lead::create_dashboard,
            "Make a dashboard",
        )
        .add(
            Get,
            "/api/dashboards/{id}",
            Role(P::View),
            Unscoped("one's own dashboards"),
            lead::dashboard,
            "One dashboard",
        )
        .add(
            Put,
            "/api/dashboards/{id}",
            Role(P::View),
            Unscoped("one's own dashboards"),
            lead::replace_dashboard,
            "Change one's dashboard",
        )
        .add(
            Delete,
            "/api/dashboards/{id}",
            Role(P::View),
            Unscoped("one's own dashboards"),
            lead::delete_dashboard,
            "Remove one's dashboard",
        )
        .add(
            Get,
            "/api/wall",
            Role(P::View),
            Unscoped("the wall's playlist"),
            lead::wall,
            "The video wall's profile",
        )
        .add(
            Put,
            "/api/wall",
            Role(P::EditRules),
            Province("the wall's playlist"),
            lead::put_wall,
            "Change the video wall's profile",
        )
        .add(
            Post,
            "/api/desktop/wall",
            Role(P::OpenWall),
            Unscoped("windows of this machine"),
            crate::open_wall,
            "Open the wall's windows (the desktop app only)",
        )
        .add(
            Post,
            "/api/desktop/upstream",
            Public,
            Unscoped("the desktop's own sign-in screen: which server to sign in to"),
            crate::desktop_upstream,
            "Choose the server this desktop works with: a provincial IOC, or its own engine \
             (the desktop app only, from its own pages; it starts again on the choice)",
        )
        .add(
            Get,
            "/api/reports",
            Role(P::View),
            List(K::Report),
            lead::reports,
            "Reports being made, made, and in the reports folder",
        )
        .add(
            Post,
            "/api/reports",
            Role(P::View),
            Body(K::Report),
            lead::start_report,
            "Make a statistical report",
        )
        .add(
            Get,
            "/api/reports/files/{name}",
            Role(P::View),
            Item(K::ReportFile),
            lead::folder_file,
            "A file of the reports folder",
        )
        .add(
            Get,
            "/api/reports/{id}",
            Role(P::View),
            Item(K::Report),
            lead::report,
            "How far a report is",
        )
        .add(
            Get,
            "/api/reports/{id}/file",
            Role(P::View),
            Item(K::Report),
            lead::report_file,
            "A made report",
        )
        // The live feed
        .add(
            Get,
            "/ws",
            Role(P::View),
            List(K::Feed),
            ws::upgrade,
            "The live feed (WebSocket): a snapshot, then deltas",
        )
        // Anything else under /api
        .add(
            Get,
            "/api/{*rest}",
            Public,
            Unscoped("no such route"),
            api::not_found,
            "No such route",
        )
        .add(
            Post,
            "/api/{*rest}",
            Public,
            Unscoped("no such route"),
            api::not_found,
            "No such route",
        )
        .add(
            Put,
            "/api/{*rest}",
            Public,
            Unscoped("no such route"),
            api::not_found,
            "No such route",
        )
        .add(
            Delete,
            "/api/{*rest}",
            Public,
            Unscoped("no such route"),
            api::not_found,
            "No such route",
        )
}

/// The table alone, for tests and tools.
pub fn table() -> Vec<Route> {
    build().table
}

/// `GET /api/openapi.json`.
async fn openapi(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> crate::reply::JsonText {
    crate::reply::JsonText(st.openapi.clone())
}
