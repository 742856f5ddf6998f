//! The command line exactly as typed: clap definitions and nothing else.
//!
//! House rules (after xh's): every option has an explicit `short` where it has one and an
//! implicit `long`; every value has an uppercase `value_name`; the first doc line is the
//! short help and the rest is the long help and the man page paragraph. This module does no
//! I/O and applies no defaults that need the environment: `config` resolves `Args` into a
//! `Config`. Flag names follow mailx (`-s -c -b -a -r`) so `postie` reads like `mail`.
//!
//! [`command`] is the whole tree — postie's options and the subcommands `batch`, `queue`
//! (list, run, flush, remove), `dkim` and `check` — so `--help`, the man pages and the
//! completions are generated from one definition; [`parse`] turns an argv into an
//! [`Invocation`]. `dkim`'s and `check`'s own arguments are defined next to their code.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS; the upgrade is required.
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
    /// No TLS at all. AUTH then also needs --allow-plaintext-auth.
    None,
}

/// The mail protocol spoken over the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Protocol {
    /// SMTP (RFC 5321): EHLO, one reply to the end of data for all recipients.
    #[default]
    Smtp,
    /// LMTP (RFC 2033), for handing mail to a delivery agent such as Dovecot or Cyrus:
    /// LHLO, and one reply per accepted recipient after the end of data.
    Lmtp,
}

/// When to colour the -v transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorWhen {
    /// When stderr is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    /// Always, even into a pipe or with NO_COLOR set.
    Always,
    /// Never.
    Never,
}

/// SASL mechanisms postie can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum AuthMech {
    /// RFC 4616: user and password in one base64 line.
    #[value(alias = "plain")]
    Plain,
    /// The legacy two-prompt exchange.
    #[value(alias = "login")]
    Login,
    /// RFC 7677: proves knowledge of the password without sending it, and checks that the
    /// server knows it too. Chosen first when the server offers it.
    #[value(name = "SCRAM-SHA-256", alias = "scram-sha-256")]
    ScramSha256,
    /// RFC 2195 challenge-response with HMAC-MD5. Weak; used only when named.
    #[value(name = "CRAM-MD5", alias = "cram-md5")]
    CramMd5,
    /// Google's and Microsoft's OAuth 2.0 format: the password source gives the access token.
    #[value(name = "XOAUTH2", alias = "xoauth2")]
    Xoauth2,
    /// RFC 7628 OAuth 2.0 bearer token: the password source gives the access token.
    #[value(name = "OAUTHBEARER", alias = "oauthbearer")]
    Oauthbearer,
}

/// Where `--quit-after` stops the dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuitAfter {
    /// Close as soon as the connection is up (with implicit TLS: after the handshake).
    Connect,
    /// After the server's greeting.
    Greeting,
    /// After the first EHLO (or HELO).
    Ehlo,
    /// After the 220 to STARTTLS and the TLS handshake (needs --tls starttls).
    Starttls,
    /// After TLS is up and EHLO has been repeated inside it (implicit TLS: after EHLO).
    Tls,
    /// After a successful AUTH (needs --user).
    Auth,
    /// After MAIL FROM is accepted.
    Mail,
    /// After every RCPT TO is answered (needs a recipient).
    Rcpt,
    /// After DATA's 354: the connection is closed without the end-of-data mark, so
    /// nothing is delivered.
    Data,
}

/// Send mail over SMTP: compose a message from arguments, or pipe a ready one.
///
/// postie builds an RFC 5322 message from its arguments (or takes a ready message with
/// --message) and submits it to a mail server over SMTP, with STARTTLS or implicit TLS and
/// SMTP AUTH (SCRAM-SHA-256, PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER). It prints
/// nothing on success; on failure it prints one line naming the step that failed and the server's reply, and exits with a sysexits(3) code.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "postie",
    version,
    max_term_width = 100,
    after_long_help = EXAMPLES
)]
pub struct Args {
    /// Recipients (added to To:).
    #[arg(value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Add a To: recipient (repeatable; a comma-separated list is allowed).
    #[arg(long, value_name = "ADDR", action = ArgAction::Append, help_heading = "Message")]
    pub to: Vec<String>,

    /// Add a Cc: recipient (repeatable; a comma-separated list is allowed).
    #[arg(short = 'c', long, value_name = "ADDR", action = ArgAction::Append, help_heading = "Message")]
    pub cc: Vec<String>,

    /// Add a blind-copy recipient (repeatable). Bcc never appears in the sent headers.
    #[arg(short = 'b', long, value_name = "ADDR", action = ArgAction::Append, help_heading = "Message")]
    pub bcc: Vec<String>,

    /// Subject line. Non-ASCII text is encoded per RFC 2047.
    #[arg(short = 's', long, value_name = "TEXT", help_heading = "Message")]
    pub subject: Option<String>,

