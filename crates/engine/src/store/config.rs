//! `[store]`: how long each tier of data is kept, how large the database may grow, and how
//! much goes in one transaction.

use serde::Deserialize;
use std::time::Duration;

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// How long raw observations are kept.
    #[serde(with = "humantime_serde")]
    pub raw_retention: Duration,
    /// How long 1-minute rollups are kept (charts at minute steps, restarts).
    #[serde(with = "humantime_serde")]
    pub minute_retention: Duration,
    /// How long hourly rollups are kept (charts at hour steps); daily ones are kept for good.
    #[serde(with = "humantime_serde")]
    pub hour_retention: Duration,
    /// The database's size budget in MB, whatever the ages: over it, the oldest detail goes
    /// first (see `store::retention`). 0: no budget.
    pub max_size_mb: u64,
    /// Most observations written in one transaction.
    pub batch_max: usize,
    /// A PostgreSQL database instead of SQLite in the data folder:
    /// `postgres://USER@HOST:PORT/DB`, its password in `PGPASSWORD` (`ioc serve --store`).
    pub url: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            raw_retention: Duration::from_secs(30 * 86_400),
            minute_retention: Duration::from_secs(90 * 86_400),
            hour_retention: Duration::from_secs(5 * 366 * 86_400),
            max_size_mb: 20_000,
            batch_max: 8192,
            url: None,
        }
    }
}
