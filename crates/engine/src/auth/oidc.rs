//! Single sign-on through the province's OpenID Connect provider, as the architecture
//! decision asks (an access token and the user's identity).
//!
//! - **People** sign in at the provider with the authorization code flow and PKCE. The
//!   server does the exchange and keeps the tokens (a "backend for frontend"): the browser
//!   and the desktop window only ever hold the console's own `HttpOnly` session cookie.
//! - **Other systems** of the province call the API with the provider's access tokens
//!   (`Authorization: Bearer` JWT), checked against the provider's signing keys: issuer,
//!   audience, expiry, signature.
//! - **Roles and unit scopes** come from claims at configurable paths, and are read again
//!   at every refresh: a role taken away at the provider stops working within
//!   `[auth.oidc] refresh`.
//! - **Offline**: the provider's description and signing keys are cached in the data
//!   folder, so a commune OC cut off from the provincial network keeps accepting tokens
//!   until they expire. Local accounts remain as break-glass.

use super::OidcConfig;
use super::Principal;
use ioc_model::{Role, UserInfo};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the sign-in provider cannot be reached and nothing of it is cached: {0}")]
    Unreachable(String),
    #[error("the sign-in provider refused: {0}")]
    Refused(String),
    #[error("this sign-in link is unknown or too old: start again")]
    UnknownState,
    #[error("token refused: {0}")]
    BadToken(String),
    #[error("{0}")]
    NoRole(String),
}

/// The provider as last seen: its description and signing keys.
#[derive(Clone)]
struct Provider {
    meta: CoreProviderMetadata,
    jwks: jsonwebtoken::jwk::JwkSet,
    fetched: Instant,
}

/// A sign-in on its way through the provider.
struct Pending {
    nonce: Nonce,
    verifier: String,
    redirect: String,
    next: String,
    until: Instant,
}

/// What a sign-in or a refresh gives.
#[derive(Debug, Clone)]
pub struct Signed {
    pub principal: Principal,
    pub refresh_token: Option<String>,
    /// When the provider's tokens run out (milliseconds since the epoch).
    pub expires_ms: Option<i64>,
    /// Where the person was going.
    pub next: String,
}

pub struct Oidc {
    cfg: OidcConfig,
    http: reqwest::Client,
    cache: PathBuf,
    provider: tokio::sync::Mutex<Option<Provider>>,
    pending: Mutex<HashMap<String, Pending>>,
}

/// A sign-in must come back from the provider within this long.
const PENDING: Duration = Duration::from_secs(600);
/// The keys are fetched again for an unknown key id at most this often (a stream of
/// tokens with made-up key ids must not become a stream of requests to the provider).
const REFETCH: Duration = Duration::from_secs(5);

