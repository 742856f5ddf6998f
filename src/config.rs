//! Resolves raw [`Args`] into a [`Config`]: defaults, ports, the TLS policy and the password;
//! one [`Mode`], one [`Route`] and the [`SessionOptions`] the session is given (and nothing
//! else of the configuration).
//!
//! This is the only module that applies defaults or looks at the environment
//! (`POSTIE_PASSWORD`, `POSTIE_TEST_MODE`, the host name), and the only one that reads a
//! password: from `--password-file`, `--password-command`, `POSTIE_PASSWORD`, or a prompt on
//! the terminal — never from a plain command-line flag. Only `Config` travels past `app`.
//!
//! Security defaults (design.md §5): port 465 means implicit TLS; anything else means
//! STARTTLS, and STARTTLS is required, not opportunistic. Direct delivery to the recipient
//! domains' MX hosts (`--mx`, or no server configured anywhere) is the exception: there
//! STARTTLS is opportunistic (RFC 7435) unless `--tls` says otherwise, and no account
//! setting applies (neither its TLS mode nor its login: AUTH only with `--user`).
//! A unix domain socket (`--socket`) is local: no TLS, and asking for it there is a
//! usage error.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

pub use crate::cli::Protocol;
pub use crate::cli::QueueAction;
use crate::cli::{Args, AuthMech, ColorWhen, QuitAfter, TlsMode};
use crate::error::Error;
use crate::net::timeout::Milestone;
use crate::net::timeout::Timeouts;
use crate::secret::Secret;
use crate::settings::{Account, AuthSetting, TlsSetting};
use crate::smtp::auth::Mechanism;

/// Environment variable holding the password.
pub const PASSWORD_ENV: &str = "POSTIE_PASSWORD";
/// Environment variable naming the directory of system-wide files instead of `/etc`.
pub const SYSCONFDIR_ENV: &str = "POSTIE_SYSCONFDIR";
/// Environment variable that fixes Date, Message-ID and the EHLO name (for tests).
pub const TEST_MODE_ENV: &str = "POSTIE_TEST_MODE";
/// Environment variable naming the DNS server to ask, like --resolver (which wins).
pub const RESOLVER_ENV: &str = "POSTIE_RESOLVER";
/// Test mode only: seconds added to the clock the queue reads (backoff, maximum age).
pub const CLOCK_SHIFT_ENV: &str = "POSTIE_TEST_CLOCK_SHIFT";
/// Test mode only: the host name to use instead of the fixed "postie.test" (a bare name
/// is taken to have no fully qualified form).
pub const TEST_HOSTNAME_ENV: &str = "POSTIE_TEST_HOSTNAME";
/// Where the queue lives when no flag or configuration names it (like msmtpq's
/// MSMTP_QUEUE); it moves the default, so the sendmail persona does not start queueing.
pub const QUEUE_DIR_ENV: &str = "POSTIE_QUEUE_DIR";
/// Environment variable that turns the transcript's colour off, whatever its value
/// (<https://no-color.org>); `--color always` still wins.
pub const NO_COLOR_ENV: &str = "NO_COLOR";

pub const SMTP_PORT: u16 = 25;
pub const SUBMISSION_PORT: u16 = 587;
pub const SUBMISSIONS_PORT: u16 = 465;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP, then STARTTLS, which the server must offer.
    StartTlsRequired,
    /// TLS from the first byte.
    Implicit,
    /// No TLS.
    Plain,
    /// Direct MX delivery: STARTTLS when the server offers it, plain text when it does not
    /// (RFC 7435); a failed handshake is retried on that host without TLS.
    Opportunistic,
}

impl Security {
    /// How the policy is named in reports: "none", "opportunistic", "required" (STARTTLS
    /// required or implicit TLS).
    pub fn policy(self) -> &'static str {
        match self {
            Security::Plain => "none",
            Security::Opportunistic => "opportunistic",
            Security::StartTlsRequired | Security::Implicit => "required",
        }
    }
}

/// Which address families connections may use (-4, -6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    Any,
    V4,
    V6,
}

impl Family {
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Where to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub secret: Login,
}

/// What AUTH proves the user with.
#[derive(Debug, Clone)]
pub enum Login {
    /// A password (or a token from a password source), read before the run.
    Password(Secret),
    /// An account's OAuth tokens: the session asks for the access token when it
    /// authenticates, and for a new one if the server refuses it.
    OAuth(std::sync::Arc<crate::oauth::Tokens>),
}

/// Where the body of a composed message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    File(PathBuf),
    Stdin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub path: PathBuf,
    /// Given with `FILE;type=...`; otherwise guessed from the name.
    pub content_type: Option<String>,
}

/// A message to compose from arguments.
#[derive(Debug, Clone)]
pub struct Compose {
    pub subject: Option<String>,
    /// --reply-to, as typed.
    pub reply_to: Vec<String>,
    pub headers: Vec<(String, String)>,
    /// The text/plain body; `None` when the message is HTML only.
    pub body: Option<Body>,
    /// The text/html body (--html, --html-body, or a `-H 'Content-Type: text/html'`
    /// body); with `body` too, the message is multipart/alternative.
    pub html: Option<Body>,
    pub attachments: Vec<Attachment>,
}

/// Where a ready message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

#[derive(Debug, Clone)]
pub enum Content {
    Compose(Compose),
    Ready(Source),
}

/// What `--probe` looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The server of `--server` or the account.
    Server,
    /// Every MX host of each domain (`--probe --mx DOMAIN...`), on `port` (`--port`,
    /// default 25).
    Mx { domains: Vec<String>, port: u16 },
}

/// What the run does. One value, so that contradictory requests (a dry run that probes, a
/// batch that stops after EHLO) cannot be expressed past the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Deliver the message (the default).
    Send,
    /// --dry-run: print the envelope and the message; send nothing.
    DryRun,
    /// --show-config: print the resolved settings; send nothing.
    ShowConfig,
    /// --probe: report what the server (or each MX host) offers.
    Probe(Probe),
    /// --quit-after: the dialogue stops cleanly after this milestone; nothing is delivered.
    /// Before [`Milestone::Data`] no message is read.
    Rehearse(Milestone),
    /// --messages / `postie batch`: the inputs to send over one connection.
    Batch(Vec<PathBuf>),
    /// `postie queue ACTION`, `sendmail -bp`/`-q`, `mailq`: list, run, flush or remove
    /// queue entries. List and remove only look: no server, no password.
    Queue(QueueAction),
    /// `sendmail -bs`: speak SMTP on stdin/stdout, relaying each message received.
    ServeSmtp,
}

/// Recipients as given (comma lists split, not yet validated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
}

/// Where the message goes: one value, so that a server list, MX delivery and a socket
/// cannot be asked for at once past the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Submission: the server, then each fallback in order on a failure that lets the
    /// next host take the message (`--server a,b`, or a list as the account's `server`).
    /// Never empty.
    Submission(Vec<Server>),
    /// Direct delivery to each recipient domain's MX hosts on this port: `--mx`, or no
    /// server configured anywhere.
    Mx { port: u16 },
    /// --socket: a unix domain socket (LMTP, or SMTP to a local daemon); never TLS.
    Socket(PathBuf),
    /// Nothing to connect to: --dry-run and --show-config without a server, and
    /// `--probe --mx` (its domains and port are in [`Probe::Mx`]).
    Nowhere,
}

impl Route {
    /// The first submission server (the one a rehearsal or probe talks to).
    pub fn server(&self) -> Option<&Server> {
        match self {
            Route::Submission(servers) => servers.first(),
            _ => None,
        }
    }

    /// The MX port, when this is direct delivery.
    pub fn mx_port(&self) -> Option<u16> {
        match self {
            Route::Mx { port } => Some(*port),
            _ => None,
        }
    }
}

/// What the SMTP/LMTP session needs from the configuration, and nothing else: how to
/// greet, secure, authenticate and which extensions to use. The session never sees the
/// rest of [`Config`] (route, mode, output), so it cannot decide anything that belongs to
/// the engine or the report.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// --protocol: SMTP, or LMTP (RFC 2033).
    pub protocol: Protocol,
    pub security: Security,
    /// The EHLO name: `--helo`, the account's, else the host's fully qualified name. Also
    /// names this host in Message-IDs and reports.
    pub helo: String,
    /// No fully qualified name is known for this host (`hostname -f` gives a bare name) and
    /// none was configured: EHLO sends the connection's own address as a literal
    /// (`[192.0.2.1]`, RFC 5321 §4.1.4) rather than a bare name servers refuse.
    pub ehlo_literal: bool,
    pub credentials: Option<Credentials>,
    pub auth: Option<Mechanism>,
    pub allow_plaintext_auth: bool,
    /// Delivery status notification requests (RFC 3461), used when the server offers DSN.
    pub dsn: Dsn,
    /// False with --no-pipelining: one command, one reply, even when PIPELINING is offered.
    pub pipelining: bool,
    /// False with --no-chunking: DATA even when CHUNKING is offered.
    pub chunking: bool,
    /// --require-tls: MAIL FROM with REQUIRETLS (RFC 8689), refused unless possible.
    pub require_tls: bool,
    /// --all-or-nothing, `all_or_nothing`, the msmtp persona: if any recipient is
    /// refused, RSET instead of DATA and the message goes to nobody.
    pub all_or_nothing: bool,
    /// --dkim-key and friends, or the account's `dkim_*`: the message is signed before
    /// it goes out, and signed again when the session converts it to 7-bit for a server
    /// without 8BITMIME (the conversion would break the first signature).
    pub dkim: Option<crate::dkim::Options>,
}

