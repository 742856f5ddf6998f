//! `postie oauth login|token|status|logout`: sign an account in once, print a valid access
//! token for other programs (msmtp's `passwordeval`, mbsync's `PassCmd`), say what is kept,
//! and forget it.
//!
//! Must not: print a token anywhere but `token`'s standard output; print a refresh token
//! or a client secret at all.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use super::{grant, now, Registration, Tokens, REFRESH_MARGIN};
use crate::error::{Error, Exit};
use crate::settings::{Settings, Syntax};

/// `postie oauth ...`.
#[derive(Debug, Parser)]
#[command(
    name = "oauth",
    about = "Sign in to Microsoft 365, Gmail or another OAuth 2.0 provider and keep the token",
    long_about = "Sign in to Microsoft 365, Gmail or another OAuth 2.0 provider once, and keep \
                  the token: postie refreshes it when it sends with the account (auth = \
                  \"xoauth2\" or \"oauthbearer\" and an [account.NAME.oauth] table).",
    after_long_help = "Examples:\n  postie oauth login work            # once, on a terminal\n  \
                       postie oauth status\n  \
                       postie -A work -s report admin@example.com < report.txt   # from cron\n  \
                       passwordeval \"postie oauth token work\"   # in an msmtprc"
)]
pub struct OAuthArgs {
    #[command(subcommand)]
    pub command: OAuthCommand,
    /// The configuration file [default: the first of postie's and msmtp's usual files].
    #[arg(short = 'C', long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum OAuthCommand {
    /// Sign the account in (once): device code, or browser with a loopback redirect.
    Login {
        /// The account, as in [account.NAME] of the configuration file.
        account: String,
        /// Show a code to enter on any device (the default without a display).
        #[arg(long, conflicts_with = "browser")]
        device: bool,
        /// Open an address in a browser on this machine, which returns to 127.0.0.1 (the
        /// default with a display, and always for Google).
        #[arg(long)]
        browser: bool,
    },
    /// Print a valid access token (refreshed if needed) on standard output.
    Token {
        /// The account, as in [account.NAME] of the configuration file.
        account: String,
    },
    /// Say which accounts are signed in, until when, with which scopes, and where the token
    /// file is (never the token).
    Status {
        /// Only this account [default: every account with an oauth table].
        account: Option<String>,
    },
    /// Forget the account's tokens (removes the token file).
    Logout {
        /// The account, as in [account.NAME] of the configuration file.
        account: String,
    },
}

/// What the command needs from the environment.
pub struct Env<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// Where system configuration files are (`/etc`).
    pub etc: PathBuf,
    pub root: bool,
}

