//! The msmtp command line (msmtp(1), 1.8), for postie installed as or symlinked to
//! `msmtp`: mutt's `set sendmail="msmtp -a work"`, `msmtp --read-envelope-from -t`, git
//! send-email's `msmtp -i -f SENDER RCPT...` and msmtpq's `msmtp -C FILE -a ACCT -- RCPT...`
//! keep working with the same ~/.msmtprc.
//!
//! Owns: reading msmtp's arguments into [`MsmtpArgs`] the way msmtp's getopt_long does
//! (short flags clustered, `-fADDR` or `-f ADDR`, `--opt=value` or `--opt value` for
//! options that need a value, `--opt[=value]` only attached for optional ones, unambiguous
//! prefixes of long names, options among the recipients, `--` ending them); the msmtp
//! settings given on the command line as [`Overrides`] of the chosen account, applied by
//! [`Overrides::apply`] with msmtp's rules (`--host` uses no configuration file data: the
//! caller reads no file then, `config::Files::Ignore`, and `apply` starts from nothing,
//! `--tls` and `--tls-starttls` combine with the account's own, msmtp's default port 25
//! or 465); and the postie [`Args`] the rest becomes ([`MsmtpArgs::postie_args`]).
//! `--read-envelope-from` needs the message's From: before the account is chosen, so
//! [`peek_from`] reads the header block of the stream it is handed and gives it back whole.
//!
//! Must not: open files, read stdin itself, touch the network or choose defaults that
//! need the environment (config.rs does, through `Config::resolve_edited`). Options that
//! would change delivery in a way postie cannot honour (client certificates, pinned
//! fingerprints, proxies, header rewriting other than msmtp's default, `--rmqs`) are
//! EX_USAGE naming the option, never ignored; so is every unknown option. The sendmail
//! flags msmtp accepts and ignores (`-i`, `-oi`, `-oem`, `-Btype`, `-bm`, `-G`, `-hN`,
//! `-L tag`, `-m`, `-n`, `-O opt=val`, `-A x`) are recorded in [`MsmtpArgs::ignored`] for
//! a `-v` note. DSN values follow RFC 3461 (NOTIFY, RET), as in [`super::sendmail`].

use std::ffi::OsString;
use std::io::{self, Cursor, Read};
use std::path::PathBuf;

use anyhow::Result;

use super::sendmail::utf8;
use crate::cli::{Args, Protocol};
use crate::error::Error;
use crate::message::headers;
use crate::settings::{Account, AuthSetting, TlsSetting, AUTH_MECHANISMS};

/// What msmtp is asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Sendmail mode (the default): a message on stdin, to the recipients.
    #[default]
    Send,
    /// `-S` / `--serverinfo`: report what the server offers (postie's --probe).
    ServerInfo,
    /// `-P` / `--pretend`: print the settings that would be used (postie's --show-config).
    Pretend,
    /// `--version`.
    Version,
    /// `--help`.
    Help,
}

/// msmtp's account settings given on the command line. `Some(None)` unsets what the
/// account sets (msmtp's empty value, or `off`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--host`: this server, and no configuration file data at all.
    pub host: Option<String>,
    pub port: Option<u16>,
    /// `--timeout=(off|SECS)`.
    pub timeout: Option<Option<u64>>,
    /// `--domain`: the EHLO argument.
    pub domain: Option<Option<String>>,
    /// `--auth[=(on|off|METHOD)]`.
    pub auth: Option<AuthSetting>,
    pub user: Option<Option<String>>,
    pub passwordeval: Option<Option<String>>,
    /// `--tls[=(on|off)]`.
    pub tls: Option<bool>,
    /// `--tls-starttls[=(on|off)]`.
    pub starttls: Option<bool>,
    /// `--tls-certcheck[=(on|off)]`.
    pub certcheck: Option<bool>,
    /// `--tls-trust-file=[FILE]` (`system` or empty: the built-in roots only).
    pub trust_file: Option<Option<PathBuf>>,
    /// `-X` / `--logfile=[FILE]`: postie's --log line.
    pub logfile: Option<Option<PathBuf>>,
    /// `--aliases=[FILE]`.
    pub aliases: Option<Option<PathBuf>>,
}