    /// Sender address, "addr" or "Name <addr>"; also the envelope sender (MAIL FROM).
    ///
    /// Without it the sender is the From: of a ready message, else --user when it is an
    /// address, else USER@HOSTNAME.
    #[arg(
        short = 'f',
        long,
        value_name = "ADDR",
        short_alias = 'r',
        help_heading = "Message"
    )]
    pub from: Option<String>,

    /// The envelope sender (MAIL FROM) alone, when it must differ from the From: header:
    /// bounces go there (sendmail's -f meaning; "<>" is the null sender).
    #[arg(long, value_name = "ADDR", help_heading = "Message")]
    pub envelope_from: Option<String>,

    /// A Reply-To: header for a composed message (repeatable; a comma-separated list is
    /// allowed).
    #[arg(long, value_name = "ADDR", action = ArgAction::Append, help_heading = "Message")]
    pub reply_to: Vec<String>,

    /// Add a header, "Name: value" (repeatable). CR and LF are refused.
    ///
    /// Any header postie does not write itself. Refused, with the reason: From, To, Cc and
    /// Subject (give them with -f, --to, -c, -s), Bcc (-b: it never appears in the
    /// message), Content-* (postie builds the MIME structure; `Content-Type: text/html`
    /// makes the body HTML, as bsd-mailx's -a does), Reply-To together with --reply-to, and
    /// a second Date, Message-ID, Reply-To, Sender, In-Reply-To, References or
    /// MIME-Version. Date, Message-ID and MIME-Version replace postie's own.
    #[arg(short = 'H', long, value_name = "HEADER", action = ArgAction::Append, help_heading = "Message")]
    pub header: Vec<String>,

    /// Message body text. Without --body or --body-file the body is read from stdin.
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "body_file",
        help_heading = "Message"
    )]
    pub body: Option<String>,

    /// Read the message body from FILE.
    #[arg(long, value_name = "FILE", help_heading = "Message")]
    pub body_file: Option<PathBuf>,

    /// HTML body from FILE ("-" for stdin). With a text body too (--body, --body-file),
    /// the message is multipart/alternative: the text for plain readers, the HTML for the
    /// rest.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "html_body",
        help_heading = "Message"
    )]
    pub html: Option<PathBuf>,

    /// HTML body text (as --html, from the command line).
    #[arg(long, value_name = "TEXT", help_heading = "Message")]
    pub html_body: Option<String>,

    /// Attach FILE (repeatable). The content type is guessed from the file name; append
    /// ";type=MIME/TYPE" to set it, e.g. -a 'dump.bin;type=application/x-core'.
    #[arg(short = 'a', long, value_name = "FILE", action = ArgAction::Append, help_heading = "Message")]
    pub attach: Vec<String>,

    /// Send a ready RFC 5322 message from FILE ("-" for stdin) instead of composing one.
    ///
    /// The message is sent unchanged apart from line endings (LF or CRLF input both work) and
    /// a leading mbox "From " line, which is dropped. Recipients still come from the command
    /// line.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["subject", "header", "body", "body_file", "html", "html_body", "attach", "reply_to"],
        help_heading = "Message"
    )]
    pub message: Option<PathBuf>,

    /// Send many messages over one connection: each PATH is a directory of .eml files, an
    /// mbox file or a JSON-lines file (also written `postie batch PATH...`).
    ///
    /// A directory's *.eml files go in name order; a single .eml file is one message. An
    /// mbox is split at its "From " lines and ">From " lines are unescaped (mboxrd). A
    /// JSON-lines file (.jsonl, or a file starting with "{") has one message per line:
    /// {"from", "to" (a string or an array), "cc", "bcc", "subject", "body"}, or "path" (a
    /// ready message file, relative to the JSON file, sent as it is) instead of "subject"
    /// and "body". Ready messages are treated like sendmail -t: recipients from To, Cc and
    /// Bcc, Bcc removed. Recipients on the command line (--to, -c, -b) replace every
    /// message's own. All inputs are checked before anything is sent. The server is
    /// reconnected when it limits messages per connection (421, or 452 to MAIL); with
    /// --queue, a message that fails temporarily is queued. Failures get one stderr line
    /// each and a summary; the exit code is the most urgent of all
    /// messages' (75 before a permanent code before 0). With --json, one JSON object per
    /// message and a summary object, one per line (schema/postie-batch.schema.json).
    #[arg(
        long,
        value_name = "PATH",
        num_args = 1..,
        conflicts_with_all = BATCH_CONFLICTS,
        help_heading = "Message"
    )]
    pub messages: Vec<PathBuf>,

    /// Not a flag: `postie queue ACTION` (queue::command::main), `sendmail -bp`/`-q` and
    /// `mailq` set it; the run's mode is then the queue action.
    #[arg(skip)]
    pub queue_action: Option<QueueAction>,

    /// Not a flag: `sendmail -bs` sets it (SMTP on stdin and stdout).
    #[arg(skip)]
    pub serve_smtp: bool,

    /// Mail server to submit to, HOST or HOST:PORT ([IPv6]:PORT). Default port 587, or 465
    /// with --tls implicit.
    ///
    /// A comma-separated list (a.example,b.example:2525) names servers to fall back to, in
    /// order: the next one is tried when a server cannot be reached or answers with a
    /// temporary (4xx) failure, never after a permanent (5xx) one, and never once a server
    /// has taken the message.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = "Connection")]
    pub server: Option<String>,

    /// Connect to the unix domain socket PATH instead of a TCP server, e.g.
    /// /run/dovecot/lmtp with --protocol lmtp.
    ///
    /// A local socket needs no TLS: --tls defaults to none, and starttls or implicit are
    /// refused. --server is not needed (and not allowed) then.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with_all = ["server", "probe"],
        help_heading = "Connection"
    )]
    pub socket: Option<PathBuf>,

    /// Speak PROTOCOL: smtp, or lmtp (RFC 2033) to hand mail to a local delivery agent.
    ///
    /// With lmtp postie says LHLO instead of EHLO, and after the message the server
    /// answers once per accepted recipient, so each recipient has its own outcome. LMTP
    /// works over --socket or over TCP (--server HOST:24).
    #[arg(
        long,
        value_name = "PROTOCOL",
        value_enum,
        default_value_t = Protocol::Smtp,
        help_heading = "Connection"
    )]
    pub protocol: Protocol,

    /// Connection security [default: implicit on port 465, else starttls].
    ///
    /// starttls: the server must offer STARTTLS, or postie stops before AUTH and MAIL.
    /// implicit: TLS from the first byte (SMTPS). none: plain text (for local relays).
    #[arg(long, value_name = "MODE", value_enum, help_heading = "Connection")]
    pub tls: Option<TlsMode>,

    /// Trust the CA certificates in FILE (PEM) as well as the built-in web roots.
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub tls_ca: Option<PathBuf>,

    /// Name to give in EHLO/HELO [default: this host's name].
    #[arg(long, value_name = "NAME", help_heading = "Connection")]
    pub helo: Option<String>,

    /// Time limit in seconds for every step (connect, each reply, each data block).
    ///
    /// Without it postie uses RFC 5321's limits: 30 s to connect, 5 min per reply, 10 min for
    /// the reply to the end of data.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86400), help_heading = "Connection")]
    pub timeout: Option<u64>,

    /// Do not verify the server's TLS certificate. DANGEROUS: anyone on the path can read
    /// the mail and the password. For testing only; postie warns on every run.
    #[arg(long, help_heading = "Connection")]
    pub tls_no_verify: bool,

    /// Ask this DNS server, IP or IP:PORT (port 53), for MX and address records instead of
    /// the system's resolvers. Also POSTIE_RESOLVER.
    ///
    /// Only this server is asked (over UDP, and TCP for long answers), and /etc/hosts is not
    /// read: useful for testing mail routing against a DNS server of your own.
    #[arg(long, value_name = "IP[:PORT]", help_heading = "Connection")]
    pub resolver: Option<String>,

    /// Direct delivery (--mx): ignore MTA-STS policies (RFC 8461). By default a domain's
    /// published policy is fetched over HTTPS, cached, and in enforce mode restricts
    /// delivery to its listed MX hosts over verified TLS.
    #[arg(long, help_heading = "Connection")]
    pub no_mta_sts: bool,

    /// For testing: fetch MTA-STS policies from URL/DOMAIN/.well-known/mta-sts.txt instead
    /// of https://mta-sts.DOMAIN/.well-known/mta-sts.txt (an https:// URL, e.g. a loopback
    /// test server whose CA is given with --tls-ca).
    #[arg(long, value_name = "URL", help_heading = "Connection")]
    pub mta_sts_url_base: Option<String>,

    /// Do not pipeline commands (RFC 2920), even when the server offers PIPELINING: send
    /// each command and wait for its reply (swaks's default; for interop and debugging).
    ///
    /// By default, when the server offers PIPELINING, MAIL FROM, every RCPT TO and DATA
    /// (or BDAT) go out in one write, then the replies are read in order; RSET after a failed
    /// transaction on the same connection and QUIT after the end of data ride along.
    #[arg(long, visible_alias = "no-pipeline", help_heading = "Connection")]
    pub no_pipelining: bool,

    /// Do not use BDAT (RFC 3030 CHUNKING), even when the server offers it: send the
    /// message with DATA and dot-stuffing.
    ///
    /// By default, when the server offers CHUNKING, the message goes in BDAT chunks of
    /// exact byte counts (no dot-stuffing); a message under 64 KiB goes as one `BDAT n
    /// LAST` in the same write as MAIL and RCPT.
    #[arg(long, help_heading = "Connection")]
    pub no_chunking: bool,

    /// postie batch and postie queue run/flush: how many messages may be in flight at
    /// once, sent before the replies to the earlier ones are in (1: one at a time).
    ///
    /// A queue run sends its due entries over one session when it goes to a server (or a
    /// socket); with direct MX delivery each entry goes on its own.
    ///
    /// With PIPELINING and CHUNKING offered (and no --no-pipelining, --no-chunking), each
    /// message under 64 KiB goes as one group, RSET (behind an unanswered one), MAIL, RCPT
    /// and `BDAT n LAST`, right behind the previous one (RFC 2920, RFC 3030), and is judged
    /// by its own replies. A bigger message, or one the server must see the RCPT replies
    /// for first, waits until the messages ahead of it are answered. With PIPELINING but
    /// DATA, each message's MAIL, RCPT and DATA go with the end of data of the one before
    /// (two in flight at most).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_WINDOW,
        value_parser = clap::value_parser!(u16).range(1..=1000),
        help_heading = "Connection"
    )]
    pub window: u16,

    /// postie batch and postie queue run: how many sessions send in parallel, spread over
    /// the server list (1: one connection).
    ///
    /// Connection i starts at server i of `--server a,b,c` (counting round the list) and
    /// falls back through the others as a single connection does, so the list works as a
    /// pool of relays. Each message (or queue entry) is taken by one connection only and
    /// sent once; a batch's report (stderr lines, --json) stays in input order, and each
    /// connection keeps its own --window of messages in flight.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u8).range(1..=64),
        help_heading = "Connection"
    )]
    pub connections: u8,

    /// Ask that the message travel over TLS on every hop (RFC 8689 REQUIRETLS).
    ///
    /// MAIL FROM carries REQUIRETLS: the server promises to relay the message only over
    /// verified TLS, or to bounce it. postie sends it only inside TLS and only when the
    /// server offers REQUIRETLS; otherwise it refuses before MAIL with exit 69.
    #[arg(long, help_heading = "Connection")]
    pub require_tls: bool,

    /// Send to nobody if the server refuses any recipient (msmtp's behaviour; also the
    /// config key `all_or_nothing = true`).
    ///
    /// By default (sendmail's behaviour) the message goes to the recipients the server
    /// accepted, and postie exits 67 (75 if a refusal was temporary) naming the others.
    /// With this, the RCPT replies are read before DATA; if any recipient is refused the
    /// transaction is reset (RSET) instead, nothing is delivered, and the exit code is the
    /// refusal's. postie run as msmtp always works this way.
    #[arg(long, help_heading = "Connection")]
    pub all_or_nothing: bool,

    /// Qualify bare local recipients (root, www-data) with this domain.
    #[arg(long, value_name = "DOMAIN", help_heading = "Message")]
    pub domain: Option<String>,

    /// Map bare local recipients through this aliases(5)-style file ("root: ops@example.com",
    /// "default: admin@example.com").
    #[arg(long, value_name = "FILE", help_heading = "Message")]
    pub aliases: Option<PathBuf>,

    /// Send nothing (and exit 0) when the body is empty (mailx -E).
    #[arg(long, help_heading = "Message")]
    pub skip_empty: bool,

    /// Read settings from FILE (postie TOML or msmtprc syntax) instead of the default places.
    ///
    /// Without it postie reads the first of $XDG_CONFIG_HOME/postie/config.toml,
    /// /etc/postie.toml, ~/.msmtprc, $XDG_CONFIG_HOME/msmtp/config and /etc/msmtprc.
    #[arg(short = 'C', long, value_name = "FILE", help_heading = "Configuration")]
    pub config: Option<PathBuf>,

    /// Use account NAME from the configuration file.
    ///
    /// Without it, the account whose "from" matches -f, else the default account.
    #[arg(short = 'A', long, value_name = "NAME", help_heading = "Configuration")]
    pub account: Option<String>,

    /// Print the resolved settings (password masked) and exit (msmtp's -P).
    #[arg(long, short = 'P', help_heading = "Configuration")]
    pub show_config: bool,

    /// Append one line per message to FILE (time, server, TLS, sender, recipients, size,
    /// the server's last reply, exit code); "-" for stdout. Never a secret.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub log: Option<PathBuf>,

    /// Log in as NAME (SMTP AUTH).
    #[arg(long, value_name = "NAME", help_heading = "Authentication")]
    pub user: Option<String>,

    /// Read the password from the first line of FILE.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "password_command",
        help_heading = "Authentication"
    )]
    pub password_file: Option<PathBuf>,

    /// Sign the message with DKIM using this private key (PEM: RSA or Ed25519).
    ///
    /// A ready message (--message, stdin) is held in memory to be signed: over 64 MiB is
    /// refused. A composed one is hashed as its attachments stream from their files. The
    /// key file must not be readable by others.
    #[arg(long, value_name = "FILE", help_heading = "DKIM")]
    pub dkim_key: Option<PathBuf>,

    /// The DKIM selector (s=): the public key is at SEL._domainkey.DOMAIN.
    #[arg(long, value_name = "SEL", help_heading = "DKIM")]
    pub dkim_selector: Option<String>,

    /// The DKIM signing domain (d=) [default: the From: address's domain].
    #[arg(long, value_name = "DOMAIN", help_heading = "DKIM")]
    pub dkim_domain: Option<String>,

    /// Make the DKIM signature expire (x=) SECS after signing.
    #[arg(long, value_name = "SECS", help_heading = "DKIM")]
    pub dkim_expire: Option<u64>,

    /// Run CMD with sh -c and use the first line of its output as the password.
    #[arg(long, value_name = "CMD", help_heading = "Authentication")]
    pub password_command: Option<String>,

    /// Use this AUTH mechanism [default: the best one the server offers].
    ///
    /// Without it postie uses the first of SCRAM-SHA-256, PLAIN and LOGIN that the server
    /// offers. CRAM-MD5, XOAUTH2 and OAUTHBEARER are used only when named here; for the two
    /// OAuth mechanisms the password sources give the access token.
    #[arg(
        long,
        value_name = "MECH",
        value_enum,
        ignore_case = true,
        help_heading = "Authentication"
    )]
    pub auth: Option<AuthMech>,

    /// Allow AUTH over a connection that is not encrypted (the password travels in clear).
    #[arg(long, help_heading = "Authentication")]
    pub allow_plaintext_auth: bool,

    /// Print the SMTP transcript on stderr (-vv adds the message data). Secrets are masked.
    #[arg(short = 'v', long, action = ArgAction::Count, help_heading = "Output")]
    pub verbose: u8,

    /// Send the --log line to syslog as well (facility mail), even without --log.
    #[arg(long, help_heading = "Output")]
    pub syslog: bool,

    /// Colour the -v transcript: auto (only on a terminal, and not when NO_COLOR is set),
    /// always or never.
    #[arg(
        long,
        value_name = "WHEN",
        value_enum,
        default_value_t = ColorWhen::Auto,
        help_heading = "Output"
    )]
    pub color: ColorWhen,

    /// With -v, show how long the server took to answer each command, and the total.
    #[arg(long, help_heading = "Output")]
    pub show_time: bool,

    /// Print the envelope and the message that would be sent, and send nothing.
    #[arg(long, visible_alias = "print-message", help_heading = "Output")]
    pub dry_run: bool,

    /// Stop cleanly after PHASE (QUIT) and exit 0 if everything up to it succeeded: test a
    /// server without sending mail.
    ///
    /// Phases in order: connect, greeting, ehlo, starttls, tls, auth, mail, rcpt, data.
    /// Before mail no sender or recipient is needed, and before data no message is read
    /// (stdin is left alone); mail uses -f (or the default sender), rcpt needs at least one
    /// recipient. With data the message is prepared as usual (for SIZE), but after the
    /// server's 354 postie closes the connection without sending it or the end-of-data
    /// mark, so nothing is delivered. Failures before PHASE keep their usual exit codes.
    #[arg(
        long,
        value_name = "PHASE",
        value_enum,
        conflicts_with_all = ["dry_run", "probe"],
        help_heading = "Debugging"
    )]
    pub quit_after: Option<QuitAfter>,

    /// Report what the server offers, and send nothing (msmtp's --serverinfo).
    ///
    /// Connects, reads the greeting, sends EHLO, upgrades with STARTTLS when the server
    /// offers it (unless --tls none), sends EHLO again and QUITs; then prints on stdout the
    /// greeting, every extension before and after TLS (SIZE in human units, AUTH mechanisms,
    /// PIPELINING, CHUNKING, 8BITMIME, SMTPUTF8, DSN, ENHANCEDSTATUSCODES, REQUIRETLS), the
    /// TLS session and certificate, and warnings: AUTH offered before TLS, certificate
    /// untrusted, not valid for the name or expiring within 30 days, TLS 1.0/1.1, no
    /// STARTTLS (on port 25 and 587 even with --tls none). When the certificate fails
    /// verification, postie says why and connects once more without verification to show
    /// it. Exits 0 when the probe completed, whatever the warnings. With --json, the same
    /// findings are one JSON object on stdout instead (schema/postie-probe.schema.json).
    #[arg(long, conflicts_with = "dry_run", help_heading = "Debugging")]
    pub probe: bool,

    /// Deliver straight to each recipient domain's mail exchangers (MX), on port 25.
    ///
    /// One SMTP transaction per recipient domain. MX hosts are tried by preference (on a
    /// refused connection, or a 4xx greeting, EHLO or MAIL); a domain without MX records
    /// gets its own address. STARTTLS is used when offered (opportunistic, RFC 7435);
    /// --tls starttls makes it required, --tls none turns it off. This is also what postie
    /// does when no server is configured anywhere. With --probe, the positional arguments
    /// are the domains whose MX hosts are probed.
    #[arg(long, conflicts_with = "server", help_heading = "Connection")]
    pub mx: bool,

    /// With --mx (or no server configured): the port to use on each MX host [default: 25].
    #[arg(
        long,
        value_name = "PORT",
        value_parser = clap::value_parser!(u16).range(1..),
        help_heading = "Connection"
    )]
    pub port: Option<u16>,

    /// Connect over IPv4 only.
    #[arg(
        short = '4',
        long,
        conflicts_with = "ipv6",
        help_heading = "Connection"
    )]
    pub ipv4: bool,

    /// Connect over IPv6 only.
    #[arg(short = '6', long, help_heading = "Connection")]
    pub ipv6: bool,

    /// When delivery fails temporarily, keep the message in the queue and exit 0.
    ///
    /// Temporary means what would exit 75: a 4xx reply, no connection, a timeout, a DNS
    /// lookup that may work later. The message and its envelope are written to the queue
    /// directory durably before postie exits 0 with "queued as ID" on stderr; `postie
    /// queue run` (from cron) retries it with growing pauses. Permanent failures are never
    /// queued. Also `queue = true` in the configuration; the sendmail persona queues
    /// whenever a queue directory is configured. See `postie queue --help`.
    #[arg(long, help_heading = "Queue")]
    pub queue: bool,

    /// The queue directory [default: $POSTIE_QUEUE_DIR, else $XDG_STATE_HOME/postie/queue
    /// or ~/.local/state/postie/queue; /var/spool/postie for root].
    #[arg(long, value_name = "DIR", help_heading = "Queue")]
    pub queue_dir: Option<PathBuf>,

    /// Give up on a queued message this old and report it to its sender [default: 5d]:
    /// seconds, or a number with s, m, h or d.
    #[arg(long, value_name = "AGE", help_heading = "Queue")]
    pub queue_max_age: Option<String>,

    /// When done, print one JSON object on stdout describing the run, even when it failed.
    ///
    /// The object names the route, the connection attempts, TLS (version, cipher,
    /// certificate), the AUTH mechanism, the envelope, each recipient's outcome, the final
    /// reply and the queue id in it, timings per phase, the exit code and the error. Its
    /// fields are documented by the JSON Schema schema/postie-result.schema.json. With
    /// --probe, the object is the probe's findings instead: per host the greeting, the
    /// extensions before and inside TLS, the TLS session and certificate, the warnings and
    /// its exit code, and for --mx each domain's MX hosts
    /// (schema/postie-probe.schema.json). Error lines still go to stderr. Never a secret.
    #[arg(
        long,
        conflicts_with_all = ["dry_run", "show_config"],
        help_heading = "Output"
    )]
    pub json: bool,
}

