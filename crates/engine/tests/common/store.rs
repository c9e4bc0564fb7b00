//! The store an engine test runs on: SQLite in the test's data folder (the default), or, with
//! `IOC_TEST_STORE=postgres`, a fresh database on the tests' own PostgreSQL, one per data
//! folder (an engine restarted on the same folder finds the same database). `.ci/run` runs
//! the engine's store-heavy tests both ways.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `[store] url` for an engine whose data folder is `dir`: `None` on SQLite.
pub fn url_for(dir: &Path) -> Option<String> {
    match std::env::var("IOC_TEST_STORE").as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => None,
        Ok("postgres") => {
            static DBS: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
            let mut dbs = DBS.lock().unwrap();
            let dbs = dbs.get_or_insert_with(HashMap::new);
            if let Some(url) = dbs.get(dir) {
                return Some(url.clone());
            }
            let url = ioc_engine::store::testing::database("engine").unwrap_or_else(|| {
                panic!("IOC_TEST_STORE=postgres, but there is no PostgreSQL to test on")
            });
            dbs.insert(dir.to_owned(), url.clone());
            Some(url)
        }
        Ok(other) => panic!("IOC_TEST_STORE={other:?}: sqlite or postgres"),
    }
}
