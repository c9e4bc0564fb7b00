//! One SQL interface over the two stores: SQLite (the embedded default) and PostgreSQL (the
//! provincial IOC past one machine).
//!
//! Why one interface rather than two stores: every query of the store is written once, and the
//! same test suite runs it on both, so neither can drift. The interface has the shape of
//! `rusqlite`'s (prepared statements, `params!`, rows read by column index) because the store
//! was written against it; underneath, SQLite gets the very statements it always got, and
//! PostgreSQL gets them with `?N` placeholders rewritten to `$N`, prepared once per connection.
//!
//! What differs between the two is said where it differs, with [`Db::dialect`]: the schema,
//! JSON functions, and the few statements SQLite has no portable form of. Values cross the
//! interface as [`Value`]: an integer column is `BIGINT` on PostgreSQL, a real one `DOUBLE
//! PRECISION`, a flag `BOOLEAN`, and a value binds to whatever type the server inferred for
//! its parameter when that is lossless (an integer to a `DOUBLE PRECISION`, a flag to a
//! `BIGINT`), so the same call binds on both.

use std::cell::RefCell;
use std::collections::HashMap;

/// Which SQL the connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// An error of the database or of reading a column.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg_message(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// `query_row` found nothing (see [`OptionalExtension::optional`]).
    #[error("the query returned no rows")]
    NoRows,
    /// PostgreSQL refused a statement (its text says which).
    #[error("{message} in: {sql}")]
    Statement { sql: String, message: String },
    /// A column could not be read as the type asked for.
    #[error("column {column}: {message}")]
    Column { column: usize, message: String },
}

/// PostgreSQL's own message (with its detail) rather than the driver's "db error".
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_string(),
        },
        None => e.to_string(),
    }
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// `query_row(…).optional()`: `None` where the query returned no rows.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) | Err(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

/// A value bound to a statement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
    Bool(bool),
    /// A whole column at once (PostgreSQL's `unnest`): a batch in one statement.
    Ints(&'a [i64]),
    Reals(&'a [f64]),
}

/// Something that binds as a [`Value`].
pub trait ToValue {
    fn value(&self) -> Value<'_>;
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_value!(i64, i32, i16, i8, u32, u16, u8, isize);

/// Counts and sizes beyond `i64::MAX` do not occur; saturating is the lossless-enough answer.
impl ToValue for usize {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToValue for u64 {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToValue for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}
impl ToValue for f32 {
    fn value(&self) -> Value<'_> {
        Value::Real(f64::from(*self))
    }
}
impl ToValue for bool {
    fn value(&self) -> Value<'_> {
        Value::Bool(*self)
    }
}
impl ToValue for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for std::sync::Arc<str> {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for Box<str> {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for std::borrow::Cow<'_, str> {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToValue for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl ToValue for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}
impl ToValue for [i64] {
    fn value(&self) -> Value<'_> {
        Value::Ints(self)
    }
}
impl ToValue for Vec<i64> {
    fn value(&self) -> Value<'_> {
        Value::Ints(self)
    }
}
impl ToValue for Vec<f64> {
    fn value(&self) -> Value<'_> {
        Value::Reals(self)
    }
}
impl ToValue for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

/// The parameters of a statement, in order: `params![a, b]`, or an array of one type.
pub trait Params {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R;
}

impl Params for &[&dyn ToValue] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(self)
    }
}

impl<T: ToValue, const N: usize> Params for [T; N] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(&self.each_ref().map(|v| v as &dyn ToValue))
    }
}

impl<T: ToValue, const N: usize> Params for &[T; N] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn ToValue]) -> R) -> R {
        f(&self.each_ref().map(|v| v as &dyn ToValue))
    }
}

/// `params![a, b, …]`: the parameters of a statement (`params![]` for none).
#[macro_export]
macro_rules! db_params {
    () => {
        &[] as &[&dyn $crate::store::db::ToValue]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue]
    };
}
pub use crate::db_params as params;

