//! OAuth 2.0 for SMTP AUTH (XOAUTH2, OAUTHBEARER): postie gets, keeps and refreshes the
//! access token itself, so that a cron job sends through Microsoft 365 or Gmail after one
//! login.
//!
//! Owns: the providers' presets ([`Registration::new`]: endpoints, scopes, SMTP server), the
//! grants ([`grant`]: device authorization, RFC 8628; authorization code with PKCE and a
//! loopback redirect, RFC 7636 and RFC 8252; refresh, RFC 6749 §6), the token file
//! ([`store`]), the token a session uses ([`Tokens`]: refreshed a minute before it expires,
//! and once more when the server refuses it), and the `postie oauth` commands ([`command`]).
//!
//! Must not: show a token, a refresh token, a client secret or an authorization code
//! anywhere (they are [`Secret`]s from the answer on, and answers are never printed); talk
//! SMTP (the session asks [`Tokens`] and retries AUTH itself); decide an exit code other
//! than through [`Error`]: a refused refresh token (`invalid_grant`) or a denied login is
//! EX_NOPERM (77), an unreachable endpoint EX_TEMPFAIL (75), a bad table EX_CONFIG (78).

pub mod command;
pub mod grant;
pub mod store;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::error::Error;
use crate::http;
use crate::secret::Secret;
use crate::settings::{OAuthProvider, OAuthSettings};
use store::{Kept, Store};

/// Refresh when the access token has less than this left (seconds).
pub const REFRESH_MARGIN: u64 = 60;
/// How long one request to the authorization server may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The SMTP server a provider preset submits to, when the account names none.
pub fn preset_server(provider: OAuthProvider) -> Option<(&'static str, u16)> {
    match provider {
        OAuthProvider::Microsoft => Some(("smtp.office365.com", 587)),
        OAuthProvider::Google => Some(("smtp.gmail.com", 587)),
        OAuthProvider::Custom => None,
    }
}

/// An account's OAuth client, presets filled in: who postie is to the authorization
/// server, where its endpoints are, what to ask for, and where the tokens are kept.
#[derive(Debug, Clone)]
pub struct Registration {
    pub account: String,
    pub provider: OAuthProvider,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
    pub auth_url: Option<String>,
    pub token_url: String,
    pub device_url: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub store: Store,
}

impl Registration {
    /// The account `account`'s `[account.NAME.oauth]` table with its provider's presets;
    /// tokens kept in `dir`.
    pub fn new(account: &str, o: &OAuthSettings, dir: &std::path::Path) -> Result<Registration> {
        let missing = |key: &str, why: &str| {
            Error::Config(format!(
                "account {account}: [account.{account}.oauth] needs {key} ({why})"
            ))
        };
        let client_id = o.client_id.clone().ok_or_else(|| {
            missing(
                "client_id",
                "the application (client) id registered with the provider",
            )
        })?;
        let (auth, token, device, scopes): (
            Option<String>,
            Option<String>,
            Option<String>,
            &[&str],
        ) = match o.provider {
            OAuthProvider::Microsoft => {
                let tenant = o.tenant.as_deref().unwrap_or("common");
                if tenant.is_empty()
                    || !tenant
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
                {
                    return Err(Error::Config(format!(
                        "account {account}: oauth.tenant {tenant:?} is not a tenant id or domain"
                    ))
                    .into());
                }
                let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
                (
                    Some(format!("{base}/authorize")),
                    Some(format!("{base}/token")),
                    Some(format!("{base}/devicecode")),
                    &["https://outlook.office.com/SMTP.Send", "offline_access"],
                )
            }
            OAuthProvider::Google => (
                Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
                Some("https://oauth2.googleapis.com/token".into()),
                Some("https://oauth2.googleapis.com/device/code".into()),
                &["https://mail.google.com/"],
            ),
            OAuthProvider::Custom => (None, None, None, &[]),
        };
        let token_url = o
            .token_url
            .clone()
            .or(token)
            .ok_or_else(|| missing("token_url", "provider \"custom\" has no preset"))?;
        let reg = Registration {
            account: account.to_string(),
            provider: o.provider,
            client_id,
            client_secret: o.client_secret.clone(),
            scopes: o
                .scopes
                .clone()
                .unwrap_or_else(|| scopes.iter().map(|s| s.to_string()).collect()),
            auth_url: o.auth_url.clone().or(auth),
            token_url,
            device_url: o.device_url.clone().or(device),
            ca_file: o.ca_file.clone(),
            store: Store::new(
                dir,
                account,
                o.token_command_load.clone(),
                o.token_command_store.clone(),
            )?,
        };
        for url in [
            Some(&reg.token_url),
            reg.auth_url.as_ref(),
            reg.device_url.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !url.starts_with("https://") {
                return Err(Error::Config(format!(
                    "account {account}: oauth endpoint {url} is not an https:// address"
                ))
                .into());
            }
        }
        Ok(reg)
    }

    /// The provider as the token file and messages name it.
    pub fn provider_name(&self) -> &'static str {
        match self.provider {
            OAuthProvider::Microsoft => "microsoft",
            OAuthProvider::Google => "google",
            OAuthProvider::Custom => "custom",
        }
    }

    pub fn http(&self) -> Result<http::Client> {
        http::Client::new(self.ca_file.as_deref(), HTTP_TIMEOUT)
    }

    /// What to run when there is no usable token.
    pub fn login_hint(&self) -> String {
        format!("run `postie oauth login {}`", self.account)
    }
}

