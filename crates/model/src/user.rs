//! People: roles, unit scopes, sign-in.

use serde::{Deserialize, Serialize};

/// What someone does in the IOC; the server decides what each role may do.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Works the alert queue at a control-room workstation.
    Operator,
    /// Leads a shift: closes incidents, edits rules and SOPs, issues directives.
    Supervisor,
    /// Watches KPIs and issues directives.
    Leader,
    /// Everything, including accounts and data sources.
    Admin,
    /// Staff of a local operations centre: their units' alerts and directives.
    OcStaff,
    /// Not a person: another console of the federation (a commune OC, a workstation) that
    /// exchanges operations and data with this one for its units (`ioc node add`).
    Node,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Operator,
        Role::Supervisor,
        Role::Leader,
        Role::Admin,
        Role::OcStaff,
        Role::Node,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Leader => "leader",
            Role::Admin => "admin",
            Role::OcStaff => "oc_staff",
            Role::Node => "node",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// An account as others see it (never its password).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserInfo {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// Codes of the units (communes) this person works on; empty: the whole province.
    #[serde(default)]
    pub units: Vec<String>,
}

/// `POST /api/login`.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// The answer to a good `POST /api/login` (the session itself is in an `HttpOnly` cookie).
#[derive(Serialize, Deserialize, Clone, Debug)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LoginResponse {
    /// The session token, only when the request asked for it (`"token": true`): for a
    /// program that sends `Authorization: Bearer`. The UI never asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub user: UserInfo,
}

/// `GET /api/me`: who is signed in, and whether sign-in is on at all.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Me {
    pub user: UserInfo,
    pub sign_in_required: bool,
}

/// How one may sign in (`GET /api/auth/providers`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuthProviders {
    /// Local accounts (user name and password).
    pub local: bool,
    /// Whether any sign-in is needed at all (no: the open console of a fresh install).
    pub sign_in_required: bool,
    /// The province's single sign-on, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso: Option<SsoInfo>,
    /// On a workstation: the provincial IOC one signs in to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// In the desktop app: the server can be chosen here (`POST /api/desktop/upstream`).
    #[serde(default)]
    pub desktop: bool,
}

/// The single sign-on button.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SsoInfo {
    pub label: String,
    /// Where the button goes (add `?next=/path` to come back there).
    pub login: String,
}
