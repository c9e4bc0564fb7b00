//! Users, roles, unit scopes and sign-in sessions.
//!
//! Accounts are local (argon2id password hashes). A role says what someone may do
//! ([`Permission`]); a unit scope (commune codes; empty = the whole province) says to what:
//! an OC's staff work their communes' alerts and nobody else's. Both are checked by the
//! server on every request, not only hidden in the UI.
//!
//! While no account exists the console is open (a fresh install, the demo); the first
//! account switches sign-in on. A session is a random token given once at sign-in; only its
//! SHA-256 is stored, and it expires after `session_hours`. The desktop app signs its own
//! window in with a session that lives in memory only, for the person at that machine: it
//! hands the window a one-time ticket, which the server turns into that session.
//!
//! Failed sign-ins are slowed down per account and per address ([`guard`]) and recorded in
//! the audit log. Tools on the same machine (`ioc import` into a running engine) use the
//! engine's admin key, which exists only in memory and in the owner-only `server.json`.

mod config;
pub mod guard;
pub mod oidc;

use crate::audit::{self, AuditEntry};
use crate::store::db::{params, Db, DbError, OptionalExtension, Result as DbResult, Row};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
pub use config::{AuthConfig, OidcConfig};
use ioc_model::{Role, UserInfo};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// What a role may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// See the map, alerts, dashboards.
    View,
    /// Acknowledge, comment, assign, start, shelve, resolve alerts (within the unit scope).
    WorkAlerts,
    /// Close resolved alerts.
    Close,
    /// Close resolved incidents (their after-action report becomes final).
    CloseIncidents,
    /// Import files.
    Import,
    /// Change rules, silences and SOP templates.
    EditRules,
    /// Add, change and remove data sources.
    EditSources,
    /// Issue directives to units.
    Direct,
    /// Define KPIs.
    EditKpis,
    /// Answer directives addressed to one's units.
    AnswerDirectives,
    /// Manage user accounts.
    ManageUsers,
    /// Read the audit log.
    Audit,
    /// See the data sources, their health and what they refused (dead letters).
    Sources,
    /// Open the video wall's windows on the desktop machine.
    OpenWall,
    /// Exchange the federation's operations and data (a node account).
    Sync,
}

impl Permission {
    pub const ALL: [Permission; 15] = [
        Permission::View,
        Permission::WorkAlerts,
        Permission::Close,
        Permission::CloseIncidents,
        Permission::Import,
        Permission::EditRules,
        Permission::EditSources,
        Permission::Direct,
        Permission::EditKpis,
        Permission::AnswerDirectives,
        Permission::ManageUsers,
        Permission::Audit,
        Permission::Sources,
        Permission::OpenWall,
        Permission::Sync,
    ];

    /// Its name in the API's description.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::View => "view",
            Permission::WorkAlerts => "work_alerts",
            Permission::Close => "close",
            Permission::CloseIncidents => "close_incidents",
            Permission::Import => "import",
            Permission::EditRules => "edit_rules",
            Permission::EditSources => "edit_sources",
            Permission::Direct => "direct",
            Permission::EditKpis => "edit_kpis",
            Permission::AnswerDirectives => "answer_directives",
            Permission::ManageUsers => "manage_users",
            Permission::Audit => "audit",
            Permission::Sources => "sources",
            Permission::OpenWall => "open_wall",
            Permission::Sync => "sync",
        }
    }
}

/// Whether a role has a permission.
pub fn may(role: Role, p: Permission) -> bool {
    use Permission::*;
    match role {
        // A person is never a node, and a node is nothing but one.
        Role::Admin => p != Sync,
        Role::Node => p == Sync,
        Role::Supervisor => !matches!(p, ManageUsers | EditSources | Sync),
        Role::Operator => matches!(p, View | WorkAlerts | Close | Import | Sources | OpenWall),
        Role::Leader => matches!(p, View | Direct | Audit | EditKpis | OpenWall),
        Role::OcStaff => matches!(p, View | WorkAlerts | AnswerDirectives),
    }
}