/// Everything the later stages need, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the message goes.
    pub route: Route,
    /// --queue and where the queue lives.
    pub queue: QueueSettings,
    /// What the session is told.
    pub session: SessionOptions,
    /// -4 / -6.
    pub family: Family,
    pub tls_ca: Option<PathBuf>,
    /// False only with --tls-no-verify or msmtp's `tls_certcheck off`.
    pub tls_verify: bool,
    pub timeouts: Timeouts,
    /// The login name, also when the password is not read (dry run, --show-config).
    pub user: Option<String>,
    /// Where the password comes from, in words (for --show-config).
    pub password_source: Option<String>,
    /// The configuration says `auth off`.
    pub auth_off: bool,
    pub verbosity: u8,
    /// --syslog: the log line goes to syslog too.
    pub syslog: bool,
    /// --show-time: reply latencies in the transcript.
    pub show_time: bool,
    /// Colour the transcript: --color, NO_COLOR, TERM and whether stderr is a terminal.
    pub color: bool,
    /// What this run does: send, dry run, show config, probe, rehearse, batch.
    pub mode: Mode,
    /// mailx -E: an empty body means nothing to send.
    pub skip_empty: bool,
    pub test_mode: bool,
    pub content: Content,
    pub recipients: Recipients,
    /// `-f`, as typed ("addr" or "Name <addr>").
    pub from: Option<String>,
    /// `--envelope-from`: MAIL FROM alone, as typed (`<>` is the null sender).
    pub envelope_from: Option<String>,
    /// Sender when neither -f nor the message names one: --user if it is an address, else
    /// USER@HOSTNAME.
    pub default_sender: String,
    /// Qualifies bare local recipients.
    pub domain: Option<String>,
    /// Qualifies bare senders (`-f root`, `From: root`) and the default sender: `domain`,
    /// else the host's fully qualified name, else its bare name.
    pub sender_domain: String,
    /// aliases(5)-style file for bare local recipients, and its contents.
    pub aliases_file: Option<PathBuf>,
    pub aliases: Option<crate::aliases::Aliases>,
    /// The configuration file read, if any.
    pub config_file: Option<PathBuf>,
    /// --log FILE or the config's `log`/msmtp `logfile`: one line per message.
    pub log: Option<PathBuf>,
    /// The account asked for with -A.
    pub account_name: Option<String>,
    /// --resolver or POSTIE_RESOLVER: the only DNS server to ask; None = the system's.
    pub resolver: Option<SocketAddr>,
    /// MTA-STS for direct delivery (--no-mta-sts, --mta-sts-url-base, the cache directory).
    pub mta_sts: MtaSts,
    /// What the sendmail persona asked for.
    pub sendmail: SendmailOptions,
    /// --window: messages in flight at once in `postie batch` and queue runs (PIPELINING
    /// and CHUNKING).
    pub window: usize,
    /// --connections: `postie batch`'s sessions in parallel, over the server list.
    pub connections: usize,
}

/// The queue (see [`crate::queue`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// --queue or `queue = true`: keep temporarily failed messages.
    pub enabled: bool,
    /// --queue-dir, `queue_dir`, else `$XDG_STATE_HOME/postie/queue` (or
    /// `~/.local/state/postie/queue`), `/var/spool/postie` for root; `None` when there is
    /// no home to put it in.
    pub dir: Option<PathBuf>,
    /// The directory was named (flag or configuration), not the default: the sendmail
    /// persona then queues by default.
    pub dir_configured: bool,
    /// --queue-max-age, `queue_max_age`: give up on an entry this old.
    pub max_age: Duration,
    /// Test mode only (`POSTIE_TEST_CLOCK_SHIFT`): seconds added to the clock.
    pub clock_shift: i64,
}

/// MTA-STS settings (RFC 8461; see [`crate::mta_sts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MtaSts {
    /// False with --no-mta-sts.
    pub enabled: bool,
    /// --mta-sts-url-base (checked: https://HOST[:PORT][/PATH]).
    pub url_base: Option<String>,
    /// Where policies are cached: POSTIE_CACHE_DIR, XDG_CACHE_HOME or ~/.cache (None: no
    /// cache).
    pub cache_dir: Option<PathBuf>,
}

/// Options only the sendmail command line sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendmailOptions {
    /// -t: recipients from the message's To/Cc/Bcc (or Resent-*) headers.
    pub extract_recipients: bool,
    /// Strip Bcc, qualify bare names in To/Cc/From, add missing From/Date/Message-ID.
    pub rewrite_headers: bool,
    /// -F: the sender's full name for an added From:.
    pub full_name: Option<String>,
}

/// RFC 3461 parameters: NOTIFY per recipient, RET and ENVID on MAIL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    pub notify: Option<String>,
    pub ret: Option<String>,
    pub envid: Option<String>,
}

/// Looks up an environment variable.
pub type VarLookup = Box<dyn Fn(&str) -> Option<String>>;

/// What `Config::resolve` reads from its surroundings; tests pass their own.
pub struct Environment {
    pub var: VarLookup,
    pub hostname: String,
    /// The fully qualified name of a bare host name (`hostname -f`), if the system
    /// resolver knows one.
    pub fqdn: fn(&str) -> Option<String>,
}

impl Environment {
    /// Where system-wide configuration lives: `/etc`, or `POSTIE_SYSCONFDIR`.
    pub fn system_dir(&self) -> PathBuf {
        (self.var)(SYSCONFDIR_ENV)
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/etc"), PathBuf::from)
    }
}

impl Environment {
    pub fn real() -> Self {
        Environment {
            var: Box::new(|k| std::env::var(k).ok()),
            hostname: gethostname::gethostname().to_string_lossy().into_owned(),
            fqdn: canonical_name,
        }
    }
}

/// The canonical name getaddrinfo gives `host` (AI_CANONNAME: /etc/hosts, nsswitch, DNS),
/// as `hostname -f` prints it; `None` unless that is a dotted name.
fn canonical_name(host: &str) -> Option<String> {
    let hints = dns_lookup::AddrInfoHints {
        flags: libc::AI_CANONNAME,
        ..Default::default()
    };
    dns_lookup::getaddrinfo(Some(host), None, Some(hints))
        .ok()?
        .filter_map(|a| a.ok()?.canonname)
        .find(|name| name.contains('.') && !name.ends_with('.'))
}

/// For unit tests elsewhere: `postie ARGS...` resolved on host box.example for user ops,
/// with no system configuration and `vars` as the only other environment.
#[cfg(test)]
pub fn for_tests(args: &[&str], vars: &[(&'static str, &'static str)]) -> Config {
    use clap::Parser;
    let vars = vars.to_vec();
    let args = Args::try_parse_from(std::iter::once("postie").chain(args.iter().copied()))
        .expect("test arguments parse");
    let env = Environment {
        var: Box::new(move |k| match k {
            SYSCONFDIR_ENV => Some("/nonexistent/postie-test-etc".into()),
            "USER" => Some("ops".into()),
            _ => vars
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string()),
        }),
        hostname: "box.example".into(),
        fqdn: |_| None,
    };
    Config::resolve(args, &env).expect("test configuration resolves")
}

/// Whether [`Config::resolve_edited`] reads a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// `-C FILE`, else the first file found (`settings::find_in`).
    Read,
    /// None at all, not even `-C FILE` (msmtp's `--host`: "do not use any configuration
    /// file data").
    Ignore,
}

impl Config {
    /// Where a --quit-after rehearsal stops (`None` for every other mode).
    pub fn quit_after(&self) -> Option<Milestone> {
        match self.mode {
            Mode::Rehearse(stop) => Some(stop),
            _ => None,
        }
    }

    /// Resolve arguments over the configuration file's account (flags win). Reads the
    /// password (file, command, env, config, prompt) unless this is a dry run or
    /// --show-config.
    pub fn resolve(args: Args, env: &Environment) -> Result<Config> {
        Config::resolve_edited(args, env, Files::Read, &|_| {})
    }

