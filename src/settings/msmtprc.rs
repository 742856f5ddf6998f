//! msmtp's configuration syntax (msmtprc), read the way msmtp reads it, so that moving from
//! msmtp is a symlink: `defaults` applies to the accounts defined after it; `account NAME :
//! PARENT[,PARENT...]` inherits only what its parents set explicitly (an empty value counts,
//! and clears), later parents winning; settings before any `account` line form the account
//! `default` (msmtp 1.2 compatibility). Lines are `key value`; `#` starts a comment only at
//! the start of a line; a value in double quotes may start or end with blanks.
//!
//! Only the keys postie supports are used; every other key is reported once as unsupported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::AUTH_MECHANISMS;
use super::{mechanism, Account, AuthSetting, Ctx, Parsed, Settings, Syntax, TlsSetting};
use crate::secret::Secret;

/// A setting an msmtprc line may make: `None` = not set here, `Some(None)` = set to
/// nothing (an empty value, `off`, `system`), which overrides what is inherited.
type Slot<T> = Option<Option<T>>;

/// One `defaults` block or account, msmtp style. `tls` and `tls_starttls` stay separate
/// until the end because each is inherited on its own.
#[derive(Clone, Default)]
struct Layer {
    server: Slot<String>,
    port: Slot<u16>,
    tls_on: Slot<bool>,
    starttls: Slot<bool>,
    tls_ca: Slot<PathBuf>,
    tls_verify: Slot<bool>,
    user: Slot<String>,
    password: Slot<Secret>,
    password_command: Slot<String>,
    auth: Slot<AuthSetting>,
    from: Slot<String>,
    helo: Slot<String>,
    aliases: Slot<PathBuf>,
    timeout: Slot<u64>,
    log: Slot<PathBuf>,
}

impl Layer {
    /// Take every setting `top` makes.
    fn overlay(&mut self, top: &Layer) {
        macro_rules! take {
            ($($f:ident),*) => {$(
                if top.$f.is_some() {
                    self.$f = top.$f.clone();
                }
            )*};
        }
        take!(
            server,
            port,
            tls_on,
            starttls,
            tls_ca,
            tls_verify,
            user,
            password,
            password_command,
            auth,
            from,
            helo,
            aliases,
            timeout,
            log
        );
    }

    fn account(self) -> Account {
        let tls_on = self.tls_on.flatten();
        let starttls = self.starttls.flatten();
        let auth = self.auth.flatten();
        Account {
            server: self.server.flatten(),
            port: self.port.flatten(),
            tls: match (tls_on, starttls) {
                (None, _) => None,
                (Some(false), _) => Some(TlsSetting::None),
                (Some(true), Some(false)) => Some(TlsSetting::Implicit),
                (Some(true), _) => Some(TlsSetting::Starttls),
            },
            tls_ca: self.tls_ca.flatten(),
            tls_verify: self.tls_verify.flatten(),
            user: self.user.flatten(),
            password: self.password.flatten(),
            password_command: self.password_command.flatten(),
            password_file: None,
            auth: auth.clone(),
            from: self.from.flatten(),
            helo: self.helo.flatten(),
            domain: None,
            aliases: self.aliases.flatten(),
            timeout: self.timeout.flatten(),
            log: self.log.flatten(),
            // msmtp has no DKIM keys.
            dkim_key: None,
            dkim_selector: None,
            dkim_domain: None,
            // msmtp has one host per account and no queue.
            fallback_servers: Vec::new(),
            queue: None,
            queue_dir: None,
            queue_max_age: None,
            // OAuth needs postie's TOML file (msmtp users have passwordeval).
            oauth: None,
            // msmtp's all-or-nothing belongs to its command line (the msmtp persona), not
            // to the file: the sendmail persona keeps sendmail's partial delivery.
            all_or_nothing: None,
            // msmtp refuses to send a password in clear text when it picks the method
            // itself (`auth on`), but uses a method named explicitly (`auth plain`) as it
            // is, TLS or not: the file's explicit choice is the permission.
            allow_plaintext_auth: match &auth {
                Some(AuthSetting::Mechanism(_)) => Some(true),
                _ => None,
            },
        }
    }
}

struct MsmtpAccount {
    name: String,
    /// The defaults as they stood when the account began.
    base: Layer,
    /// What the account and its parents set explicitly.
    own: Layer,
}