/// Someone signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub info: UserInfo,
}

impl Principal {
    /// The actor name recorded in timelines and the audit log.
    pub fn actor(&self) -> String {
        self.info.username.clone()
    }

    pub fn may(&self, p: Permission) -> bool {
        may(self.info.role, p)
    }

    /// This person as the operations books see them (role and units).
    pub fn as_actor(&self) -> crate::operate::Actor {
        crate::operate::Actor {
            name: self.actor(),
            role: self.info.role,
            units: self.info.units.clone(),
        }
    }

    /// Whether something in `unit` is within this person's scope.
    pub fn in_scope(&self, unit: Option<&str>) -> bool {
        self.scope().allows(unit)
    }

    /// What this person may read (see [`crate::scope`]).
    pub fn scope(&self) -> crate::scope::Scope {
        crate::scope::Scope::of(&self.info.units)
    }

    /// The whole-province administrator the console acts as while sign-in is off.
    pub fn open_console() -> Principal {
        Principal {
            info: UserInfo {
                username: "operator".into(),
                display_name: "Operator".into(),
                role: Role::Admin,
                units: Vec::new(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("too many failed sign-ins (by {by}): try again in {wait_s} s")]
    Locked { by: &'static str, wait_s: i64 },
    #[error("not signed in, or the session has expired")]
    NoSession,
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Db(#[from] DbError),
}

/// The SHA-256 of a token, as stored.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Invalid(e.to_string()))
}

fn check_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub units: Vec<String>,
    pub password: String,
}

/// Adds a node account (`ioc node add`): another console of the federation, which may
/// exchange operations and data for `units` (empty: the whole province). Its token is
/// returned, once; it does not expire (disabling the account revokes it). The account has no
/// usable password: a node never signs in as a person.
pub fn add_node(
    conn: &Db,
    name: &str,
    units: &[String],
    actor: &str,
    now_ms: i64,
    key: Option<&crate::audit::AuditKey>,
) -> Result<String, AuthError> {
    if !crate::sync::config::valid_node_name(name) || name.len() < 2 {
        return Err(AuthError::Invalid(format!(
            "node name {name:?}: 2 to 64 lowercase letters, digits or '-'"
        )));
    }
    add_user(
        conn,
        &NewUser {
            username: name.to_string(),
            display_name: Some(format!("node {name}")),
            role: Role::Node,
            units: units.to_vec(),
            password: new_token(),
        },
        actor,
        now_ms,
        key,
    )?;
    let id: i64 = conn.query_row("SELECT id FROM users WHERE username = ?1", [name], |r| {
        r.get(0)
    })?;
    let token = format!("ioc-node.{}", new_token());
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash(&token), id, now_ms, i64::MAX],
    )?;
    Ok(token)
}

/// Checks a user name: letters, digits, `.`, `_`, `-`, 2 to 64 of them.
pub fn valid_username(name: &str) -> bool {
    (2..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Adds an account on an open database (the `ioc user add` command and the admin API),
/// recording it in the audit log in the same transaction.
pub fn add_user(
    conn: &Db,
    u: &NewUser,
    actor: &str,
    now_ms: i64,
    key: Option<&crate::audit::AuditKey>,
) -> Result<UserInfo, AuthError> {
    if !valid_username(&u.username) {
        return Err(AuthError::Invalid(format!(
            "user name {:?}: 2 to 64 letters, digits, '.', '_' or '-'",
            u.username
        )));
    }
    if u.password.chars().count() < 8 {
        return Err(AuthError::Invalid(
            "the password needs at least 8 characters".into(),
        ));
    }
    let hash = hash_password(&u.password)?;
    let info = UserInfo {
        username: u.username.clone(),
        display_name: u.display_name.clone().unwrap_or_else(|| u.username.clone()),
        role: u.role,
        units: u.units.clone(),
    };
    let tx = conn.transaction()?;
    let exists: bool = tx
        .query_row(
            "SELECT 1 FROM users WHERE username = ?1",
            [&u.username],
            |_| Ok(true),
        )
        .optional()?
        .unwrap_or(false);
    if exists {
        return Err(AuthError::Invalid(format!(
            "user {:?} already exists",
            u.username
        )));
    }
    tx.execute(
        "INSERT INTO users (username, display_name, role, units, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            info.username,
            info.display_name,
            info.role.as_str(),
            serde_json::to_string(&info.units).unwrap_or_else(|_| "[]".into()),
            hash,
            now_ms
        ],
    )?;
    audit::append(
        &tx,
        &[AuditEntry {
            at: now_ms,
            actor: actor.to_string(),
            action: "user.add".into(),
            target: format!("user:{}", info.username),
            before: None,
            after: serde_json::to_value(&info).ok(),
        }],
        key,
    )?;
    tx.commit()?;
    Ok(info)
}

fn user_row(r: &Row<'_, '_>) -> DbResult<UserInfo> {
    let role: String = r.get(2)?;
    let units: String = r.get(3)?;
    Ok(UserInfo {
        username: r.get(0)?,
        display_name: r.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::OcStaff),
        units: serde_json::from_str(&units).unwrap_or_default(),
    })
}

/// Accounts and sessions of one data folder.
pub struct Auth {
    conn: Mutex<Db>,
    /// Set once an account exists (accounts are never deleted, only disabled).
    enabled: AtomicBool,
    /// Sessions of the desktop window, in memory only.
    local: Mutex<HashMap<String, Principal>>,
    /// One-time tickets the desktop app puts in its windows' first address, each for a
    /// local session, with when it stops being valid.
    tickets: Mutex<HashMap<String, (Principal, i64)>>,
    /// The key of tools on this machine (`ioc import`), as its SHA-256.
    admin_key_hash: String,
    admin_key: String,
    guard: guard::LoginGuard,
    /// The audit chain's key, when it is keyed.
    audit_key: Option<std::sync::Arc<crate::audit::AuditKey>>,
    /// The province's sign-in provider, when configured.
    oidc: Option<std::sync::Arc<oidc::Oidc>>,
    /// Sessions of people signed in through the provider (in memory: after a restart they
    /// sign in again, which the provider's own session makes a redirect and back).
    sso: Mutex<HashMap<String, SsoSession>>,
    session_ms: i64,
    at: crate::store::Location,
}

/// How long a desktop window's ticket is valid: it is used at once, by the window.
const TICKET_MS: i64 = 60_000;

/// Someone signed in through the provider.
#[derive(Debug, Clone)]
pub struct SsoSession {
    pub principal: Principal,
    pub refresh_token: Option<String>,
    /// When the claims are read again.
    pub refresh_at_ms: i64,
    /// When the session ends whatever happens.
    pub expires_ms: i64,
}

impl Auth {
    pub fn open(
        db: impl Into<crate::store::Location>,
        session_hours: u32,
    ) -> Result<Auth, AuthError> {
        Auth::open_keyed(db, session_hours, None)
    }

