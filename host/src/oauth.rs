//! Talking to Google's OAuth endpoints: refresh an access token, exchange
//! an authorization code (PKCE), ask who a token belongs to, and the
//! loopback login flow of `grantpool accounts login`.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{OAuthConfig, ResolvedClient};
use crate::store::TokenData;

/// A refresh (or code exchange) that did not give a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    /// The endpoint answered with an error status.
    #[error("HTTP {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Response body (OAuth error JSON; never contains a token).
        body: String,
        /// Response headers that matter (lowercase names).
        headers: Vec<(String, String)>,
    },
    /// No answer: connection refused, timeout, dropped connection.
    #[error("network error: {0}")]
    Network(String),
    /// The answer was 200 but not a token.
    #[error("unexpected answer from the token endpoint: {0}")]
    BadAnswer(String),
    /// grantpool's own OAuth settings are incomplete.
    #[error("{0}")]
    Misconfigured(String),
}

impl RefreshError {
    /// The OAuth `error` code of a rejected answer, if it carries one.
    pub fn oauth_error(&self) -> Option<String> {
        match self {
            RefreshError::Rejected { body, .. } => serde_json::from_str::<serde_json::Value>(body)
                .ok()?
                .get("error")?
                .as_str()
                .map(str::to_string),
            _ => None,
        }
    }

    /// True when the error says the configured OAuth client is wrong (not
    /// the account): `invalid_client`, `unauthorized_client`.
    pub fn is_client_error(&self) -> bool {
        matches!(self.oauth_error().as_deref(), Some("invalid_client" | "unauthorized_client"))
    }
}

/// A refresh that failed, with the refresh token it used (so a later
/// disable only hits the account if that token is still the one on file).
#[derive(Clone)]
pub struct RefreshFailure {
    /// What went wrong.
    pub error: RefreshError,
    /// The refresh token that failed. Never logged or shown.
    pub refresh_token: String,
    /// The OAuth client it was refreshed with (its name).
    pub client: String,
}

impl std::fmt::Debug for RefreshFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshFailure").field("error", &self.error).finish_non_exhaustive()
    }
}

impl RefreshFailure {
    /// True when the OAuth client is to blame, not the account
    /// (`invalid_client`, `unauthorized_client`, or no client configured).
    pub fn is_misconfiguration(&self) -> bool {
        self.error.is_client_error() || matches!(self.error, RefreshError::Misconfigured(_))
    }
}

/// A fresh access token.
#[derive(Clone)]
pub struct Refreshed {
    /// The access token.
    pub access_token: String,
    /// Expiry, Unix seconds.
    pub expiry_timestamp: i64,
    /// A rotated refresh token, when the endpoint sent one.
    pub refresh_token: Option<String>,
    /// Token type.
    pub token_type: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
}

/// The OAuth client of the host.
#[derive(Clone)]
pub struct OAuth {
    /// One client per way out ([`crate::egress`]).
    http: Arc<crate::egress::Clients<reqwest::Client>>,
    egress: Arc<crate::egress::Egress>,
    config: OAuthConfig,
}

const HEADERS_KEPT: &[&str] = &["retry-after", "content-type", "www-authenticate"];

impl OAuth {
    /// A client for `config`.
    pub fn new(config: OAuthConfig) -> anyhow::Result<Self> {
        Self::with_egress(config, crate::egress::Egress::direct())
    }