/// The msmtp command line, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsmtpArgs {
    pub mode: Mode,
    /// `-C` / `--file`: the configuration file.
    pub file: Option<PathBuf>,
    /// `-a` / `--account`.
    pub account: Option<String>,
    /// `-f` / `--from`: the envelope sender (and the account whose `from` matches).
    pub from: Option<String>,
    /// `--read-envelope-from`: the envelope sender from the message's From:.
    pub read_envelope_from: bool,
    /// `-t` / `--read-recipients`: recipients from To/Cc/Bcc too.
    pub read_recipients: bool,
    /// `-F NAME`: the full name for a From: that is added.
    pub full_name: Option<String>,
    /// `-v`, `-d`, `--debug`, counted (postie's -v).
    pub verbose: u8,
    /// `-N` / `--dsn-notify`: RFC 3461 NOTIFY, upper case (`off`: none).
    pub dsn_notify: Option<String>,
    /// `-R` / `--dsn-return`: `FULL` or `HDRS` (`off`: none).
    pub dsn_return: Option<String>,
    /// `--protocol=(smtp|lmtp)`.
    pub protocol: Option<Protocol>,
    /// `--socket=[PATH]`: a unix domain socket instead of host and port.
    pub socket: Option<PathBuf>,
    /// `--syslog[=(on|off|LOG_MAIL)]`.
    pub syslog: Option<bool>,
    /// The account settings given on the command line.
    pub overrides: Overrides,
    /// Recipient arguments, address lists split.
    pub recipients: Vec<String>,
    /// Flags accepted and ignored, as typed, for a `-v` note.
    pub ignored: Vec<String>,
}

/// How a long option takes its value (getopt_long's `has_arg`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// `--opt=value` or `--opt value`.
    Value,
    /// Only `--opt=value`; `--opt` alone has its own meaning.
    Optional,
}

/// msmtp's long options (1.8.23), with what postie does with each in [`long`].
const LONG: &[(&str, Takes)] = &[
    ("version", Takes::Nothing),
    ("help", Takes::Nothing),
    ("pretend", Takes::Nothing),
    ("debug", Takes::Optional),
    ("serverinfo", Takes::Nothing),
    ("rmqs", Takes::Value),
    ("configure", Takes::Value),
    ("file", Takes::Value),
    ("account", Takes::Value),
    ("host", Takes::Value),
    ("port", Takes::Value),
    ("source-ip", Takes::Value),
    ("proxy-host", Takes::Value),
    ("proxy-port", Takes::Value),
    ("socket", Takes::Value),
    ("timeout", Takes::Value),
    ("connect-timeout", Takes::Value),
    ("protocol", Takes::Value),
    ("domain", Takes::Value),
    ("auth", Takes::Optional),
    ("user", Takes::Value),
    ("passwordeval", Takes::Value),
    ("tls", Takes::Optional),
    ("tls-starttls", Takes::Optional),
    ("tls-trust-file", Takes::Value),
    ("tls-crl-file", Takes::Value),
    ("tls-fingerprint", Takes::Value),
    ("tls-key-file", Takes::Value),
    ("tls-cert-file", Takes::Value),
    ("tls-certcheck", Takes::Optional),
    ("tls-priorities", Takes::Value),
    ("tls-host-override", Takes::Value),
    ("tls-min-dh-prime-bits", Takes::Value),
    ("from", Takes::Value),
    ("dsn-notify", Takes::Value),
    ("dsn-return", Takes::Value),
    ("set-from-header", Takes::Optional),
    ("set-date-header", Takes::Optional),
    ("set-msgid-header", Takes::Optional),
    ("remove-bcc-headers", Takes::Optional),
    ("undisclosed-recipients", Takes::Optional),
    ("logfile", Takes::Value),
    ("logfile-time-format", Takes::Value),
    ("syslog", Takes::Optional),
    ("read-recipients", Takes::Nothing),
    ("read-envelope-from", Takes::Nothing),
    ("aliases", Takes::Value),
    ("auto-from", Takes::Optional),
    ("maildomain", Takes::Value),
];

/// Short options that take a value (getopt's `C:a:f:...`; `-d` takes an optional one).
const SHORT_VALUE: &str = "CafNRXABbFhLOo";

