//! Config files: finds, reads and parses them into one typed [`Settings`] value, with
//! account inheritance already applied.
//!
//! Two syntaxes, told apart by the file itself: postie's TOML (`[defaults]`,
//! `[account.NAME]`, `default_account = "NAME"`, keys named like the [`Account`] fields) and
//! msmtp's msmtprc (`defaults`, `account NAME [: PARENT[,PARENT...]]`, `account default :
//! NAME`, `key value` lines, `#` comments), so that moving from msmtp is a symlink. msmtp's
//! rules are kept where they matter: `defaults` applies to the accounts defined after it; an
//! account inherits only what its parents set explicitly (an empty value such as `logfile`
//! on its own line counts, and clears); settings before any `account` line form the account
//! `default` (msmtp 1.2 compatibility); `-f ADDR` picks the first account, in file order,
//! whose `from` matches case-insensitively, with shell-style `*` and `?` (msmtp 1.8.16).
//!
//! This module must not merge command-line flags (config.rs does), touch the network, run
//! `password_command`, or prompt. Keys it does not support are never used: each is warned
//! about once (on stderr and in [`Settings::warnings`]), with all the lines it is on. Every error is [`Error::Config`]
//! (EX_CONFIG, 78) and names the file and line. A file holding a literal password must not
//! be accessible by group or others, as msmtp demands of its user file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::Error;
use crate::secret::Secret;

mod msmtprc;
mod toml_file;

/// How an account secures its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsSetting {
    /// Plain connection upgraded with STARTTLS (msmtp: `tls on`, `tls_starttls on`).
    Starttls,
    /// TLS from the first byte (msmtp: `tls on`, `tls_starttls off`).
    Implicit,
    /// No TLS (msmtp: `tls off`).
    None,
}

/// Whether and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSetting {
    /// Never authenticate (msmtp `auth off`).
    Off,
    /// Pick the strongest mechanism both sides support (msmtp `auth on`).
    Auto,
    /// Exactly this SASL mechanism, upper-case (`PLAIN`, `SCRAM-SHA-256`, ...).
    Mechanism(String),
}

/// SASL mechanisms a config file may name (lower-case, as msmtp spells them).
pub const AUTH_MECHANISMS: &[&str] = &[
    "plain",
    "login",
    "scram-sha-256",
    "cram-md5",
    "xoauth2",
    "oauthbearer",
];

/// `name` (any case) as an [`AuthSetting::Mechanism`], if postie knows it.
fn mechanism(name: &str) -> Option<AuthSetting> {
    let lower = name.to_ascii_lowercase();
    AUTH_MECHANISMS
        .contains(&lower.as_str())
        .then(|| AuthSetting::Mechanism(lower.to_ascii_uppercase()))
}

/// Which OAuth 2.0 authorization server an account's `[account.NAME.oauth]` table uses:
/// a preset's endpoints, scopes and SMTP server, or none (`custom`: every URL given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthProvider {
    Microsoft,
    Google,
    Custom,
}

/// An account's `[account.NAME.oauth]` table (TOML only), as written: the oauth module
/// fills in the provider's presets and checks that what a flow needs is there.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthSettings {
    /// The account the table belongs to (`defaults` for `[defaults.oauth]` used alone):
    /// it names the token file.
    pub account: String,
    pub provider: OAuthProvider,
    pub client_id: Option<String>,
    /// Where the provider requires one; a literal secret makes the file private (0600).
    pub client_secret: Option<Secret>,
    /// Microsoft's directory (tenant) id or `common`, `organizations`, `consumers`.
    pub tenant: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub device_url: Option<String>,
    /// Extra trust for the token endpoints (a private identity provider, tests).
    pub ca_file: Option<PathBuf>,
    /// Shell commands the token file is piped through when written and read (encryption).
    pub token_command_store: Option<String>,
    pub token_command_load: Option<String>,
}