impl rusqlite::ToSql for dyn ToValue + '_ {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self.value() {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            Value::Bool(b) => ValueRef::Integer(i64::from(b)),
            Value::Ints(_) | Value::Reals(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "SQLite binds no arrays: one statement per row".into(),
                ))
            }
        }))
    }
}

/// A value of its own, to cross to the PostgreSQL client's runtime.
#[derive(Debug, Clone)]
enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Bool(bool),
    Ints(Vec<i64>),
    Reals(Vec<f64>),
}

impl Owned {
    fn of(v: Value<'_>) -> Owned {
        match v {
            Value::Null => Owned::Null,
            Value::Int(i) => Owned::Int(i),
            Value::Real(f) => Owned::Real(f),
            Value::Text(t) => Owned::Text(t.to_owned()),
            Value::Blob(b) => Owned::Blob(b.to_vec()),
            Value::Bool(b) => Owned::Bool(b),
            Value::Ints(v) => Owned::Ints(v.to_vec()),
            Value::Reals(v) => Owned::Reals(v.to_vec()),
        }
    }

    fn as_value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(i) => Value::Int(*i),
            Owned::Real(f) => Value::Real(*f),
            Owned::Text(t) => Value::Text(t),
            Owned::Blob(b) => Value::Blob(b),
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Ints(v) => Value::Ints(v),
            Owned::Reals(v) => Value::Reals(v),
        }
    }
}

/// A parameter bound on PostgreSQL, to whatever type the server inferred for it.
#[derive(Debug)]
struct PgParam(Owned);