/// `--window`'s default: messages in flight at once in `postie batch` and queue runs.
pub const DEFAULT_WINDOW: u16 = 16;

/// What --messages (and `postie batch`) cannot be combined with: each message brings its
/// own content, and a batch goes to one server.
const BATCH_CONFLICTS: [&str; 13] = [
    "message",
    "subject",
    "header",
    "body",
    "body_file",
    "html",
    "html_body",
    "attach",
    "skip_empty",
    "dry_run",
    "quit_after",
    "probe",
    "mx",
];

const EXAMPLES: &str = "\
Examples:
  Alert from a script (password in POSTIE_PASSWORD):
    echo 'disk /var is 93% full' | postie -s 'disk alert' ops@example.com \\
        --server smtp.example.com --user alerts@example.com

  Attach a file, copy someone, keep a blind copy:
    postie -s report -a report.pdf -c boss@example.com -b archive@example.com \\
        --body 'see attached' team@example.com --server smtp.example.com:465

  Send a ready message file:
    postie --message mail.eml --server mail.example.com you@example.com

  Send many messages over one connection (.eml directory, mbox, JSON lines):
    postie batch --server relay.example.com:25 --tls none outbox/ archive.mbox list.jsonl

  Watch the dialogue with a server:
    postie -v --dry-run ... ; postie -v --server 127.0.0.1:2525 --tls none ...

  Try a login without sending anything; see what a server offers:
    postie -v --quit-after auth --server smtp.example.com --user me
    postie --probe --server smtp.example.com
    postie --probe --mx example.com

  Lint a message before sending it (see `postie check --help`):
    postie check -f me@example.com --ip 192.0.2.10 mail.eml

  Queue on temporary failure, retry from cron, look at the queue:
    postie --queue --server a.example.com,b.example.com ... ; postie queue run
    postie queue list

  Make a DKIM key (prints the TXT record to publish), then sign:
    postie dkim keygen --selector s1 --domain example.org --type ed25519
    postie --dkim-key s1.example.org.key --dkim-selector s1 ...

