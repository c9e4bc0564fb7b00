//! The IOC engine: everything between a data source and a screen, with no HTTP and no UI.
//!
//! ```text
//! sources ─► pipeline (normalize ─► rules ─► alerts) ─► store writer (one SQLite transaction)
//!                                                   └──► hub (after commit) ─► WebSocket clients
//! ```
//!
//! An [`Engine`] is a value, not a global: tests start one per test on a temporary directory.

pub mod alerts;
pub mod aqi;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod basemap;
pub mod bench;
pub mod clock;
pub mod config;
pub mod dashboards;
pub mod decode;
pub mod demo;
pub mod engine;
pub mod hub;
pub mod ingest;
pub mod kpi;
pub mod local;
pub mod operate;
pub mod pdf;
pub mod pipeline;
pub mod report;
pub mod rules;
pub mod scope;
pub mod sources;
pub mod store;
pub mod sync;
pub mod video;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use engine::{Engine, EngineError};
pub use hub::Hub;
pub use ingest::{Ingest, Item, Obs};
pub use pipeline::IngestSender;
pub use scope::{Scope, View};