pub fn run(args: OAuthArgs, env: &Env) -> Result<Exit> {
    let settings = load(args.config, env)?;
    let mut stderr = std::io::stderr();
    match args.command {
        OAuthCommand::Login {
            account,
            device,
            browser,
        } => {
            let reg = registration(&settings, &account, env)?;
            let graphical = ["DISPLAY", "WAYLAND_DISPLAY"]
                .iter()
                .any(|k| (env.var)(k).is_some_and(|v| !v.is_empty()));
            let use_browser = browser
                || (!device
                    && (reg.provider == crate::settings::OAuthProvider::Google
                        || graphical
                        || reg.device_url.is_none()));
            let http = reg.http()?;
            let kept = if use_browser {
                grant::browser(&reg, &http, &mut stderr)?
            } else {
                grant::device(&reg, &http, &mut stderr)?
            };
            {
                let _lock = reg.store.lock()?;
                reg.store.save(&kept)?;
            }
            let refresh = if kept.refresh_token().is_some() {
                "with a refresh token"
            } else {
                "without a refresh token: sign in again when it expires"
            };
            eprintln!(
                "postie oauth: account {} signed in ({}), {refresh}; token kept in {}",
                reg.account,
                until(kept.expires_at),
                reg.store.path().display()
            );
            Ok(Exit::Ok)
        }
        OAuthCommand::Token { account } => {
            let reg = registration(&settings, &account, env)?;
            let token = Tokens::new(reg).access()?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", token.expose())
                .and_then(|()| out.flush())
                .map_err(|e| Error::Io(format!("writing to stdout: {e}")))?;
            Ok(Exit::Ok)
        }
        OAuthCommand::Status { account } => {
            let names: Vec<String> = match account {
                Some(a) => vec![a],
                None => settings
                    .order
                    .iter()
                    .filter(|n| settings.accounts.get(*n).is_some_and(|a| a.oauth.is_some()))
                    .cloned()
                    .collect(),
            };
            if names.is_empty() {
                eprintln!(
                    "postie oauth: {}: no account has an [account.NAME.oauth] table",
                    settings.display
                );
                return Ok(Exit::Ok);
            }
            let mut out = std::io::stdout().lock();
            let mut worst = Exit::Ok;
            for name in names {
                let reg = registration(&settings, &name, env)?;
                let line = match reg.store.load()? {
                    None => {
                        worst = Exit::NoPerm;
                        format!(
                            "{name} ({}): not signed in ({}); token file {}",
                            reg.provider_name(),
                            reg.login_hint(),
                            reg.store.path().display()
                        )
                    }
                    Some(kept) => {
                        let refresh = if kept.refresh_token().is_some() {
                            "refresh token kept"
                        } else {
                            "no refresh token"
                        };
                        let state = if kept.fresh(now(), REFRESH_MARGIN) {
                            "access token valid"
                        } else {
                            "access token expired"
                        };
                        format!(
                            "{name} ({}): {state} ({}), {refresh}; scopes: {}; token file {}",
                            reg.provider_name(),
                            until(kept.expires_at),
                            kept.scope,
                            reg.store.path().display()
                        )
                    }
                };
                writeln!(out, "{line}")
                    .map_err(|e| Error::Io(format!("writing to stdout: {e}")))?;
            }
            Ok(worst)
        }
        OAuthCommand::Logout { account } => {
            let reg = registration(&settings, &account, env)?;
            let _lock = reg.store.lock()?;
            if reg.store.remove()? {
                eprintln!(
                    "postie oauth: account {account}: tokens forgotten ({} removed); the provider \
                     may still list the sign-in until it is revoked there",
                    reg.store.path().display()
                );
            } else {
                eprintln!("postie oauth: account {account}: no tokens were kept");
            }
            Ok(Exit::Ok)
        }
    }
}

/// "until 2026-12-03T10:00:00Z (in 59 min)", or "lifetime unknown".
fn until(expires_at: Option<u64>) -> String {
    let Some(t) = expires_at else {
        return "lifetime not given by the provider".into();
    };
    let when = crate::net::certinfo::rfc3339(i64::try_from(t).unwrap_or(i64::MAX));
    let now = now();
    if t > now {
        format!("until {when}, in {} min", (t - now).div_ceil(60))
    } else {
        format!("expired at {when}")
    }
}

/// The configuration file: `-C FILE`, else the first one found.
fn load(config: Option<PathBuf>, env: &Env) -> Result<Settings> {
    let path = match config {
        Some(p) => p,
        None => crate::settings::find_in(env.var, &env.etc).ok_or_else(|| {
            Error::Config(
                "no configuration file found: OAuth accounts are [account.NAME] tables with an \
                 [account.NAME.oauth] table in ~/.config/postie/config.toml (or give -C FILE)"
                    .into(),
            )
        })?,
    };
    crate::settings::load(&path)
}

/// The named account's OAuth client.
fn registration(settings: &Settings, account: &str, env: &Env) -> Result<Registration> {
    let Some(acc) = settings.accounts.get(account) else {
        let known = if settings.order.is_empty() {
            "it defines none".to_string()
        } else {
            format!("it defines: {}", settings.order.join(", "))
        };
        return Err(Error::Config(format!(
            "{}: no account named {account:?} ({known})",
            settings.display
        ))
        .into());
    };
    let Some(oauth) = &acc.oauth else {
        let how = match settings.syntax {
            Syntax::Toml => format!("add an [account.{account}.oauth] table"),
            Syntax::Msmtprc => "OAuth accounts need postie's TOML configuration".to_string(),
        };
        return Err(Error::Config(format!(
            "{}: account {account} has no OAuth settings: {how}",
            settings.display
        ))
        .into());
    };
    let dir = super::store::dir(env.var, env.root).ok_or_else(|| {
        Error::Config(format!(
            "no directory for OAuth tokens: set HOME, XDG_STATE_HOME or {}",
            super::store::DIR_ENV
        ))
    })?;
    Registration::new(account, oauth, &dir)
}