/// Read the arguments that follow the program name (`argv[1..]` for `msmtp`, `argv[2..]`
/// for `postie msmtp`).
pub fn parse(args: &[OsString]) -> Result<MsmtpArgs> {
    let mut a = MsmtpArgs::default();
    let mut rest = args.iter();
    let mut options_ended = false;
    while let Some(arg) = rest.next() {
        let Some(s) = arg.to_str() else {
            return Err(usage(format!(
                "argument {:?} is not UTF-8",
                arg.to_string_lossy()
            )));
        };
        if options_ended || !s.starts_with('-') || s == "-" {
            if s == "-" {
                return Err(usage(
                    "\"-\" is not a recipient (the message is always read from stdin)".into(),
                ));
            }
            for r in super::sendmail::split_recipients(s)? {
                if !a.recipients.contains(&r) {
                    a.recipients.push(r);
                }
            }
            continue;
        }
        if s == "--" {
            options_ended = true;
            continue;
        }
        if let Some(long_arg) = s.strip_prefix("--") {
            let (typed, attached) = match long_arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long_arg, None),
            };
            let (name, takes) = lookup(typed)?;
            let value = match (takes, attached) {
                (Takes::Nothing, Some(_)) => {
                    return Err(usage(format!("option --{name} takes no value")))
                }
                (Takes::Nothing, None) | (Takes::Optional, None) => None,
                (_, Some(v)) => Some(v),
                (Takes::Value, None) => match rest.next() {
                    Some(v) => Some(utf8(v, name)?.to_string()),
                    None => return Err(usage(format!("option --{name} needs a value"))),
                },
            };
            long(&mut a, name, value)?;
            continue;
        }
        // A cluster of one-letter flags; a flag that takes a value ends it.
        let cluster = s.get(1..).unwrap_or("");
        for (pos, flag) in cluster.char_indices() {
            let attached = cluster.get(pos + flag.len_utf8()..).unwrap_or("");
            if flag == 'd' {
                // -d, and sendmail's -d0.1 (msmtp: print the version too; postie: -v).
                a.verbose = a.verbose.saturating_add(1);
                break;
            }
            if SHORT_VALUE.contains(flag) {
                let value = if !attached.is_empty() {
                    attached.to_string()
                } else {
                    match rest.next() {
                        Some(v) if flag == 'C' => {
                            a.file = Some(PathBuf::from(v));
                            break;
                        }
                        Some(v) => utf8(v, &format!("-{flag}"))?.to_string(),
                        None => return Err(usage(format!("option -{flag} needs a value"))),
                    }
                };
                short_value(&mut a, flag, value, attached.is_empty())?;
                break;
            }
            match flag {
                'P' => a.mode = Mode::Pretend,
                'S' => a.mode = Mode::ServerInfo,
                't' => a.read_recipients = true,
                'v' => a.verbose = a.verbose.saturating_add(1),
                'G' | 'i' | 'm' | 'n' => a.ignored.push(format!("-{flag}")),
                other => {
                    let context = if cluster.chars().count() > 1 {
                        format!(" (in {s})")
                    } else {
                        String::new()
                    };
                    return Err(usage(format!("unknown msmtp option -{other}{context}")));
                }
            }
        }
    }
    check(&a)?;
    Ok(a)
}

/// The long option `typed` names: itself, or the one long option it is a prefix of
/// (getopt_long accepts `--read-env`).
fn lookup(typed: &str) -> Result<(&'static str, Takes)> {
    if let Some(&(name, takes)) = LONG.iter().find(|(n, _)| *n == typed) {
        return Ok((name, takes));
    }
    let matches: Vec<&(&str, Takes)> = if typed.is_empty() {
        Vec::new()
    } else {
        LONG.iter().filter(|(n, _)| n.starts_with(typed)).collect()
    };
    match matches.as_slice() {
        [(name, takes)] => Ok((name, *takes)),
        [] => Err(usage(format!("unknown msmtp option --{typed}"))),
        several => {
            let names: Vec<String> = several.iter().map(|(n, _)| format!("--{n}")).collect();
            Err(usage(format!(
                "option --{typed} is ambiguous ({})",
                names.join(", ")
            )))
        }
    }
}

