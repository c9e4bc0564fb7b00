//! Servers of our own on loopback, for the tests and the benchmarks that need the real
//! thing: a NATS JetStream cluster (`nats`). (The test PostgreSQL is `store::testing`.)

pub mod nats;