/// One account's settings; every field optional (unset = not configured here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    /// Host name or address (msmtp `host`).
    pub server: Option<String>,
    pub port: Option<u16>,
    /// msmtp: `tls` + `tls_starttls`.
    pub tls: Option<TlsSetting>,
    /// Extra CA file (msmtp `tls_trust_file`; its `system` means none).
    pub tls_ca: Option<PathBuf>,
    /// msmtp `tls_certcheck`.
    pub tls_verify: Option<bool>,
    pub user: Option<String>,
    /// A literal password in the file.
    pub password: Option<Secret>,
    /// msmtp `passwordeval`: a shell command whose first output line is the password.
    pub password_command: Option<String>,
    pub password_file: Option<PathBuf>,
    /// msmtp `auth on|off|MECHANISM`.
    pub auth: Option<AuthSetting>,
    /// Envelope sender; in an msmtprc it may be a pattern (`*@example.org`).
    pub from: Option<String>,
    /// EHLO name. msmtp calls this `domain`.
    pub helo: Option<String>,
    /// postie only: the domain that qualifies bare local names (`root` → `root@DOMAIN`).
    pub domain: Option<String>,
    /// `/etc/aliases`-style file for bare local recipients.
    pub aliases: Option<PathBuf>,
    /// Seconds; msmtp `timeout off` leaves it unset.
    pub timeout: Option<u64>,
    /// msmtp `logfile` (`-` means standard output there).
    pub log: Option<PathBuf>,
    /// postie only (TOML): DKIM private key, selector and signing domain.
    pub dkim_key: Option<PathBuf>,
    pub dkim_selector: Option<String>,
    pub dkim_domain: Option<String>,
    /// postie only (TOML `server = ["a", "b"]`): servers to fall back to, in order.
    pub fallback_servers: Vec<String>,
    /// postie only (TOML): `queue`, `queue_dir`, `queue_max_age` (seconds).
    pub queue: Option<bool>,
    pub queue_dir: Option<PathBuf>,
    pub queue_max_age: Option<u64>,
    /// postie only (TOML `[account.NAME.oauth]`): get and refresh the AUTH token itself.
    pub oauth: Option<OAuthSettings>,
    /// postie only (TOML `all_or_nothing`): send to nobody if any recipient is refused.
    pub all_or_nothing: Option<bool>,
    /// TOML `allow_plaintext_auth`, or msmtp's explicit `auth MECHANISM` (msmtp uses a
    /// method named explicitly also without TLS): AUTH may cross a link without TLS.
    pub allow_plaintext_auth: Option<bool>,
}

impl Account {
    /// Field by field: this account's value where it has one, else `fallback`'s.
    pub fn or(self, fallback: &Account) -> Account {
        let f = fallback.clone();
        let own_server = self.server.is_some();
        Account {
            server: self.server.or(f.server),
            port: self.port.or(f.port),
            tls: self.tls.or(f.tls),
            tls_ca: self.tls_ca.or(f.tls_ca),
            tls_verify: self.tls_verify.or(f.tls_verify),
            user: self.user.or(f.user),
            password: self.password.or(f.password),
            password_command: self.password_command.or(f.password_command),
            password_file: self.password_file.or(f.password_file),
            auth: self.auth.or(f.auth),
            from: self.from.or(f.from),
            helo: self.helo.or(f.helo),
            domain: self.domain.or(f.domain),
            aliases: self.aliases.or(f.aliases),
            timeout: self.timeout.or(f.timeout),
            log: self.log.or(f.log),
            dkim_key: self.dkim_key.or(f.dkim_key),
            dkim_selector: self.dkim_selector.or(f.dkim_selector),
            dkim_domain: self.dkim_domain.or(f.dkim_domain),
            fallback_servers: if own_server {
                self.fallback_servers
            } else {
                f.fallback_servers
            },
            queue: self.queue.or(f.queue),
            all_or_nothing: self.all_or_nothing.or(f.all_or_nothing),
            allow_plaintext_auth: self.allow_plaintext_auth.or(f.allow_plaintext_auth),
            queue_dir: self.queue_dir.or(f.queue_dir),
            queue_max_age: self.queue_max_age.or(f.queue_max_age),
            oauth: self.oauth.or(f.oauth),
        }
    }
}

/// Which syntax a file was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Toml,
    Msmtprc,
}

/// A parsed config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub path: PathBuf,
    pub syntax: Syntax,
    /// The `defaults` settings (for an msmtprc: as they stand at the end of the file).
    pub defaults: Account,
    /// Accounts with inheritance and defaults applied.
    pub accounts: BTreeMap<String, Account>,
    /// Account names in the order the file defines them (`from` matching takes the first).
    pub order: Vec<String>,
    pub default_account: Option<String>,
    /// What `load` printed, one line each, without the `postie: ` prefix: each unsupported
    /// key (once, with every line it is on) and each msmtp `%U`/`%H`/`%C`/`%M` left as is.
    pub warnings: Vec<String>,
    /// The file name as messages show it (`~/.msmtprc`).
    pub display: String,
}