Exit status: 0 sent; 64 usage; 65 bad message or address; 66 input file unreadable;
67 recipient refused; 69 unavailable (TLS/AUTH impossible); 75 temporary failure, retry;
76 protocol error; 77 authentication refused; 78 configuration error.";

impl Args {
    /// Parse an argv (including argv[0]) as postie's own options, without subcommands;
    /// clap's error carries help/version/usage output. The personas' translations and
    /// `sendmail -bp`/`-q` use this.
    pub fn try_parse_argv(argv: Vec<OsString>) -> Result<Args, clap::Error> {
        Args::try_parse_from(argv)
    }
}

/// What a `postie` command line asks for: a message (postie's own options) or one of the
/// subcommands. Each carries its typed arguments; nothing is re-parsed later.
#[derive(Debug)]
pub enum Invocation {
    /// `postie [OPTIONS] [RECIPIENT]...`.
    Send(Box<Args>),
    /// `postie batch [OPTIONS] PATH...` (the paths are in `messages`).
    Batch(Box<Args>),
    /// `postie queue list|run|flush|remove [OPTIONS]` (remove's ids are in `recipients`).
    Queue(QueueAction, Box<Args>),
    /// `postie dkim ...`.
    Dkim(crate::dkim::DkimArgs),
    /// `postie check ...`.
    Check(Box<crate::check::CheckArgs>),
    /// `postie oauth login|token|status|logout ...`.
    OAuth(crate::oauth::command::OAuthArgs),
}

