//! `[auth]` and `[auth.oidc]`: sessions and single sign-on.

use serde::Deserialize;
use std::time::Duration;

/// `[auth]`: sign-in.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session lasts this many hours (a 12-hour shift by default).
    pub session_hours: u32,
    /// Single sign-on through the province's OpenID Connect provider (`[auth.oidc]`).
    pub oidc: Option<OidcConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_hours: 12,
            oidc: None,
        }
    }
}

/// `[auth.oidc]`: the province's OpenID Connect provider. People sign in there
/// (authorization code with PKCE; the server exchanges the code and keeps the tokens), and
/// other systems call the API with its access tokens (`Authorization: Bearer` JWT). Roles
/// and unit scopes come from the tokens' claims, read again at every refresh.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer, e.g. `https://sso.nghean.gov.vn/realms/ioc` (its
    /// `/.well-known/openid-configuration` is read).
    pub issuer: String,
    pub client_id: String,
    /// For a confidential client; a public client uses PKCE only.
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Where the provider sends people back (default: this server's
    /// `/api/auth/oidc/callback` as the browser reached it).
    #[serde(default)]
    pub redirect_url: Option<String>,
    #[serde(default = "oidc_scopes")]
    pub scopes: Vec<String>,
    /// The `aud` of access tokens other systems send (default: the client id).
    #[serde(default)]
    pub audience: Option<String>,
    /// Where the role is in the claims: a dotted path (`ioc_role`, `realm_access.roles`);
    /// a string or a list (the first that maps to a role wins).
    #[serde(default = "oidc_role_claim")]
    pub role_claim: String,
    /// Where the unit scope is: a list of unit codes (or one, or comma-separated); absent
    /// or empty: the whole province.
    #[serde(default = "oidc_units_claim")]
    pub units_claim: String,
    #[serde(default = "oidc_username_claim")]
    pub username_claim: String,
    #[serde(default = "oidc_name_claim")]
    pub name_claim: String,
    /// The provider's role names to ours (`"IOC-Truc-Ban" = "operator"`); ours are taken
    /// as they are.
    #[serde(default)]
    pub role_map: std::collections::BTreeMap<String, String>,
    /// How often a signed-in person's tokens are refreshed and their claims read again: a
    /// role taken away at the provider stops working within this long.
    #[serde(default = "oidc_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// The sign-in button's words.
    #[serde(default = "oidc_label")]
    pub label: String,
    /// How far the provider's clock and ours may disagree when checking a token's times.
    #[serde(default = "oidc_skew", with = "humantime_serde")]
    pub clock_skew: Duration,
}

fn oidc_scopes() -> Vec<String> {
    ["openid", "profile", "offline_access"]
        .map(String::from)
        .to_vec()
}
fn oidc_role_claim() -> String {
    "ioc_role".into()
}
fn oidc_units_claim() -> String {
    "ioc_units".into()
}
fn oidc_username_claim() -> String {
    "preferred_username".into()
}
fn oidc_name_claim() -> String {
    "name".into()
}
fn oidc_refresh() -> Duration {
    Duration::from_secs(300)
}
fn oidc_skew() -> Duration {
    Duration::from_secs(30)
}
fn oidc_label() -> String {
    "Đăng nhập bằng tài khoản tỉnh (SSO)".into()
}