impl tokio_postgres::types::ToSql for PgParam {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use bytes::BufMut;
        use tokio_postgres::types::{IsNull, Type};
        let v = self.0.as_value();
        match (v, ty) {
            (Value::Null, _) => return Ok(IsNull::Yes),
            (Value::Int(i), &Type::INT8) => out.put_i64(i),
            (Value::Int(i), &Type::INT4) => out.put_i32(i32::try_from(i)?),
            (Value::Int(i), &Type::INT2) => out.put_i16(i16::try_from(i)?),
            (Value::Int(i), &Type::FLOAT8) => out.put_f64(i as f64),
            (Value::Int(i), &Type::BOOL) => out.put_u8(u8::from(i != 0)),
            (Value::Real(f), &Type::FLOAT8) => out.put_f64(f),
            (Value::Real(f), &Type::FLOAT4) => out.put_f32(f as f32),
            (Value::Bool(b), &Type::BOOL) => out.put_u8(u8::from(b)),
            (Value::Bool(b), &Type::INT8) => out.put_i64(i64::from(b)),
            (Value::Bool(b), &Type::INT4) => out.put_i32(i32::from(b)),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME)
            | (Value::Text(s), &Type::UNKNOWN | &Type::JSON) => out.put_slice(s.as_bytes()),
            (Value::Text(s), &Type::JSONB) => {
                // The binary form of jsonb: a version byte, then the text.
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            (Value::Blob(b), &Type::BYTEA) => out.put_slice(b),
            (Value::Ints(v), &Type::INT8_ARRAY) => return v.to_sql(ty, out),
            (Value::Reals(v), &Type::FLOAT8_ARRAY) => return v.to_sql(ty, out),
            (v, ty) => {
                return Err(format!("cannot bind {v:?} to a parameter of type {ty}").into());
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A column as read from either database.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// A type a column reads as.
pub trait FromValue: Sized {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String>;
}

fn wrong(c: Cell<'_>, want: &str) -> String {
    let got = match c {
        Cell::Null => "NULL",
        Cell::Int(_) => "an integer",
        Cell::Real(_) => "a real",
        Cell::Text(_) => "text",
        Cell::Blob(_) => "a blob",
    };
    format!("{got} cannot be read as {want}")
}

impl FromValue for i64 {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
        match c {
            Cell::Int(i) => Ok(i),
            c => Err(wrong(c, "an integer")),
        }
    }
}
macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
                let i = i64::from_cell(c)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_from!(i32, i16, u32, u16, u8, u64, usize);

impl FromValue for f64 {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
        match c {
            Cell::Real(f) => Ok(f),
            Cell::Int(i) => Ok(i as f64),
            c => Err(wrong(c, "a real")),
        }
    }
}
impl FromValue for f32 {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
        f64::from_cell(c).map(|f| f as f32)
    }
}
impl FromValue for bool {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
        match c {
            Cell::Int(i) => Ok(i != 0),
            c => Err(wrong(c, "a flag")),
        }
    }
}
impl FromValue for String {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
        match c {
            Cell::Text(s) => Ok(s.to_owned()),
            c => Err(wrong(c, "text")),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
        match c {
            Cell::Blob(b) => Ok(b.to_vec()),
            Cell::Text(s) => Ok(s.as_bytes().to_vec()),
            c => Err(wrong(c, "a blob")),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_cell(c: Cell<'_>) -> std::result::Result<Self, String> {
        match c {
            Cell::Null => Ok(None),
            c => T::from_cell(c).map(Some),
        }
    }
}

/// A column of a PostgreSQL row by its type (raw bytes: no allocation, jsonb as its text).
struct PgCell<'a>(Cell<'a>);

impl<'a> tokio_postgres::types::FromSql<'a> for PgCell<'a> {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        let be = |n: usize| -> std::result::Result<[u8; 8], String> {
            let mut b = [0u8; 8];
            if raw.len() != n {
                return Err(format!("{ty}: {} bytes, expected {n}", raw.len()));
            }
            b[8 - n..].copy_from_slice(raw);
            Ok(b)
        };
        Ok(PgCell(match *ty {
            Type::INT8 => Cell::Int(i64::from_be_bytes(be(8)?)),
            Type::INT4 => Cell::Int(i64::from(i32::from_be_bytes(raw.try_into()?))),
            Type::INT2 => Cell::Int(i64::from(i16::from_be_bytes(raw.try_into()?))),
            Type::OID => Cell::Int(i64::from(u32::from_be_bytes(raw.try_into()?))),
            Type::FLOAT8 => Cell::Real(f64::from_be_bytes(be(8)?)),
            Type::FLOAT4 => Cell::Real(f64::from(f32::from_be_bytes(raw.try_into()?))),
            Type::BOOL => Cell::Int(i64::from(raw.first().copied().unwrap_or(0) != 0)),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON => {
                Cell::Text(std::str::from_utf8(raw)?)
            }
            Type::JSONB => Cell::Text(std::str::from_utf8(raw.get(1..).unwrap_or_default())?),
            Type::BYTEA => Cell::Blob(raw),
            ref other => {
                return Err(format!(
                    "a column of type {other} (cast it to BIGINT, DOUBLE PRECISION or TEXT)"
                )
                .into())
            }
        }))
    }

    fn from_sql_null(
        _: &tokio_postgres::types::Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgCell(Cell::Null))
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }
}

/// A column's place in a row, from 0 (a trait so that `r.get(0)` needs no suffix).
pub trait ColumnIndex {
    fn index(self) -> usize;
}
impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A row of a result.
pub enum Row<'a, 'r> {
    Sqlite(&'a rusqlite::Row<'r>),
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_, '_> {
    /// The column at `idx` (from 0) as a `T`.
    pub fn get<I: ColumnIndex, T: FromValue>(&self, idx: I) -> Result<T> {
        let idx = idx.index();
        let column = |message: String| DbError::Column {
            column: idx,
            message,
        };
        match self {
            Row::Sqlite(r) => {
                use rusqlite::types::ValueRef;
                let cell = match r.get_ref(idx)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(i) => Cell::Int(i),
                    ValueRef::Real(f) => Cell::Real(f),
                    ValueRef::Text(t) => {
                        Cell::Text(std::str::from_utf8(t).map_err(|e| column(e.to_string()))?)
                    }
                    ValueRef::Blob(b) => Cell::Blob(b),
                };
                T::from_cell(cell).map_err(column)
            }
            Row::Postgres(r) => {
                let cell: PgCell<'_> = r.try_get(idx)?;
                T::from_cell(cell.0).map_err(column)
            }
        }
    }
}

