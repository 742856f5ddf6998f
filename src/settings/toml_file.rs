//! postie's own TOML config: `default_account = "NAME"` at the top, a `[defaults]` table and
//! `[account.NAME]` tables whose keys are named like the [`Account`] fields. An account
//! falls back to `[defaults]` field by field. Parsed with serde through `toml::Spanned`, so
//! every error and warning carries its line; unknown keys are collected, never rejected by
//! serde and never used.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Deserialize;
use toml::Spanned;

use super::AUTH_MECHANISMS;
use super::{
    line_at, mechanism, Account, AuthSetting, Ctx, OAuthProvider, OAuthSettings, Parsed, Settings,
    Syntax, TlsSetting,
};
use crate::secret::Secret;

type TomlTable = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// The known top-level shape; spans give line numbers.
#[derive(Deserialize)]
struct TomlFile {
    defaults: Option<Spanned<TomlTable>>,
    account: Option<Spanned<BTreeMap<Spanned<String>, Spanned<TomlTable>>>>,
    default_account: Option<Spanned<String>>,
}

pub(super) fn parse(path: &Path, text: &str, ctx: &Ctx) -> Result<Parsed> {
    let line = |offset: usize| line_at(text.as_bytes(), offset);
    // The parser's message, with the key on that line when there is one.
    let toml_err = |e: toml::de::Error| {
        let l = e.span().map(|s| line(s.start)).unwrap_or(1);
        let msg = e
            .message()
            .trim_end()
            .replace("expected a map", "expected a table");
        match key_on_line(text, l) {
            Some(key) => ctx.err(l, format!("{key}: {msg}")),
            None => ctx.err(l, msg),
        }
    };
    let file: TomlFile = toml::from_str(text).map_err(toml_err)?;
    let top: BTreeMap<Spanned<String>, serde::de::IgnoredAny> =
        toml::from_str(text).map_err(toml_err)?;

    let mut unknown = Vec::new();
    let mut password_line = None;
    for key in top.keys() {
        if !["defaults", "account", "default_account"].contains(&key.get_ref().as_str()) {
            unknown.push((line(key.span().start), key.get_ref().clone()));
        }
    }

    let mut read = |prefix: &str, table: &TomlTable| -> Result<Account> {
        let mut acc = Account::default();
        for (key, value) in table {
            let l = line(key.span().start);
            let name = key.get_ref().as_str();
            let secret_table = name == "oauth"
                && value
                    .get_ref()
                    .as_table()
                    .is_some_and(|t| t.contains_key("client_secret"));
            if name == "password" || secret_table {
                password_line.get_or_insert(l);
            }
            if !setting(&mut acc, name, value.get_ref(), l, ctx)? {
                unknown.push((l, format!("{prefix}{name}")));
            }
        }
        Ok(acc)
    };

    let mut defaults = match &file.defaults {
        Some(t) => read("defaults.", t.get_ref())?,
        None => Account::default(),
    };
    if let Some(o) = &mut defaults.oauth {
        o.account = "defaults".into();
    }
    let mut listed = Vec::new();
    if let Some(accounts) = &file.account {
        for (name, table) in accounts.get_ref() {
            let acc = read(&format!("account.{}.", name.get_ref()), table.get_ref())?;
            let mut acc = acc.or(&defaults);
            if let Some(o) = &mut acc.oauth {
                // Inherited or its own, the table's tokens are this account's.
                o.account = name.get_ref().clone();
            }
            listed.push((name.span().start, name.get_ref().clone(), acc));
        }
    }
    listed.sort_by_key(|(start, _, _)| *start);
    let order: Vec<String> = listed.iter().map(|(_, n, _)| n.clone()).collect();
    let accounts: BTreeMap<String, Account> = listed.into_iter().map(|(_, n, a)| (n, a)).collect();

    let default_account = match &file.default_account {
        Some(name) => {
            if !accounts.contains_key(name.get_ref()) {
                return Err(ctx.err(
                    line(name.span().start),
                    format!(
                        "default_account: no [account.{}] table in this file",
                        name.get_ref()
                    ),
                ));
            }
            Some(name.get_ref().clone())
        }
        None => accounts
            .contains_key("default")
            .then(|| "default".to_string()),
    };

    unknown.sort();
    let warnings = unknown
        .iter()
        .map(|(l, k)| format!("{}:{l}: ignoring unsupported key '{k}'", ctx.display))
        .collect();
    Ok(Parsed {
        settings: Settings {
            path: path.to_path_buf(),
            syntax: Syntax::Toml,
            defaults,
            accounts,
            order,
            default_account,
            warnings,
            display: ctx.display.to_string(),
        },
        password_line,
    })
}