/// One long option and its value (`None`: not given).
fn long(a: &mut MsmtpArgs, name: &str, value: Option<String>) -> Result<()> {
    let v = value.as_deref();
    let o = &mut a.overrides;
    match name {
        "version" => a.mode = Mode::Version,
        "help" => a.mode = Mode::Help,
        "pretend" => a.mode = Mode::Pretend,
        "debug" => a.verbose = a.verbose.saturating_add(1),
        "serverinfo" => a.mode = Mode::ServerInfo,
        "read-recipients" => a.read_recipients = true,
        "read-envelope-from" => a.read_envelope_from = true,
        "file" => a.file = Some(PathBuf::from(v.unwrap_or_default())),
        "account" | "from" | "dsn-notify" | "dsn-return" | "logfile" => {
            let flag = match name {
                "account" => 'a',
                "from" => 'f',
                "dsn-notify" => 'N',
                "dsn-return" => 'R',
                _ => 'X',
            };
            short_value(a, flag, value.unwrap_or_default(), false)?;
        }
        "host" => {
            let host = v.unwrap_or_default();
            if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(usage(format!("--host {host:?}: not a host name")));
            }
            o.host = Some(host.to_string());
        }
        "port" => {
            o.port = Some(
                v.and_then(|p| p.parse::<u16>().ok())
                    .filter(|p| *p > 0)
                    .ok_or_else(|| invalid(name, v))?,
            );
        }
        "timeout" | "connect-timeout" => {
            o.timeout = Some(match v {
                Some("off") => None,
                _ => Some(
                    v.and_then(|s| s.parse::<u64>().ok())
                        .filter(|n| (1..=86400).contains(n))
                        .ok_or_else(|| invalid("timeout", v))?,
                ),
            });
        }
        "protocol" => {
            a.protocol = Some(match v {
                Some("smtp") => Protocol::Smtp,
                Some("lmtp") => Protocol::Lmtp,
                _ => return Err(invalid(name, v)),
            });
        }
        "domain" => {
            let d = v.unwrap_or_default();
            if d.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(name, v));
            }
            o.domain = Some(non_empty(d));
        }
        "auth" => {
            o.auth = Some(match v {
                None | Some("" | "on") => AuthSetting::Auto,
                Some("off") => AuthSetting::Off,
                Some(m) if AUTH_MECHANISMS.contains(&m.to_ascii_lowercase().as_str()) => {
                    AuthSetting::Mechanism(m.to_ascii_uppercase())
                }
                Some(m) => {
                    return Err(usage(format!(
                        "--auth={m}: postie cannot use this method (it knows on, off, {})",
                        AUTH_MECHANISMS.join(", ")
                    )))
                }
            });
        }
        "user" => o.user = Some(no_control(name, v.unwrap_or_default())?),
        "passwordeval" => o.passwordeval = Some(non_empty(v.unwrap_or_default())),
        "tls" => o.tls = Some(on_off(name, v)?),
        "tls-starttls" => o.starttls = Some(on_off(name, v)?),
        "tls-certcheck" => o.certcheck = Some(on_off(name, v)?),
        "tls-trust-file" => {
            o.trust_file = Some(match v.unwrap_or_default() {
                "" | "system" => None,
                p => Some(PathBuf::from(p)),
            });
        }
        "aliases" => o.aliases = Some(non_empty(v.unwrap_or_default()).map(PathBuf::from)),
        "socket" => a.socket = non_empty(v.unwrap_or_default()).map(PathBuf::from),
        "syslog" => {
            a.syslog = Some(match v {
                None | Some("" | "on" | "LOG_MAIL") => true,
                Some("off") => false,
                Some(f) => {
                    return Err(usage(format!(
                        "--syslog={f}: postie logs to the mail facility only (LOG_MAIL)"
                    )))
                }
            });
        }
        // msmtp's own defaults are what postie does: accepted, anything else refused.
        "set-from-header"
        | "set-date-header"
        | "set-msgid-header"
        | "remove-bcc-headers"
        | "undisclosed-recipients" => {
            let default = match name {
                "remove-bcc-headers" => ["on", ""].contains(&v.unwrap_or("on")),
                "undisclosed-recipients" => v == Some("off"),
                _ => v == Some("auto"),
            };
            if !default {
                return Err(usage(format!(
                    "--{name}{}: not supported (postie strips Bcc and adds From, Date and \
                     Message-ID only when missing, as msmtp does by default)",
                    v.map(|v| format!("={v}")).unwrap_or_default()
                )));
            }
            a.ignored.push(format!("--{name}={}", v.unwrap_or("on")));
        }
        other => {
            let why = match other {
                "rmqs" => "Remote Message Queue Starting is not supported",
                "configure" => "postie does not generate configurations",
                "source-ip" | "proxy-host" | "proxy-port" => {
                    "postie connects directly, without a source address or a SOCKS proxy"
                }
                "tls-crl-file"
                | "tls-fingerprint"
                | "tls-key-file"
                | "tls-cert-file"
                | "tls-priorities"
                | "tls-host-override"
                | "tls-min-dh-prime-bits" => {
                    "postie has no such TLS setting (it verifies against the system roots \
                     and --tls-trust-file)"
                }
                "logfile-time-format" => "postie's log lines have a fixed format",
                "auto-from" | "maildomain" => "obsolete in msmtp, and not supported",
                _ => "not supported",
            };
            return Err(usage(format!("--{other}: {why}")));
        }
    }
    Ok(())
}

/// A one-letter option with its value (`separate`: given as the next argument).
fn short_value(a: &mut MsmtpArgs, flag: char, value: String, separate: bool) -> Result<()> {
    let shown = if separate {
        format!("-{flag} {value}")
    } else {
        format!("-{flag}{value}")
    };
    match flag {
        'C' => a.file = Some(PathBuf::from(value)),
        'a' => {
            if value.trim().is_empty() {
                return Err(usage("--account needs a NAME".into()));
            }
            a.account = Some(value);
        }
        'f' => {
            if value == "<>" {
                return Err(usage(
                    "-f '<>' (the null sender) is not supported by postie's msmtp persona".into(),
                ));
            }
            a.from = no_control("-f", &value)?;
        }
        'F' => a.full_name = no_control("-F", &value)?,
        'N' => {
            a.dsn_notify = match value.as_str() {
                "off" => None,
                _ => Some(super::sendmail::dsn_notify(&value)?),
            }
        }
        'R' => {
            a.dsn_return = match value.to_ascii_lowercase().as_str() {
                "off" => None,
                "hdrs" | "headers" => Some("HDRS".into()),
                "full" => Some("FULL".into()),
                _ => return Err(usage(format!("-R {value}: expected off, full or headers"))),
            }
        }
        'X' => a.overrides.logfile = Some(non_empty(&value).map(PathBuf::from)),
        'b' if value == "m" => a.ignored.push(shown),
        'b' => {
            return Err(usage(format!(
                "-b{value}: unsupported operation mode (msmtp knows -bm only)"
            )))
        }
        // -A x, -Btype, -hN, -L tag, -O option=value, -ox value: sendmail compatibility.
        _ => a.ignored.push(shown),
    }
    Ok(())
}