    /// Like [`Auth::open`], appending to a keyed audit chain.
    pub fn open_keyed(
        db: impl Into<crate::store::Location>,
        session_hours: u32,
        audit_key: Option<std::sync::Arc<crate::audit::AuditKey>>,
    ) -> Result<Auth, AuthError> {
        let at: crate::store::Location = db.into();
        let conn = crate::store::connect(&at).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let admin_key = new_token();
        let auth = Auth {
            conn: Mutex::new(conn),
            enabled: AtomicBool::new(false),
            local: Mutex::new(HashMap::new()),
            tickets: Mutex::new(HashMap::new()),
            admin_key_hash: token_hash(&admin_key),
            admin_key,
            guard: guard::LoginGuard::default(),
            audit_key,
            oidc: None,
            sso: Mutex::new(HashMap::new()),
            session_ms: i64::from(session_hours.max(1)) * 3_600_000,
            at,
        };
        auth.sign_in_required();
        Ok(auth)
    }

    /// Where its accounts are kept (the store's database).
    pub fn store(&self) -> &crate::store::Location {
        &self.at
    }

    /// Adds the province's sign-in provider (`[auth.oidc]`).
    pub fn with_oidc(mut self, oidc: std::sync::Arc<oidc::Oidc>) -> Auth {
        self.oidc = Some(oidc);
        self
    }