/// The bare key of a `key = value` line.
fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let (key, _) = text.lines().nth(line.checked_sub(1)?)?.split_once('=')?;
    let key = key.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    (!key.is_empty() && key.chars().all(bare)).then_some(key)
}

/// Apply one TOML key. `Ok(false)` means the key is not supported.
fn setting(
    acc: &mut Account,
    key: &str,
    value: &toml::Value,
    line: usize,
    ctx: &Ctx,
) -> Result<bool> {
    let expected = |what: &str| ctx.err(line, format!("{key}: expected {what}"));
    let string = |what: &str| -> Result<String> {
        match value {
            toml::Value::String(s) if s.is_empty() => {
                Err(ctx.err(line, format!("{key}: is empty")))
            }
            toml::Value::String(s) if s.chars().any(|c| c.is_control() && c != '\t') => {
                Err(ctx.err(line, format!("{key}: contains a control character")))
            }
            toml::Value::String(s) => Ok(s.clone()),
            _ => Err(expected(what)),
        }
    };
    let name = |what: &str| -> Result<String> {
        let s = string(what)?;
        if s.chars().any(char::is_whitespace) {
            return Err(ctx.err(line, format!("{key}: not {what}: {s:?}")));
        }
        Ok(s)
    };
    let path = |s: String| ctx.path(line, key, &s);
    match key {
        // A list: the first server, then the ones to fall back to in order.
        "server" => match value {
            toml::Value::Array(items) => {
                let mut names = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) if !s.is_empty() && !s.chars().any(char::is_whitespace) => {
                            names.push(s.to_string());
                        }
                        _ => return Err(expected("a host name or a list of host names")),
                    }
                }
                let mut names = names.into_iter();
                acc.server = Some(
                    names
                        .next()
                        .ok_or_else(|| expected("at least one host name"))?,
                );
                acc.fallback_servers = names.collect();
            }
            _ => acc.server = Some(name("a host name")?),
        },
        "port" => {
            acc.port = Some(
                value
                    .as_integer()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&p| p > 0)
                    .ok_or_else(|| expected("a port number (1-65535)"))?,
            );
        }
        "tls" => {
            let s = string("\"starttls\", \"implicit\" or \"none\"")?;
            acc.tls = Some(match s.to_ascii_lowercase().as_str() {
                "starttls" => TlsSetting::Starttls,
                "implicit" => TlsSetting::Implicit,
                "none" => TlsSetting::None,
                _ => {
                    return Err(ctx.err(
                        line,
                        format!("unknown value for tls: {s:?} (starttls, implicit or none)"),
                    ))
                }
            });
        }
        "tls_ca" => acc.tls_ca = Some(path(string("a file name")?)?),
        "tls_verify" => {
            acc.tls_verify = Some(value.as_bool().ok_or_else(|| expected("true or false"))?)
        }
        "user" => acc.user = Some(string("a string")?),
        // Never echo the value: it is a secret.
        "password" => acc.password = Some(Secret::new(string("a string")?)),
        "password_command" => acc.password_command = Some(string("a command")?),
        "password_file" => acc.password_file = Some(path(string("a file name")?)?),
        "auth" => {
            acc.auth = Some(match value {
                toml::Value::Boolean(true) => AuthSetting::Auto,
                toml::Value::Boolean(false) => AuthSetting::Off,
                _ => {
                    let s = string("a string or true/false")?;
                    match s.to_ascii_lowercase().as_str() {
                        "auto" | "on" => AuthSetting::Auto,
                        "off" => AuthSetting::Off,
                        m => mechanism(m).ok_or_else(|| {
                            ctx.err(
                                line,
                                format!(
                                    "unknown value for auth: {s:?} (auto, off, {})",
                                    AUTH_MECHANISMS.join(", ")
                                ),
                            )
                        })?,
                    }
                }
            });
        }
        "from" => acc.from = Some(string("an address")?),
        "helo" => acc.helo = Some(name("a host name")?),
        "domain" => acc.domain = Some(name("a domain")?),
        "aliases" => acc.aliases = Some(path(string("a file name")?)?),
        "timeout" => {
            acc.timeout = Some(
                value
                    .as_integer()
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| expected("a number of seconds"))?,
            );
        }
        "log" => acc.log = Some(path(string("a file name")?)?),
        "dkim_key" => acc.dkim_key = Some(path(string("a file name")?)?),
        "dkim_selector" => acc.dkim_selector = Some(string("a string")?),
        "dkim_domain" => acc.dkim_domain = Some(string("a domain")?),
        "queue" => acc.queue = Some(value.as_bool().ok_or_else(|| expected("true or false"))?),
        "allow_plaintext_auth" => {
            acc.allow_plaintext_auth =
                Some(value.as_bool().ok_or_else(|| expected("true or false"))?)
        }
        "all_or_nothing" => {
            acc.all_or_nothing = Some(value.as_bool().ok_or_else(|| expected("true or false"))?)
        }
        "queue_dir" => acc.queue_dir = Some(path(string("a directory name")?)?),
        "queue_max_age" => {
            acc.queue_max_age = Some(
                match value {
                    toml::Value::String(s) => crate::settings::parse_age(s).map(|d| d.as_secs()),
                    _ => value
                        .as_integer()
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|&n| n > 0),
                }
                .ok_or_else(|| expected("seconds, or a number with s, m, h or d"))?,
            );
        }
        "oauth" => acc.oauth = Some(oauth_table(value, line, ctx)?),
        _ => return Ok(false),
    }
    Ok(true)
}