/// The client's settings for `url`, the password from `PGPASSWORD` when the URL has none.
pub fn pg_config(url: &str) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse()?;
    if config.get_password().is_none() {
        if let Some(p) = std::env::var_os("PGPASSWORD") {
            config.password(p.as_encoded_bytes());
        }
    }
    // A database that does not answer is an error within seconds, not minutes; a link that
    // died without a word is found by TCP keepalives (about 25 s), so that a node that lost
    // its lease that way learns it (see `lease`), as the server does on its side.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config
        .keepalives(true)
        .keepalives_idle(std::time::Duration::from_secs(10))
        .keepalives_interval(std::time::Duration::from_secs(5))
        .keepalives_retries(3);
    Ok(config)
}

/// A PostgreSQL connection with its prepared statements.
///
/// The client is `tokio-postgres` on a runtime of its own (one thread for the process):
/// a call hands its work to that thread and waits for the answer. So the store's
/// synchronous calls work from anywhere (the writer's thread, `spawn_blocking`, or an async
/// handler holding a lock, as with SQLite), never starting a runtime inside another.
pub struct Pg {
    client: std::sync::Arc<tokio_postgres::Client>,
    statements: RefCell<HashMap<String, tokio_postgres::Statement>>,
}

/// The PostgreSQL clients' runtime.
fn pg_runtime() -> &'static tokio::runtime::Handle {
    static RT: std::sync::OnceLock<tokio::runtime::Handle> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the PostgreSQL clients");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("ioc-postgres".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("spawn the PostgreSQL clients' thread");
        handle
    })
}

/// Runs `f` on the clients' runtime and waits for it (blocking this thread).
fn on_pg<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    pg_runtime().spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv()
        .expect("the PostgreSQL clients' runtime runs for good")
}

impl Pg {
    fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        let client = self.client.clone();
        let text = placeholders(sql);
        on_pg(async move { client.prepare(&text).await }).map_err(|e| DbError::Statement {
            sql: sql.split_whitespace().collect::<Vec<_>>().join(" "),
            message: pg_message(&e),
        })
    }

    fn execute(&self, s: &tokio_postgres::Statement, params: Vec<PgParam>) -> Result<u64> {
        let (client, s) = (self.client.clone(), s.clone());
        Ok(on_pg(async move {
            client.execute(&s, &pg_refs(&params)).await
        })?)
    }

    fn query(
        &self,
        s: &tokio_postgres::Statement,
        params: Vec<PgParam>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        let (client, s) = (self.client.clone(), s.clone());
        Ok(on_pg(
            async move { client.query(&s, &pg_refs(&params)).await },
        )?)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        let (client, sql) = (self.client.clone(), sql.to_owned());
        Ok(on_pg(async move { client.batch_execute(&sql).await })?)
    }
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(Box<Pg>),
}

/// A connection to the store's database.
pub struct Db {
    inner: Inner,
    /// Open transactions: the outer one is `BEGIN`…`COMMIT`, inner ones are savepoints.
    depth: std::cell::Cell<u32>,
}

impl From<rusqlite::Connection> for Db {
    fn from(c: rusqlite::Connection) -> Db {
        Db {
            inner: Inner::Sqlite(c),
            depth: std::cell::Cell::new(0),
        }
    }
}