    /// A client for `config` whose calls for an account leave by the
    /// account's egress route.
    pub fn with_egress(config: OAuthConfig, egress: Arc<crate::egress::Egress>) -> anyhow::Result<Self> {
        let http = crate::egress::Clients::build(&egress, |route| -> anyhow::Result<reqwest::Client> {
            Ok(crate::egress::reqwest_builder(route)?
                .timeout(Duration::from_secs(30))
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("grantpool/", env!("CARGO_PKG_VERSION")))
                .build()?)
        })?;
        Ok(OAuth { http: Arc::new(http), egress, config })
    }

    /// The client for a call to `url` made for an account with `egress`,
    /// and the proxy's name (for messages).
    fn http_for(&self, egress: Option<&str>, url: &str) -> Result<(&reqwest::Client, Option<Arc<crate::egress::ProxyEntry>>), String> {
        let way = self.egress.route_url(egress, url).map_err(|e| e.to_string())?;
        let client = self.http.get(&way).ok_or_else(|| "no client for the egress route".to_string())?;
        Ok((client, way))
    }

    /// The outbound proxies its calls (and the pool's) go through.
    pub fn egress(&self) -> &Arc<crate::egress::Egress> {
        &self.egress
    }

    /// The settings in force.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// The client of an account (its `token.oauth_client`, else the default).
    pub fn client_of(&self, token: &TokenData) -> Result<ResolvedClient, RefreshError> {
        self.client_named(token.oauth_client.as_deref())
    }

    /// The client named `name` (`None`: the default, `[oauth] client`).
    pub fn client_named(&self, name: Option<&str>) -> Result<ResolvedClient, RefreshError> {
        let client = self.config.client(name).map_err(RefreshError::Misconfigured)?;
        if client.client_id.is_empty() {
            return Err(RefreshError::Misconfigured(format!(
                "OAuth client `{}` has no client_id: set [oauth.clients.{}] client_id and client_secret in grantpool.toml",
                client.name, client.name
            )));
        }
        Ok(client)
    }

    /// `POST token_url` with `grant_type=refresh_token`, with the account's
    /// own client.
    /// `egress`: the account's proxy name.
    pub async fn refresh(&self, token: &TokenData, egress: Option<&str>) -> Result<Refreshed, RefreshError> {
        let client = self.client_of(token)?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", token.refresh_token.as_str()),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
        ];
        self.token_call(&form, egress).await
    }

    /// `POST token_url` with `grant_type=authorization_code` (PKCE).
    pub async fn exchange_code(
        &self,
        client: &ResolvedClient,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        egress: Option<&str>,
    ) -> Result<Refreshed, RefreshError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", client.client_id.as_str()),
            ("client_secret", client.client_secret.as_str()),
        ];
        self.token_call(&form, egress).await
    }

    async fn token_call(&self, form: &[(&str, &str)], egress: Option<&str>) -> Result<Refreshed, RefreshError> {
        let (http, way) = self.http_for(egress, &self.config.token_url).map_err(RefreshError::Network)?;
        let resp = http.post(&self.config.token_url).form(form).send().await.map_err(|e| RefreshError::Network(via(&way, &e)))?;
        let status = resp.status().as_u16();
        let headers = crate::util::kept_headers(resp.headers(), HEADERS_KEPT);
        let body = resp.text().await.map_err(|e| RefreshError::Network(via(&way, &e)))?;
        if !(200..300).contains(&status) {
            return Err(RefreshError::Rejected { status, body: crate::util::truncate_utf8(&body, 4096).to_string(), headers });
        }
        let answer: TokenAnswer = serde_json::from_str(&body)
            .map_err(|e| RefreshError::BadAnswer(format!("not a token answer ({e})")))?;
        Ok(Refreshed {
            access_token: answer.access_token,
            expiry_timestamp: crate::util::now_secs() + answer.expires_in.unwrap_or(3600),
            refresh_token: answer.refresh_token.filter(|t| !t.is_empty()),
            token_type: answer.token_type.unwrap_or_else(|| "Bearer".into()),
        })
    }

    /// An account for a refresh token, as Google says it is: the token is
    /// refreshed with `client` (`None`: the default client) and the email is
    /// the one userinfo returns for it. `Err` says why nothing may be
    /// written (the token endpoint refused it, or userinfo did not answer).
    /// `egress`: the proxy the new account will use (its calls go there now too).
    pub async fn verify_refresh_token(&self, client: Option<&str>, refresh_token: &str, egress: Option<&str>) -> Result<crate::store::NewAccount, String> {
        let client = self.client_named(client).map_err(|e| e.to_string())?;
        let mut token = TokenData::new("", refresh_token, 0);
        token.oauth_client = Some(client.name.clone());
        let refreshed = self.refresh(&token, egress).await.map_err(|e| {
            let why = e.oauth_error().map(|o| format!("the token endpoint answered {o}")).unwrap_or_else(|| e.to_string());
            format!("refused: {why} (it refused the refresh token with OAuth client `{}`); nothing was written: is the token right, and issued to that client?", client.name)
        })?;
        token.access_token = refreshed.access_token.clone();
        token.expiry_timestamp = refreshed.expiry_timestamp;
        if let Some(rt) = refreshed.refresh_token {
            token.refresh_token = rt;
        }
        let email = self.userinfo_email(&refreshed.access_token, egress).await.map_err(|e| format!("cannot learn whose token it is: {e}; nothing was written"))?;
        Ok(crate::store::NewAccount { email, token })
    }

    /// An account for an authorization code (the end of a browser sign-in):
    /// the code is exchanged with `client` (PKCE) and the email is the one
    /// userinfo returns. `Err` says why nothing may be written.
    pub async fn account_from_code(
        &self,
        client: &ResolvedClient,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        egress: Option<&str>,
    ) -> Result<crate::store::NewAccount, String> {
        let tokens = self.exchange_code(client, code, verifier, redirect_uri, egress).await.map_err(|e| {
            let why = e.oauth_error().map(|o| format!("the token endpoint answered {o}")).unwrap_or_else(|| e.to_string());
            format!("exchanging the sign-in code failed: {why}; nothing was written")
        })?;
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            return Err("Google gave no refresh token (the consent screen was skipped?); remove grantpool's access at https://myaccount.google.com/permissions and sign in again".into());
        };
        let email = self.userinfo_email(&tokens.access_token, egress).await.map_err(|e| format!("cannot learn whose token it is: {e}; nothing was written"))?;
        let mut token = TokenData::new(tokens.access_token, refresh_token, tokens.expiry_timestamp);
        token.oauth_client = Some(client.name.clone());
        Ok(crate::store::NewAccount { email, token })
    }

    /// The email an access token belongs to.
    pub async fn userinfo_email(&self, access_token: &str, egress: Option<&str>) -> anyhow::Result<String> {
        #[derive(Deserialize)]
        struct Info {
            email: Option<String>,
        }
        let (http, way) = self.http_for(egress, &self.config.userinfo_url).map_err(|e| anyhow::anyhow!("{e}"))?;
        let resp = http
            .get(&self.config.userinfo_url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("asking {} who the token belongs to: {}", self.config.userinfo_url, via(&way, &e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("userinfo answered HTTP {status}: {}", crate::util::truncate_utf8(&text, 300));
        }
        let info: Info = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("userinfo answer is not JSON: {e}"))?;
        info.email.ok_or_else(|| anyhow::anyhow!("userinfo gave no email: the token lacks the userinfo.email scope; pass --email"))
    }

    /// The browser URL of the authorization-code flow.
    pub fn authorize_url(&self, client: &ResolvedClient, redirect_uri: &str, challenge: &str, state: &str) -> anyhow::Result<String> {
        let scope = client.scopes.join(" ");
        let mut url = reqwest::Url::parse(&self.config.auth_url)?;
        url.query_pairs_mut()
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("scope", &scope)
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("state", state);
        Ok(url.to_string())
    }
}