/// The keys of an `[account.NAME.oauth]` table.
const OAUTH_KEYS: &[&str] = &[
    "provider",
    "client_id",
    "client_secret",
    "tenant",
    "scopes",
    "auth_url",
    "token_url",
    "device_url",
    "ca_file",
    "token_command_store",
    "token_command_load",
];

/// An `[account.NAME.oauth]` table. Unlike the account's own keys, an unknown key here is
/// an error: a misspelt endpoint or client id would otherwise send the login elsewhere.
/// Errors carry the table's line (nested keys have no position of their own).
fn oauth_table(value: &toml::Value, line: usize, ctx: &Ctx) -> Result<OAuthSettings> {
    let table = value
        .as_table()
        .ok_or_else(|| ctx.err(line, "oauth: expected a table ([account.NAME.oauth])"))?;
    let string = |key: &str| -> Result<Option<String>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if s.is_empty() => {
                Err(ctx.err(line, format!("oauth.{key}: is empty")))
            }
            Some(toml::Value::String(s)) if s.chars().any(char::is_control) => {
                Err(ctx.err(line, format!("oauth.{key}: contains a control character")))
            }
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ctx.err(line, format!("oauth.{key}: expected a string"))),
        }
    };
    if let Some(key) = table.keys().find(|k| !OAUTH_KEYS.contains(&k.as_str())) {
        return Err(ctx.err(
            line,
            format!(
                "oauth.{key}: unknown key (known: {})",
                OAUTH_KEYS.join(", ")
            ),
        ));
    }
    let provider = match string("provider")?.as_deref().map(str::to_ascii_lowercase) {
        Some(p) if p == "microsoft" => OAuthProvider::Microsoft,
        Some(p) if p == "google" => OAuthProvider::Google,
        Some(p) if p == "custom" => OAuthProvider::Custom,
        Some(p) => {
            return Err(ctx.err(
                line,
                format!("oauth.provider: unknown provider {p:?} (microsoft, google or custom)"),
            ))
        }
        None => {
            return Err(ctx.err(
                line,
                "oauth.provider: missing (microsoft, google or custom)",
            ))
        }
    };
    let scopes = match table.get("scopes") {
        None => None,
        Some(toml::Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| match i.as_str() {
                    Some(s) if !s.is_empty() && !s.chars().any(|c| c.is_whitespace()) => {
                        Ok(s.to_string())
                    }
                    _ => Err(ctx.err(line, "oauth.scopes: expected a list of scope names")),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(_) => return Err(ctx.err(line, "oauth.scopes: expected a list of scope names")),
    };
    Ok(OAuthSettings {
        account: String::new(),
        provider,
        client_id: string("client_id")?,
        client_secret: string("client_secret")?.map(Secret::new),
        tenant: string("tenant")?,
        scopes,
        auth_url: string("auth_url")?,
        token_url: string("token_url")?,
        device_url: string("device_url")?,
        ca_file: string("ca_file")?
            .map(|s| ctx.path(line, "oauth.ca_file", &s))
            .transpose()?,
        token_command_store: string("token_command_store")?,
        token_command_load: string("token_command_load")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::{err, toml_cfg};

    #[test]
    fn toml_fields_and_defaults() {
        let t = toml_cfg(
            "[defaults]\ndomain = \"example.org\"\ntimeout = 60\n\
             [account.default]\nserver = \"relay\"\ntls = \"none\"\ntls_verify = false\n\
             password = \"pw\"\npassword_file = \"$HOME/pw\"\nauth = \"PLAIN\"\n\
             aliases = \"/etc/aliases\"\n",
        );
        assert_eq!(t.default_account.as_deref(), Some("default"));
        let a = t.account(None, None).unwrap();
        assert_eq!(
            a,
            Account {
                server: Some("relay".into()),
                tls: Some(TlsSetting::None),
                tls_verify: Some(false),
                password: Some(Secret::new("pw")),
                password_file: Some("/home/u/pw".into()),
                auth: Some(AuthSetting::Mechanism("PLAIN".into())),
                domain: Some("example.org".into()),
                aliases: Some("/etc/aliases".into()),
                timeout: Some(60),
                ..Account::default()
            }
        );
    }

    #[test]
    fn dkim_keys_per_account() {
        let t = toml_cfg(
            "[account.mail]\nserver = \"relay\"\ndkim_key = \"/etc/dkim/s1.key\"\n\
             dkim_selector = \"s1\"\ndkim_domain = \"example.org\"\n",
        );
        let a = t.account(Some("mail"), None).unwrap();
        assert_eq!(
            a.dkim_key.as_deref(),
            Some(std::path::Path::new("/etc/dkim/s1.key"))
        );
        assert_eq!(a.dkim_selector.as_deref(), Some("s1"));
        assert_eq!(a.dkim_domain.as_deref(), Some("example.org"));
    }

    #[test]
    fn server_lists_and_queue_keys() {
        let t = toml_cfg(
            "[defaults]\nqueue = true\nqueue_dir = \"/var/spool/postie\"\n\
             queue_max_age = \"2d\"\n\
             [account.a]\nserver = [\"one\", \"two:2525\", \"three\"]\n\
             [account.b]\nqueue_max_age = 600\nserver = \"solo\"\n",
        );
        let a = t.account(Some("a"), None).unwrap();
        assert_eq!(a.server.as_deref(), Some("one"));
        assert_eq!(a.fallback_servers, ["two:2525", "three"]);
        assert_eq!(a.queue, Some(true));
        assert_eq!(
            a.queue_dir.as_deref(),
            Some(std::path::Path::new("/var/spool/postie"))
        );
        assert_eq!(a.queue_max_age, Some(2 * 86_400));
        let b = t.account(Some("b"), None).unwrap();
        assert!(b.fallback_servers.is_empty());
        assert_eq!(b.queue_max_age, Some(600));
        for bad in [
            "[defaults]\nserver = []\n",
            "[defaults]\nserver = [\"a b\"]\n",
            "[defaults]\nqueue = \"yes\"\n",
            "[defaults]\nqueue_max_age = \"soon\"\n",
        ] {
            assert!(
                crate::settings::parse_str(std::path::Path::new("/c.toml"), bad, None).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_toml_error_names_file_and_line() {
        let cases = [
            (
                "[defaults]\ntls = \"maybe\"\n",
                ":2: unknown value for tls: \"maybe\"",
            ),
            (
                "[defaults]\n\nport = 0\n",
                ":3: port: expected a port number",
            ),
            (
                "[defaults]\nport = \"25\"\n",
                ":2: port: expected a port number",
            ),
            (
                "[account.a]\ntimeout = -5\n",
                ":2: timeout: expected a number of seconds",
            ),
            (
                "[account.a]\ntls_verify = \"no\"\n",
                ":2: tls_verify: expected true or false",
            ),
            (
                "[account.a]\nauth = \"gssapi\"\n",
                ":2: unknown value for auth: \"gssapi\"",
            ),
            (
                "[account.a]\nserver = \"a b\"\n",
                ":2: server: not a host name",
            ),
            ("[account.a]\nuser = \"\"\n", ":2: user: is empty"),
            (
                "[account.a]\nfrom = \"a\\nb\"\n",
                ":2: from: contains a control character",
            ),
            (
                "default_account = \"b\"\n[account.a]\n",
                ":1: default_account: no [account.b] table",
            ),
            (
                "[defaults]\nport = 1\nport = 2\n",
                ":3: port: duplicate key",
            ),
            (
                "defaults = 3\n",
                ":1: defaults: invalid type: integer `3`, expected a table",
            ),
            (
                "[account]\na = 1\n",
                ":2: a: invalid type: integer `1`, expected a table",
            ),
            (
                "default_account = 3\n",
                ":1: default_account: invalid type: integer",
            ),
            ("x = \n", ":1: x: "),
            ("[defaults\n", ":1: "),
        ];
        for (text, want) in cases {
            let msg = err("/cfg/config.toml", text);
            assert!(msg.starts_with("/cfg/config.toml:"), "{text:?}: {msg}");
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
    }
}