/// The action of `postie queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// List the queue.
    List,
    /// Try every entry that is due.
    Run,
    /// Try every entry now.
    Flush,
    /// Remove the entries named.
    Remove,
}

/// The subcommands' names, in the order `--help` lists them.
pub const SUBCOMMANDS: [&str; 5] = ["batch", "queue", "dkim", "check", "oauth"];

/// Parse a whole `postie` argv (including argv[0]) into what it asks for.
pub fn parse(argv: Vec<OsString>) -> Result<Invocation, clap::Error> {
    use clap::FromArgMatches;
    let matches = command().try_get_matches_from(argv)?;
    Ok(match matches.subcommand() {
        Some(("batch", m)) => {
            let mut args = Args::from_arg_matches(m)?;
            let paths = std::mem::take(&mut args.recipients);
            args.messages.extend(paths.into_iter().map(PathBuf::from));
            Invocation::Batch(Box::new(args))
        }
        Some(("queue", m)) => {
            let (action, m) = match m.subcommand() {
                Some(("list", m)) => (QueueAction::List, m),
                Some(("run", m)) => (QueueAction::Run, m),
                Some(("flush", m)) => (QueueAction::Flush, m),
                Some(("remove", m)) => (QueueAction::Remove, m),
                _ => {
                    return Err(command().error(
                        clap::error::ErrorKind::MissingSubcommand,
                        "postie queue needs an action: list, run, flush or remove",
                    ))
                }
            };
            Invocation::Queue(action, Box::new(Args::from_arg_matches(m)?))
        }
        Some(("dkim", m)) => Invocation::Dkim(crate::dkim::DkimArgs::from_arg_matches(m)?),
        Some(("check", m)) => {
            Invocation::Check(Box::new(crate::check::CheckArgs::from_arg_matches(m)?))
        }
        Some(("oauth", m)) => {
            Invocation::OAuth(crate::oauth::command::OAuthArgs::from_arg_matches(m)?)
        }
        _ => Invocation::Send(Box::new(Args::from_arg_matches(&matches)?)),
    })
}