/// What to warn about: unsupported keys by name (with every line they occur on, so each
/// is reported once), and notes tied to one line.
#[derive(Default)]
struct Warnings {
    unsupported: Vec<(String, Vec<usize>)>,
    notes: Vec<(usize, String)>,
}

impl Warnings {
    fn unsupported(&mut self, key: &str, line: usize) {
        match self.unsupported.iter_mut().find(|(k, _)| k == key) {
            Some((_, lines)) => lines.push(line),
            None => self.unsupported.push((key.to_string(), vec![line])),
        }
    }

    /// One line each, in file order, without the `postie: ` prefix.
    fn render(self, display: &str) -> Vec<String> {
        let mut all = self.notes;
        for (key, lines) in self.unsupported {
            let Some((first, rest)) = lines.split_first() else {
                continue;
            };
            let also = match rest {
                [] => String::new(),
                [one] => format!(" (also on line {one})"),
                _ => {
                    let list: Vec<String> = rest.iter().map(|l| l.to_string()).collect();
                    format!(" (also on lines {})", list.join(", "))
                }
            };
            all.push((*first, format!("ignoring unsupported key '{key}'{also}")));
        }
        all.sort();
        all.into_iter()
            .map(|(line, msg)| format!("{display}:{line}: {msg}"))
            .collect()
    }
}

enum Target {
    Nothing,
    Defaults,
    /// The account defined last.
    Account,
}

pub(super) fn parse(path: &Path, text: &str, ctx: &Ctx) -> Result<Parsed> {
    let mut defaults = Layer::default();
    let mut accounts: Vec<MsmtpAccount> = Vec::new();
    let mut target = Target::Nothing;
    let mut warnings = Warnings::default();
    let mut password_line = None;

    for (index, raw) in text.split('\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let content = raw.trim_start_matches(is_blank);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let (key, rest) = match content.find(is_blank) {
            Some(i) => content.split_at(i),
            None => (content, ""),
        };
        let arg = rest.trim_matches(is_blank);

        match key {
            "defaults" => {
                if !arg.is_empty() {
                    return Err(ctx.err(line, "defaults: takes no value"));
                }
                target = Target::Defaults;
                continue;
            }
            "account" => {
                let (name, parents) = account_line(arg).map_err(|m| ctx.err(line, m))?;
                if accounts.iter().any(|a| a.name == name) {
                    return Err(ctx.err(
                        line,
                        format!("account {name:?} is already defined in this file"),
                    ));
                }
                let mut own = Layer::default();
                for parent in &parents {
                    let p = accounts.iter().find(|a| &a.name == parent).ok_or_else(|| {
                        ctx.err(line, format!("account {parent:?} is not (yet) defined"))
                    })?;
                    own.overlay(&p.own);
                }
                accounts.push(MsmtpAccount {
                    name,
                    base: defaults.clone(),
                    own,
                });
                target = Target::Account;
                continue;
            }
            _ => {}
        }

        // msmtp 1.2 compatibility: settings before any `account` line form "default".
        if matches!(target, Target::Nothing) {
            accounts.push(MsmtpAccount {
                name: "default".to_string(),
                base: defaults.clone(),
                own: Layer::default(),
            });
            target = Target::Account;
        }
        let layer = match target {
            Target::Defaults => &mut defaults,
            _ => match accounts.last_mut() {
                Some(a) => &mut a.own,
                None => &mut defaults,
            },
        };
        let value = unquote(arg).map_err(|m| ctx.err(line, format!("{key}: {m}")))?;
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ctx.err(line, format!("{key}: contains a control character")));
        }
        if (key == "from" || key == "domain")
            && ["%U", "%H", "%C", "%M"].iter().any(|p| value.contains(p))
        {
            let note = format!(
                "{key}: msmtp's %U, %H, %C and %M are not expanded: {value:?} is used as written"
            );
            warnings.notes.push((line, note));
        }
        if key == "password" && !value.is_empty() {
            password_line.get_or_insert(line);
        }
        if !setting(layer, key, &value, line, ctx)? {
            warnings.unsupported(key, line);
        }
    }

    let mut order = Vec::new();
    let mut map = BTreeMap::new();
    for a in accounts {
        let mut layer = a.base;
        layer.overlay(&a.own);
        order.push(a.name.clone());
        map.insert(a.name, layer.account());
    }
    let default_account = map.contains_key("default").then(|| "default".to_string());
    Ok(Parsed {
        settings: Settings {
            path: path.to_path_buf(),
            syntax: Syntax::Msmtprc,
            defaults: defaults.account(),
            accounts: map,
            order,
            default_account,
            warnings: warnings.render(ctx.display),
            display: ctx.display.to_string(),
        },
        password_line,
    })
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// `NAME` or `NAME : PARENT[,PARENT...]`.
fn account_line(arg: &str) -> std::result::Result<(String, Vec<String>), String> {
    let (name, parents) = match arg.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (arg, None),
    };
    let name = unquote(name.trim_matches(is_blank))?;
    if name.is_empty() {
        return Err("account: missing account name".into());
    }
    if name.contains(',') {
        return Err(format!(
            "account: a name must not contain commas or colons: {name:?}"
        ));
    }
    let mut list = Vec::new();
    for p in parents.into_iter().flat_map(|p| p.split(',')) {
        let p = unquote(p.trim_matches(is_blank))?;
        if p.is_empty() {
            return Err("account: missing account name after ':'".into());
        }
        list.push(p);
    }
    Ok((name, list))
}