impl Settings {
    /// For tests: the account [`Settings::choose`] picks, else the defaults alone.
    #[cfg(test)]
    pub fn account(&self, name: Option<&str>, from_addr: Option<&str>) -> Result<Account> {
        Ok(self
            .choose(name, from_addr)?
            .unwrap_or_else(|| self.defaults.clone()))
    }

    /// The account to use: `name` if given (error naming the file if unknown), else the
    /// first account whose `from` matches `from_addr` (msmtp's automatic choice), else the
    /// default account; `None` when none is chosen, and the caller decides whether the
    /// defaults alone will do ([`Settings::needs_a_choice`]). Inheritance is already
    /// applied.
    pub fn choose(&self, name: Option<&str>, from_addr: Option<&str>) -> Result<Option<Account>> {
        if let Some(name) = name {
            return match self.accounts.get(name) {
                Some(a) => Ok(Some(a.clone())),
                None => {
                    let known = if self.order.is_empty() {
                        "it defines none".to_string()
                    } else {
                        format!("it defines: {}", self.order.join(", "))
                    };
                    Err(Error::Config(format!(
                        "{}: no account named {name:?} ({known})",
                        self.display
                    ))
                    .into())
                }
            };
        }
        if let Some(addr) = from_addr {
            let wanted = address_of(addr);
            let found = self.order.iter().find_map(|n| {
                let acc = self.accounts.get(n)?;
                let pattern = address_of(acc.from.as_deref()?);
                glob_match(&pattern.to_ascii_lowercase(), &wanted.to_ascii_lowercase())
                    .then_some(acc)
            });
            if let Some(acc) = found {
                return Ok(Some(acc.clone()));
            }
        }
        Ok(self
            .default_account
            .as_ref()
            .and_then(|n| self.accounts.get(n))
            .cloned())
    }

    /// When no account was chosen: the error to stop with if the defaults alone name no
    /// server although the file defines accounts (msmtp: "account default not found").
    /// Going on would deliver straight to the recipients' MX hosts, unauthenticated, which
    /// is never what a file of accounts means. `None`: the defaults will do.
    pub fn needs_a_choice(&self) -> Option<Error> {
        if self.order.is_empty() || self.defaults.server.is_some() {
            return None;
        }
        let how = match self.syntax {
            Syntax::Toml => "default_account = \"NAME\" at the top of the file",
            Syntax::Msmtprc => "`account default : NAME`",
        };
        Some(Error::Config(format!(
            "{}: no default account (it defines: {}): choose one with -A NAME, or set {how}",
            self.display,
            self.order.join(", ")
        )))
    }

    /// What msmtp itself would use where an msmtprc account leaves a setting unset and
    /// postie's default differs: no TLS (msmtp's `tls` is off unless turned on), and port
    /// 25, or 465 with implicit TLS. For a TOML file, nothing: postie's defaults apply.
    /// Apply with `account.or(&settings.format_defaults(&account))`.
    pub fn format_defaults(&self, account: &Account) -> Account {
        if self.syntax == Syntax::Toml {
            return Account::default();
        }
        let tls = account.tls.unwrap_or(TlsSetting::None);
        Account {
            tls: Some(tls),
            port: Some(if tls == TlsSetting::Implicit { 465 } else { 25 }),
            ..Account::default()
        }
    }
}

/// Where to look when no `-C FILE` is given, in order: postie's own files, then msmtp's.
/// `env` looks up environment variables (`HOME`, `XDG_CONFIG_HOME`).
pub fn candidates(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    candidates_in(env, Path::new("/etc"))
}

/// The first of [`candidates`] that exists and sets something (see [`find_in`]).
pub fn find(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    find_in(env, Path::new("/etc"))
}

/// [`candidates`] with another directory in place of `/etc`.
pub fn candidates_in(env: &dyn Fn(&str) -> Option<String>, etc: &Path) -> Vec<PathBuf> {
    let home = env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
    // XDG Base Directory: a relative or empty XDG_CONFIG_HOME is to be ignored.
    let xdg = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut list = Vec::new();
    if let Some(x) = &xdg {
        list.push(x.join("postie").join("config.toml"));
    }
    list.push(etc.join("postie.toml"));
    if let Some(h) = &home {
        list.push(h.join(".msmtprc"));
    }
    if let Some(x) = &xdg {
        list.push(x.join("msmtp").join("config"));
    }
    list.push(etc.join("msmtprc"));
    list
}

