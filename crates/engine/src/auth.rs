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
//! window in with a session that lives in memory only, for the person at that machine.

use crate::audit::{self, AuditEntry};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use ioc_model::{Role, UserInfo};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
}

/// Whether a role has a permission.
pub fn may(role: Role, p: Permission) -> bool {
    use Permission::*;
    match role {
        Role::Admin => true,
        Role::Supervisor => !matches!(p, ManageUsers | EditSources),
        Role::Operator => matches!(p, View | WorkAlerts | Close | Import),
        Role::Leader => matches!(p, View | Direct | Audit | EditKpis),
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
        self.info.units.is_empty() || unit.is_some_and(|u| self.info.units.iter().any(|x| x == u))
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
    #[error("not signed in, or the session has expired")]
    NoSession,
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
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
    conn: &mut Connection,
    u: &NewUser,
    actor: &str,
    now_ms: i64,
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
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    )?;
    tx.commit()?;
    Ok(info)
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserInfo> {
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
    conn: Mutex<Connection>,
    /// Set once an account exists (accounts are never deleted, only disabled).
    enabled: AtomicBool,
    /// Sessions of the desktop window, in memory only.
    local: Mutex<HashMap<String, Principal>>,
    session_ms: i64,
    path: PathBuf,
}

impl Auth {
    pub fn open(db: &Path, session_hours: u32) -> Result<Auth, AuthError> {
        let conn = crate::store::connect(db).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let auth = Auth {
            conn: Mutex::new(conn),
            enabled: AtomicBool::new(false),
            local: Mutex::new(HashMap::new()),
            session_ms: i64::from(session_hours.max(1)) * 3_600_000,
            path: db.to_owned(),
        };
        auth.sign_in_required();
        Ok(auth)
    }

    pub fn db_path(&self) -> &Path {
        &self.path
    }

    /// Whether any account exists (then every request needs a session).
    pub fn sign_in_required(&self) -> bool {
        if self.enabled.load(Ordering::Relaxed) {
            return true;
        }
        let conn = self.conn.lock().unwrap();
        let any = conn
            .query_row("SELECT EXISTS (SELECT 1 FROM users)", [], |r| {
                r.get::<_, bool>(0)
            })
            .unwrap_or(false);
        if any {
            self.enabled.store(true, Ordering::Relaxed);
        }
        any
    }

    /// Checks a password and opens a session; the token is given only here.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        now_ms: i64,
    ) -> Result<(String, UserInfo), AuthError> {
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
        let Some((info, stored, id)) = found else {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let dummy = DUMMY.get_or_init(|| hash_password("not a password").unwrap_or_default());
            let _ = check_password(password, dummy);
            return Err(AuthError::BadCredentials);
        };
        if !check_password(password, &stored) {
            return Err(AuthError::BadCredentials);
        }
        let token = new_token();
        let conn = self.conn.lock().unwrap();
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [now_ms])?;
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash(&token), id, now_ms, now_ms + self.session_ms],
        )?;
        Ok((token, info))
    }

    /// Ends a session.
    pub fn logout(&self, token: &str) -> Result<(), AuthError> {
        if self.local.lock().unwrap().remove(token).is_some() {
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
        let p = Principal {
            info: UserInfo {
                username: format!("desktop:{os_user}"),
                display_name: os_user.to_string(),
                role: Role::Admin,
                units: Vec::new(),
            },
        };
        self.local.lock().unwrap().insert(token.clone(), p);
        token
    }

    /// Every account.
    pub fn users(&self) -> Result<Vec<UserInfo>, AuthError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(
            "SELECT username, display_name, role, units FROM users WHERE disabled = 0 ORDER BY username",
        )?;
        let rows = stmt.query_map([], user_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Adds an account (the admin API).
    pub fn add_user(&self, u: &NewUser, actor: &str, now_ms: i64) -> Result<UserInfo, AuthError> {
        let mut conn = self.conn.lock().unwrap();
        let info = add_user(&mut conn, u, actor, now_ms)?;
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
            auth.login("lan", "wrong", 0),
            Err(AuthError::BadCredentials)
        ));
        assert!(matches!(
            auth.login("nobody", "mật-khẩu-đủ-dài", 0),
            Err(AuthError::BadCredentials)
        ));
        let (token, info) = auth.login("lan", "mật-khẩu-đủ-dài", 1_000).unwrap();
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
        let conn = crate::store::connect(auth.db_path()).unwrap();
        assert_eq!(audit::verify(&conn), Ok(1));
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