    pub fn oidc(&self) -> Option<&std::sync::Arc<oidc::Oidc>> {
        self.oidc.as_ref()
    }

    /// A session for someone the provider signed in; its token.
    pub fn sso_session(&self, s: &oidc::Signed, now_ms: i64) -> String {
        let token = new_token();
        let refresh_ms = self
            .oidc
            .as_ref()
            .map(|o| o.config().refresh.as_millis() as i64)
            .unwrap_or(300_000);
        let session = SsoSession {
            principal: s.principal.clone(),
            refresh_token: s.refresh_token.clone(),
            refresh_at_ms: now_ms + refresh_ms,
            expires_ms: now_ms + self.session_ms,
        };
        self.sso.lock().unwrap().insert(token.clone(), session);
        token
    }

    /// Sessions whose claims are due to be read again: token and refresh token.
    pub fn sso_due(&self, now_ms: i64) -> Vec<(String, Option<String>)> {
        let mut m = self.sso.lock().unwrap();
        m.retain(|_, s| s.expires_ms > now_ms);
        m.iter()
            .filter(|(_, s)| s.refresh_at_ms <= now_ms)
            .map(|(t, s)| (t.clone(), s.refresh_token.clone()))
            .collect()
    }

    /// What a refresh found: the person as the provider sees them now, or `None` when the
    /// provider refused (the session ends).
    pub fn sso_refreshed(&self, token: &str, r: Option<&oidc::Signed>, now_ms: i64) {
        let refresh_ms = self
            .oidc
            .as_ref()
            .map(|o| o.config().refresh.as_millis() as i64)
            .unwrap_or(300_000);
        let mut m = self.sso.lock().unwrap();
        match r {
            None => {
                m.remove(token);
            }
            Some(s) => {
                if let Some(cur) = m.get_mut(token) {
                    cur.principal = s.principal.clone();
                    cur.refresh_token = s.refresh_token.clone();
                    cur.refresh_at_ms = now_ms + refresh_ms;
                }
            }
        }
    }

    /// The provider cannot be reached: try again a little later, keep the session.
    pub fn sso_retry_later(&self, token: &str, now_ms: i64) {
        if let Some(s) = self.sso.lock().unwrap().get_mut(token) {
            s.refresh_at_ms = now_ms + 30_000;
        }
    }