/// [`find`] with another directory in place of `/etc`. A file with nothing but blank
/// lines and `#` comments sets nothing, so it is passed over: the commented example
/// /etc/postie.toml that the postie-mta package installs leaves ~/.msmtprc and
/// /etc/msmtprc in charge until the admin sets something in it. A file that cannot be
/// read is not passed over: [`load`] reports it.
pub fn find_in(env: &dyn Fn(&str) -> Option<String>, etc: &Path) -> Option<PathBuf> {
    candidates_in(env, etc)
        .into_iter()
        .find(|p| p.is_file() && !sets_nothing(p))
}

/// Whether the file reads as nothing but blank lines and `#` comments (both syntaxes,
/// TOML and msmtprc, comment with `#`). Not readable, or not UTF-8: false.
fn sets_nothing(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| {
        text.lines()
            .map(str::trim_start)
            .all(|l| l.is_empty() || l.starts_with('#'))
    })
}

/// Load one file, detecting its syntax. Prints a warning per unsupported key on stderr
/// (and keeps them in [`Settings::warnings`]). Refuses a file that holds a literal
/// password and is accessible by group or others.
pub fn load(path: &Path) -> Result<Settings> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let display = display_path(path, home.as_deref());
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Config(format!("{display}: cannot read config file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = line_at(e.as_bytes(), e.utf8_error().valid_up_to());
        Error::Config(format!("{display}:{line}: not UTF-8 text"))
    })?;
    let parsed = parse_file(path, &display, &text, home.as_deref())?;
    if let Some(line) = parsed.password_line {
        check_private(path, &display, line)?;
    }
    for w in &parsed.settings.warnings {
        eprintln!("postie: {w}");
    }
    Ok(parsed.settings)
}

/// Parse a config file's text without touching the file system (no permission check, no
/// printing). `home` expands `~` and `$HOME` at the start of paths.
pub fn parse_str(path: &Path, text: &str, home: Option<&Path>) -> Result<Settings> {
    let display = display_path(path, home);
    Ok(parse_file(path, &display, text, home)?.settings)
}

struct Parsed {
    settings: Settings,
    /// The first line holding a literal password.
    password_line: Option<usize>,
}

fn parse_file(path: &Path, display: &str, text: &str, home: Option<&Path>) -> Result<Parsed> {
    let ctx = Ctx { display, home };
    match detect(path, text) {
        Syntax::Toml => toml_file::parse(path, text, &ctx),
        Syntax::Msmtprc => msmtprc::parse(path, text, &ctx),
    }
}

/// TOML if the name ends in `.toml`, or if the first line that is not blank or a comment
/// opens a table or is `key = value`; msmtprc otherwise.
fn detect(path: &Path, text: &str) -> Syntax {
    if path.extension().is_some_and(|e| e == "toml") {
        return Syntax::Toml;
    }
    let first = text
        .lines()
        .map(|l| l.trim_start())
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(first) = first else {
        return Syntax::Msmtprc;
    };
    if first.starts_with('[') {
        return Syntax::Toml;
    }
    let key_end = first
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(first.len());
    let after = first.get(key_end..).unwrap_or("").trim_start();
    if key_end > 0 && after.starts_with('=') {
        Syntax::Toml
    } else {
        Syntax::Msmtprc
    }
}

/// What error messages need.
struct Ctx<'a> {
    display: &'a str,
    home: Option<&'a Path>,
}

impl Ctx<'_> {
    fn err(&self, line: usize, msg: impl std::fmt::Display) -> anyhow::Error {
        Error::Config(format!("{}:{line}: {msg}", self.display)).into()
    }

    fn path(&self, line: usize, key: &str, raw: &str) -> Result<PathBuf> {
        expand_path(raw, self.home).map_err(|m| self.err(line, format!("{key}: {m}")))
    }
}

/// 1-based line number of byte `offset`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let upto = bytes.get(..offset).unwrap_or(bytes);
    upto.iter().filter(|&&b| b == b'\n').count() + 1
}