/// postie's own options as a clap command, without the subcommands (the base every
/// subcommand that delivers is built from).
fn options_command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// `postie batch [OPTIONS] PATH...`: the main command line with its positional arguments
/// taken as --messages paths (recipients then go with --to, -c and -b).
fn batch_command() -> clap::Command {
    options_command()
        .name("batch")
        .about("Send many messages over one connection (same as postie --messages PATH...)")
        .long_about(
            "Send many messages over one connection: each PATH is a directory of .eml files, \
             an mbox file or a JSON-lines file. `postie batch [OPTIONS] PATH...` is \
             `postie [OPTIONS] --messages PATH...`; see --messages in `postie --help` for \
             the formats, the envelope and the report.",
        )
        .disable_version_flag(true)
        .mut_arg("recipients", |a| {
            a.value_name("PATH")
                .help("Directories of .eml files, mbox files or JSON-lines files")
                .required(true)
                .conflicts_with_all(BATCH_CONFLICTS)
        })
        .mut_arg("messages", |a| a.hide(true))
        .after_long_help(
            "Examples:\n  postie batch --server relay.example.com:25 --tls none outbox/\n  \
             postie batch -v --json --server smtp.example.com --user me list.jsonl > report.jsonl",
        )
}

/// `postie queue ACTION [OPTIONS]`: each action takes postie's own options, so a queue
/// run goes the way a normal run with the same options would.
fn queue_command() -> clap::Command {
    let action = |name: &'static str, about: &'static str| {
        options_command()
            .name(name)
            .about(about)
            .long_about(about)
            .disable_version_flag(true)
            .after_long_help(None::<&str>)
            .mut_arg("recipients", |a| a.hide(true))
    };
    clap::Command::new("queue")
        .about("Look at and run the queue of messages kept by --queue")
        .long_about(
            "Look at and run the queue of messages kept by --queue.\n\n\
             Each action takes postie's own options after it: --queue-dir DIR (or -C/-A for a \
             configuration's queue_dir), and for run and flush the connection options \
             (--server, --tls, --user, -v, ...) that say how to deliver. Every entry keeps its \
             own envelope.",
        )
        .subcommand_required(true)
        .disable_help_subcommand(true)
        .subcommand(action(
            "list",
            "List the queue: id, age, size, sender, recipients, attempts, last error",
        ))
        .subcommand(action(
            "run",
            "Try every entry that is due; give up on those older than --queue-max-age",
        ))
        .subcommand(action(
            "flush",
            "Try every entry now, whatever its backoff says",
        ))
        .subcommand(
            action("remove", "Remove the entries named").mut_arg("recipients", |a| {
                a.hide(false)
                    .value_name("ID")
                    .help("The ids of the entries to remove (as postie queue list shows them)")
                    .required(true)
            }),
        )
        .after_help(
            "Examples:\n  postie queue list --queue-dir /var/spool/postie\n  \
             postie queue run --server smtp.example.com      # from cron, e.g. every 10 minutes\n  \
             postie queue remove 0069a3f0c-1f3a-0ab12cd0",
        )
}