impl Db {
    /// A connection to PostgreSQL at `url` (`postgres://user@host:port/db`), without TLS:
    /// the database listens on the IOC's own network (loopback or a private link).
    /// The password, when the server asks for one, comes from `PGPASSWORD` (a URL is logged;
    /// the environment is not).
    pub fn postgres(url: &str) -> Result<Db> {
        let config = pg_config(url)?;
        let client = on_pg(async move {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!("PostgreSQL connection: {}", pg_message(&e));
                }
            });
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        Ok(Db {
            inner: Inner::Postgres(Box::new(Pg {
                client: std::sync::Arc::new(client),
                statements: RefCell::new(HashMap::new()),
            })),
            depth: std::cell::Cell::new(0),
        })
    }

    /// Whether the connection is gone for good (PostgreSQL: the server closed it or the link
    /// broke; it is not reopened). Asks nothing of the server. Always false on SQLite.
    pub fn is_closed(&self) -> bool {
        match &self.inner {
            Inner::Sqlite(_) => false,
            Inner::Postgres(pg) => pg.client.is_closed(),
        }
    }

    /// [`Db::is_closed`] to ask from another thread, while the connection is in use on its
    /// own (the writer's, for the lease it holds); true too once the connection is dropped.
    /// It does not keep the connection open (the lease ends when its holder drops it).
    pub fn closed_probe(&self) -> std::sync::Arc<dyn Fn() -> bool + Send + Sync> {
        match &self.inner {
            Inner::Sqlite(_) => std::sync::Arc::new(|| false),
            Inner::Postgres(pg) => {
                let client = std::sync::Arc::downgrade(&pg.client);
                std::sync::Arc::new(move || client.upgrade().is_none_or(|c| c.is_closed()))
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.inner {
            Inner::Sqlite(_) => Dialect::Sqlite,
            Inner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection underneath, for what only SQLite has (pragmas, the online
    /// backup); `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// The same, to change it (migrations).
    pub fn sqlite_mut(&mut self) -> Option<&mut rusqlite::Connection> {
        match &mut self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// A statement, prepared once per connection and kept.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Stmt::Sqlite(c.prepare_cached(sql)?)),
            Inner::Postgres(pg) => {
                if let Some(s) = pg.statements.borrow().get(sql) {
                    return Ok(Stmt::Postgres(pg, s.clone()));
                }
                let s = pg.prepare(sql)?;
                pg.statements.borrow_mut().insert(sql.to_owned(), s.clone());
                Ok(Stmt::Postgres(pg, s))
            }
        }
    }

    /// A statement prepared for this use only.
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(Stmt::SqliteOnce(c.prepare(sql)?)),
            Inner::Postgres(pg) => Ok(Stmt::Postgres(pg, pg.prepare(sql)?)),
        }
    }

    /// Runs one statement; the rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// The first row of a query, mapped by `f` ([`DbError::NoRows`] when there is none).
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// Statements separated by `;`, without parameters (a schema).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(pg) => pg.batch(sql),
        }
    }

    /// Starts a transaction that only reads: what its statements see is one snapshot. It
    /// takes no lock on SQLite (`DEFERRED`), so it never holds the writer up.
    pub fn read_transaction(&self) -> Result<Tx<'_>> {
        if self.depth.get() > 0 {
            return self.transaction();
        }
        self.execute_batch(match self.dialect() {
            Dialect::Sqlite => "BEGIN DEFERRED",
            Dialect::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        })?;
        self.depth.set(1);
        Ok(Tx {
            db: self,
            depth: 0,
            done: false,
        })
    }

    /// Starts a transaction (a savepoint inside one): committed by [`Tx::commit`], rolled
    /// back when dropped without. On SQLite it takes the write lock at once (`IMMEDIATE`), so
    /// what it reads stays true until it commits.
    pub fn transaction(&self) -> Result<Tx<'_>> {
        let depth = self.depth.get();
        if depth == 0 {
            self.execute_batch(match self.dialect() {
                Dialect::Sqlite => "BEGIN IMMEDIATE",
                Dialect::Postgres => "BEGIN",
            })?;
        } else {
            self.execute_batch(&format!("SAVEPOINT ioc_{depth}"))?;
        }
        self.depth.set(depth + 1);
        Ok(Tx {
            db: self,
            depth,
            done: false,
        })
    }
}