/// `~`, `~/x`, `$HOME` and `$HOME/x` at the start of a path mean the home directory.
fn expand_path(raw: &str, home: Option<&Path>) -> std::result::Result<PathBuf, String> {
    let rest = if raw == "~" || raw == "$HOME" {
        Some("")
    } else {
        raw.strip_prefix("~/")
            .or_else(|| raw.strip_prefix("$HOME/"))
    };
    match (rest, home) {
        (None, _) => Ok(PathBuf::from(raw)),
        (Some(""), Some(h)) => Ok(h.to_path_buf()),
        (Some(r), Some(h)) => Ok(h.join(r)),
        (Some(_), None) => Err(format!("cannot expand {raw:?}: HOME is not set")),
    }
}

/// The path as messages show it: under the home directory as `~/...`.
fn display_path(path: &Path, home: Option<&Path>) -> String {
    if let Some(rest) = home
        .filter(|h| h.is_absolute() && h.parent().is_some())
        .and_then(|h| path.strip_prefix(h).ok())
    {
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

/// The address in `Name <addr>`, or the whole trimmed text.
fn address_of(s: &str) -> String {
    let s = s.trim();
    match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(open), Some(inner)) => inner.get(open + 1..).unwrap_or("").trim().to_string(),
        _ => s.to_string(),
    }
}

/// Shell-style match of `*` (any run) and `?` (one character); everything else literal.
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where in the text it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or(&[]).iter().all(|&c| c == '*')
}

/// Refuse a file holding a password when group or others have any access (msmtp: "must
/// have no more than user read/write permissions").
fn check_private(path: &Path, display: &str, line: usize) -> Result<()> {
    match open_mode(path, display)? {
        Some(mode) => Err(Error::Config(format!(
            "{display}:{line}: password: the file holds a password, so it must not be \
             readable by others (mode {mode:04o}): chmod 600 {display}"
        ))
        .into()),
        None => Ok(()),
    }
}

/// The permission bits of a secret's file when group or others have any access to it
/// (`None`: private). The one rule for configuration files holding a password and for
/// password files.
#[cfg(unix)]
pub fn open_mode(path: &Path, display: &str) -> Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::Config(format!("{display}: cannot check permissions: {e}")))?
        .permissions()
        .mode();
    Ok((mode & 0o077 != 0).then_some(mode & 0o7777))
}

#[cfg(not(unix))]
pub fn open_mode(_path: &Path, _display: &str) -> Result<Option<u32>> {
    Ok(None)
}

/// Default maximum age of a queue entry: 5 days.
pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5 * 24 * 60 * 60);

/// `SECS`, or a number with `s`, `m`, `h` or `d` (`5d`, `12h`).
pub fn parse_age(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, 's'),
    };
    let n: u64 = num.parse().ok()?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};

    pub(super) const HOME: &str = "/home/u";

    pub(super) fn msmtp(text: &str) -> Settings {
        parse_str(Path::new("/cfg/msmtprc"), text, Some(Path::new(HOME))).unwrap()
    }

    pub(super) fn toml_cfg(text: &str) -> Settings {
        parse_str(Path::new("/cfg/config.toml"), text, Some(Path::new(HOME))).unwrap()
    }

    pub(super) fn err(path: &str, text: &str) -> String {
        let e = parse_str(Path::new(path), text, Some(Path::new(HOME))).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Config, "{e:#}");
        format!("{e:#}")
    }

    const MSMTPRC: &str = r#"# defaults for all accounts below
defaults
port 587
tls on
tls_trust_file /etc/ssl/certs/ca-certificates.crt
logfile ~/.msmtp.log

account base
host mail.example.org
from me@example.org
auth on
user me
passwordeval "pass show mail"

account work : base
from "Me At Work <me@work.example>"
host smtp.work.example
tls_starttls off
port 465
domain client.work.example

account default : work
"#;

    const TOML: &str = r#"
default_account = "work"

[defaults]
port = 587
tls = "starttls"
tls_ca = "/etc/ssl/certs/ca-certificates.crt"
log = "~/.msmtp.log"

[account.base]
server = "mail.example.org"
from = "me@example.org"
auth = true
user = "me"
password_command = "pass show mail"