/// A value as msmtp reads it: enclosing double quotes are removed (so a value may start or
/// end with blanks), and inside them `\"` and `\\` stand for `"` and `\`. An opening quote
/// without a closing one is an error rather than part of the value.
fn unquote(arg: &str) -> std::result::Result<String, String> {
    let Some(rest) = arg.strip_prefix('"') else {
        return Ok(arg.to_string());
    };
    let Some(inner) = rest.strip_suffix('"') else {
        // Not echoed: the value may be a password.
        return Err("unterminated quote: a value that starts with '\"' must end with one".into());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&n)) if n == '"' || n == '\\' => {
                out.push(n);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Apply one msmtprc line. `Ok(false)` means the key is not supported.
fn setting(layer: &mut Layer, key: &str, value: &str, line: usize, ctx: &Ctx) -> Result<bool> {
    let bad = |what: &str| ctx.err(line, format!("unknown value for {key}: {value:?}{what}"));
    let text = || (!value.is_empty()).then(|| value.to_string());
    let on_off = || match value {
        "" | "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(bad(" (on or off)")),
    };
    match key {
        "host" => {
            if value.is_empty() {
                return Err(ctx.err(line, "host: needs a value"));
            }
            if value.chars().any(char::is_whitespace) {
                return Err(bad(" (a host name)"));
            }
            layer.server = Some(Some(value.to_string()));
        }
        "port" => {
            layer.port = Some(Some(port_number(value).ok_or_else(|| bad(" (1-65535)"))?));
        }
        "timeout" | "connect_timeout" => {
            layer.timeout = Some(match value {
                "off" => None,
                _ => Some(seconds(value).ok_or_else(|| bad(" (off or seconds)"))?),
            });
        }
        "from" => layer.from = Some(text()),
        "domain" => {
            if value.chars().any(char::is_whitespace) {
                return Err(bad(" (a host name for EHLO)"));
            }
            layer.helo = Some(text());
        }
        "auth" => {
            layer.auth = Some(Some(match value {
                "" | "on" => AuthSetting::Auto,
                "off" => AuthSetting::Off,
                m => mechanism(m).ok_or_else(|| bad(&auth_choices()))?,
            }));
        }
        "user" => layer.user = Some(text()),
        "password" => {
            // Never echo the value: it is a secret.
            layer.password = Some(text().map(Secret::new));
        }
        "passwordeval" => layer.password_command = Some(text()),
        "tls" => layer.tls_on = Some(Some(on_off()?)),
        "tls_starttls" => layer.starttls = Some(Some(on_off()?)),
        "tls_nostarttls" if value.is_empty() => layer.starttls = Some(Some(false)),
        "tls_certcheck" => layer.tls_verify = Some(Some(on_off()?)),
        "tls_nocertcheck" if value.is_empty() => layer.tls_verify = Some(Some(false)),
        "tls_trust_file" => {
            layer.tls_ca = Some(match value {
                "" | "system" => None,
                p => Some(ctx.path(line, key, p)?),
            });
        }
        "aliases" => {
            layer.aliases = Some(match value {
                "" => None,
                p => Some(ctx.path(line, key, p)?),
            });
        }
        "logfile" => {
            layer.log = Some(match value {
                "" => None,
                p => Some(ctx.path(line, key, p)?),
            });
        }
        // The only protocol postie speaks; anything else is reported as unsupported.
        "protocol" if value == "smtp" => {}
        _ => return Ok(false),
    }
    Ok(true)
}

fn port_number(s: &str) -> Option<u16> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&p| p > 0)
}

