//! The types that cross the wire between the IOC engine/server and every client (the Leptos UI,
//! the CLI, tests, other IOCs). Both sides compile this one crate, so a field renamed here is
//! renamed everywhere; it compiles for native and `wasm32` and knows nothing about I/O.

pub mod alert;
pub mod api;
pub mod camera;
pub mod dashboard;
pub mod directive;
pub mod entity;
pub mod incident;
pub mod kpi;
pub mod metric;
pub mod rule;
pub mod silence;
pub mod sop;
pub mod user;
pub mod ws;

pub use alert::{Alert, AlertEvent, AlertEventKind, AlertState, Severity};
pub use api::{
    AckRequest, AlertActionRequest, BasemapInfo, BasemapKind, DeadLetter, Health, ImportRejection,
    ImportReport, LinkState, NodeLink, Readiness, SecretState, SeriesPoint, SeriesResponse,
    SourceState, SourceStatus, Unit, UpstreamLink,
};
pub use camera::{
    CameraCredentials, CameraStream, ClipInfo, ClipRequest, ClipState, StreamProblem, StreamState,
};
pub use dashboard::{
    Dashboard, Panel, PanelKind, ReportFile, ReportFormat, ReportJob, ReportRequest, ReportState,
    Reports, WallItem, WallProfile, WallScreen, GRID_COLUMNS,
};
pub use directive::{
    Directive, DirectiveActionRequest, DirectiveReport, DirectiveState, IssueDirectiveRequest,
};
pub use entity::{Domain, Entity, EntityStatus, Reading};
pub use incident::{
    AttachmentInfo, ChecklistItem, Incident, IncidentActionRequest, IncidentEvent,
    IncidentEventKind, IncidentState, OpenIncidentRequest, SopRef, Step, StepStatus,
};
pub use kpi::{
    Better, KpiDef, KpiDefs, KpiItem, KpiPoint, KpiSeries, KpiStatus, KpiValue, Period, UnitValue,
};
pub use rule::{
    BacktestFiring, BacktestRequest, BacktestResponse, RuleCheck, RuleInfo, RuleProblem, RuleText,
    RulesResponse, ValidateBody,
};
pub use silence::{Silence, SilenceMatch, SilenceRequest};
pub use sop::{SopInfo, SopStepInfo};
pub use user::{AuthProviders, LoginRequest, LoginResponse, Me, Role, SsoInfo, UserInfo};
pub use ws::{ClientMsg, FeedValues, Picture, ServerMsg, ValueUpdate, MAX_WATCHED};