    /// [`Config::resolve`], with `edit` applied to the configuration file's account before
    /// the format's defaults fill its gaps and the flags go over it: the msmtp persona's
    /// command-line settings, which msmtp applies to the account itself. With
    /// [`Files::Ignore`] no configuration file is looked for or read (`edit` gets an empty
    /// account): msmtp's `--host`.
    pub fn resolve_edited(
        args: Args,
        env: &Environment,
        files: Files,
        edit: &dyn Fn(&mut Account),
    ) -> Result<Config> {
        let test_mode = (env.var)(TEST_MODE_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        let from_hint = match &args.from {
            Some(f) => {
                reject_line_breaks("--from", f)?;
                Some(crate::address::parse_recipient(f)?.addr)
            }
            None => None,
        };
        let (config_file, account) = match files {
            Files::Read => load_account(&args, env, from_hint.as_deref(), edit)?,
            Files::Ignore => {
                let mut account = Account::default();
                edit(&mut account);
                (None, account)
            }
        };
        let probe = match (args.mx, args.probe) {
            (true, true) => {
                if args.recipients.is_empty() {
                    return Err(Error::Usage(
                        "--probe --mx: name the domain(s) to probe (postie --probe --mx DOMAIN)"
                            .into(),
                    )
                    .into());
                }
                Some(Probe::Mx {
                    domains: args.recipients.clone(),
                    port: args.port.unwrap_or(SMTP_PORT),
                })
            }
            (false, true) => Some(Probe::Server),
            (_, false) => None,
        };
        // Direct MX delivery: asked for, or nothing else configured (a probe needs a server).
        let direct = !args.probe
            && args.socket.is_none()
            && (args.mx || (args.server.is_none() && account.server.is_none()));
        let mx_port = direct.then(|| args.port.unwrap_or(SMTP_PORT));
        if args.port.is_some() && !direct && !matches!(probe, Some(Probe::Mx { .. })) {
            return Err(Error::Usage(
                "--port is for direct MX delivery (--mx); give the server's port as \
                 --server HOST:PORT"
                    .into(),
            )
            .into());
        }
        let looks = only_looks(&args);
        let needs_server = !(args.dry_run || looks || args.show_config || args.mx || direct);
        // The account's TLS mode and login are for its server, not for MX hosts.
        let account = if direct { Account::default() } else { account };

        let tls_mode = args.tls.or(account.tls.map(|t| match t {
            TlsSetting::Starttls => TlsMode::Starttls,
            TlsSetting::Implicit => TlsMode::Implicit,
            TlsSetting::None => TlsMode::None,
        }));
        // `--server a,b`: the first, then the others in order on a transient failure.
        let mut fallback_servers = Vec::new();
        let server = match (&args.server, &account.server) {
            // --socket replaces the account's server (clap keeps it from --server).
            _ if args.socket.is_some() => None,
            (Some(s), _) => {
                let mut list = server_list(s, tls_mode)?.into_iter();
                let first = list.next();
                fallback_servers.extend(list);
                first
            }
            (None, Some(host)) => {
                // The account's `port` is for each server of its list that names none.
                let with_port = |name: &str| -> Result<Server> {
                    let mut s = parse_server(name, tls_mode)?;
                    if let (Some(port), false) = (account.port, names_a_port(name)) {
                        s.port = port;
                    }
                    Ok(s)
                };
                for other in &account.fallback_servers {
                    fallback_servers.push(with_port(other)?);
                }
                Some(with_port(host)?)
            }
            (None, None) if !needs_server => None,
            (None, None) => {
                let looked: Vec<String> =
                    crate::settings::candidates_in(&*env.var, &env.system_dir())
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect();
                return Err(Error::Config(format!(
                    "no mail server given: use --server HOST[:PORT], or a config file ({})",
                    looked.join(", ")
                ))
                .into());
            }
        };
        let port = match &probe {
            Some(Probe::Mx { port, .. }) => Some(*port),
            _ => mx_port.or(server.as_ref().map(|s| s.port)),
        };
        let security = match (tls_mode, port) {
            // A local socket: TLS is neither needed nor supported; only the flag is an error
            // (an account's tls setting is about its TCP server).
            _ if args.socket.is_some() => match args.tls {
                Some(mode @ (TlsMode::Starttls | TlsMode::Implicit)) => {
                    let mode = if mode == TlsMode::Starttls {
                        "starttls"
                    } else {
                        "implicit"
                    };
                    return Err(Error::Usage(format!(
                        "--tls {mode}: TLS over a unix domain socket (--socket) is not \
                         supported; the socket is local"
                    ))
                    .into());
                }
                _ => Security::Plain,
            },
            (Some(TlsMode::Starttls), _) => Security::StartTlsRequired,
            (Some(TlsMode::Implicit), _) => Security::Implicit,
            (Some(TlsMode::None), _) => Security::Plain,
            (None, Some(SUBMISSIONS_PORT)) => Security::Implicit,
            (None, _) if direct => Security::Opportunistic,
            (None, _) => Security::StartTlsRequired,
        };

        // Test mode names the host "postie.test" unless a test names one (and then the
        // system resolver is not asked for its fully qualified form).
        let test_hostname = (env.var)(TEST_HOSTNAME_ENV).filter(|_| test_mode);
        let hostname = match &test_hostname {
            Some(h) => h.clone(),
            None if env.hostname.trim().is_empty() => "localhost".to_string(),
            None => env.hostname.trim().to_string(),
        };
        let fixed_test_name = test_mode && test_hostname.is_none();
        let domain = args.domain.clone().or(account.domain.clone());
        let configured_helo = args.helo.is_some() || account.helo.is_some();
        // A bare host name ("box") is no name for EHLO or for mail: its fully qualified
        // form, as `hostname -f` gives it — asked of the resolver only when the sender's
        // domain or the EHLO name needs it.
        let needs_fqdn = domain.is_none() || !(configured_helo || fixed_test_name);
        let host_fqdn = if hostname.contains('.') {
            Some(hostname.clone())
        } else if test_hostname.is_some() || !needs_fqdn {
            None
        } else {
            (env.fqdn)(&hostname)
        };
        // Bare senders (and the default sender) are qualified with the configured domain,
        // else the host's fully qualified name.
        let sender_domain = domain
            .clone()
            .or(host_fqdn.clone())
            .unwrap_or_else(|| hostname.clone());
        let ehlo_literal = !configured_helo && !fixed_test_name && host_fqdn.is_none();
        let helo = match args.helo.as_ref().or(account.helo.as_ref()) {
            Some(h) => {
                if h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(Error::Usage(format!("--helo: not a host name: {h:?}")).into());
                }
                h.clone()
            }
            None if fixed_test_name => "postie.test".to_string(),
            None => host_fqdn.clone().unwrap_or_else(|| hostname.clone()),
        };

        let content = match &args.message {
            Some(p) if p.as_os_str() == "-" => Content::Ready(Source::Stdin),
            Some(p) => Content::Ready(Source::File(p.clone())),
            None => Content::Compose(compose(&args)?),
        };
        if let Some(subject) = &args.subject {
            reject_line_breaks("subject", subject)?;
        }
        // An msmtprc `from` may be a pattern (`*@example.org`) that only chooses the account.
        let account_from = account.from.clone().filter(|f| !f.contains(['*', '?']));
        let from = args.from.clone().or(account_from);

        let recipients = Recipients {
            to: split_list(args.recipients.iter().chain(&args.to)),
            cc: split_list(&args.cc),
            bcc: split_list(&args.bcc),
        };

        let user = args.user.clone().or(account.user.clone());
        let default_sender = match &user {
            Some(u) if u.contains('@') => u.clone(),
            _ => {
                let login = (env.var)("USER")
                    .or_else(|| (env.var)("LOGNAME"))
                    .filter(|l| !l.is_empty())
                    .unwrap_or_else(|| "postie".into());
                format!("{login}@{sender_domain}")
            }
        };

        if args.user.is_none() && (args.password_file.is_some() || args.password_command.is_some())
        {
            return Err(Error::Usage("a password source was given without --user".into()).into());
        }
        let auth_off = args.auth.is_none() && account.auth == Some(AuthSetting::Off);
        let auth = match (args.auth, &account.auth) {
            (Some(m), _) => Some(mechanism_of(m)),
            (None, Some(AuthSetting::Mechanism(name))) => Some(
                name.parse::<Mechanism>()
                    .map_err(|e| Error::Config(format!("auth {name}: {e}")))?,
            ),
            (None, _) => None,
        };
        let quit_after = args.quit_after.map(milestone_of);
        check_quit_after(
            quit_after,
            security,
            user.is_some() && !auth_off,
            &recipients,
        )?;
        // No password is read for runs that never get to AUTH.
        let no_login = args.dry_run
            || looks
            || args.show_config
            || probe.is_some()
            || quit_after.is_some_and(|m| m < Milestone::Auth);
        let source = password_source(&args, &account, env);
        // An account with an oauth table gets its token from postie oauth, unless the
        // command line names a password source (a token from elsewhere).
        let flag_source = args.password_file.is_some() || args.password_command.is_some();
        let oauth = match (&account.oauth, &user) {
            (Some(o), Some(_)) if !auth_off && !flag_source => {
                if let Some(m) = auth.filter(|m| !m.takes_token()) {
                    return Err(Error::Config(format!(
                        "account {}: an OAuth account authenticates with XOAUTH2 or \
                         OAUTHBEARER, not {m}",
                        o.account
                    ))
                    .into());
                }
                if account.password.is_some()
                    || account.password_command.is_some()
                    || account.password_file.is_some()
                {
                    return Err(Error::Config(format!(
                        "account {}: both a password and an oauth table: remove one",
                        o.account
                    ))
                    .into());
                }
                let dir =
                    crate::oauth::store::dir(&*env.var, running_as_root(env)).ok_or_else(|| {
                        Error::Config(format!(
                            "no directory for OAuth tokens: set HOME, XDG_STATE_HOME or {}",
                            crate::oauth::store::DIR_ENV
                        ))
                    })?;
                Some(crate::oauth::Registration::new(&o.account, o, &dir)?)
            }
            (Some(o), None) if !auth_off => {
                return Err(Error::Config(format!(
                    "account {}: an OAuth account needs user = \"ADDRESS\" (the mailbox it \
                     signs in as)",
                    o.account
                ))
                .into())
            }
            _ => None,
        };
        let (credentials, password_source) = match &user {
            Some(_) if auth_off => (None, None),
            Some(user) if oauth.is_some() => {
                let reg = oauth.expect("matched Some");
                let described = format!(
                    "(OAuth 2.0 token of account {} from {}, kept in {})",
                    reg.account,
                    reg.provider_name(),
                    reg.store.path().display()
                );
                let credentials = (!no_login).then(|| Credentials {
                    user: user.clone(),
                    secret: Login::OAuth(std::sync::Arc::new(crate::oauth::Tokens::new(reg))),
                });
                (credentials, Some(described))
            }
            Some(user) if no_login => (None, Some(source.describe(user))),
            Some(user) => {
                let described = source.describe(user);
                let what = if auth.is_some_and(Mechanism::takes_token) {
                    "OAuth token"
                } else {
                    "password"
                };
                let password = source.read(user, what)?;
                (
                    Some(Credentials {
                        user: user.clone(),
                        secret: Login::Password(password),
                    }),
                    Some(described),
                )
            }
            None => (None, None),
        };

        let queue = queue_settings(&args, &account, env, test_mode)?;
        Ok(Config {
            route: match (&args.socket, mx_port, server) {
                (Some(path), _, _) => Route::Socket(path.clone()),
                (None, Some(port), _) => Route::Mx { port },
                (None, None, Some(first)) => {
                    Route::Submission(std::iter::once(first).chain(fallback_servers).collect())
                }
                (None, None, None) => Route::Nowhere,
            },
            queue,
            family: match (args.ipv4, args.ipv6) {
                (true, _) => Family::V4,
                (_, true) => Family::V6,
                _ => Family::Any,
            },
            tls_ca: args.tls_ca.clone().or(account.tls_ca.clone()),
            tls_verify: !args.tls_no_verify && account.tls_verify.unwrap_or(true),
            timeouts: Timeouts {
                uniform: args.timeout.or(account.timeout).map(Duration::from_secs),
            },
            user,
            password_source,
            auth_off,
            verbosity: args.verbose,
            show_time: args.show_time,
            color: use_colour(
                args.color,
                (env.var)(NO_COLOR_ENV).as_deref(),
                (env.var)("TERM").as_deref(),
                std::io::stderr().is_terminal(),
            ),
            syslog: args.syslog,
            mode: if let Some(action) = args.queue_action {
                Mode::Queue(action)
            } else if args.serve_smtp {
                Mode::ServeSmtp
            } else if !args.messages.is_empty() {
                Mode::Batch(args.messages.clone())
            } else if args.show_config {
                Mode::ShowConfig
            } else if let Some(probe) = probe {
                Mode::Probe(probe)
            } else if let Some(stop) = quit_after {
                Mode::Rehearse(stop)
            } else if args.dry_run {
                Mode::DryRun
            } else {
                Mode::Send
            },
            skip_empty: args.skip_empty,
            test_mode,
            content,
            recipients,
            from,
            envelope_from: match &args.envelope_from {
                Some(f) => {
                    reject_line_breaks("--envelope-from", f)?;
                    Some(f.clone())
                }
                None => None,
            },
            default_sender,
            domain,
            sender_domain,
            aliases: match args.aliases.as_ref().or(account.aliases.as_ref()) {
                Some(path) => {
                    let aliases = crate::aliases::load(path)?;
                    if let Some(w) = aliases.warning() {
                        eprintln!("postie: warning: {w}");
                    }
                    Some(aliases)
                }
                None => None,
            },
            aliases_file: args.aliases.clone().or(account.aliases.clone()),
            config_file,
            log: {
                let log = args.log.clone().or(account.log.clone());
                // stdout carries the one JSON object; a log line there would break it.
                if args.json && log.as_deref().is_some_and(|p| p.as_os_str() == "-") {
                    return Err(Error::Usage(
                        "--json prints to stdout, so the log cannot go there too (--log -)".into(),
                    )
                    .into());
                }
                log
            },
            account_name: args.account.clone(),
            resolver: resolver(&args, env)?,
            mta_sts: mta_sts(&args, env)?,
            sendmail: SendmailOptions::default(),
            window: usize::from(args.window),
            connections: usize::from(args.connections),
            session: SessionOptions {
                protocol: args.protocol,
                security,
                helo,
                ehlo_literal,
                credentials,
                auth,
                allow_plaintext_auth: args.allow_plaintext_auth
                    || account.allow_plaintext_auth.unwrap_or(false),
                dsn: Dsn::default(),
                pipelining: !args.no_pipelining,
                chunking: !args.no_chunking,
                require_tls: args.require_tls,
                all_or_nothing: args.all_or_nothing || account.all_or_nothing.unwrap_or(false),
                dkim: crate::dkim::Options::resolve(
                    args.dkim_key.clone().or(account.dkim_key.clone()),
                    args.dkim_selector.clone().or(account.dkim_selector.clone()),
                    args.dkim_domain.clone().or(account.dkim_domain.clone()),
                    args.dkim_expire,
                )?,
            },
        })
    }
}