/// An open transaction; derefs to its connection.
pub struct Tx<'c> {
    db: &'c Db,
    depth: u32,
    done: bool,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.db.depth.set(self.depth);
        if self.depth == 0 {
            self.db.execute_batch("COMMIT")
        } else {
            self.db
                .execute_batch(&format!("RELEASE SAVEPOINT ioc_{}", self.depth))
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.db.depth.set(self.depth);
        let sql = if self.depth == 0 {
            "ROLLBACK".to_string()
        } else {
            format!(
                "ROLLBACK TO SAVEPOINT ioc_{d}; RELEASE SAVEPOINT ioc_{d}",
                d = self.depth
            )
        };
        if let Err(e) = self.db.execute_batch(&sql) {
            tracing::warn!("rolling back a transaction failed: {e}");
        }
    }
}

/// A prepared statement.
pub enum Stmt<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    SqliteOnce(rusqlite::Statement<'c>),
    Postgres(&'c Pg, tokio_postgres::Statement),
}

fn sqlite_params<'p>(params: &'p [&'p dyn ToValue]) -> impl rusqlite::Params + 'p {
    rusqlite::params_from_iter(params.iter().copied())
}

fn pg_params(params: &[&dyn ToValue]) -> Vec<PgParam> {
    params
        .iter()
        .map(|p| PgParam(Owned::of(p.value())))
        .collect()
}

fn pg_refs(ps: &[PgParam]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    ps.iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

impl<'c> Stmt<'c> {
    fn sqlite(&mut self) -> Option<&mut rusqlite::Statement<'c>> {
        match self {
            Stmt::Sqlite(s) => Some(s),
            Stmt::SqliteOnce(s) => Some(s),
            Stmt::Postgres(..) => None,
        }
    }

    /// Runs it; the rows it changed.
    pub fn execute(&mut self, params: impl Params) -> Result<usize> {
        params.with(|params| {
            if let Some(s) = self.sqlite() {
                return Ok(s.execute(sqlite_params(params))?);
            }
            let Stmt::Postgres(pg, s) = self else {
                unreachable!()
            };
            let n = pg.execute(s, pg_params(params))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    /// Every row, mapped by `f`, in order.
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row<'_, '_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        self.each(params, |r| {
            out.push(f(r));
            Ok(())
        })?;
        Ok(out.into_iter())
    }

    /// Calls `f` on each row in order, stopping at its first error (streams on SQLite).
    pub fn each(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        params.with(|params| {
            if let Some(s) = self.sqlite() {
                let mut rows = s.query(sqlite_params(params))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                return Ok(());
            }
            let Stmt::Postgres(pg, s) = self else {
                unreachable!()
            };
            let rows = pg.query(s, pg_params(params))?;
            for r in &rows {
                f(&Row::Postgres(r))?;
            }
            Ok(())
        })
    }

    /// The first row, mapped by `f` ([`DbError::NoRows`] when there is none).
    pub fn query_row<T>(
        &mut self,
        params: impl Params,
        f: impl FnOnce(&Row<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        params.with(|params| {
            if let Some(s) = self.sqlite() {
                let mut rows = s.query(sqlite_params(params))?;
                return match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(DbError::NoRows),
                };
            }
            let Stmt::Postgres(pg, s) = self else {
                unreachable!()
            };
            // A query of several rows gives its first, as on SQLite.
            let rows = pg.query(s, pg_params(params))?;
            match rows.first() {
                Some(r) => f(&Row::Postgres(r)),
                None => Err(DbError::NoRows),
            }
        })
    }

    /// The rows, one at a time (`while let Some(r) = rows.next()? { … }`): streamed from
    /// SQLite, fetched at once from PostgreSQL.
    pub fn query(&mut self, params: impl Params) -> Result<Rows<'_>> {
        params.with(|params| match self {
            Stmt::Sqlite(s) => Ok(Rows::Sqlite(s.query(sqlite_params(params))?)),
            Stmt::SqliteOnce(s) => Ok(Rows::Sqlite(s.query(sqlite_params(params))?)),
            Stmt::Postgres(pg, s) => {
                let rows = pg.query(s, pg_params(params))?;
                Ok(Rows::Postgres(rows.into_iter(), None))
            }
        })
    }

    /// Whether the query returns any row.
    pub fn exists(&mut self, params: impl Params) -> Result<bool> {
        self.query_row(params, |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }
}

/// Rows of [`Stmt::query`].
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres(
        std::vec::IntoIter<tokio_postgres::Row>,
        Option<tokio_postgres::Row>,
    ),
}

impl Rows<'_> {
    /// The next row, if any.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_, '_>>> {
        match self {
            Rows::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            Rows::Postgres(rest, current) => {
                *current = rest.next();
                Ok(current.as_ref().map(Row::Postgres))
            }
        }
    }
}

/// `?N` placeholders as PostgreSQL's `$N` (and a bare `?` as the next number), outside
/// string literals and quoted names.
pub fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 1;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_outside_quotes() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?2 AND c = ?1 AND d = '?3' AND \"e?\" = ?"),
            "SELECT a FROM t WHERE b = $2 AND c = $1 AND d = '?3' AND \"e?\" = $1"
        );
        assert_eq!(placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
    }

    /// The same statements, the same answers, on SQLite and on PostgreSQL.
    fn round_trip(db: &Db) {
        db.execute_batch(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, x DOUBLE PRECISION, on_ BOOLEAN,
                             data BYTEA)",
        )
        .or_else(|_| {
            db.execute_batch(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, x REAL, on_ INTEGER,
                                 data BLOB)",
            )
        })
        .unwrap();
        let tx = db.transaction().unwrap();
        let mut ins = tx
            .prepare_cached("INSERT INTO t (id, name, x, on_, data) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        assert_eq!(
            ins.execute(params![1i64, "một", 2i64, true, vec![0u8, 1, 2]])
                .unwrap(),
            1
        );
        ins.execute(params![2i64, None::<String>, 2.5, false, None::<Vec<u8>>])
            .unwrap();
        drop(ins);
        {
            // An inner transaction rolled back leaves the outer one's rows.
            let inner = tx.transaction().unwrap();
            inner
                .execute("INSERT INTO t (id) VALUES (?1)", params![3i64])
                .unwrap();
        }
        tx.commit().unwrap();
        type Read = (i64, Option<String>, f64, bool, Option<Vec<u8>>);
        let rows: Vec<Read> = db
            .prepare("SELECT id, name, x, on_, data FROM t ORDER BY id")
            .unwrap()
            .query_map(params![], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1usize)?,
                    r.get(2usize)?,
                    r.get(3usize)?,
                    r.get(4usize)?,
                ))
            })
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, Some("một".into()), 2.0, true, Some(vec![0, 1, 2])),
                (2, None, 2.5, false, None)
            ]
        );
        let none = db
            .query_row("SELECT id FROM t WHERE id = ?1", params![9i64], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .unwrap();
        assert_eq!(none, None);
        {
            let tx = db.transaction().unwrap();
            tx.execute("DELETE FROM t", params![]).unwrap();
        }
        let n: i64 = db
            .query_row("SELECT count(*) FROM t", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2, "a transaction dropped without commit is rolled back");
        let err = db
            .query_row("SELECT name FROM t WHERE id = 1", params![], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot be read as an integer"),
            "{err}"
        );
    }

    #[test]
    fn sqlite_round_trip() {
        round_trip(&Db::from(rusqlite::Connection::open_in_memory().unwrap()));
    }

    #[test]
    fn postgres_round_trip() {
        let Some(url) = crate::store::testing::database("db_round_trip") else {
            return;
        };
        let db = Db::postgres(&url).unwrap();
        assert_eq!(db.dialect(), Dialect::Postgres);
        round_trip(&db);
    }
}