/// The whole clap command — postie's options and its subcommands — for parsing and for
/// generating the man page and shell completions.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    options_command()
        // A recipient named like a subcommand after any option stays a recipient
        // (`postie -s hi queue`), and there is no `help` subcommand to shadow one.
        .args_conflicts_with_subcommands(true)
        .disable_help_subcommand(true)
        .subcommand(batch_command())
        .subcommand(queue_command())
        .subcommand(crate::dkim::DkimArgs::command().name("dkim"))
        .subcommand(crate::check::CheckArgs::command().name("check"))
        .subcommand(crate::oauth::command::OAuthArgs::command().name("oauth"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec![OsString::from("postie")];
        argv.extend(args.iter().map(OsString::from));
        Args::try_parse_argv(argv)
    }

    fn invocation(args: &[&str]) -> Invocation {
        let mut argv = vec![OsString::from("postie")];
        argv.extend(args.iter().map(OsString::from));
        super::parse(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn subcommands_are_parsed_and_a_recipient_after_an_option_stays_a_recipient() {
        match invocation(&["queue", "run", "--server", "mx.example", "-v"]) {
            Invocation::Queue(QueueAction::Run, a) => {
                assert_eq!(a.server.as_deref(), Some("mx.example"));
                assert_eq!(a.verbose, 1);
            }
            other => panic!("queue run: {other:?}"),
        }
        match invocation(&["queue", "remove", "id1", "id2", "--queue-dir", "/q"]) {
            Invocation::Queue(QueueAction::Remove, a) => assert_eq!(a.recipients, ["id1", "id2"]),
            other => panic!("queue remove: {other:?}"),
        }
        match invocation(&["batch", "--server", "r", "out/", "list.jsonl"]) {
            Invocation::Batch(a) => {
                assert_eq!(
                    a.messages,
                    [PathBuf::from("out/"), PathBuf::from("list.jsonl")]
                );
                assert!(a.recipients.is_empty());
            }
            other => panic!("batch: {other:?}"),
        }
        match invocation(&["check", "--no-dns", "m.eml"]) {
            Invocation::Check(a) => assert_eq!(a.file, Some(PathBuf::from("m.eml"))),
            other => panic!("check: {other:?}"),
        }
        assert!(matches!(
            invocation(&["dkim", "keygen", "--selector", "s", "--domain", "d"]),
            Invocation::Dkim(_)
        ));
        // After an option or a recipient, a subcommand's name is a recipient; there is no
        // `help` subcommand.
        for args in [
            &["-s", "hi", "queue"][..],
            &["a@x", "check"],
            &["help"],
            &["--to", "a@x", "batch"],
        ] {
            match invocation(args) {
                Invocation::Send(a) => {
                    let last = args[args.len() - 1];
                    assert_eq!(
                        a.recipients.last().map(String::as_str),
                        Some(last),
                        "{args:?}"
                    );
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
        for bad in [
            &["queue"][..],
            &["queue", "remove"],
            &["batch"],
            &["queue", "nonsense"],
        ] {
            let mut argv = vec![OsString::from("postie")];
            argv.extend(bad.iter().map(OsString::from));
            let err = super::parse(argv).expect_err("a usage error");
            assert!(err.use_stderr(), "{bad:?}: {err}");
        }
    }

    #[test]
    fn definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn mailx_style_flags() {
        let a = parse(&[
            "-s", "hi", "-c", "c@x", "-b", "b@x", "-r", "me@x", "-a", "f.txt", "rcpt@x",
        ])
        .unwrap();
        assert_eq!(a.subject.as_deref(), Some("hi"));
        assert_eq!(a.cc, ["c@x"]);
        assert_eq!(a.bcc, ["b@x"]);
        assert_eq!(a.from.as_deref(), Some("me@x"));
        assert_eq!(a.attach, ["f.txt"]);
        assert_eq!(a.recipients, ["rcpt@x"]);
    }

    #[test]
    fn auth_is_case_insensitive_and_verbose_counts() {
        let a = parse(&["--auth", "login", "-vv", "x@y"]).unwrap();
        assert_eq!(a.auth, Some(AuthMech::Login));
        assert_eq!(a.verbose, 2);
        let a = parse(&["--auth", "PLAIN", "x@y"]).unwrap();
        assert_eq!(a.auth, Some(AuthMech::Plain));
        for (name, mech) in [
            ("scram-sha-256", AuthMech::ScramSha256),
            ("SCRAM-SHA-256", AuthMech::ScramSha256),
            ("Scram-Sha-256", AuthMech::ScramSha256),
            ("cram-md5", AuthMech::CramMd5),
            ("CRAM-MD5", AuthMech::CramMd5),
            ("xoauth2", AuthMech::Xoauth2),
            ("XOAuth2", AuthMech::Xoauth2),
            ("oauthbearer", AuthMech::Oauthbearer),
            ("OAUTHBEARER", AuthMech::Oauthbearer),
        ] {
            assert_eq!(
                parse(&["--auth", name, "x@y"]).unwrap().auth,
                Some(mech),
                "{name}"
            );
        }
        for bad in ["scram", "scramsha256", "digest-md5", "xoauth"] {
            assert!(parse(&["--auth", bad, "x@y"]).is_err(), "{bad}");
        }
    }

    #[test]
    fn message_conflicts_with_composing() {
        assert!(parse(&["--message", "m.eml", "-s", "x", "a@b"]).is_err());
        assert!(parse(&["--message", "-", "--body", "x", "a@b"]).is_err());
        assert!(parse(&["--message", "-", "-c", "c@d", "a@b"]).is_ok());
    }

    #[test]
    fn quit_after_probe_and_mx() {
        let phases = [
            ("connect", QuitAfter::Connect),
            ("greeting", QuitAfter::Greeting),
            ("ehlo", QuitAfter::Ehlo),
            ("starttls", QuitAfter::Starttls),
            ("tls", QuitAfter::Tls),
            ("auth", QuitAfter::Auth),
            ("mail", QuitAfter::Mail),
            ("rcpt", QuitAfter::Rcpt),
            ("data", QuitAfter::Data),
        ];
        for (name, phase) in phases {
            assert_eq!(
                parse(&["--quit-after", name]).unwrap().quit_after,
                Some(phase)
            );
        }
        let bad: &[&[&str]] = &[
            &["--quit-after", "banner"],
            &["--quit-after", "rcpt", "--dry-run"],
            &["--quit-after", "rcpt", "--probe"],
            &["--probe", "--dry-run"],
            &["--mx", "--server", "h", "x@y"],
            &["--probe", "--mx", "example.com", "--server", "h"],
            &["--probe", "--mx", "example.com", "--port", "0"],
            &["-4", "-6", "x@y"],
        ];
        for args in bad {
            assert!(parse(args).is_err(), "{args:?}");
        }
        let a = parse(&["--probe", "--mx", "example.com", "--port", "587"]).unwrap();
        assert!(a.probe && a.mx);
        assert_eq!(
            (a.recipients.as_slice(), a.port),
            (&["example.com".to_string()][..], Some(587))
        );
        let a = parse(&["--mx", "-4", "--port", "2525", "x@y"]).unwrap();
        assert!(a.mx && a.ipv4 && !a.ipv6);
        assert!(parse(&["-6", "x@y"]).unwrap().ipv6);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--tls", "maybe"]).is_err());
        assert!(parse(&["--timeout", "0"]).is_err());
        assert!(parse(&["--password", "x"]).is_err());
        assert_eq!(
            parse(&["--resolver", "127.0.0.1:5353", "x@y"])
                .unwrap()
                .resolver
                .as_deref(),
            Some("127.0.0.1:5353")
        );
        assert!(parse(&["--color", "sometimes"]).is_err());
    }

    #[test]
    fn protocol_and_socket() {
        assert_eq!(parse(&["x@y"]).unwrap().protocol, Protocol::Smtp);
        for (word, protocol) in [("smtp", Protocol::Smtp), ("lmtp", Protocol::Lmtp)] {
            assert_eq!(
                parse(&["--protocol", word, "x@y"]).unwrap().protocol,
                protocol
            );
        }
        let a = parse(&["--socket", "/run/dovecot/lmtp", "--protocol", "lmtp", "x@y"]).unwrap();
        assert_eq!(
            a.socket.as_deref(),
            Some(std::path::Path::new("/run/dovecot/lmtp"))
        );
        let bad: &[&[&str]] = &[
            &["--protocol", "esmtp", "x@y"],
            &["--socket", "/s", "--server", "h", "x@y"],
            &["--socket", "/s", "--probe"],
            &["--socket"],
        ];
        for args in bad {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn color_defaults_to_auto() {
        assert_eq!(parse(&["x@y"]).unwrap().color, ColorWhen::Auto);
        for (word, when) in [
            ("auto", ColorWhen::Auto),
            ("always", ColorWhen::Always),
            ("never", ColorWhen::Never),
        ] {
            assert_eq!(parse(&["--color", word, "x@y"]).unwrap().color, when);
        }
    }
}