/// The value at a dotted path (`realm_access.roles`).
pub fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(claims, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

impl Oidc {
    pub fn new(cfg: OidcConfig, data_dir: &std::path::Path) -> Oidc {
        let http = reqwest::Client::builder()
            // Following redirects would open the client to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        Oidc {
            cfg,
            http,
            cache: data_dir.join("oidc"),
            provider: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.cfg
    }

    /// Reads the provider's description and keys (and caches them on disk); falls back to
    /// the cache when the provider cannot be reached.
    async fn fetch(&self) -> Result<Provider, OidcError> {
        let issuer = IssuerUrl::new(self.cfg.issuer.clone())
            .map_err(|e| OidcError::Unreachable(format!("issuer {:?}: {e}", self.cfg.issuer)))?;
        match CoreProviderMetadata::discover_async(issuer, &self.http).await {
            Ok(meta) => {
                let jwks_json = serde_json::to_string(meta.jwks())
                    .map_err(|e| OidcError::Unreachable(e.to_string()))?;
                let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks_json)
                    .map_err(|e| OidcError::Unreachable(format!("signing keys: {e}")))?;
                let _ = std::fs::create_dir_all(&self.cache);
                crate::store::owner_only(&self.cache, true);
                let meta_json = serde_json::to_string(&meta).unwrap_or_default();
                for (name, text) in [("provider.json", &meta_json), ("jwks.json", &jwks_json)] {
                    if let Err(e) = std::fs::write(self.cache.join(name), text) {
                        tracing::warn!("cannot cache the sign-in provider's {name}: {e}");
                    }
                }
                Ok(Provider {
                    meta,
                    jwks,
                    fetched: Instant::now(),
                })
            }
            Err(e) => {
                let reason = format!("{e}");
                let read = |name: &str| std::fs::read_to_string(self.cache.join(name)).ok();
                let (Some(meta), Some(jwks_json)) = (read("provider.json"), read("jwks.json"))
                else {
                    return Err(OidcError::Unreachable(reason));
                };
                let meta: CoreProviderMetadata = serde_json::from_str(&meta)
                    .map_err(|e| OidcError::Unreachable(format!("cached description: {e}")))?;
                let keys = serde_json::from_str(&jwks_json)
                    .map_err(|e| OidcError::Unreachable(format!("cached keys: {e}")))?;
                let jwks = serde_json::from_str(&jwks_json)
                    .map_err(|e| OidcError::Unreachable(format!("cached keys: {e}")))?;
                tracing::warn!(
                    "the sign-in provider cannot be reached ({reason}); using its cached keys"
                );
                Ok(Provider {
                    meta: meta.set_jwks(keys),
                    jwks,
                    fetched: Instant::now(),
                })
            }
        }
    }

    /// The provider, fetched once (or again when `stale_kid` names a key it does not have
    /// and the last fetch is old enough: keys were rotated).
    async fn provider(&self, stale_kid: Option<&str>) -> Result<Provider, OidcError> {
        let mut p = self.provider.lock().await;
        let refetch = match (&*p, stale_kid) {
            (None, _) => true,
            (Some(cur), Some(kid)) => {
                cur.jwks.find(kid).is_none() && cur.fetched.elapsed() > REFETCH
            }
            _ => false,
        };
        if refetch {
            match self.fetch().await {
                Ok(new) => *p = Some(new),
                Err(e) if p.is_none() => return Err(e),
                Err(e) => tracing::warn!("keeping the sign-in provider's known keys: {e}"),
            }
        }
        Ok(p.clone().expect("fetched"))
    }

    fn client(
        &self,
        meta: CoreProviderMetadata,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let redirect = RedirectUrl::new(redirect.to_string())
            .map_err(|e| OidcError::Refused(format!("redirect address: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.cfg.client_id.clone()),
            self.cfg.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send someone to sign in; `redirect`: our callback as they reach us,
    /// `next`: where to go afterwards.
    pub async fn begin(&self, redirect: &str, next: &str) -> Result<String, OidcError> {
        let redirect = self
            .cfg
            .redirect_url
            .clone()
            .unwrap_or(redirect.to_string());
        let p = self.provider(None).await?;
        let client = self.client(p.meta, &redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.cfg.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if self.cfg.scopes.iter().any(|s| s == "offline_access") {
            // Refresh tokens need consent for offline access at most providers.
            req = req.add_prompt(openidconnect::core::CoreAuthPrompt::Consent);
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        let mut pending = self.pending.lock().unwrap();
        let now = Instant::now();
        pending.retain(|_, p| p.until > now);
        if pending.len() > 10_000 {
            return Err(OidcError::Refused("too many sign-ins under way".into()));
        }
        pending.insert(
            state.secret().clone(),
            Pending {
                nonce,
                verifier: verifier.secret().clone(),
                redirect,
                next: next.to_string(),
                until: now + PENDING,
            },
        );
        Ok(url.to_string())
    }

    /// The provider sent someone back with `code` for `state`: exchange it, check the ID
    /// token, read who they are.
    pub async fn finish(&self, state: &str, code: &str) -> Result<Signed, OidcError> {
        let pending = self
            .pending
            .lock()
            .unwrap()
            .remove(state)
            .filter(|p| p.until > Instant::now())
            .ok_or(OidcError::UnknownState)?;
        let p = self.provider(None).await?;
        let client = self.client(p.meta.clone(), &pending.redirect)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| OidcError::Refused(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Refused(token_error(&e)))?;
        let nonce = pending.nonce;
        let claims = self
            .id_claims(&tokens, Some(&nonce), &pending.redirect)
            .await?;
        let principal = self.principal(&claims)?;
        Ok(Signed {
            principal,
            refresh_token: tokens.refresh_token().map(|t| t.secret().clone()),
            expires_ms: claims["exp"].as_i64().map(|s| s * 1000),
            next: pending.next,
        })
    }

    /// The verified claims of a token response's ID token (keys fetched again once if its
    /// key is unknown: the provider rotated them).
    async fn id_claims(
        &self,
        tokens: &openidconnect::core::CoreTokenResponse,
        nonce: Option<&Nonce>,
        redirect: &str,
    ) -> Result<Value, OidcError> {
        use openidconnect::TokenResponse;
        let id = tokens
            .id_token()
            .ok_or_else(|| OidcError::BadToken("the provider gave no ID token".into()))?;
        let raw = id.to_string();
        let kid = jsonwebtoken::decode_header(&raw).ok().and_then(|h| h.kid);
        let mut p = self.provider(None).await?;
        if let Some(k) = &kid {
            if p.jwks.find(k).is_none() {
                p = self.provider(Some(k)).await?;
            }
        }
        let client = self.client(p.meta, redirect)?;
        let verifier = client.id_token_verifier();
        let checked = match nonce {
            Some(n) => id.claims(&verifier, n).map(|_| ()),
            None => id.claims(&verifier, |_: Option<&Nonce>| Ok(())).map(|_| ()),
        };
        checked.map_err(|e| OidcError::BadToken(format!("ID token: {e}")))?;
        // Verified: its payload is the provider's word.
        payload(&raw)
    }

    /// Refreshes someone's tokens and reads their claims again.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Signed, OidcError> {
        let p = self.provider(None).await?;
        let redirect = self
            .cfg
            .redirect_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1/api/auth/oidc/callback".into());
        let client = self.client(p.meta, &redirect)?;
        let tokens = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
            .map_err(|e| OidcError::Refused(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Refused(token_error(&e)))?;
        let claims = match self.id_claims(&tokens, None, &redirect).await {
            Ok(c) => c,
            // No new ID token: the access token's claims, if it is a JWT of ours.
            Err(_) => {
                self.verify_jwt(tokens.access_token().secret(), false)
                    .await?
            }
        };
        Ok(Signed {
            principal: self.principal(&claims)?,
            refresh_token: tokens
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| Some(refresh_token.to_string())),
            expires_ms: claims["exp"].as_i64().map(|s| s * 1000),
            next: String::new(),
        })
    }

    /// Who a bearer access token (a JWT of the provider) belongs to.
    pub async fn bearer(&self, token: &str) -> Result<Principal, OidcError> {
        let claims = self.verify_jwt(token, true).await?;
        self.principal(&claims)
    }

    /// Checks a JWT's signature (with the provider's keys, fetched again once for an
    /// unknown key), issuer, expiry and, for access tokens, audience.
    async fn verify_jwt(&self, token: &str, check_audience: bool) -> Result<Value, OidcError> {
        use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
        let header =
            decode_header(token).map_err(|e| OidcError::BadToken(format!("not a JWT: {e}")))?;
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| OidcError::BadToken("no key id".into()))?;
        let mut p = self.provider(None).await?;
        if p.jwks.find(&kid).is_none() {
            p = self.provider(Some(&kid)).await?;
        }
        let jwk = p
            .jwks
            .find(&kid)
            .ok_or_else(|| OidcError::BadToken(format!("unknown signing key {kid:?}")))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| OidcError::BadToken(e.to_string()))?;
        if matches!(
            header.alg,
            jsonwebtoken::Algorithm::HS256
                | jsonwebtoken::Algorithm::HS384
                | jsonwebtoken::Algorithm::HS512
        ) {
            return Err(OidcError::BadToken(
                "symmetric signatures are refused".into(),
            ));
        }
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[self.cfg.issuer.trim_end_matches('/'), &self.cfg.issuer]);
        v.leeway = self.cfg.clock_skew.as_secs();
        if check_audience {
            let aud = self
                .cfg
                .audience
                .clone()
                .unwrap_or_else(|| self.cfg.client_id.clone());
            v.set_audience(&[aud]);
        } else {
            v.validate_aud = false;
        }
        v.set_required_spec_claims(&["exp", "iss"]);
        decode::<Value>(token, &key, &v)
            .map(|d| d.claims)
            .map_err(|e| OidcError::BadToken(e.to_string()))
    }

    /// A person (or a system) from the provider's claims.
    pub fn principal(&self, claims: &Value) -> Result<Principal, OidcError> {
        let c = &self.cfg;
        // A node account is made on this IOC (`ioc node add`), never taken from a provider.
        let as_role = |s: &str| {
            c.role_map
                .get(s)
                .and_then(|r| Role::parse(r))
                .or_else(|| Role::parse(s))
                .filter(|r| *r != Role::Node)
        };
        let role = match claim(claims, &c.role_claim) {
            Some(Value::String(s)) => as_role(s),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).find_map(as_role),
            _ => None,
        }
        .ok_or_else(|| {
            OidcError::NoRole(format!(
                "the account has no IOC role (claim `{}`): ask the administrator",
                c.role_claim
            ))
        })?;
        let units: Vec<String> = match claim(claims, &c.units_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let username = claim(claims, &c.username_claim)
            .and_then(Value::as_str)
            .or_else(|| claims["sub"].as_str())
            .or_else(|| claims["client_id"].as_str())
            .ok_or_else(|| OidcError::BadToken("no subject".into()))?
            .chars()
            .take(64)
            .collect::<String>();
        let display_name = claim(claims, &c.name_claim)
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| username.clone());
        Ok(Principal {
            info: UserInfo {
                username,
                display_name,
                role,
                units,
            },
        })
    }
}

/// A JWT's payload as JSON (its signature checked elsewhere).
fn payload(jwt: &str) -> Result<Value, OidcError> {
    use base64::Engine;
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::BadToken("not a JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| OidcError::BadToken(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::BadToken(e.to_string()))
}

fn token_error<E: std::error::Error>(e: &E) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc() -> Oidc {
        let cfg: OidcConfig = toml::from_str(
            r#"issuer = "http://127.0.0.1:1"
client_id = "ioc-console"
role_claim = "realm_access.roles"
units_claim = "ioc.units"
[role_map]
"IOC-Truc-Ban" = "operator"
"#,
        )
        .unwrap();
        Oidc::new(cfg, std::path::Path::new("/nonexistent"))
    }

    #[test]
    fn roles_and_units_come_from_the_configured_claims() {
        let o = oidc();
        let p = o
            .principal(&serde_json::json!({
                "sub": "x1", "preferred_username": "lan", "name": "Nguyễn Thị Lan",
                "realm_access": {"roles": ["offline_access", "IOC-Truc-Ban"]},
                "ioc": {"units": ["16681", "16684"]}
            }))
            .unwrap();
        assert_eq!(p.info.role, Role::Operator);
        assert_eq!(p.info.units, ["16681", "16684"]);
        assert_eq!(p.info.display_name, "Nguyễn Thị Lan");
        let p = o
            .principal(&serde_json::json!({"sub": "svc", "realm_access": {"roles": "leader"}}))
            .unwrap();
        assert_eq!(
            (p.info.role, p.info.username.as_str()),
            (Role::Leader, "svc")
        );
        assert!(p.info.units.is_empty());
        assert!(matches!(
            o.principal(&serde_json::json!({"sub": "x", "realm_access": {"roles": ["nobody"]}})),
            Err(OidcError::NoRole(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_provider_without_a_cache_is_a_clear_error() {
        let o = oidc();
        let e = o
            .begin("http://127.0.0.1/api/auth/oidc/callback", "/")
            .await;
        assert!(matches!(e, Err(OidcError::Unreachable(_))), "{:?}", e.err());
    }
}