/// `postie queue list|remove` only look at the queue: no server, no password.
fn only_looks(args: &Args) -> bool {
    matches!(
        args.queue_action,
        Some(QueueAction::List | QueueAction::Remove)
    )
}

/// `HOST[:PORT],HOST[:PORT],...`: at least one, each as [`parse_server`] reads it.
fn server_list(s: &str, tls: Option<TlsMode>) -> Result<Vec<Server>> {
    s.split(',')
        .map(|one| match one.trim() {
            "" => Err(Error::Usage(format!("--server: empty name in the list {s:?}")).into()),
            one => parse_server(one, tls),
        })
        .collect()
}

/// --queue, --queue-dir, --queue-max-age over the account's `queue`, `queue_dir`,
/// `queue_max_age`; the default directory from the environment.
fn queue_settings(
    args: &Args,
    account: &Account,
    env: &Environment,
    test_mode: bool,
) -> Result<QueueSettings> {
    let named = args.queue_dir.clone().or(account.queue_dir.clone());
    let var = |k: &str| (env.var)(k).filter(|v| !v.is_empty());
    let default_dir = if let Some(dir) = var(QUEUE_DIR_ENV) {
        Some(PathBuf::from(dir))
    } else if running_as_root(env) {
        Some(PathBuf::from("/var/spool/postie"))
    } else if let Some(state) = var("XDG_STATE_HOME") {
        Some(PathBuf::from(state).join("postie/queue"))
    } else {
        var("HOME").map(|h| PathBuf::from(h).join(".local/state/postie/queue"))
    };
    let max_age = match (&args.queue_max_age, account.queue_max_age) {
        (Some(s), _) => crate::settings::parse_age(s).ok_or_else(|| {
            Error::Usage(format!(
                "--queue-max-age: not an age: {s:?} (SECS, or a number with s, m, h or d)"
            ))
        })?,
        (None, Some(secs)) => Duration::from_secs(secs),
        (None, None) => crate::settings::DEFAULT_MAX_AGE,
    };
    let clock_shift = match var(CLOCK_SHIFT_ENV) {
        Some(v) if test_mode => v
            .trim()
            .parse()
            .map_err(|_| Error::Config(format!("{CLOCK_SHIFT_ENV}: not a number: {v:?}")))?,
        _ => 0,
    };
    Ok(QueueSettings {
        enabled: args.queue || account.queue.unwrap_or(false),
        dir_configured: named.is_some(),
        dir: named.or(default_dir),
        max_age,
        clock_shift,
    })
}

/// Whether this process runs as root (the owner of /proc/self), else by $USER.
impl Config {
    /// The transcript the run asks for: `-v` level, --show-time, test mode and colour, to
    /// stderr.
    pub fn transcript(&self) -> crate::transcript::Transcript {
        crate::transcript::Transcript::stderr(self.verbosity)
            .with_times(self.show_time)
            .with_fixed_times(self.test_mode)
            .with_colour(self.color)
    }
}

pub fn running_as_root(env: &Environment) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata("/proc/self") {
            return m.uid() == 0;
        }
    }
    (env.var)("USER").as_deref() == Some("root")
}

/// --resolver, else a non-empty POSTIE_RESOLVER; a bad flag is a usage error, a bad
/// variable a configuration error.
fn resolver(args: &Args, env: &Environment) -> Result<Option<SocketAddr>> {
    if let Some(s) = &args.resolver {
        return crate::dns::parse_resolver(s)
            .map(Some)
            .map_err(|e| Error::Usage(format!("--resolver: {e}")).into());
    }
    match (env.var)(RESOLVER_ENV).filter(|v| !v.trim().is_empty()) {
        Some(s) => crate::dns::parse_resolver(&s)
            .map(Some)
            .map_err(|e| Error::Config(format!("{RESOLVER_ENV}: {e}")).into()),
        None => Ok(None),
    }
}

/// --no-mta-sts, a checked --mta-sts-url-base (EX_USAGE when bad), and the cache directory
/// from the environment.
fn mta_sts(args: &Args, env: &Environment) -> Result<MtaSts> {
    if let Some(base) = &args.mta_sts_url_base {
        parse_url_base(base).map_err(|e| Error::Usage(format!("--mta-sts-url-base: {e}")))?;
    }
    Ok(MtaSts {
        enabled: !args.no_mta_sts,
        url_base: args.mta_sts_url_base.clone(),
        cache_dir: mta_sts_cache_dir(&|k| (env.var)(k)),
    })
}

/// An OAuth account's provider preset fills what the account leaves unset: the provider's
/// SMTP submission server, and XOAUTH2 (both Microsoft and Google take it).
fn oauth_presets(account: &mut Account) {
    let Some(o) = &account.oauth else {
        return;
    };
    if account.server.is_none() {
        if let Some((host, port)) = crate::oauth::preset_server(o.provider) {
            account.server = Some(host.to_string());
            account.port.get_or_insert(port);
        }
    }
    if account.auth.is_none() {
        account.auth = Some(AuthSetting::Mechanism("XOAUTH2".into()));
    }
}

/// The configuration file (from -C, or the first one found) and the chosen account with
/// the file format's own defaults filled in.
fn load_account(
    args: &Args,
    env: &Environment,
    from: Option<&str>,
    edit: &dyn Fn(&mut Account),
) -> Result<(Option<PathBuf>, Account)> {
    let path = match &args.config {
        Some(p) => Some(p.clone()),
        None => crate::settings::find_in(&*env.var, &env.system_dir()),
    };
    let Some(path) = path else {
        if let Some(name) = &args.account {
            return Err(
                Error::Config(format!("--account {name}: no configuration file found")).into(),
            );
        }
        let mut account = Account::default();
        edit(&mut account);
        return Ok((None, account));
    };
    let settings = crate::settings::load(&path)?;
    let chosen = settings.choose(args.account.as_deref(), from)?;
    let was_chosen = chosen.is_some();
    let mut account = chosen.unwrap_or_else(|| settings.defaults.clone());
    edit(&mut account);
    oauth_presets(&mut account);
    if !was_chosen {
        // A file of accounts without a default does not mean "deliver to the MX hosts":
        // stop, unless the command line names the route (msmtp's --host included) or
        // nothing is sent.
        let route_given =
            args.server.is_some() || args.socket.is_some() || args.mx || account.server.is_some();
        if let Some(err) = settings.needs_a_choice() {
            if !(route_given || args.dry_run || only_looks(args)) {
                return Err(err.into());
            }
        }
    }
    let account = account.clone().or(&settings.format_defaults(&account));
    Ok((Some(path), account))
}

fn milestone_of(q: QuitAfter) -> Milestone {
    match q {
        QuitAfter::Connect => Milestone::Connect,
        QuitAfter::Greeting => Milestone::Greeting,
        QuitAfter::Ehlo => Milestone::Ehlo,
        QuitAfter::Starttls => Milestone::StartTls,
        QuitAfter::Tls => Milestone::Tls,
        QuitAfter::Auth => Milestone::Auth,
        QuitAfter::Mail => Milestone::Mail,
        QuitAfter::Rcpt => Milestone::Rcpt,
        QuitAfter::Data => Milestone::Data,
    }
}

/// --quit-after must name a step this run will take.
fn check_quit_after(
    stop: Option<Milestone>,
    security: Security,
    login: bool,
    recipients: &Recipients,
) -> Result<()> {
    let problem = match stop {
        Some(Milestone::StartTls) if security != Security::StartTlsRequired => {
            "--quit-after starttls: this connection uses no STARTTLS (--tls starttls; with \
             implicit TLS use --quit-after tls)"
        }
        Some(Milestone::Tls) if security == Security::Plain => {
            "--quit-after tls: TLS is off (--tls none)"
        }
        Some(Milestone::Auth) if !login => {
            "--quit-after auth: no login to try (--user, or an account with a user)"
        }
        Some(Milestone::Rcpt)
            if recipients.to.is_empty()
                && recipients.cc.is_empty()
                && recipients.bcc.is_empty() =>
        {
            "--quit-after rcpt: name at least one recipient (RECIPIENT, --to, -c or -b)"
        }
        _ => return Ok(()),
    };
    Err(Error::Usage(problem.into()).into())
}