/// The authorization code in the address Google redirected a sign-in to
/// (the loopback callback, or the address a user pastes when the browser
/// was on another machine). Refused: an `error` from Google, a state that
/// is not this sign-in's, no code.
pub fn code_from_redirect(url: &str, state: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| "that is not an address".to_string())?;
    let q: std::collections::HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    if let Some(err) = q.get("error") {
        return Err(format!("Google answered `{err}`"));
    }
    if q.get("state").map(String::as_str) != Some(state) {
        return Err("the address is from another sign-in (its state does not match); start again".into());
    }
    q.get("code").filter(|c| !c.is_empty()).cloned().ok_or_else(|| "the address carries no code".into())
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    use rand::Rng;
    let bytes: [u8; 48] = rand::rng().random();
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// [`describe_reqwest`], naming the egress proxy the call went through (a
/// failed connection asks for a health check of it).
fn via(way: &crate::egress::Route, e: &reqwest::Error) -> String {
    match way {
        Some(p) => {
            if e.is_connect() {
                p.suspect();
            }
            format!("through egress proxy `{}`: {}", p.name, describe_reqwest(e))
        }
        None => describe_reqwest(e),
    }
}

/// A reqwest error in words, without the URL's query (which could hold a
/// secret) — reqwest puts the URL in its Display.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the answer"
    } else if e.is_request() {
        "request failed"
    } else {
        "error"
    };
    // The deepest source says what happened; reqwest's own Display has the URL.
    match crate::util::error_chain(e).skip(1).last() {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_string(),
    }
}