fn seconds(s: &str) -> Option<u64> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|&n| n > 0)
}

fn auth_choices() -> String {
    format!(" (on, off, {})", AUTH_MECHANISMS.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::parse_str;
    use crate::settings::tests::{err, msmtp};

    #[test]
    fn inheritance_follows_msmtp_masks() {
        // A child takes only what its parents set, over the defaults current at the child;
        // an empty value set in a parent clears; later parents win; defaults set after an
        // account do not reach it.
        let s = msmtp(
            "defaults\nlogfile /var/log/a\nport 25\n\
             account p1\nlogfile\nuser one\n\
             account p2\nuser two\nhost h2\n\
             defaults\nport 2525\n\
             account c : p1, p2\n\
             account d : p2,p1\n",
        );
        let c = &s.accounts["c"];
        assert_eq!(c.log, None, "p1 cleared logfile");
        assert_eq!(c.user.as_deref(), Some("two"));
        assert_eq!(c.server.as_deref(), Some("h2"));
        assert_eq!(c.port, Some(2525), "defaults current at c");
        assert_eq!(s.accounts["d"].user.as_deref(), Some("one"));
        assert_eq!(s.accounts["p1"].port, Some(25), "defaults at p1's time");
        assert_eq!(
            s.accounts["p2"].log.as_deref(),
            Some(Path::new("/var/log/a"))
        );
        assert_eq!(s.defaults.port, Some(2525));
        assert_eq!(s.default_account, None);
        assert_eq!(s.account(None, None).unwrap(), s.defaults);
    }

    #[test]
    fn settings_before_any_account_form_the_default_account() {
        let s = msmtp("host relay.example\nport 25\n");
        assert_eq!(s.order, ["default"]);
        assert_eq!(s.default_account.as_deref(), Some("default"));
        let a = s.account(None, None).unwrap();
        assert_eq!(a.server.as_deref(), Some("relay.example"));
        assert_eq!(a.port, Some(25));
    }

    #[test]
    fn tls_settings_combine_like_msmtp() {
        let cases = [
            ("", None),
            ("tls on", Some(TlsSetting::Starttls)),
            ("tls", Some(TlsSetting::Starttls)),
            ("tls on\ntls_starttls on", Some(TlsSetting::Starttls)),
            ("tls on\ntls_starttls off", Some(TlsSetting::Implicit)),
            ("tls_starttls off\ntls on", Some(TlsSetting::Implicit)),
            ("tls on\ntls_nostarttls", Some(TlsSetting::Implicit)),
            ("tls off", Some(TlsSetting::None)),
            ("tls off\ntls_starttls off", Some(TlsSetting::None)),
            ("tls_starttls off", None),
        ];
        for (lines, want) in cases {
            let s = msmtp(&format!("account a\nhost h\n{lines}\n"));
            assert_eq!(s.accounts["a"].tls, want, "{lines:?}");
        }
    }

    #[test]
    fn values_map_to_fields() {
        type Set = fn(&mut Account);
        // A method named explicitly is also msmtp's permission to use it without TLS.
        fn named(a: &mut Account, m: &str) {
            a.auth = Some(AuthSetting::Mechanism(m.into()));
            a.allow_plaintext_auth = Some(true);
        }
        let cases: &[(&str, Set)] = &[
            ("timeout 30", |a| a.timeout = Some(30)),
            ("timeout off", |_| {}),
            ("connect_timeout 5", |a| a.timeout = Some(5)),
            ("tls_certcheck off", |a| a.tls_verify = Some(false)),
            ("tls_certcheck", |a| a.tls_verify = Some(true)),
            ("tls_nocertcheck", |a| a.tls_verify = Some(false)),
            ("tls_trust_file system", |_| {}),
            ("tls_trust_file $HOME/ca.pem", |a| {
                a.tls_ca = Some("/home/u/ca.pem".into())
            }),
            ("aliases ~/aliases", |a| {
                a.aliases = Some("/home/u/aliases".into())
            }),
            ("aliases /etc/aliases", |a| {
                a.aliases = Some("/etc/aliases".into())
            }),
            ("logfile -", |a| a.log = Some("-".into())),
            ("auth off", |a| a.auth = Some(AuthSetting::Off)),
            ("auth", |a| a.auth = Some(AuthSetting::Auto)),
            ("auth plain", |a| named(a, "PLAIN")),
            ("auth login", |a| named(a, "LOGIN")),
            ("auth scram-sha-256", |a| named(a, "SCRAM-SHA-256")),
            ("auth cram-md5", |a| named(a, "CRAM-MD5")),
            ("auth xoauth2", |a| named(a, "XOAUTH2")),
            ("auth oauthbearer", |a| named(a, "OAUTHBEARER")),
            ("domain client.example", |a| {
                a.helo = Some("client.example".into())
            }),
            ("user", |_| {}),
            ("protocol smtp", |_| {}),
        ];
        for (line, set) in cases {
            let s = msmtp(&format!("account a\n{line}\n"));
            let mut want = Account::default();
            set(&mut want);
            assert_eq!(s.accounts["a"], want, "{line:?}");
            assert!(s.warnings.is_empty(), "{line:?}: {:?}", s.warnings);
        }
    }

    #[test]
    fn msmtp_placeholders_are_reported_not_expanded() {
        let s = msmtp("account a\nfrom %U@%M\ndomain %H\nuser %U\n");
        assert_eq!(s.accounts["a"].from.as_deref(), Some("%U@%M"));
        assert_eq!(
            s.warnings,
            [
                "/cfg/msmtprc:2: from: msmtp's %U, %H, %C and %M are not expanded: \"%U@%M\" is used as written",
                "/cfg/msmtprc:3: domain: msmtp's %U, %H, %C and %M are not expanded: \"%H\" is used as written",
            ]
        );
    }

    #[test]
    fn quoted_values() {
        let s = msmtp(
            "account a\n\
             password \"  spaced secret \"\n\
             user \"quote\\\"inside\\\\\"\n\
             from \"\"\n\
             passwordeval   echo \"x y\"  \n\
             host \"smtp.example\"\n\
             account \"b\" : \"a\"\n",
        );
        let a = &s.accounts["a"];
        assert_eq!(
            a.password.as_ref().map(Secret::expose),
            Some("  spaced secret ")
        );
        assert_eq!(a.user.as_deref(), Some("quote\"inside\\"));
        assert_eq!(a.from, None);
        assert_eq!(a.password_command.as_deref(), Some("echo \"x y\""));
        assert_eq!(a.server.as_deref(), Some("smtp.example"));
        assert_eq!(&s.accounts["b"], a);
    }

    #[test]
    fn every_msmtprc_error_names_file_and_line() {
        let cases = [
            (
                "account a\ntls_starttls maybe\n",
                ":2: unknown value for tls_starttls: \"maybe\"",
            ),
            (
                "account a\n\ntls yes\n",
                ":3: unknown value for tls: \"yes\"",
            ),
            (
                "account a\ntls_certcheck 1\n",
                ":2: unknown value for tls_certcheck: \"1\"",
            ),
            ("account a\nport 0\n", ":2: unknown value for port: \"0\""),
            ("account a\nport 70000\n", ":2: unknown value for port"),
            ("account a\nport 25x\n", ":2: unknown value for port"),
            ("account a\ntimeout -1\n", ":2: unknown value for timeout"),
            ("account a\ntimeout\n", ":2: unknown value for timeout"),
            (
                "account a\nauth gssapi\n",
                ":2: unknown value for auth: \"gssapi\"",
            ),
            ("account a\nhost\n", ":2: host: needs a value"),
            ("account a\nhost two words\n", ":2: unknown value for host"),
            ("account a\ndomain a b\n", ":2: unknown value for domain"),
            (
                "account a\npassword \"open\n",
                ":2: password: unterminated quote",
            ),
            (
                "account a\nfrom a@b\u{1}\n",
                ":2: from: contains a control character",
            ),
            ("defaults x\n", ":1: defaults: takes no value"),
            ("account\n", ":1: account: missing account name"),
            (
                "account a :\n",
                ":1: account: missing account name after ':'",
            ),
            ("account a : b\n", ":1: account \"b\" is not (yet) defined"),
            (
                "account a\naccount a\n",
                ":2: account \"a\" is already defined",
            ),
            (
                "account a,b\n",
                ":1: account: a name must not contain commas",
            ),
        ];
        for (text, want) in cases {
            let msg = err("/cfg/msmtprc", text);
            assert!(msg.starts_with("/cfg/msmtprc:"), "{text:?}: {msg}");
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
        let e = parse_str(Path::new("/cfg/msmtprc"), "account a\naliases ~/x\n", None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/cfg/msmtprc:2: aliases: cannot expand \"~/x\": HOME is not set"
        );
    }
}