fn mechanism_of(m: AuthMech) -> Mechanism {
    match m {
        AuthMech::Plain => Mechanism::Plain,
        AuthMech::Login => Mechanism::Login,
        AuthMech::ScramSha256 => Mechanism::ScramSha256,
        AuthMech::CramMd5 => Mechanism::CramMd5,
        AuthMech::Xoauth2 => Mechanism::XOAuth2,
        AuthMech::Oauthbearer => Mechanism::OAuthBearer,
    }
}

/// Where the password comes from, in order of precedence: flags, the environment, the
/// configuration file, a prompt on the terminal.
enum PasswordSource {
    File(PathBuf),
    Command(String),
    Env(String),
    Literal(Secret),
    Prompt,
}

fn password_source(args: &Args, account: &Account, env: &Environment) -> PasswordSource {
    if let Some(p) = &args.password_file {
        PasswordSource::File(p.clone())
    } else if let Some(c) = &args.password_command {
        PasswordSource::Command(c.clone())
    } else if let Some(p) = (env.var)(PASSWORD_ENV) {
        PasswordSource::Env(p)
    } else if let Some(p) = &account.password {
        PasswordSource::Literal(p.clone())
    } else if let Some(c) = &account.password_command {
        PasswordSource::Command(c.clone())
    } else if let Some(p) = &account.password_file {
        PasswordSource::File(p.clone())
    } else {
        PasswordSource::Prompt
    }
}

impl PasswordSource {
    /// For --show-config: where the password would come from, never the password.
    fn describe(&self, user: &str) -> String {
        match self {
            PasswordSource::File(p) => format!("(from file {})", p.display()),
            PasswordSource::Command(c) => format!("(from command {c:?})"),
            PasswordSource::Env(_) => format!("(from {PASSWORD_ENV})"),
            PasswordSource::Literal(_) => "(from the configuration file)".into(),
            PasswordSource::Prompt => format!("(prompted for {user} on the terminal)"),
        }
    }

    fn read(self, user: &str, what: &str) -> Result<Secret> {
        match self {
            PasswordSource::File(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| Error::NoInput {
                    what: "password file",
                    path: path.clone(),
                    source,
                })?;
                private_password_file(&path)?;
                nonempty(first_line(&text), || {
                    format!("password file {}", path.display())
                })
            }
            PasswordSource::Command(cmd) => {
                let out = Command::new("sh")
                    .arg("-c")
                    .arg(&cmd)
                    .stdin(Stdio::null())
                    .stderr(Stdio::inherit())
                    .output()
                    .context("running the password command")?;
                if !out.status.success() {
                    return Err(
                        Error::Config(format!("password command failed ({})", out.status)).into(),
                    );
                }
                nonempty(first_line(&String::from_utf8_lossy(&out.stdout)), || {
                    format!("password command {cmd:?}")
                })
            }
            PasswordSource::Env(p) => Ok(Secret::new(p)),
            PasswordSource::Literal(s) => Ok(s),
            PasswordSource::Prompt => {
                match crate::prompt::password(&format!("postie: {what} for {user}: ")) {
                    Ok(p) => Ok(p),
                    Err(crate::prompt::Failure::Interrupted) => Err(Error::Config(format!(
                        "no {what} for {user}: the prompt was interrupted"
                    ))
                    .into()),
                    Err(_) => Err(Error::Config(format!(
                        "no {what} for {user}: use --password-file, --password-command, \
                         {PASSWORD_ENV} or a configuration file"
                    ))
                    .into()),
                }
            }
        }
    }
}

/// `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT`, or a bare IPv6 address.
/// An empty password is never what a file or a command meant (a command that failed
/// quietly, an empty file): EX_CONFIG, naming where it came from.
fn nonempty(password: String, source: impl Fn() -> String) -> Result<Secret> {
    if password.is_empty() {
        return Err(Error::Config(format!("{} gave an empty password", source())).into());
    }
    Ok(Secret::new(password))
}

/// A password file that group or others may read is refused, as a configuration file
/// holding a password is (msmtp's rule for its own file).
fn private_password_file(path: &std::path::Path) -> Result<()> {
    let display = format!("password file {}", path.display());
    match crate::settings::open_mode(path, &display)? {
        Some(mode) => Err(Error::Config(format!(
            "{display}: readable by others (mode {mode:04o}): chmod 600 {}",
            path.display()
        ))
        .into()),
        None => Ok(()),
    }
}

/// Whether `s`, as [`parse_server`] reads it, names a port (`host:port`, `[v6]:port`).
fn names_a_port(s: &str) -> bool {
    match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, after)| !after.is_empty()),
        None => s.matches(':').count() == 1,
    }
}

pub fn parse_server(s: &str, tls: Option<TlsMode>) -> Result<Server> {
    let default_port = if tls == Some(TlsMode::Implicit) {
        SUBMISSIONS_PORT
    } else {
        SUBMISSION_PORT
    };
    let bad = || Error::Usage(format!("--server: not HOST or HOST:PORT: {s:?}"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').ok_or_else(bad)?;
        (h, Some(p))
    } else {
        (s, None)
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/')
    {
        return Err(bad().into());
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(Error::Usage(format!("--server: bad port {p:?}")).into()),
        },
    };
    Ok(Server {
        host: host.to_string(),
        port,
    })
}

fn compose(args: &Args) -> Result<Compose> {
    let mut headers = Vec::new();
    let mut html_type = false;
    for h in &args.header {
        let (name, value) = parse_header(h)?;
        match body_header(&name, &value)? {
            BodyHeader::Html => html_type = true,
            BodyHeader::Dropped => {}
            BodyHeader::Other => headers.push((name, value)),
        }
    }
    let html = match (&args.html, &args.html_body) {
        (Some(p), _) if p.as_os_str() == "-" => Some(Body::Stdin),
        (Some(p), _) => Some(Body::File(p.clone())),
        (None, Some(t)) => Some(Body::Text(t.clone())),
        (None, None) => None,
    };
    let mut body = match (&args.body, &args.body_file) {
        (Some(t), _) => Some(Body::Text(t.clone())),
        (None, Some(p)) => Some(Body::File(p.clone())),
        // stdin is the body unless the HTML is all there is.
        (None, None) if html.is_none() => Some(Body::Stdin),
        (None, None) => None,
    };
    let html = match (html_type, html) {
        (true, Some(_)) => {
            return Err(Error::Usage(
                "-H Content-Type: text/html and --html/--html-body: give the HTML once, with \
                 --html"
                    .into(),
            )
            .into())
        }
        // `mail -a 'Content-Type: text/html'` (bsd-mailx): the body is the HTML.
        (true, None) => body.take(),
        (false, html) => html,
    };
    let attachments = args
        .attach
        .iter()
        .map(|a| match a.rsplit_once(";type=") {
            Some((path, ct)) if !ct.is_empty() => {
                reject_line_breaks("attachment type", ct)?;
                Ok(Attachment {
                    path: PathBuf::from(path),
                    content_type: Some(ct.to_string()),
                })
            }
            _ => Ok(Attachment {
                path: PathBuf::from(a),
                content_type: None,
            }),
        })
        .collect::<Result<Vec<_>>>()?;
    for r in &args.reply_to {
        reject_line_breaks("--reply-to", r)?;
    }
    Ok(Compose {
        subject: args.subject.clone(),
        reply_to: split_list(&args.reply_to),
        headers,
        body,
        html,
        attachments,
    })
}

/// What a `-H` header means for the body of a composed message.
enum BodyHeader {
    /// `Content-Type: text/html`: the body is HTML.
    Html,
    /// `Content-Type: text/plain` (what postie writes anyway) or `Content-Transfer-Encoding`
    /// (postie picks the encoding the body needs): not repeated.
    Dropped,
    /// Any other header: added as given.
    Other,
}

/// The MIME structure is mail-builder's: a composed body is text/plain or text/html
/// (UTF-8), so those two types are taken as the body's type and anything else is refused.
fn body_header(name: &str, value: &str) -> Result<BodyHeader> {
    if name.eq_ignore_ascii_case("content-transfer-encoding") {
        return Ok(BodyHeader::Dropped);
    }
    if !name.eq_ignore_ascii_case("content-type") {
        return Ok(BodyHeader::Other);
    }
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/html" => Ok(BodyHeader::Html),
        "text/plain" => Ok(BodyHeader::Dropped),
        _ => Err(Error::Usage(format!(
            "-H Content-Type: {}: a composed body is text/plain or text/html (use --html, \
             -a FILE for attachments, or send a ready message with --message)",
            value.trim()
        ))
        .into()),
    }
}

/// "Name: value" → (Name, value). Refuses CR/LF anywhere (header injection) and names that
/// are not RFC 5322 field names.
pub fn parse_header(h: &str) -> Result<(String, String)> {
    reject_line_breaks("header", h)?;
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| Error::Data(format!("header {h:?} is not \"Name: value\"")))?;
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if !name_ok {
        return Err(Error::Data(format!("header name {name:?} is not valid")).into());
    }
    Ok((name.to_string(), value.trim().to_string()))
}

fn reject_line_breaks(what: &str, value: &str) -> Result<()> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(Error::Data(format!(
            "{what} contains a line break or NUL (header injection refused): {value:?}"
        ))
        .into());
    }
    Ok(())
}

fn split_list<'a>(items: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    items
        .into_iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_string()
}

/// Whether the transcript is coloured: `--color always`/`never` decide; `auto` colours only
/// a terminal, and never when `NO_COLOR` is set (to any value) or `TERM` is `dumb`.
pub fn use_colour(
    when: ColorWhen,
    no_color: Option<&str>,
    term: Option<&str>,
    stderr_is_terminal: bool,
) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => stderr_is_terminal && no_color.is_none() && term != Some("dumb"),
    }
}

/// The policy cache directory: `$POSTIE_CACHE_DIR/mta-sts`, else
/// `$XDG_CACHE_HOME/postie/mta-sts`, else `$HOME/.cache/postie/mta-sts` (relative or empty
/// values are skipped, as the XDG base directory specification says); None without any.
pub fn mta_sts_cache_dir(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(dir) = absolute("POSTIE_CACHE_DIR") {
        return Some(dir.join("mta-sts"));
    }
    if let Some(dir) = absolute("XDG_CACHE_HOME") {
        return Some(dir.join("postie").join("mta-sts"));
    }
    absolute("HOME").map(|home| home.join(".cache").join("postie").join("mta-sts"))
}