/// Now, in Unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The access token a session authenticates with: the kept one while it has more than
/// [`REFRESH_MARGIN`] left, else a refreshed one. Refreshing takes the account's lock and
/// looks at the file again first, so two postie processes refresh once.
#[derive(Debug)]
pub struct Tokens {
    reg: Registration,
    /// The token this process last used, so that reconnects (batch, fallback) do not
    /// reread the file.
    current: Mutex<Option<(Secret, Option<u64>)>>,
}

impl Tokens {
    pub fn new(reg: Registration) -> Tokens {
        Tokens {
            reg,
            current: Mutex::new(None),
        }
    }

    pub fn registration(&self) -> &Registration {
        &self.reg
    }

    /// A usable access token, refreshed if needed.
    pub fn access(&self) -> Result<Secret> {
        if let Ok(guard) = self.current.lock() {
            if let Some((token, expires)) = guard.as_ref() {
                if expires.is_none_or(|t| t > now() + REFRESH_MARGIN) {
                    return Ok(token.clone());
                }
            }
        }
        let kept = self.kept()?;
        if kept.fresh(now(), REFRESH_MARGIN) {
            return Ok(self.remember(&kept));
        }
        self.refreshed(|k| k.fresh(now(), REFRESH_MARGIN))
    }

    /// A new access token after the server refused `refused`: the kept one if another
    /// process has replaced it meanwhile, else a refreshed one.
    pub fn renew(&self, refused: &Secret) -> Result<Secret> {
        self.refreshed(|k| k.access_token() != *refused && k.fresh(now(), REFRESH_MARGIN))
    }

    fn kept(&self) -> Result<Kept> {
        self.reg.store.load()?.ok_or_else(|| {
            Error::NoPerm(format!(
                "account {}: not signed in to {} (no token in {}): {}",
                self.reg.account,
                self.reg.provider_name(),
                self.reg.store.path().display(),
                self.reg.login_hint()
            ))
            .into()
        })
    }

    /// Under the lock: the kept token if `good` accepts it (another process refreshed),
    /// else a refresh, saved before it is used.
    fn refreshed(&self, good: impl Fn(&Kept) -> bool) -> Result<Secret> {
        let _lock = self.reg.store.lock()?;
        let kept = self.kept()?;
        if good(&kept) {
            return Ok(self.remember(&kept));
        }
        let new = grant::refresh(&self.reg, &self.reg.http()?, &kept)?;
        self.reg.store.save(&new)?;
        Ok(self.remember(&new))
    }

    fn remember(&self, kept: &Kept) -> Secret {
        let token = kept.access_token();
        if let Ok(mut guard) = self.current.lock() {
            *guard = Some((token.clone(), kept.expires_at));
        }
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings(provider: OAuthProvider) -> OAuthSettings {
        OAuthSettings {
            account: "x".into(),
            provider,
            client_id: Some("cid".into()),
            client_secret: None,
            tenant: None,
            scopes: None,
            auth_url: None,
            token_url: None,
            device_url: None,
            ca_file: None,
            token_command_store: None,
            token_command_load: None,
        }
    }

    #[test]
    fn presets_fill_endpoints_and_scopes() {
        let dir = Path::new("/t");
        let ms = Registration::new("work", &settings(OAuthProvider::Microsoft), dir).unwrap();
        assert_eq!(
            ms.token_url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(
            ms.device_url.as_deref(),
            Some("https://login.microsoftonline.com/common/oauth2/v2.0/devicecode")
        );
        assert_eq!(
            ms.scopes,
            ["https://outlook.office.com/SMTP.Send", "offline_access"]
        );
        let mut tenant = settings(OAuthProvider::Microsoft);
        tenant.tenant = Some("contoso.onmicrosoft.com".into());
        let t = Registration::new("work", &tenant, dir).unwrap();
        assert_eq!(
            t.auth_url.as_deref(),
            Some("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize")
        );
        let g = Registration::new("g", &settings(OAuthProvider::Google), dir).unwrap();
        assert_eq!(g.token_url, "https://oauth2.googleapis.com/token");
        assert_eq!(g.scopes, ["https://mail.google.com/"]);
        assert_eq!(g.store.path(), Path::new("/t/g.json"));
    }

    #[test]
    fn tables_missing_what_a_flow_needs_are_config_errors() {
        let dir = Path::new("/t");
        let mut no_id = settings(OAuthProvider::Google);
        no_id.client_id = None;
        let custom = settings(OAuthProvider::Custom);
        let mut plain = settings(OAuthProvider::Custom);
        plain.token_url = Some("http://idp.example/token".into());
        let mut bad_tenant = settings(OAuthProvider::Microsoft);
        bad_tenant.tenant = Some("a/b".into());
        let cases = [
            (no_id, "account a: [account.a.oauth] needs client_id (the application (client) id registered with the provider)"),
            (custom, "account a: [account.a.oauth] needs token_url (provider \"custom\" has no preset)"),
            (plain, "account a: oauth endpoint http://idp.example/token is not an https:// address"),
            (bad_tenant, "account a: oauth.tenant \"a/b\" is not a tenant id or domain"),
        ];
        for (s, want) in cases {
            let e = Registration::new("a", &s, dir).unwrap_err();
            assert_eq!(crate::error::exit_code(&e), crate::error::Exit::Config);
            assert_eq!(format!("{e}"), want);
        }
    }
}