    /// Whether any account exists or sign-in is through the provider (then every request
    /// needs a session).
    pub fn sign_in_required(&self) -> bool {
        if self.oidc.is_some() || self.enabled.load(Ordering::Relaxed) {
            return true;
        }
        let conn = self.conn.lock().unwrap();
        let any = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM users)", params![], |r| {
                r.get::<_, bool>(0)
            })
            .unwrap_or(false);
        if any {
            self.enabled.store(true, Ordering::Relaxed);
        }
        any
    }

    /// Checks a password and opens a session; the token is given only here. `address`
    /// is where the request came from, for the per-address count of failures.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        now_ms: i64,
        address: Option<IpAddr>,
    ) -> Result<(String, UserInfo), AuthError> {
        if let Err(l) = self.guard.check(username, address, now_ms) {
            self.record_failure(username, address, now_ms, Some(l.by), "locked");
            return Err(AuthError::Locked {
                by: l.by,
                wait_s: ((l.until_ms - now_ms) / 1000).max(1),
            });
        }
        let found = {
            let conn = self.conn.lock().unwrap();
            conn.query_row(
                "SELECT username, display_name, role, units, password_hash, id FROM users
                 WHERE username = ?1 AND disabled = 0",
                [username],
                |r| Ok((user_row(r)?, r.get::<_, String>(4)?, r.get::<_, i64>(5)?)),
            )
            .optional()?
        };
        // Hash even for an unknown name, so that timing does not tell which names exist.
        let ok = match &found {
            Some((_, stored, _)) => check_password(password, stored),
            None => {
                static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
                let dummy =
                    DUMMY.get_or_init(|| hash_password("not a password").unwrap_or_default());
                let _ = check_password(password, dummy);
                false
            }
        };
        // A node account has no password anyone knows; it never signs in as a person.
        let Some((info, _, id)) = found.filter(|(i, _, _)| ok && i.role != Role::Node) else {
            let o = self.guard.failed(username, address, now_ms);
            let locked = if o.account_locked {
                Some("account")
            } else if o.address_locked {
                Some("address")
            } else {
                None
            };
            self.record_failure(username, address, now_ms, locked, "wrong password");
            return Err(AuthError::BadCredentials);
        };
        self.guard.succeeded(username);
        let token = new_token();
        let conn = self.conn.lock().unwrap();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_ms])?;
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash(&token), id, now_ms, now_ms + self.session_ms],
        )?;
        Ok((token, info))
    }

    /// A refused sign-in in the audit log: the name tried (never the password), from where,
    /// and whether it locked the account or the address.
    fn record_failure(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now_ms: i64,
        locked: Option<&str>,
        reason: &str,
    ) {
        let name: String = username.chars().take(64).collect();
        let entry = AuditEntry {
            at: now_ms,
            actor: format!(
                "address:{}",
                address.map(|a| a.to_string()).unwrap_or_default()
            ),
            action: if locked.is_some() {
                "login.locked".into()
            } else {
                "login.failed".into()
            },
            target: format!("user:{name}"),
            before: None,
            after: Some(serde_json::json!({ "reason": reason, "locked": locked })),
        };
        let conn = self.conn.lock().unwrap();
        let r = conn.transaction().and_then(|tx| {
            audit::append(&tx, &[entry], self.audit_key.as_deref())?;
            tx.commit()
        });
        if let Err(e) = r {
            tracing::error!("cannot record a failed sign-in in the audit log: {e}");
        }
    }

    /// The key of tools on this machine, written to the owner-only `server.json`.
    pub fn admin_key(&self) -> &str {
        &self.admin_key
    }

    /// The administrator a tool on this machine acts as, if `key` is the admin key.
    pub fn admin(&self, key: &str) -> Option<Principal> {
        use subtle::ConstantTimeEq;
        let ok: bool = token_hash(key)
            .as_bytes()
            .ct_eq(self.admin_key_hash.as_bytes())
            .into();
        ok.then(|| Principal {
            info: UserInfo {
                username: "local:ioc".into(),
                display_name: "ioc (this machine)".into(),
                role: Role::Admin,
                units: Vec::new(),
            },
        })
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) -> Result<(), AuthError> {
        if self.local.lock().unwrap().remove(token).is_some()
            || self.sso.lock().unwrap().remove(token).is_some()
        {
            return Ok(());
        }
        let conn = self.conn.lock().unwrap();
        conn.execute(
            "DELETE FROM sessions WHERE token_hash = ?1",
            [token_hash(token)],
        )?;
        Ok(())
    }

    /// Who a token belongs to.
    pub fn session(&self, token: &str, now_ms: i64) -> Result<Principal, AuthError> {
        if let Some(p) = self.local.lock().unwrap().get(token) {
            return Ok(p.clone());
        }
        if let Some(s) = self.sso.lock().unwrap().get(token) {
            if s.expires_ms > now_ms {
                return Ok(s.principal.clone());
            }
        }
        let conn = self.conn.lock().unwrap();
        conn.query_row(
            "SELECT u.username, u.display_name, u.role, u.units FROM sessions s
             JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND u.disabled = 0",
            params![token_hash(token), now_ms],
            user_row,
        )
        .optional()?
        .map(|info| Principal { info })
        .ok_or(AuthError::NoSession)
    }

    /// A session for the desktop window, for the person signed in to that computer.
    pub fn local_session(&self, os_user: &str) -> String {
        let token = new_token();
        self.local
            .lock()
            .unwrap()
            .insert(token.clone(), Self::desktop_user(os_user));
        token
    }

    fn desktop_user(os_user: &str) -> Principal {
        Principal {
            info: UserInfo {
                username: format!("desktop:{os_user}"),
                display_name: os_user.to_string(),
                role: Role::Admin,
                units: Vec::new(),
            },
        }
    }

    /// A one-time ticket for a desktop window's first address: the server exchanges it for
    /// a local session kept in a cookie, so no token ever sits where a script can read it.
    pub fn desktop_ticket(&self, os_user: &str, now_ms: i64) -> String {
        let ticket = new_token();
        let mut t = self.tickets.lock().unwrap();
        t.retain(|_, (_, until)| *until > now_ms);
        t.insert(
            ticket.clone(),
            (Self::desktop_user(os_user), now_ms + TICKET_MS),
        );
        ticket
    }

    /// Uses up a ticket: the token of the new local session.
    pub fn redeem_ticket(&self, ticket: &str, now_ms: i64) -> Option<String> {
        let (p, until) = self.tickets.lock().unwrap().remove(ticket)?;
        (until > now_ms).then(|| {
            let token = new_token();
            self.local.lock().unwrap().insert(token.clone(), p);
            token
        })
    }

    /// Every account.
    pub fn users(&self) -> Result<Vec<UserInfo>, AuthError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(
            "SELECT username, display_name, role, units FROM users WHERE disabled = 0 ORDER BY username",
        )?;
        let rows = stmt
            .query_map(params![], user_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Adds an account (the admin API).
    pub fn add_user(&self, u: &NewUser, actor: &str, now_ms: i64) -> Result<UserInfo, AuthError> {
        let conn = self.conn.lock().unwrap();
        let info = add_user(&conn, u, actor, now_ms, self.audit_key.as_deref())?;
        self.enabled.store(true, Ordering::Relaxed);
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open(dir.path()).unwrap();
        let auth = Auth::open(&db, 12).unwrap();
        (dir, auth)
    }

    fn user(name: &str, role: Role, units: &[&str]) -> NewUser {
        NewUser {
            username: name.into(),
            display_name: None,
            role,
            units: units.iter().map(|s| s.to_string()).collect(),
            password: "mật-khẩu-đủ-dài".into(),
        }
    }

    #[test]
    fn sign_in_turns_on_with_the_first_account() {
        let (_d, auth) = setup();
        assert!(!auth.sign_in_required());
        auth.add_user(&user("lan", Role::Operator, &[]), "system", 0)
            .unwrap();
        assert!(auth.sign_in_required());
        assert!(matches!(
            auth.login("lan", "wrong", 0, None),
            Err(AuthError::BadCredentials)
        ));
        assert!(matches!(
            auth.login("nobody", "mật-khẩu-đủ-dài", 0, None),
            Err(AuthError::BadCredentials)
        ));
        let (token, info) = auth.login("lan", "mật-khẩu-đủ-dài", 1_000, None).unwrap();
        assert_eq!(info.role, Role::Operator);
        assert_eq!(auth.session(&token, 2_000).unwrap().info.username, "lan");
        // Expired after 12 hours.
        assert!(auth.session(&token, 1_000 + 12 * 3_600_000 + 1).is_err());
        auth.logout(&token).unwrap();
        assert!(auth.session(&token, 2_000).is_err());
        assert!(auth.session("forged", 2_000).is_err());
    }

    #[test]
    fn accounts_are_checked_and_audited() {
        let (_d, auth) = setup();
        assert!(auth
            .add_user(&user("x", Role::Operator, &[]), "t", 0)
            .is_err());
        let mut short = user("minh", Role::Operator, &[]);
        short.password = "short".into();
        assert!(auth.add_user(&short, "t", 0).is_err());
        auth.add_user(&user("minh", Role::OcStaff, &["16681"]), "t", 0)
            .unwrap();
        assert!(auth
            .add_user(&user("minh", Role::OcStaff, &[]), "t", 0)
            .is_err());
        let conn = crate::store::connect(auth.store()).unwrap();
        assert_eq!(audit::verify(&conn), Ok(1));
    }

    #[test]
    fn failed_sign_ins_are_slowed_down_and_audited() {
        let (_d, auth) = setup();
        auth.add_user(&user("lan", Role::Operator, &[]), "t", 0)
            .unwrap();
        let from = Some("192.0.2.9".parse().unwrap());
        for i in 0..5 {
            assert!(matches!(
                auth.login("lan", "sai-mật-khẩu", i, from),
                Err(AuthError::BadCredentials)
            ));
        }
        // The sixth failure locks the account: even the right password waits.
        assert!(auth.login("lan", "sai-mật-khẩu", 10, from).is_err());
        assert!(matches!(
            auth.login("lan", "mật-khẩu-đủ-dài", 20, from),
            Err(AuthError::Locked { by: "account", .. })
        ));
        assert!(auth.login("lan", "mật-khẩu-đủ-dài", 31_000, from).is_ok());
        let conn = crate::store::connect(auth.store()).unwrap();
        let rows = audit::recent(&conn, Some("user:lan"), 100).unwrap();
        let failed = rows
            .iter()
            .filter(|r| r.entry.action == "login.failed")
            .count();
        let locked = rows
            .iter()
            .filter(|r| r.entry.action == "login.locked")
            .count();
        assert_eq!((failed, locked), (5, 2), "{rows:#?}");
        let logins: Vec<_> = rows
            .iter()
            .filter(|r| r.entry.action.starts_with("login."))
            .collect();
        assert_eq!(logins.len(), 7);
        assert!(logins.iter().all(|r| r.entry.actor == "address:192.0.2.9"
            && !r.entry.after.as_ref().unwrap().to_string().contains("sai")));
        assert_eq!(audit::verify(&conn), Ok(8));
    }

    #[test]
    fn tickets_and_the_admin_key() {
        let (_d, auth) = setup();
        let t = auth.desktop_ticket("lan", 0);
        assert!(auth.redeem_ticket("forged", 1).is_none());
        let token = auth.redeem_ticket(&t, 1).unwrap();
        assert_eq!(
            auth.session(&token, 2).unwrap().info.username,
            "desktop:lan"
        );
        assert!(auth.redeem_ticket(&t, 2).is_none(), "a ticket is used once");
        let late = auth.desktop_ticket("lan", 0);
        assert!(auth.redeem_ticket(&late, TICKET_MS + 1).is_none());
        assert!(auth.admin(auth.admin_key()).is_some());
        assert!(auth.admin("0000").is_none());
    }

    #[test]
    fn roles_and_scopes() {
        let p = Principal {
            info: UserInfo {
                username: "oc".into(),
                display_name: "oc".into(),
                role: Role::OcStaff,
                units: vec!["16681".into()],
            },
        };
        assert!(p.may(Permission::WorkAlerts));
        assert!(!p.may(Permission::Close));
        assert!(!p.may(Permission::EditRules));
        assert!(p.in_scope(Some("16681")));
        assert!(!p.in_scope(Some("16684")));
        assert!(!p.in_scope(None));
        assert!(!may(Role::Leader, Permission::WorkAlerts));
        assert!(may(Role::Leader, Permission::Direct));
        assert!(!may(Role::Supervisor, Permission::ManageUsers));
        assert!(may(Role::Admin, Permission::ManageUsers));
    }
}