/// `https://HOST[:PORT][/PATH]` → (host, port, path without the final `/`). The host may
/// be a name, an IPv4 address or `[IPv6]`; no user info, query or fragment.
pub fn parse_url_base(base: &str) -> std::result::Result<(String, u16, String), String> {
    let rest = base
        .strip_prefix("https://")
        .ok_or_else(|| format!("{base:?} does not start with https://"))?;
    if rest.contains(['?', '#', '@']) || rest.chars().any(|c| c.is_whitespace()) {
        return Err(format!(
            "{base:?}: only https://HOST[:PORT][/PATH] is allowed"
        ));
    }
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = if let Some(v6) = auth.strip_prefix('[') {
        let (ip, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{base:?}: unclosed ["))?;
        (ip.to_string(), after.strip_prefix(':'))
    } else {
        match auth.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (auth.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("{base:?}: no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{base:?}: bad port {p:?}"))?,
        None => 443,
    };
    Ok((host, port, path.trim_end_matches('/').to_string()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn colour_only_when_wanted() {
        use crate::cli::ColorWhen::{Always, Auto, Never};
        for (when, no_color, term, tty, colour) in [
            (Auto, None, Some("xterm-256color"), true, true),
            (Auto, None, None, true, true),
            (Auto, None, Some("xterm"), false, false),
            (Auto, Some("1"), Some("xterm"), true, false),
            (Auto, Some(""), Some("xterm"), true, false),
            (Auto, Some("0"), Some("xterm"), true, false),
            (Auto, None, Some("dumb"), true, false),
            (Never, None, Some("xterm"), true, false),
            (Always, None, Some("xterm"), false, true),
            (Always, Some("1"), Some("dumb"), false, true),
        ] {
            assert_eq!(
                use_colour(when, no_color, term, tty),
                colour,
                "{when:?} NO_COLOR={no_color:?} TERM={term:?} tty={tty}"
            );
        }
    }

    use super::*;
    use crate::error::exit_code;
    use clap::Parser;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> Environment {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Environment {
            var: Box::new(move |k| match k {
                SYSCONFDIR_ENV => Some("/nonexistent/postie-test-etc".into()),
                _ => map.get(k).cloned(),
            }),
            hostname: "box.example".into(),
            fqdn: |_| None,
        }
    }

    fn resolve(args: &[&str], vars: &[(&str, &str)]) -> Result<Config> {
        let args = Args::try_parse_from(std::iter::once("postie").chain(args.iter().copied()))
            .expect("args parse");
        Config::resolve(args, &env(vars))
    }

    #[test]
    fn queue_dir_from_the_environment_moves_the_default_only() {
        let cfg = resolve(&["--server", "h", "b@x.test"], &[(QUEUE_DIR_ENV, "/q")]).unwrap();
        assert_eq!(cfg.queue.dir.as_deref(), Some(std::path::Path::new("/q")));
        assert!(
            !cfg.queue.dir_configured,
            "the sendmail persona must not start queueing"
        );
        let cfg = resolve(
            &["--server", "h", "--queue-dir", "/flag", "b@x.test"],
            &[(QUEUE_DIR_ENV, "/q")],
        )
        .unwrap();
        assert_eq!(
            cfg.queue.dir.as_deref(),
            Some(std::path::Path::new("/flag"))
        );
        assert!(cfg.queue.dir_configured);
    }

    #[test]
    fn server_forms() {
        let cases: &[(&str, Option<TlsMode>, &str, u16)] = &[
            ("smtp.example.com", None, "smtp.example.com", 587),
            ("smtp.example.com:2525", None, "smtp.example.com", 2525),
            (
                "smtp.example.com",
                Some(TlsMode::Implicit),
                "smtp.example.com",
                465,
            ),
            ("[::1]:25", None, "::1", 25),
            ("[::1]", None, "::1", 587),
            ("::1", None, "::1", 587),
            ("127.0.0.1:465", None, "127.0.0.1", 465),
        ];
        for (s, tls, host, port) in cases {
            let got = parse_server(s, *tls).unwrap();
            assert_eq!((got.host.as_str(), got.port), (*host, *port), "{s}");
        }
        for bad in [
            "",
            ":25",
            "host:",
            "host:0",
            "host:99999",
            "[::1",
            "[::1]x",
            "a b",
        ] {
            assert!(parse_server(bad, None).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn colour_follows_the_flag_and_no_color() {
        let colour = |a: &[&str], v: &[(&str, &str)]| resolve(a, v).unwrap().color;
        assert!(colour(&["--dry-run", "--color", "always", "x@y"], &[]));
        assert!(colour(
            &["--dry-run", "--color", "always", "x@y"],
            &[("NO_COLOR", "1")]
        ));
        assert!(!colour(&["--dry-run", "--color", "never", "x@y"], &[]));
        // auto: NO_COLOR (any value) and TERM=dumb turn it off whatever stderr is.
        for vars in [[("NO_COLOR", "1")], [("NO_COLOR", "")], [("TERM", "dumb")]] {
            assert!(!colour(&["--dry-run", "x@y"], &vars), "{vars:?}");
        }
    }

    #[test]
    fn security_follows_port_unless_told() {
        let sec = |a: &[&str]| resolve(a, &[]).unwrap().session.security;
        assert_eq!(sec(&["--server", "h", "x@y"]), Security::StartTlsRequired);
        assert_eq!(sec(&["--server", "h:465", "x@y"]), Security::Implicit);
        assert_eq!(
            sec(&["--server", "h:25", "x@y"]),
            Security::StartTlsRequired
        );
        assert_eq!(
            sec(&["--server", "h:25", "--tls", "none", "x@y"]),
            Security::Plain
        );
        assert_eq!(
            sec(&["--server", "h", "--tls", "implicit", "x@y"]),
            Security::Implicit
        );
    }

    #[test]
    fn a_socket_needs_no_server_and_no_tls() {
        let c = resolve(&["--socket", "/run/lmtp", "--protocol", "lmtp", "x@y"], &[]).unwrap();
        assert_eq!(c.route, Route::Socket("/run/lmtp".into()));
        assert_eq!(c.session.security, Security::Plain);
        assert_eq!(c.session.protocol, Protocol::Lmtp);
        let c = resolve(&["--socket", "/run/lmtp", "--tls", "none", "x@y"], &[]).unwrap();
        assert_eq!(
            (c.session.security, c.session.protocol),
            (Security::Plain, Protocol::Smtp)
        );
        for mode in ["starttls", "implicit"] {
            let e = resolve(&["--socket", "/run/lmtp", "--tls", mode, "x@y"], &[]).unwrap_err();
            assert_eq!(exit_code(&e), crate::error::Exit::Usage, "{mode}");
            assert!(e.to_string().contains(mode), "{e}");
        }
        // LMTP over TCP keeps the TCP defaults.
        let c = resolve(&["--server", "h:24", "--protocol", "lmtp", "x@y"], &[]).unwrap();
        assert_eq!(
            (
                c.session.security,
                c.route.server().is_some(),
                c.session.protocol
            ),
            (Security::StartTlsRequired, true, Protocol::Lmtp)
        );
    }

    #[test]
    fn a_file_of_accounts_without_a_default_stops_instead_of_going_direct() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("config.toml");
        std::fs::write(
            &toml,
            "[account.bob]\nserver = \"smtp.example\"\nfrom = \"bob@example\"\n",
        )
        .unwrap();
        let rc = dir.path().join("msmtprc");
        std::fs::write(
            &rc,
            "account work\nhost smtp.work.example\nfrom me@work.example\n",
        )
        .unwrap();
        let path = |p: &std::path::Path| -> &'static str {
            Box::leak(p.to_str().unwrap().to_string().into_boxed_str())
        };
        let (toml, rc) = (path(&toml), path(&rc));
        for (file, names, how) in [
            (toml, "bob", "default_account = \"NAME\""),
            (rc, "work", "account default : NAME"),
        ] {
            let err = resolve(&["-C", file, "a@x.test"], &[]).expect_err(file);
            assert_eq!(exit_code(&err), crate::error::Exit::Config, "{file}");
            let msg = format!("{err:#}");
            assert!(
                msg.contains(&format!("no default account (it defines: {names})"))
                    && msg.contains("-A NAME")
                    && msg.contains(how),
                "{msg}"
            );
            // Chosen by name, by a matching From, or a route on the command line: fine.
            let a = resolve(&["-C", file, "-A", names, "a@x.test"], &[]).unwrap();
            assert!(a.route.server().is_some(), "{file} -A: submission, not MX");
            let from = if names == "bob" {
                "bob@example"
            } else {
                "me@work.example"
            };
            let f = resolve(&["-C", file, "-f", from, "a@x.test"], &[]).unwrap();
            assert!(
                f.route.server().is_some(),
                "{file}: account chosen by its from"
            );
            let s = resolve(&["-C", file, "--server", "relay.test", "a@x.test"], &[]).unwrap();
            assert_eq!(
                s.route.server().map(|s| s.host.as_str()),
                Some("relay.test")
            );
            let mx = resolve(&["-C", file, "--mx", "a@x.test"], &[]).unwrap();
            assert_eq!(
                mx.route,
                Route::Mx { port: SMTP_PORT },
                "{file} --mx is asked for"
            );
            resolve(&["-C", file, "--dry-run", "a@x.test"], &[]).expect("a dry run sends nothing");
        }
        // A [defaults] table with a server is a default.
        let both = dir.path().join("both.toml");
        std::fs::write(
            &both,
            "[defaults]\nserver = \"d.example\"\n[account.bob]\nserver = \"b.example\"\n",
        )
        .unwrap();
        let c = resolve(&["-C", path(&both), "a@x.test"], &[]).unwrap();
        assert_eq!(c.route.server().map(|s| s.host.as_str()), Some("d.example"));
    }

    #[test]
    fn html_bodies_and_the_content_type_header() {
        let compose = |args: &[&str]| match resolve(args, &[]) {
            Ok(c) => match c.content {
                Content::Compose(c) => Ok(c),
                Content::Ready(_) => panic!("{args:?}: not composed"),
            },
            Err(e) => Err(e),
        };
        let base = ["--server", "h", "a@x.test"];
        let with = |extra: &[&'static str]| -> Vec<&str> {
            base.iter().copied().chain(extra.iter().copied()).collect()
        };
        let c = compose(&with(&[])).unwrap();
        assert_eq!((c.body, c.html), (Some(Body::Stdin), None));
        // bsd-mailx's -a 'Content-Type: text/html': the body read from stdin is the HTML.
        let c = compose(&with(&["-H", "Content-Type: text/html; charset=UTF-8"])).unwrap();
        assert_eq!(
            (c.body, c.html, c.headers),
            (None, Some(Body::Stdin), vec![])
        );
        let c = compose(&with(&[
            "-H",
            "content-type: TEXT/PLAIN",
            "-H",
            "Content-Transfer-Encoding: 8bit",
        ]))
        .unwrap();
        assert_eq!(
            (c.body, c.html, c.headers),
            (Some(Body::Stdin), None, vec![])
        );
        let c = compose(&with(&["--html", "-"])).unwrap();
        assert_eq!((c.body, c.html), (None, Some(Body::Stdin)));
        let c = compose(&with(&["--body", "t", "--html-body", "<b>h</b>"])).unwrap();
        assert_eq!(
            (c.body, c.html),
            (
                Some(Body::Text("t".into())),
                Some(Body::Text("<b>h</b>".into()))
            )
        );
        for (extra, code) in [
            (
                &["-H", "Content-Type: image/png"][..],
                crate::error::Exit::Usage,
            ),
            (
                &["-H", "Content-Type: text/html", "--html-body", "x"],
                crate::error::Exit::Usage,
            ),
            (
                &["-a", "f.bin;type=text/plain\r\nBcc: x@y"],
                crate::error::Exit::DataErr,
            ),
            (&["-a", "f.bin;type=a/b\0"], crate::error::Exit::DataErr),
        ] {
            let err = compose(&with(extra)).expect_err("refused");
            assert_eq!(exit_code(&err), code, "{extra:?}: {err:#}");
        }
    }

    #[test]
    fn ehlo_name_is_fully_qualified_or_a_literal() {
        let with = |hostname: &str, fqdn: fn(&str) -> Option<String>, args: &[&str]| {
            let args = Args::try_parse_from(
                ["postie", "--server", "h", "a@x.test"]
                    .iter()
                    .chain(args.iter())
                    .copied(),
            )
            .unwrap();
            let env = Environment {
                var: Box::new(|k| (k == SYSCONFDIR_ENV).then(|| "/nonexistent".into())),
                hostname: hostname.into(),
                fqdn,
            };
            let c = Config::resolve(args, &env).unwrap();
            (c.session.helo, c.session.ehlo_literal, c.default_sender)
        };
        let known = |_: &str| Some("box.example.org".to_string());
        let unknown = |_: &str| None;
        assert_eq!(
            with("box", known, &[]),
            (
                "box.example.org".into(),
                false,
                "postie@box.example.org".into()
            )
        );
        assert_eq!(
            with("box", unknown, &[]),
            ("box".into(), true, "postie@box".into())
        );
        assert_eq!(
            with("box", unknown, &["--domain", "d.example"]),
            ("box".into(), true, "postie@d.example".into())
        );
        // A name given is used as given.
        assert_eq!(with("box", unknown, &["--helo", "client"]).0, "client");
        assert!(!with("box", unknown, &["--helo", "client"]).1);
        assert_eq!(with("m.example", unknown, &[]).0, "m.example");
    }

    #[test]
    fn password_sources_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\nsecond line\n").unwrap();
        let private = |p: &std::path::Path, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        private(&file, 0o600);
        let open = dir.path().join("open");
        std::fs::write(&open, "secret\n").unwrap();
        private(&open, 0o644);
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\nsecond line\n").unwrap();
        private(&empty, 0o600);
        let leak = |p: &std::path::Path| -> &'static str {
            Box::leak(p.to_str().unwrap().to_string().into_boxed_str())
        };
        let (open, empty) = (leak(&open), leak(&empty));
        let file = file.to_str().unwrap();
        let pw = |a: &[&str], v: &[(&str, &str)]| {
            resolve(a, v)
                .unwrap()
                .session
                .credentials
                .map(|c| match c.secret {
                    Login::Password(p) => p.expose().to_string(),
                    Login::OAuth(_) => panic!("not a password"),
                })
                .unwrap()
        };
        let base = ["--server", "h", "--user", "u", "x@y"];
        let with = |extra: &[&'static str]| -> Vec<&str> {
            base.iter().copied().chain(extra.iter().copied()).collect()
        };
        assert_eq!(pw(&with(&[]), &[(PASSWORD_ENV, "from-env")]), "from-env");
        let f: &'static str = Box::leak(file.to_string().into_boxed_str());
        assert_eq!(
            pw(&with(&["--password-file", f]), &[(PASSWORD_ENV, "e")]),
            "from-file"
        );
        assert_eq!(
            pw(&with(&["--password-command", "printf 'cmd\\nx'"]), &[]),
            "cmd"
        );
        let err = resolve(&with(&["--password-command", "exit 3"]), &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Config);
        let err = resolve(&with(&["--password-file", "/nonexistent/pw"]), &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::NoInput);
        // Never an empty password, never a file others can read: 78, saying which.
        for (extra, says) in [
            (
                &["--password-command", "true"][..],
                "password command \"true\" gave an empty password",
            ),
            (
                &["--password-command", "printf '\\nx'"],
                "gave an empty password",
            ),
            (&["--password-file", empty], "gave an empty password"),
            (
                &["--password-file", open],
                "readable by others (mode 0644): chmod 600",
            ),
        ] {
            let err = resolve(&with(extra), &[]).unwrap_err();
            assert_eq!(exit_code(&err), crate::error::Exit::Config, "{extra:?}");
            assert!(format!("{err:#}").contains(says), "{extra:?}: {err:#}");
        }
    }

    #[test]
    fn header_injection_and_bad_headers_are_data_errors() {
        for bad in [
            "X-A: b\r\nBcc: evil@x",
            "X-A: b\nc",
            "NoColon",
            ": empty",
            "Bad Name: x",
        ] {
            let err = resolve(&["--server", "h", "-H", bad, "x@y"], &[]).unwrap_err();
            assert_eq!(exit_code(&err), crate::error::Exit::DataErr, "{bad:?}");
        }
        let err = resolve(&["--server", "h", "-s", "a\nBcc: x", "x@y"], &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::DataErr);
        let ok = resolve(&["--server", "h", "-H", "X-Prio:  high ", "x@y"], &[]).unwrap();
        let Content::Compose(c) = ok.content else {
            panic!("not compose")
        };
        assert_eq!(c.headers, [("X-Prio".to_string(), "high".to_string())]);
    }

    #[test]
    fn mta_sts_settings_from_flags_and_environment() {
        // (flags, environment, wanted: enabled, url base, cache dir)
        type Case<'a> = (
            &'a [&'a str],
            &'a [(&'a str, &'a str)],
            (bool, Option<&'a str>, Option<&'a str>),
        );
        let cases: &[Case] = &[
            (&[], &[], (true, None, None)),
            (
                &["--no-mta-sts"],
                &[("HOME", "/h")],
                (false, None, Some("/h/.cache/postie/mta-sts")),
            ),
            (
                &["--mta-sts-url-base", "https://127.0.0.1:8443"],
                &[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")],
                (
                    true,
                    Some("https://127.0.0.1:8443"),
                    Some("/x/postie/mta-sts"),
                ),
            ),
            (
                &[],
                &[("POSTIE_CACHE_DIR", "/c")],
                (true, None, Some("/c/mta-sts")),
            ),
        ];
        for (flags, vars, (enabled, base, dir)) in cases {
            let args: Vec<&str> = ["--server", "h"]
                .iter()
                .chain(flags.iter())
                .chain(["x@y"].iter())
                .copied()
                .collect();
            let got = resolve(&args, vars).unwrap().mta_sts;
            let want = MtaSts {
                enabled: *enabled,
                url_base: base.map(String::from),
                cache_dir: dir.map(PathBuf::from),
            };
            assert_eq!(got, want, "{flags:?} {vars:?}");
        }
        let err = resolve(
            &["--server", "h", "--mta-sts-url-base", "http://x", "x@y"],
            &[],
        )
        .unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Usage);
    }

    #[test]
    fn resolver_from_flag_then_environment() {
        // (flags, environment, resolver wanted)
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (&[], &[], None),
            (&[], &[(RESOLVER_ENV, "")], None),
            (
                &[],
                &[(RESOLVER_ENV, "127.0.0.1:5353")],
                Some("127.0.0.1:5353"),
            ),
            (&[], &[(RESOLVER_ENV, "::1")], Some("[::1]:53")),
            (&["--resolver", "192.0.2.53"], &[], Some("192.0.2.53:53")),
            (
                &["--resolver", "[::1]:5300"],
                &[(RESOLVER_ENV, "127.0.0.1")],
                Some("[::1]:5300"),
            ),
        ];
        for (flags, vars, want) in cases {
            let args: Vec<&str> = ["--server", "h"]
                .iter()
                .chain(flags.iter())
                .chain(["x@y"].iter())
                .copied()
                .collect();
            let got = resolve(&args, vars).unwrap().resolver;
            assert_eq!(got, want.map(|w| w.parse().unwrap()), "{flags:?} {vars:?}");
        }
        let err = resolve(&["--server", "h", "--resolver", "dns.example", "x@y"], &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Usage);
        let err = resolve(&["--server", "h", "x@y"], &[(RESOLVER_ENV, "nope")]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Config);
    }

    #[test]
    fn defaults_and_lists() {
        let c = resolve(
            &["--server", "h", "-c", "a@x, b@x", "--to", "t@x", "p@x"],
            &[("USER", "ops"), (TEST_MODE_ENV, "1")],
        )
        .unwrap();
        assert_eq!(c.recipients.to, ["p@x", "t@x"]);
        assert_eq!(c.recipients.cc, ["a@x", "b@x"]);
        assert_eq!(c.default_sender, "ops@box.example");
        assert_eq!(c.session.helo, "postie.test");
        let c = resolve(&["--server", "h", "x@y"], &[]).unwrap();
        assert_eq!(c.session.helo, "box.example");
        // No server anywhere: direct delivery to the recipients' MX hosts.
        let c = resolve(&["x@y"], &[]).unwrap();
        assert_eq!(c.route, Route::Mx { port: SMTP_PORT });
        assert!(resolve(&["--dry-run", "x@y"], &[]).is_ok());
    }

    #[test]
    fn quit_after_needs_its_step() {
        let usage = crate::error::Exit::Usage;
        let refused: &[&[&str]] = &[
            &["--server", "h", "--tls", "none", "--quit-after", "starttls"],
            &["--server", "h:465", "--quit-after", "starttls"],
            &["--server", "h", "--tls", "none", "--quit-after", "tls"],
            &["--server", "h", "--quit-after", "auth", "x@y"],
            &["--server", "h", "--quit-after", "rcpt"],
        ];
        for args in refused {
            let err = resolve(args, &[]).unwrap_err();
            assert_eq!(exit_code(&err), usage, "{args:?}");
        }
        let fine: &[(&[&str], Milestone)] = &[
            (
                &["--server", "h", "--quit-after", "connect"],
                Milestone::Connect,
            ),
            (
                &["--server", "h", "--quit-after", "starttls"],
                Milestone::StartTls,
            ),
            (
                &["--server", "h:465", "--quit-after", "tls"],
                Milestone::Tls,
            ),
            (&["--server", "h", "--quit-after", "mail"], Milestone::Mail),
            (
                &["--server", "h", "--quit-after", "rcpt", "-b", "x@y"],
                Milestone::Rcpt,
            ),
            (&["--server", "h", "--quit-after", "data"], Milestone::Data),
        ];
        for (args, want) in fine {
            assert_eq!(
                resolve(args, &[]).unwrap().quit_after(),
                Some(*want),
                "{args:?}"
            );
        }
    }

    #[test]
    fn no_password_is_read_before_auth() {
        // A password command that fails would stop resolve() if it were run.
        let base = [
            "--server",
            "h",
            "--user",
            "u",
            "--password-command",
            "exit 3",
        ];
        let with = |extra: &[&'static str]| -> Vec<&str> {
            base.iter().copied().chain(extra.iter().copied()).collect()
        };
        for extra in [
            &["--quit-after", "ehlo"][..],
            &["--quit-after", "tls"],
            &["--probe"],
        ] {
            let c = resolve(&with(extra), &[]).unwrap();
            assert!(c.session.credentials.is_none(), "{extra:?}");
            assert_eq!(c.user.as_deref(), Some("u"));
        }
        for extra in [&["--quit-after", "auth"][..], &["--quit-after", "mail"]] {
            let err = resolve(&with(extra), &[]).unwrap_err();
            assert_eq!(exit_code(&err), crate::error::Exit::Config, "{extra:?}");
        }
    }

    /// `postie queue ACTION` and the personas' queue commands: the action is the mode;
    /// list and remove only look (no server needed, no password read — a failing password
    /// command would show it), run and flush take the route a send would.
    #[test]
    fn a_queue_action_is_the_mode_and_looking_needs_no_server_or_password() {
        let with = |action: QueueAction, extra: &[&str]| {
            let argv = std::iter::once("postie").chain(extra.iter().copied());
            let mut args = Args::try_parse_from(argv).expect("args parse");
            args.queue_action = Some(action);
            Config::resolve(args, &env(&[]))
        };
        let login = [
            "--server",
            "h",
            "--user",
            "u",
            "--password-command",
            "exit 3",
        ];
        for action in [QueueAction::List, QueueAction::Remove] {
            let c = with(action, &[]).unwrap_or_else(|e| panic!("{action:?}: {e:#}"));
            assert_eq!(c.mode, Mode::Queue(action));
            let c = with(action, &login).unwrap_or_else(|e| panic!("{action:?}: {e:#}"));
            assert!(c.session.credentials.is_none(), "{action:?}");
        }
        for action in [QueueAction::Run, QueueAction::Flush] {
            let c = with(action, &["--server", "h:2525"]).unwrap();
            assert_eq!(c.mode, Mode::Queue(action));
            assert_eq!(c.route.server().map(|s| s.port), Some(2525));
            let c = with(action, &[]).unwrap();
            assert_eq!(c.route, Route::Mx { port: SMTP_PORT }, "{action:?}");
            let err = with(action, &login).unwrap_err();
            assert_eq!(
                exit_code(&err),
                crate::error::Exit::Config,
                "{action:?}: {err:#}"
            );
        }
        let mut args = Args::try_parse_from(["postie"]).unwrap();
        args.serve_smtp = true;
        assert_eq!(
            Config::resolve(args, &env(&[])).unwrap().mode,
            Mode::ServeSmtp
        );
    }

    #[test]
    fn each_request_is_one_mode() {
        let cases: &[(&[&str], Mode)] = &[
            (&["--server", "h", "a@x"], Mode::Send),
            (&["--dry-run", "a@x"], Mode::DryRun),
            (&["--show-config"], Mode::ShowConfig),
            (
                &["--server", "h", "--show-config", "--dry-run"],
                Mode::ShowConfig,
            ),
            (
                &["--server", "h", "--quit-after", "ehlo"],
                Mode::Rehearse(Milestone::Ehlo),
            ),
            (
                &["--server", "h", "--quit-after", "data", "a@x"],
                Mode::Rehearse(Milestone::Data),
            ),
            (
                &["--server", "h", "--messages", "out/"],
                Mode::Batch(vec![PathBuf::from("out/")]),
            ),
        ];
        for (args, want) in cases {
            let c = resolve(args, &[]).unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
            assert_eq!(&c.mode, want, "{args:?}");
            let stop = match want {
                Mode::Rehearse(m) => Some(*m),
                _ => None,
            };
            assert_eq!(c.quit_after(), stop, "{args:?}");
        }
    }

    #[test]
    fn probe_targets_and_their_security() {
        let c = resolve(&["--server", "h", "--probe"], &[]).unwrap();
        assert_eq!(c.mode, Mode::Probe(Probe::Server));
        let cases: &[(&[&str], u16, Security)] = &[
            (
                &["--probe", "--mx", "example.com"],
                25,
                Security::StartTlsRequired,
            ),
            (
                &["--probe", "--mx", "example.com", "--port", "465"],
                465,
                Security::Implicit,
            ),
            (
                &["--probe", "--mx", "example.com", "--tls", "none"],
                25,
                Security::Plain,
            ),
        ];
        for (args, port, security) in cases {
            let c = resolve(args, &[]).unwrap();
            let want = Probe::Mx {
                domains: vec!["example.com".into()],
                port: *port,
            };
            assert_eq!(
                (c.mode, c.session.security),
                (Mode::Probe(want), *security),
                "{args:?}"
            );
        }
        // --probe alone still needs a server; --probe --mx needs a domain.
        let err = resolve(&["--probe"], &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Config);
        let err = resolve(&["--probe", "--mx"], &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Usage);
        let c = resolve(&["--probe", "--mx", "a.example", "b.example"], &[]).unwrap();
        assert_eq!(
            c.mode,
            Mode::Probe(Probe::Mx {
                domains: vec!["a.example".into(), "b.example".into()],
                port: 25
            })
        );
        assert_eq!(c.route, Route::Nowhere);
    }

    #[test]
    fn direct_delivery_when_asked_or_when_no_server_is_configured() {
        // (args, mx_port, security, family)
        let cases: &[(&[&str], Option<u16>, Security, Family)] = &[
            (&["x@y"], Some(25), Security::Opportunistic, Family::Any),
            (
                &["--mx", "x@y"],
                Some(25),
                Security::Opportunistic,
                Family::Any,
            ),
            (
                &["--mx", "--port", "2525", "-4", "x@y"],
                Some(2525),
                Security::Opportunistic,
                Family::V4,
            ),
            (
                &["--mx", "--tls", "starttls", "-6", "x@y"],
                Some(25),
                Security::StartTlsRequired,
                Family::V6,
            ),
            (
                &["--tls", "none", "x@y"],
                Some(25),
                Security::Plain,
                Family::Any,
            ),
            (
                &["--server", "h", "x@y"],
                None,
                Security::StartTlsRequired,
                Family::Any,
            ),
        ];
        for (args, port, security, family) in cases {
            let c = resolve(args, &[]).unwrap();
            assert_eq!(
                (c.route.mx_port(), c.session.security, c.family),
                (*port, *security, *family),
                "{args:?}"
            );
            assert_eq!(c.route.server().is_some(), port.is_none(), "{args:?}");
        }
        // --port only means something for MX delivery.
        let err = resolve(&["--server", "h", "--port", "25", "x@y"], &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Usage);
        let err = resolve(&["--server", "h", "--probe", "--port", "25"], &[]).unwrap_err();
        assert_eq!(exit_code(&err), crate::error::Exit::Usage);
    }

    #[test]
    fn policy_names() {
        let cases = [
            (Security::Plain, "none"),
            (Security::Opportunistic, "opportunistic"),
            (Security::StartTlsRequired, "required"),
            (Security::Implicit, "required"),
        ];
        for (s, want) in cases {
            assert_eq!(s.policy(), want);
        }
        assert!(Family::V4.allows("127.0.0.1".parse().unwrap()));
        assert!(!Family::V4.allows("::1".parse().unwrap()));
        assert!(Family::V6.allows("::1".parse().unwrap()));
        assert!(Family::Any.allows("::1".parse().unwrap()));
    }

    #[test]
    fn attachment_type_override() {
        let c = resolve(
            &[
                "--server",
                "h",
                "-a",
                "a.bin;type=application/x-core",
                "-a",
                "b.pdf",
                "x@y",
            ],
            &[],
        )
        .unwrap();
        let Content::Compose(c) = c.content else {
            panic!()
        };
        assert_eq!(
            c.attachments[0].content_type.as_deref(),
            Some("application/x-core")
        );
        assert_eq!(c.attachments[0].path, PathBuf::from("a.bin"));
        assert_eq!(c.attachments[1].content_type, None);
    }
}
