//! The NATS cluster of the tests: `ioc_engine::local::nats`.

#[allow(unused_imports)]
pub use ioc_engine::local::nats::*;