/// What msmtp refuses as a whole command line.
fn check(a: &MsmtpArgs) -> Result<()> {
    if a.overrides.host.is_some() && a.account.is_some() {
        return Err(usage("cannot use both --host and --account".into()));
    }
    if a.read_envelope_from && a.from.is_some() {
        return Err(usage(
            "cannot use both --from and --read-envelope-from".into(),
        ));
    }
    if a.mode == Mode::ServerInfo {
        if !a.recipients.is_empty() {
            return Err(usage(
                "--serverinfo takes no recipients (too many arguments)".into(),
            ));
        }
        if a.socket.is_some() {
            return Err(usage(
                "--serverinfo over a unix domain socket (--socket) is not supported".into(),
            ));
        }
    }
    Ok(())
}

impl Overrides {
    /// Put the command line's settings over the account the configuration file chose,
    /// before msmtp's defaults fill the gaps: `--host` starts from nothing (msmtp uses no
    /// configuration data then) with TLS off; `--tls` and `--tls-starttls` each replace
    /// their half of the account's TLS setting; with `--host` an unset port becomes msmtp's
    /// 25, or 465 for TLS without STARTTLS.
    pub fn apply(&self, account: &mut Account) {
        if let Some(host) = &self.host {
            *account = Account {
                server: Some(host.clone()),
                ..Account::default()
            };
        }
        if let Some(port) = self.port {
            account.port = Some(port);
        }
        let (tls_on, starttls) = match account.tls {
            None => (None, None),
            Some(TlsSetting::Starttls) => (Some(true), Some(true)),
            Some(TlsSetting::Implicit) => (Some(true), Some(false)),
            Some(TlsSetting::None) => (Some(false), None),
        };
        let tls_on = self.tls.or(tls_on).or(self.host.is_some().then_some(false));
        if let Some(on) = tls_on {
            if self.tls.is_some() || self.starttls.is_some() || self.host.is_some() {
                account.tls = Some(match (on, self.starttls.or(starttls).unwrap_or(true)) {
                    (false, _) => TlsSetting::None,
                    (true, true) => TlsSetting::Starttls,
                    (true, false) => TlsSetting::Implicit,
                });
            }
        }
        if self.host.is_some() && account.port.is_none() {
            account.port = Some(if account.tls == Some(TlsSetting::Implicit) {
                465
            } else {
                25
            });
        }
        macro_rules! set {
            ($($field:ident <- $over:ident),*) => {$(
                if let Some(v) = &self.$over {
                    account.$field = v.clone();
                }
            )*};
        }
        set!(timeout <- timeout, helo <- domain, user <- user, tls_ca <- trust_file,
             log <- logfile, aliases <- aliases);
        if let Some(eval) = &self.passwordeval {
            // The command line's passwordeval is meant to be used: a literal password in
            // the file (which postie would prefer) no longer applies.
            account.password_command = eval.clone();
            account.password = None;
            account.password_file = None;
        }
        if let Some(auth) = &self.auth {
            account.auth = Some(auth.clone());
            // As in an msmtprc: a method named explicitly is used also without TLS;
            // `--auth=on` lets postie choose, and then only inside TLS.
            account.allow_plaintext_auth = Some(matches!(auth, AuthSetting::Mechanism(_)));
        }
        if let Some(check) = self.certcheck {
            account.tls_verify = Some(check);
        }
    }
}

impl MsmtpArgs {
    /// postie's own arguments for this command line; the account settings go through
    /// [`Overrides::apply`] instead, and the sendmail-mode options onto the `Config`.
    pub fn postie_args(&self) -> Result<Args> {
        let mut args = Args::try_parse_argv(vec![OsString::from("postie")])?;
        args.config.clone_from(&self.file);
        args.account.clone_from(&self.account);
        args.verbose = self.verbose;
        args.from.clone_from(&self.from);
        args.recipients.clone_from(&self.recipients);
        args.socket.clone_from(&self.socket);
        // msmtp sends nothing when any recipient is refused (its smtp_send_envelope stops
        // at the first refused RCPT TO).
        args.all_or_nothing = true;
        if let Some(p) = self.protocol {
            args.protocol = p;
        }
        if let Some(s) = self.syslog {
            args.syslog = s;
        }
        match self.mode {
            Mode::Send => args.message = Some("-".into()),
            Mode::Pretend => args.show_config = true,
            Mode::ServerInfo => args.probe = true,
            Mode::Version | Mode::Help => {}
        }
        Ok(args)
    }
}

/// `--help`: what this persona reads.
pub const HELP: &str = "\
Usage: msmtp [option...] [--] recipient...
       msmtp [option...] -t [--] [recipient...]
       msmtp [option...] --serverinfo