[account.work]
server = "smtp.work.example"
from = "Me At Work <me@work.example>"
tls = "implicit"
port = 465
helo = "client.work.example"
auth = "on"
user = "me"
password_command = "pass show mail"
"#;

    #[test]
    fn msmtprc_defaults_accounts_inheritance_and_default() {
        let s = msmtp(MSMTPRC);
        assert_eq!(s.syntax, Syntax::Msmtprc);
        assert_eq!(s.order, ["base", "work", "default"]);
        assert_eq!(s.default_account.as_deref(), Some("default"));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);

        let base = Account {
            server: Some("mail.example.org".into()),
            port: Some(587),
            tls: Some(TlsSetting::Starttls),
            tls_ca: Some("/etc/ssl/certs/ca-certificates.crt".into()),
            user: Some("me".into()),
            password_command: Some("pass show mail".into()),
            auth: Some(AuthSetting::Auto),
            from: Some("me@example.org".into()),
            log: Some("/home/u/.msmtp.log".into()),
            ..Account::default()
        };
        assert_eq!(s.accounts["base"], base);
        let work = Account {
            server: Some("smtp.work.example".into()),
            port: Some(465),
            tls: Some(TlsSetting::Implicit),
            from: Some("Me At Work <me@work.example>".into()),
            helo: Some("client.work.example".into()),
            ..base.clone()
        };
        assert_eq!(s.accounts["work"], work);
        assert_eq!(s.accounts["default"], work);
        assert_eq!(s.account(None, None).unwrap(), work);
        assert_eq!(s.account(Some("base"), None).unwrap(), base);
        assert_eq!(
            s.defaults,
            Account {
                port: Some(587),
                tls: Some(TlsSetting::Starttls),
                tls_ca: base.tls_ca.clone(),
                log: base.log.clone(),
                ..Account::default()
            }
        );
    }

    #[test]
    fn from_address_picks_the_first_matching_account() {
        let s = msmtp(
            "account one\nhost h1\nfrom one@example.org\n\
             account two\nhost h2\nfrom Two <two@example.org>\n\
             account any\nhost h3\nfrom *@example.net\n\
             account twin\nhost h4\nfrom ONE@example.org\n\
             account default : two\n",
        );
        let cases = [
            (Some("one@example.org"), "h1"),
            (Some("One@Example.ORG"), "h1"),
            (Some("Someone <one@example.org>"), "h1"),
            (Some("two@example.org"), "h2"),
            (Some("x@example.net"), "h3"),
            (Some("x@sub.example.com"), "h2"),
            (None, "h2"),
        ];
        for (from, host) in cases {
            let a = s.account(None, from).unwrap();
            assert_eq!(a.server.as_deref(), Some(host), "{from:?}");
        }
        // An explicit name wins over the address.
        let a = s.account(Some("any"), Some("one@example.org")).unwrap();
        assert_eq!(a.server.as_deref(), Some("h3"));
    }

    #[test]
    fn unknown_account_names_the_file() {
        let s = msmtp("account a\nhost h\n");
        let e = s.account(Some("nope"), None).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Config);
        assert_eq!(
            e.to_string(),
            "/cfg/msmtprc: no account named \"nope\" (it defines: a)"
        );
    }

    #[test]
    fn password_values_never_appear_in_errors_or_debug() {
        let msg = err("/cfg/msmtprc", "account a\npassword \"hunter2\n");
        assert!(!msg.contains("hunter2"), "{msg}");
        let msg = err("/cfg/c.toml", "[defaults]\npassword = 42\n");
        assert!(msg.contains(":2: password: expected a string"), "{msg}");
        let s = msmtp("account a\npassword hunter2\n");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_keys_are_warned_about_once_each() {
        let s = msmtp(
            "defaults\ntls_fingerprint 00:11\n\
             account a\nhost h\nsyslog LOG_MAIL\ntls_fingerprint 22:33\n\
             account b\nprotocol lmtp\ntls_fingerprint 44\n",
        );
        assert_eq!(
            s.warnings,
            [
                "/cfg/msmtprc:2: ignoring unsupported key 'tls_fingerprint' (also on lines 6, 9)",
                "/cfg/msmtprc:5: ignoring unsupported key 'syslog'",
                "/cfg/msmtprc:8: ignoring unsupported key 'protocol'",
            ]
        );
        // Nothing from an ignored key is used.
        assert_eq!(
            s.accounts["a"],
            Account {
                server: Some("h".into()),
                ..Account::default()
            }
        );

        let t = toml_cfg(
            "colour = 1\n[defaults]\nsever = \"x\"\n[account.a]\nserver = \"h\"\ntls_fingerprint = \"00\"\n",
        );
        assert_eq!(
            t.warnings,
            [
                "/cfg/config.toml:1: ignoring unsupported key 'colour'",
                "/cfg/config.toml:3: ignoring unsupported key 'defaults.sever'",
                "/cfg/config.toml:6: ignoring unsupported key 'account.a.tls_fingerprint'",
            ]
        );
        assert_eq!(
            t.accounts["a"],
            Account {
                server: Some("h".into()),
                ..Account::default()
            }
        );
    }

    #[test]
    fn toml_matches_the_msmtprc_equivalent() {
        let t = toml_cfg(TOML);
        let m = msmtp(MSMTPRC);
        assert_eq!(t.syntax, Syntax::Toml);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(t.order, ["base", "work"]);
        assert_eq!(t.default_account.as_deref(), Some("work"));
        assert_eq!(t.accounts["base"], m.accounts["base"]);
        assert_eq!(t.accounts["work"], m.accounts["work"]);
        assert_eq!(t.defaults, m.defaults);
        assert_eq!(
            t.account(None, None).unwrap(),
            m.account(None, None).unwrap()
        );
        let by_from = t.account(None, Some("me@example.org")).unwrap();
        assert_eq!(by_from, m.accounts["base"]);
    }

    #[test]
    fn syntax_is_detected_from_name_and_content() {
        let cases = [
            ("config.toml", "", Syntax::Toml),
            ("config.toml", "defaults\n", Syntax::Toml),
            ("msmtprc", "", Syntax::Msmtprc),
            ("msmtprc", "# c\n\ndefaults\nport 25\n", Syntax::Msmtprc),
            ("msmtprc", "account a : b\n", Syntax::Msmtprc),
            ("msmtprc", "passwordeval a=b\n", Syntax::Msmtprc),
            ("config", "  # c\n[defaults]\n", Syntax::Toml),
            ("config", "default_account = \"a\"\n", Syntax::Toml),
            ("config", "default_account=\"a\"\n", Syntax::Toml),
        ];
        for (name, text, want) in cases {
            assert_eq!(detect(Path::new(name), text), want, "{name} {text:?}");
        }
    }

    #[test]
    fn glob_and_address_helpers() {
        let cases = [
            ("a@b", "a@b", true),
            ("a@b", "a@c", false),
            ("*@example.org", "me@example.org", true),
            ("*@example.org", "me@example.org.evil", false),
            ("*", "", true),
            ("?@b", "a@b", true),
            ("?@b", "ab@b", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("**a", "a", true),
            ("", "", true),
            ("", "a", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(glob_match(p, t), want, "{p:?} {t:?}");
        }
        assert_eq!(address_of(" Me <me@x> "), "me@x");
        assert_eq!(address_of("me@x"), "me@x");
        assert_eq!(address_of("<me@x>"), "me@x");
    }

    #[test]
    fn paths_expand_home() {
        let home = Some(Path::new("/home/u"));
        let cases = [
            ("~", "/home/u"),
            ("~/a/b", "/home/u/a/b"),
            ("$HOME", "/home/u"),
            ("$HOME/x", "/home/u/x"),
            ("/etc/x", "/etc/x"),
            ("~user/x", "~user/x"),
            ("a/~/b", "a/~/b"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                expand_path(raw, home).unwrap(),
                PathBuf::from(want),
                "{raw}"
            );
        }
        assert_eq!(
            display_path(Path::new("/home/u/.msmtprc"), home),
            "~/.msmtprc"
        );
        assert_eq!(
            display_path(Path::new("/etc/msmtprc"), home),
            "/etc/msmtprc"
        );
        assert_eq!(
            display_path(Path::new("/etc/msmtprc"), Some(Path::new("/"))),
            "/etc/msmtprc"
        );
    }

    #[test]
    fn format_defaults_follow_msmtp_only_for_msmtprc() {
        let m = msmtp("account a\nhost h\naccount b\nhost h\ntls on\ntls_starttls off\n");
        let a = m.accounts["a"].clone();
        let filled = a.clone().or(&m.format_defaults(&a));
        assert_eq!(
            (filled.tls, filled.port),
            (Some(TlsSetting::None), Some(25))
        );
        let b = m.accounts["b"].clone();
        let filled = b.clone().or(&m.format_defaults(&b));
        assert_eq!(
            (filled.tls, filled.port),
            (Some(TlsSetting::Implicit), Some(465))
        );
        let t = toml_cfg("[account.a]\nserver = \"h\"\n");
        assert_eq!(t.format_defaults(&t.accounts["a"]), Account::default());
    }

    #[test]
    fn load_reports_unreadable_and_non_utf8_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = load(&missing).unwrap_err();
        assert_eq!(exit_code(&e), Exit::Config);
        assert!(
            e.to_string().contains("nope: cannot read config file"),
            "{e}"
        );
        let bad = dir.path().join("latin1");
        std::fs::write(&bad, b"account a\nhost h\nuser caf\xe9\n").unwrap();
        let e = load(&bad).unwrap_err();
        assert!(e.to_string().ends_with("latin1:3: not UTF-8 text"), "{e}");
    }

    #[test]
    fn candidates_come_in_documented_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let list = candidates(&env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]));
        let want: Vec<PathBuf> = [
            "/x/postie/config.toml",
            "/etc/postie.toml",
            "/h/.msmtprc",
            "/x/msmtp/config",
            "/etc/msmtprc",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(list, want);
        let list = candidates(&env(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "rel")]));
        assert_eq!(
            list.first(),
            Some(&PathBuf::from("/h/.config/postie/config.toml"))
        );
        assert_eq!(list.get(3), Some(&PathBuf::from("/h/.config/msmtp/config")));
        let list = candidates(&env(&[]));
        assert_eq!(
            list,
            [
                PathBuf::from("/etc/postie.toml"),
                PathBuf::from("/etc/msmtprc")
            ]
        );
    }

    #[test]
    fn find_takes_the_first_existing_file() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let etc = root.path().join("etc");
        let xdg = home.join(".config");
        for d in [&etc, &xdg.join("postie"), &xdg.join("msmtp")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let home_s = home.to_string_lossy().into_owned();
        let env = move |k: &str| (k == "HOME").then(|| home_s.clone());
        // Created from last to first: each new file must win.
        let order = [
            etc.join("msmtprc"),
            xdg.join("msmtp/config"),
            home.join(".msmtprc"),
            etc.join("postie.toml"),
            xdg.join("postie/config.toml"),
        ];
        assert_eq!(find_in(&env, &etc), None);
        for p in &order {
            std::fs::write(p, "set\n").unwrap();
            assert_eq!(find_in(&env, &etc).as_ref(), Some(p));
        }
        // A file of comments only sets nothing and is passed over; one line that sets
        // something makes it count.
        std::fs::write(&order[4], "# all comments\n\n  # indented\n").unwrap();
        assert_eq!(find_in(&env, &etc).as_ref(), Some(&order[3]));
        std::fs::write(&order[3], "").unwrap();
        assert_eq!(find_in(&env, &etc).as_ref(), Some(&order[2]));
        std::fs::write(&order[3], "# the example\n[defaults]\n").unwrap();
        assert_eq!(find_in(&env, &etc).as_ref(), Some(&order[3]));
        // A directory in the way is not a config file.
        std::fs::remove_file(&order[4]).unwrap();
        std::fs::create_dir(&order[4]).unwrap();
        assert_eq!(find_in(&env, &etc).as_ref(), Some(&order[3]));
    }
    #[cfg(unix)]
    #[test]
    fn a_password_file_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("account a\npassword x\n", 0o644, false),
            ("account a\npassword x\n", 0o640, false),
            ("account a\npassword x\n", 0o604, false),
            ("account a\npassword x\n", 0o600, true),
            ("account a\npassword x\n", 0o400, true),
            ("account a\npasswordeval pass x\n", 0o644, true),
            ("[account.a]\npassword = \"x\"\n", 0o644, false),
            ("[account.a]\npassword = \"x\"\n", 0o600, true),
            ("[account.a]\npassword_file = \"/p\"\n", 0o644, true),
        ];
        for (i, (text, mode, ok)) in cases.into_iter().enumerate() {
            let name = if text.starts_with('[') {
                "c.toml"
            } else {
                "rc"
            };
            let path = dir.path().join(format!("{i}{name}"));
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let got = load(&path);
            assert_eq!(got.is_ok(), ok, "{text:?} {mode:o}: {got:?}");
            if let Err(e) = got {
                assert_eq!(exit_code(&e), Exit::Config);
                let msg = e.to_string();
                assert!(msg.contains(":2: password: "), "{msg}");
                assert!(msg.contains("must not be readable by others"), "{msg}");
                assert!(msg.contains("chmod 600 "), "{msg}");
            }
        }
    }
}