This is postie reading msmtp's command line; the message on stdin is sent as it is
(Bcc removed; From, Date and Message-ID added when missing).
  -C, --file=FILE          configuration file (postie TOML or msmtprc)
  -a, --account=NAME       account to use
  -f, --from=ADDR          envelope sender (and the account whose from matches)
  --read-envelope-from     envelope sender from the From: header
  -t, --read-recipients    recipients from To, Cc and Bcc as well
  -F NAME                  full name for an added From:
  -N, --dsn-notify=(off|never|success,delay,failure)   -R, --dsn-return=(off|full|headers)
  --host=HOST --port=N --socket=PATH --protocol=(smtp|lmtp) --timeout=(off|SECS)
  --domain=NAME (EHLO) --tls[=(on|off)] --tls-starttls[=(on|off)] --tls-certcheck[=(on|off)]
  --tls-trust-file=FILE --auth[=(on|off|METHOD)] --user=NAME --passwordeval=CMD
  -X, --logfile=FILE --syslog[=(on|off)] --aliases=FILE
  -S, --serverinfo         report what the server offers, send nothing
  -P, --pretend            print the settings that would be used (no password)
  -v, -d, --debug          print the SMTP dialogue on stderr (secrets masked)
Ignored for sendmail compatibility: -Btype -bm -G -hN -i -L tag -m -n -O opt=val -ox
Exit status as sysexits(3); a 4xx reply exits 75 (EX_TEMPFAIL).";

/// The message's From: address, and the stream again from its first byte: the header
/// block (up to 1 MiB) is read ahead and put back in front of the rest.
pub fn peek_from(mut input: Box<dyn Read>) -> Result<(Option<String>, Box<dyn Read>)> {
    const LIMIT: usize = 1 << 20;
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    while head.len() < LIMIT && !header_end(&head) {
        match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(format!("reading the message: {e}")).into()),
        }
    }
    let from = headers::from_address(&head);
    Ok((from, Box::new(Cursor::new(head).chain(input))))
}

fn header_end(head: &[u8]) -> bool {
    head.starts_with(b"\n")
        || head.starts_with(b"\r\n")
        || head.windows(2).any(|w| w == b"\n\n")
        || head.windows(4).any(|w| w == b"\r\n\r\n")
}

fn on_off(name: &str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("" | "on") => Ok(true),
        Some("off") => Ok(false),
        _ => Err(invalid(name, v)),
    }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

fn no_control(what: &str, v: &str) -> Result<Option<String>> {
    if v.chars().any(char::is_control) {
        return Err(Error::Data(format!(
            "{what} {v:?}: control characters or line breaks are not allowed"
        ))
        .into());
    }
    Ok(non_empty(v))
}

fn invalid(name: &str, v: Option<&str>) -> anyhow::Error {
    usage(format!(
        "invalid argument {} for --{name}",
        v.unwrap_or("(none)")
    ))
}

fn usage(msg: String) -> anyhow::Error {
    Error::Usage(msg).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};

    fn run(args: &[&str]) -> Result<MsmtpArgs> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn real_callers() {
        let d = MsmtpArgs::default;
        let cases: Vec<(&str, &[&str], MsmtpArgs)> =
            vec![
            (
                "mutt: set sendmail=\"msmtp -a work\"",
                &["-a", "work", "--", "rcpt@x", "-odd@x"],
                MsmtpArgs {
                    account: Some("work".into()),
                    recipients: strings(&["rcpt@x", "-odd@x"]),
                    ..d()
                },
            ),
            (
                "neomutt: msmtp --read-envelope-from -t",
                &["--read-envelope-from", "-t"],
                MsmtpArgs {
                    read_envelope_from: true,
                    read_recipients: true,
                    ..d()
                },
            ),
            (
                "git send-email",
                &["-i", "-f", "sender@x", "r1@x", "r2@x"],
                MsmtpArgs {
                    from: Some("sender@x".into()),
                    recipients: strings(&["r1@x", "r2@x"]),
                    ignored: strings(&["-i"]),
                    ..d()
                },
            ),
            (
                "msmtpq",
                &["-C", "/q/rc", "-a", "acct", "--", "a@x", "b@x"],
                MsmtpArgs {
                    file: Some(PathBuf::from("/q/rc")),
                    account: Some("acct".into()),
                    recipients: strings(&["a@x", "b@x"]),
                    ..d()
                },
            ),
            (
                "sendmail flags msmtp ignores, attached and separate, clustered",
                &[
                    "-oi", "-oem", "-o", "x", "-B8BITMIME", "-bm", "-G", "-h", "3", "-L", "tag",
                    "-m", "-n", "-O", "a=b", "-A", "c", "-ti", "a@x",
                ],
                MsmtpArgs {
                    read_recipients: true,
                    recipients: strings(&["a@x"]),
                    ignored: strings(&[
                        "-oi", "-oem", "-o x", "-B8BITMIME", "-bm", "-G", "-h 3", "-L tag", "-m",
                        "-n", "-O a=b", "-A c", "-i",
                    ]),
                    ..d()
                },
            ),
            (
                "long options: =value and separate value, prefixes, options after recipients",
                &[
                    "a@x", "--account=home", "--from", "me@x", "--file=/rc", "--read-rec",
                    "--debug", "-v", "-d0.1", "-FMe Myself",
                ],
                MsmtpArgs {
                    account: Some("home".into()),
                    from: Some("me@x".into()),
                    file: Some(PathBuf::from("/rc")),
                    read_recipients: true,
                    verbose: 3,
                    full_name: Some("Me Myself".into()),
                    recipients: strings(&["a@x"]),
                    ..d()
                },
            ),
            (
                "modes",
                &["--pretend"],
                MsmtpArgs {
                    mode: Mode::Pretend,
                    ..d()
                },
            ),
            (
                "serverinfo",
                &["-S", "--host", "h", "--port=2525"],
                MsmtpArgs {
                    mode: Mode::ServerInfo,
                    overrides: Overrides {
                        host: Some("h".into()),
                        port: Some(2525),
                        ..Overrides::default()
                    },
                    ..d()
                },
            ),
            (
                "DSN, protocol, socket, syslog, logfile",
                &[
                    "-N", "failure,delay", "--dsn-return=headers", "--protocol", "lmtp",
                    "--socket=/run/lmtp", "--syslog", "-X", "/var/log/m", "a@x",
                ],
                MsmtpArgs {
                    dsn_notify: Some("FAILURE,DELAY".into()),
                    dsn_return: Some("HDRS".into()),
                    protocol: Some(Protocol::Lmtp),
                    socket: Some(PathBuf::from("/run/lmtp")),
                    syslog: Some(true),
                    overrides: Overrides {
                        logfile: Some(Some(PathBuf::from("/var/log/m"))),
                        ..Overrides::default()
                    },
                    recipients: strings(&["a@x"]),
                    ..d()
                },
            ),
            (
                "account settings; --tls on leaves 'on' a recipient (optional values are attached)",
                &[
                    "--tls", "on", "--tls-starttls=off", "--tls-certcheck=off",
                    "--tls-trust-file", "/ca.pem", "--auth=plain", "--user=", "--passwordeval",
                    "pass show mail", "--domain=client.x", "--timeout=off", "--aliases=",
                ],
                MsmtpArgs {
                    overrides: Overrides {
                        tls: Some(true),
                        starttls: Some(false),
                        certcheck: Some(false),
                        trust_file: Some(Some(PathBuf::from("/ca.pem"))),
                        auth: Some(AuthSetting::Mechanism("PLAIN".into())),
                        user: Some(None),
                        passwordeval: Some(Some("pass show mail".into())),
                        domain: Some(Some("client.x".into())),
                        timeout: Some(None),
                        aliases: Some(None),
                        ..Overrides::default()
                    },
                    recipients: strings(&["on"]),
                    ..d()
                },
            ),
            (
                "msmtp's defaults for header handling are accepted",
                &["--set-date-header=auto", "--remove-bcc-headers", "a@x"],
                MsmtpArgs {
                    recipients: strings(&["a@x"]),
                    ignored: strings(&["--set-date-header=auto", "--remove-bcc-headers=on"]),
                    ..d()
                },
            ),
        ];
        for (what, args, want) in cases {
            assert_eq!(run(args).unwrap(), want, "{what}");
        }
    }

    #[test]
    fn errors_name_the_option() {
        let cases: &[(&[&str], Exit, &str)] = &[
            (&["--bogus"], Exit::Usage, "unknown msmtp option --bogus"),
            (&["-Z", "a@x"], Exit::Usage, "unknown msmtp option -Z"),
            (&["-tU"], Exit::Usage, "unknown msmtp option -U (in -tU)"),
            (&["--t"], Exit::Usage, "option --t is ambiguous"),
            (&["--pretend=yes"], Exit::Usage, "--pretend takes no value"),
            (&["--account"], Exit::Usage, "--account needs a value"),
            (&["-f"], Exit::Usage, "-f needs a value"),
            (
                &["--host=h", "-a", "x"],
                Exit::Usage,
                "both --host and --account",
            ),
            (
                &["-f", "a@x", "--read-envelope-from"],
                Exit::Usage,
                "both --from",
            ),
            (
                &["-S", "a@x"],
                Exit::Usage,
                "--serverinfo takes no recipients",
            ),
            (&["--port=0"], Exit::Usage, "invalid argument 0 for --port"),
            (
                &["--port", "x"],
                Exit::Usage,
                "invalid argument x for --port",
            ),
            (&["--timeout=-1"], Exit::Usage, "for --timeout"),
            (
                &["--tls=maybe"],
                Exit::Usage,
                "invalid argument maybe for --tls",
            ),
            (&["--protocol=esmtp"], Exit::Usage, "for --protocol"),
            (
                &["--auth=gssapi"],
                Exit::Usage,
                "--auth=gssapi: postie cannot use",
            ),
            (&["--syslog=LOG_USER"], Exit::Usage, "--syslog=LOG_USER"),
            (&["-N", "bogus"], Exit::Usage, "-N bogus"),
            (&["-R", "some"], Exit::Usage, "-R some"),
            (&["-bs"], Exit::Usage, "-bs: unsupported operation mode"),
            (&["-f", "<>"], Exit::Usage, "-f '<>'"),
            (
                &["--tls-fingerprint=AB:CD"],
                Exit::Usage,
                "--tls-fingerprint",
            ),
            (
                &["--tls-cert-file", "c.pem"],
                Exit::Usage,
                "--tls-cert-file",
            ),
            (&["--proxy-host=p"], Exit::Usage, "--proxy-host"),
            (&["--rmqs=host"], Exit::Usage, "--rmqs"),
            (
                &["--set-from-header=on"],
                Exit::Usage,
                "--set-from-header=on",
            ),
            (
                &["--undisclosed-recipients"],
                Exit::Usage,
                "--undisclosed-recipients",
            ),
            (&["-", "a@x"], Exit::Usage, "\"-\" is not a recipient"),
            (&["John Smith"], Exit::DataErr, "is not an address"),
            (&["-f", "a@x\nBcc: e@x"], Exit::DataErr, "line breaks"),
        ];
        for (args, exit, msg) in cases {
            let err = run(args).unwrap_err();
            assert_eq!(exit_code(&err), *exit, "{args:?}: {err}");
            assert!(err.to_string().contains(msg), "{args:?}: {err}");
        }
    }

    #[test]
    fn overrides_follow_msmtp_rules() {
        let file = Account {
            server: Some("smtp.x".into()),
            port: Some(587),
            tls: Some(TlsSetting::Starttls),
            user: Some("me".into()),
            password: Some(crate::secret::Secret::new("pw")),
            from: Some("me@x".into()),
            ..Account::default()
        };
        let apply = |o: Overrides| {
            let mut a = file.clone();
            o.apply(&mut a);
            a
        };
        // --host: nothing from the file, msmtp's defaults (TLS off, port 25; 465 implicit).
        let a = apply(Overrides {
            host: Some("h".into()),
            ..Overrides::default()
        });
        assert_eq!(
            (a.server.as_deref(), a.port, a.tls, a.user, a.from),
            (Some("h"), Some(25), Some(TlsSetting::None), None, None)
        );
        let a = apply(Overrides {
            host: Some("h".into()),
            tls: Some(true),
            starttls: Some(false),
            ..Overrides::default()
        });
        assert_eq!((a.port, a.tls), (Some(465), Some(TlsSetting::Implicit)));
        // Each TLS half replaces only its own.
        let a = apply(Overrides {
            starttls: Some(false),
            ..Overrides::default()
        });
        assert_eq!((a.port, a.tls), (Some(587), Some(TlsSetting::Implicit)));
        let a = apply(Overrides {
            tls: Some(false),
            ..Overrides::default()
        });
        assert_eq!(a.tls, Some(TlsSetting::None));
        // --tls-starttls alone on an account without a TLS setting changes nothing.
        let mut bare = Account::default();
        Overrides {
            starttls: Some(false),
            ..Overrides::default()
        }
        .apply(&mut bare);
        assert_eq!(bare.tls, None);
        // --passwordeval wins over the file's literal password; --user= unsets the user.
        let a = apply(Overrides {
            passwordeval: Some(Some("pass mail".into())),
            user: Some(None),
            port: Some(2525),
            certcheck: Some(false),
            auth: Some(AuthSetting::Off),
            ..Overrides::default()
        });
        assert_eq!(a.password_command.as_deref(), Some("pass mail"));
        assert!(a.password.is_none() && a.user.is_none());
        assert_eq!(
            (a.port, a.tls_verify, a.auth),
            (Some(2525), Some(false), Some(AuthSetting::Off))
        );
    }

    #[test]
    fn peek_from_gives_the_stream_back_whole() {
        let text: &'static [u8] = b"To: a@x\nFrom: Me <me@x.example>\n\nbody\n";
        let (from, mut again) = peek_from(Box::new(text)).unwrap();
        assert_eq!(from.as_deref(), Some("me@x.example"));
        let mut all = Vec::new();
        again.read_to_end(&mut all).unwrap();
        assert_eq!(all, text);
        let (from, _) = peek_from(Box::new(&b"Subject: none\n\nx\n"[..])).unwrap();
        assert_eq!(from, None);
    }

    #[test]
    fn postie_args_carry_the_mode() {
        let a = run(&["-P", "-a", "w"]).unwrap().postie_args().unwrap();
        assert!(a.show_config && !a.probe && a.message.is_none());
        assert_eq!(a.account.as_deref(), Some("w"));
        let a = run(&["--serverinfo"]).unwrap().postie_args().unwrap();
        assert!(a.probe && !a.show_config);
        let a = run(&["-f", "me@x", "r@x"]).unwrap().postie_args().unwrap();
        assert_eq!(a.message.as_deref(), Some(std::path::Path::new("-")));
        assert_eq!(
            (a.from.as_deref(), a.recipients),
            (Some("me@x"), strings(&["r@x"]))
        );
    }
}
