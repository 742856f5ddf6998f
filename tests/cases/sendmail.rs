//! End to end through the drop-in personas (issue 3): the built binary run under the names
//! `sendmail`, `mail`, `mailq` and `newaliases` (symlinks in a private `bin/`), with the
//! exact argument lists and LF messages of cron, mdadm, git send-email, mutt, PHP's
//! `mail()` and smartd, against the real Postfix of `support::mta`. The server and the
//! credentials come from config files found the way an installed postie finds them
//! (`$POSTIE_SYSCONFDIR/postie.toml`, `~/.config/postie/config.toml`,
//! `$XDG_CONFIG_HOME/postie/config.toml`, `~/.msmtprc`), never from flags.
//!
//! What is checked is what arrives: bare names qualified in the envelope and in To/From
//! (through an aliases file, its `default:` catch-all, or the configured domain), Bcc
//! gone from every copy, From/Date/Message-ID added when missing, complete messages
//! delivered byte for byte, the envelope sender (Postfix's log), the exit codes of
//! sysexits(3) and the one stderr line a failure may print. `sendmail -bs` is driven by a
//! scripted SMTP client (RFC 5321 §4.1, §4.5.2 dot-stuffing) with every read bounded.
//!
//! Each test uses its own recipient addresses (all tests share one Postfix) and its own
//! temporary "installation" (bin, home, etc). Postfix tests skip themselves like those in
//! `postfix.rs`; the queue, aliases and show-config tests need no server. Every postie run
//! is killed after RUN_TIMEOUT.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::support::certs::pki;
use crate::support::mta::Postfix;
use crate::support::postie;
use crate::support::run::{drain, strip_received, wait_bounded, Outcome};

/// Upper bound for one postie run, and for each read of the `-bs` dialogue.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// The `from` every postie config here sets.
const SYSTEM_FROM: &str = "system@example.test";

/// Runs `cmd` with `stdin` (or none), bounded by RUN_TIMEOUT.
pub(super) fn run(cmd: Command, stdin: Option<&[u8]>) -> Outcome {
    crate::support::run::run(cmd, stdin, RUN_TIMEOUT)
}

/// A private installation of postie: `bin/` with the persona symlinks, a home directory
/// and a system configuration directory (`$POSTIE_SYSCONFDIR`, postie's `/etc`).
pub(super) struct Install {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pub(super) bin: PathBuf,
    pub(super) home: PathBuf,
    etc: PathBuf,
    /// `XDG_CONFIG_HOME` when set (unset by default, as in `support::postie`).
    xdg: Option<PathBuf>,
}

impl Install {
    pub(super) fn new() -> Install {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let (bin, home, etc) = (root.join("bin"), root.join("home"), root.join("etc"));
        for d in [&bin, &home, &etc] {
            std::fs::create_dir(d).expect("create install dir");
        }
        for name in ["sendmail", "mail", "mailx", "mailq", "newaliases", "msmtp"] {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_postie"), bin.join(name))
                .expect("persona symlink");
        }
        Install {
            _dir: dir,
            root,
            bin,
            home,
            etc,
            xdg: None,
        }
    }

    /// The persona `name` (a symlink to the binary), with `support::postie`'s environment
    /// but this installation's HOME and system directory.
    pub(super) fn command(&self, name: &str) -> Command {
        let base = postie();
        let mut cmd = Command::new(self.bin.join(name));
        for (key, value) in base.get_envs() {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd.env("HOME", &self.home)
            .env("POSTIE_SYSCONFDIR", &self.etc)
            .stdin(Stdio::null());
        if let Some(x) = &self.xdg {
            cmd.env("XDG_CONFIG_HOME", x);
        }
        cmd
    }

    fn sendmail(&self, args: &[&str]) -> Command {
        let mut cmd = self.command("sendmail");
        cmd.args(args);
        cmd
    }

    /// Writes `text` to `rel` (parents created) with permissions `mode`.
    pub(super) fn write(&self, rel: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.root.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dirs");
        std::fs::write(&path, text).expect("write file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    /// An aliases(5) file in `etc/aliases`.
    fn aliases(&self, text: &str) -> PathBuf {
        self.write("etc/aliases", text, 0o644)
    }
}

/// A postie TOML config aimed at Postfix's submission port (STARTTLS with the test CA,
/// AUTH as the test user, password from its file), sender SYSTEM_FROM, plus `extra`
/// lines in `[defaults]`.
fn postie_toml(pf: &Postfix, extra: &str) -> String {
    format!(
        "# written by tests/cases/sendmail.rs\n\
         [defaults]\n\
         server = \"127.0.0.1\"\n\
         port = {port}\n\
         tls = \"starttls\"\n\
         tls_ca = '{ca}'\n\
         user = \"{user}\"\n\
         password_file = '{pw}'\n\
         from = \"{SYSTEM_FROM}\"\n\
         timeout = 30\n\
         {extra}",
        port = pf.submission_port,
        ca = pki().ca_pem.display(),
        user = pf.user,
        pw = pf.password_file.display(),
    )
}

/// `path = '...'` for a TOML file.
fn toml_path(key: &str, path: &Path) -> String {
    format!("{key} = '{}'\n", path.display())
}

/// What arrived for one recipient, split up.
pub(super) struct Delivered {
    /// Postfix's `Received:` headers (one expected).
    pub(super) received: Vec<String>,
    /// The message as postie sent it (without the Received headers).
    pub(super) message: Vec<u8>,
}

impl Delivered {
    pub(super) fn get(pf: &Postfix, rcpt: &str) -> Delivered {
        let bytes = pf.delivered(rcpt);
        let (received, rest) = strip_received(&bytes);
        assert_eq!(received.len(), 1, "{rcpt}: one Received header expected");
        Delivered {
            received,
            message: rest.to_vec(),
        }
    }

    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.message).into_owned()
    }

    /// The header fields (unfolded) as (name, value).
    fn headers(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in self.text().split('\n') {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = out.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                out.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        out
    }

    /// Every value of header `name` (case-insensitive).
    fn header(&self, name: &str) -> Vec<String> {
        self.headers()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// The one value of header `name`; panics naming the headers otherwise.
    pub(super) fn one(&self, name: &str) -> String {
        let values = self.header(name);
        assert_eq!(
            values.len(),
            1,
            "expected one {name} header in:\n{}",
            self.text()
        );
        values[0].clone()
    }

    /// The bytes after the header block's empty line.
    fn body(&self) -> &[u8] {
        let at = self
            .message
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap_or_else(|| panic!("no end of headers in:\n{}", self.text()));
        &self.message[at + 2..]
    }

    /// The addresses (lower-cased) in the header `name`, parsed by mail-parser.
    pub(super) fn addresses(&self, name: &str) -> Vec<String> {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.message)
            .expect("parse the delivered message");
        let list = match name {
            "To" => parsed.to(),
            "Cc" => parsed.cc(),
            "From" => parsed.from(),
            other => panic!("no address accessor for {other}"),
        };
        list.map(|l| {
            l.iter()
                .filter_map(|a| a.address())
                .map(|a| a.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
    }

    /// The display name of the first From: mailbox.
    fn sender_name(&self) -> Option<String> {
        let parsed = mail_parser::MessageParser::default()
            .parse(&self.message)
            .expect("parse the delivered message");
        parsed
            .from()
            .and_then(|l| l.first())
            .and_then(|a| a.name())
            .map(str::to_owned)
    }

    /// The envelope sender Postfix logged for this message (via the queue id in Received).
    /// The log is written by postlogd, asynchronously: it is read again for a few seconds.
    pub(super) fn envelope_sender(&self, pf: &Postfix) -> String {
        let received = &self.received[0];
        let id = received
            .split_whitespace()
            .skip_while(|w| *w != "id")
            .nth(1)
            .unwrap_or_else(|| panic!("no queue id in {received:?}"))
            .trim_end_matches(';');
        let needle = format!("{id}: from=<");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = pf.log();
            if let Some(at) = log.find(&needle) {
                let after = &log[at + needle.len()..];
                return after.split('>').next().unwrap_or("").to_owned();
            }
            if Instant::now() >= deadline {
                panic!("no {needle:?} in the log:\n{}", pf.log_tail(30));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The EHLO name Postfix recorded (`Received: from NAME (...)`).
    pub(super) fn helo(&self) -> String {
        self.received[0]
            .split_whitespace()
            .nth(2)
            .unwrap_or("")
            .to_owned()
    }
}

/// Fails if anything arrives for `rcpt` within half a second.
fn assert_nothing_for(pf: &Postfix, rcpt: &str, what: &str) {
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pf.try_delivered(rcpt).is_none(),
        "{what}: a message was delivered to {rcpt}"
    );
}

// ---------------------------------------------------------------------------------------
// 1. cron

/// The body cron mails: a job's output, with 8-bit text and a line starting with a dot.
const CRON_BODY: &str = "/etc/cron.daily/logrotate:\n\
                         error: skipping \"/var/log/grüße.log\" because parent directory has insecure permissions\n\
                         .hidden file left behind\n\
                         \n\
                         run-parts: /etc/cron.daily/logrotate exited with return code 1\n";

/// A cron message: `To: root`, no From, Date or Message-ID (cron leaves those to
/// sendmail), LF line endings.
fn cron_message() -> String {
    format!(
        "To: root\n\
         Subject: Cron <root@buildhost> test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=UTF-8\n\
         Content-Transfer-Encoding: 8bit\n\
         X-Cron-Env: <SHELL=/bin/sh>\n\
         X-Cron-Env: <HOME=/root>\n\
         X-Cron-Env: <LOGNAME=root>\n\
         \n\
         {CRON_BODY}"
    )
}

/// What both cron calls must deliver to `rcpt` (root, qualified).
fn assert_cron_delivery(pf: &Postfix, rcpt: &str, what: &str) {
    let d = Delivered::get(pf, rcpt);
    assert_eq!(
        d.one("To").trim_start_matches('<').trim_end_matches('>'),
        rcpt,
        "{what}: To: root must become the qualified address"
    );
    assert_eq!(d.addresses("From"), [SYSTEM_FROM], "{what}: From");
    assert_eq!(
        d.sender_name().as_deref(),
        Some("CronDaemon"),
        "{what}: From"
    );
    assert!(
        d.one("From").contains(&format!("<{SYSTEM_FROM}>")),
        "{what}: From: {:?}",
        d.header("From")
    );
    d.one("Date");
    assert!(d.one("Message-ID").starts_with('<'), "{what}: Message-ID");
    assert!(
        d.one("Subject").starts_with("Cron <root@buildhost> "),
        "{what}"
    );
    assert_eq!(d.header("X-Cron-Env").len(), 3, "{what}: X-Cron-Env kept");
    assert_eq!(
        String::from_utf8_lossy(d.body()),
        CRON_BODY,
        "{what}: body changed"
    );
    assert_eq!(
        d.envelope_sender(pf),
        SYSTEM_FROM,
        "{what}: envelope sender"
    );
}

/// cronie and Debian's cron: `-t`, the recipient `root` only in the To: header, mapped by
/// the system aliases file named in /etc/postie.toml.
#[test]
fn cron_t_with_to_root_is_qualified_through_aliases() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "sm-cron-t@example.test";
    let inst = Install::new();
    let aliases = inst.aliases(&format!("# /etc/aliases\npostmaster: root\nroot: {rcpt}\n"));
    inst.write(
        "etc/postie.toml",
        &postie_toml(pf, &toml_path("aliases", &aliases)),
        0o644,
    );
    let cmd = inst.sendmail(&["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t"]);
    run(cmd, Some(cron_message().as_bytes())).assert_quiet_success("cron -t");
    assert_cron_delivery(pf, rcpt, "cron -t");
}

/// The other cron call: recipient `root` as an argument, `-B8BITMIME`; qualified with the
/// configured `domain` (no aliases file), in the envelope and in To:.
#[test]
fn cron_with_root_argument_is_qualified_with_domain() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "root@sm-cron-arg.example.test";
    let inst = Install::new();
    inst.write(
        "etc/postie.toml",
        &postie_toml(pf, "domain = \"sm-cron-arg.example.test\"\n"),
        0o644,
    );
    let cmd = inst.sendmail(&["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"]);
    run(cmd, Some(cron_message().as_bytes())).assert_quiet_success("cron root");
    assert_cron_delivery(pf, rcpt, "cron root");
}

/// Cron's 8-bit mail (`Content-Transfer-Encoding: 8bit`) through a relay that does not
/// offer 8BITMIME (RFC 6152 §3): converted to quoted-printable, it arrives 7-bit and reads
/// the same; the headers cron and the persona wrote are kept.
#[test]
fn cron_mail_to_a_relay_without_8bitmime_arrives_quoted_printable() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "root@sm-cron-7bit.example.test";
    let inst = Install::new();
    inst.write(
        "etc/postie.toml",
        &format!(
            "[defaults]\nserver = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             from = \"{SYSTEM_FROM}\"\ntimeout = 30\ndomain = \"sm-cron-7bit.example.test\"\n",
            pf.seven_bit_port
        ),
        0o644,
    );
    let cmd = inst.sendmail(&["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"]);
    run(cmd, Some(cron_message().as_bytes())).assert_quiet_success("cron to a 7-bit relay");
    let d = Delivered::get(pf, rcpt);
    assert!(d.message.is_ascii(), "{}", d.text());
    assert_eq!(d.one("Content-Transfer-Encoding"), "quoted-printable");
    assert_eq!(d.one("Content-Type"), "text/plain; charset=UTF-8");
    assert_eq!(d.header("X-Cron-Env").len(), 3);
    let parsed = mail_parser::MessageParser::new()
        .parse(&d.message[..])
        .expect("parses");
    assert_eq!(parsed.body_text(0).as_deref(), Some(CRON_BODY));
}

// ---------------------------------------------------------------------------------------
// 2. mdadm, git send-email, mutt, PHP

/// mdadm's monitor mail (`sendmail -t`), with a Bcc added: both get it, neither copy
/// shows the Bcc; the bare `<root>` in From: is qualified with the domain.
#[test]
fn mdadm_t_delivers_to_bcc_without_bcc_header() {
    let Some(pf) = Postfix::get() else { return };
    let (to, bcc) = ("sm-mdadm-to@example.test", "sm-mdadm-bcc@example.test");
    let inst = Install::new();
    inst.write(
        "etc/postie.toml",
        &postie_toml(pf, "domain = \"example.test\"\n"),
        0o644,
    );
    let message = format!(
        "From: mdadm monitoring <root>\n\
         To: {to}\n\
         Bcc: {bcc}\n\
         Subject: Fail event on /dev/md0:buildhost\n\
         \n\
         This is an automatically generated mail message from mdadm\n\
         running on buildhost\n\
         \n\
         A Fail event had been detected on md device /dev/md0.\n"
    );
    run(inst.sendmail(&["-t"]), Some(message.as_bytes())).assert_quiet_success("mdadm");

    let to_copy = Delivered::get(pf, to);
    let bcc_copy = Delivered::get(pf, bcc);
    assert_eq!(
        to_copy.text(),
        bcc_copy.text(),
        "both recipients must get the same message"
    );
    for d in [&to_copy, &bcc_copy] {
        assert!(d.header("Bcc").is_empty(), "Bcc delivered:\n{}", d.text());
        assert!(
            !d.text().contains(bcc),
            "the Bcc address appears in the message:\n{}",
            d.text()
        );
    }
    assert_eq!(to_copy.addresses("To"), [to]);
    assert_eq!(to_copy.addresses("From"), ["root@example.test"]);
    assert_eq!(to_copy.sender_name().as_deref(), Some("mdadm monitoring"));
    assert!(to_copy.text().ends_with("md device /dev/md0.\n"));
}

/// git send-email: `-i -f SENDER RCPT RCPT`, a complete message with its own headers:
/// delivered byte for byte to both, envelope sender from -f. Config in
/// `$XDG_CONFIG_HOME/postie/config.toml`.
#[test]
fn git_send_email_delivers_exact_with_envelope_sender() {
    let Some(pf) = Postfix::get() else { return };
    let (a, b) = ("sm-git-a@example.test", "sm-git-b@example.test");
    let mut inst = Install::new();
    inst.xdg = Some(inst.root.join("xdg"));
    inst.write("xdg/postie/config.toml", &postie_toml(pf, ""), 0o644);
    let message = format!(
        "From: Ada Developer <sender@example.test>\n\
         To: {a}\n\
         Cc: {b}\n\
         Subject: [PATCH v2 1/1] frob: handle empty input\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\n\
         Message-ID: <20261123100000.4242-1-sender@example.test>\n\
         X-Mailer: git-send-email 2.47.0\n\
         MIME-Version: 1.0\n\
         Content-Transfer-Encoding: 8bit\n\
         \n\
         An empty input used to panic.\n\
         \n\
         Signed-off-by: Ada Developer <sender@example.test>\n\
         ---\n\
         \x20src/frob.rs | 2 +-\n\
         \x201 file changed, 1 insertion(+), 1 deletion(-)\n\
         \n\
         diff --git a/src/frob.rs b/src/frob.rs\n\
         --- a/src/frob.rs\n\
         +++ b/src/frob.rs\n\
         @@ -1,3 +1,3 @@\n\
         \x20fn frob(s: &str) -> char {{\n\
         -    s.chars().next().unwrap()\n\
         +    s.chars().next().unwrap_or('.')\n\
         \x20}}\n\
         .\n\
         -- \n\
         2.47.0\n"
    );
    let cmd = inst.sendmail(&["-i", "-f", "sender@example.test", a, b]);
    run(cmd, Some(message.as_bytes())).assert_quiet_success("git send-email");
    for rcpt in [a, b] {
        let d = Delivered::get(pf, rcpt);
        assert_eq!(d.text(), message, "{rcpt}: the message was changed");
        assert_eq!(d.envelope_sender(pf), "sender@example.test", "{rcpt}");
    }
}

/// mutt's `sendmail -oem -oi -- RCPT`; config in ~/.config/postie/config.toml.
#[test]
fn mutt_delivers_exact_with_and_without_dsn() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "sm-mutt@example.test";
    let inst = Install::new();
    inst.write(
        "home/.config/postie/config.toml",
        &postie_toml(pf, ""),
        0o600,
    );
    let message = format!(
        "Date: Mon, 23 Nov 2026 10:00:00 +0000\n\
         From: Mutt User <mutt-user@example.test>\n\
         To: Someone <{rcpt}>\n\
         Subject: lunch?\n\
         Message-ID: <20261123100000.GA1234@example.test>\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=us-ascii\n\
         Content-Disposition: inline\n\
         User-Agent: Mutt/2.2.12 (2023-09-09)\n\
         \n\
         Shall we?\n\
         \n\
         -- \n\
         mutt user\n"
    );
    let dsn_rcpt = "sm-mutt-dsn@example.test";
    // (recipient, arguments, envelope sender): mutt's plain call (no -f: the configured
    // sender, as with msmtp), then with $use_envelope_from and $dsn_notify/$dsn_return set.
    let cases: [(&str, Vec<&str>, &str); 2] = [
        (rcpt, vec!["-oem", "-oi", "--", rcpt], SYSTEM_FROM),
        (
            dsn_rcpt,
            vec![
                "-oem",
                "-oi",
                "-f",
                "mutt-user@example.test",
                "-N",
                "failure,delay",
                "-R",
                "hdrs",
                "--",
                dsn_rcpt,
            ],
            "mutt-user@example.test",
        ),
    ];
    for (to, args, sender) in cases {
        run(inst.sendmail(&args), Some(message.as_bytes()))
            .assert_quiet_success(&format!("{args:?}"));
        let d = Delivered::get(pf, to);
        assert_eq!(d.text(), message, "{args:?}: the message was changed");
        assert_eq!(d.envelope_sender(pf), sender, "{args:?}");
    }

    // Postfix offers DSN, so -N and -R must reach it (RFC 3461 §4.1, §4.3): seen in -v.
    let verbose_rcpt = "sm-mutt-dsn-v@example.test";
    let mut cmd = inst.sendmail(&["-v", "-oem", "-oi", "-N", "failure,delay", "-R", "hdrs"]);
    cmd.args(["--", verbose_rcpt]);
    let out = run(cmd, Some(message.as_bytes()));
    out.assert_code(0, "mutt with DSN, -v");
    for (command, param) in [
        ("MAIL FROM:", "RET=HDRS"),
        ("RCPT TO:", "NOTIFY=FAILURE,DELAY"),
        // RFC 3461 §4.2: the original recipient, so a report names the address used.
        ("RCPT TO:", "ORCPT=rfc822;sm-mutt-dsn-v@example.test"),
    ] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(command) && l.contains(param)),
            "{command} should carry {param}: {}",
            out.describe()
        );
    }
    Delivered::get(pf, verbose_rcpt);
}

/// PHP's mail(): `sendmail -t -i` (php.ini's default sendmail_path) with PHP's header
/// order (To, Subject, additional headers) and no From; then with `-f` (mail()'s fifth
/// argument), which sets the envelope sender and the added From.
#[test]
fn php_mail_t_i_with_and_without_f() {
    let Some(pf) = Postfix::get() else { return };
    let inst = Install::new();
    inst.write("etc/postie.toml", &postie_toml(pf, ""), 0o644);
    let message = |rcpt: &str| {
        format!(
            "To: {rcpt}\n\
             Subject: Your order #1234\n\
             X-Mailer: PHP/8.2.26\n\
             Content-type: text/plain; charset=UTF-8\n\
             \n\
             Thank you for your order.\n"
        )
    };
    let cases: [(&str, &[&str], &str); 2] = [
        ("sm-php@example.test", &["-t", "-i"], SYSTEM_FROM),
        (
            "sm-php-f@example.test",
            &["-t", "-i", "-f", "shop@example.test"],
            "shop@example.test",
        ),
    ];
    for (rcpt, args, sender) in cases {
        run(inst.sendmail(args), Some(message(rcpt).as_bytes()))
            .assert_quiet_success(&format!("php {args:?}"));
        let d = Delivered::get(pf, rcpt);
        assert_eq!(d.addresses("To"), [rcpt], "{args:?}");
        assert_eq!(d.addresses("From"), [sender], "{args:?}: added From");
        d.one("Date");
        d.one("Message-ID");
        assert_eq!(d.one("X-Mailer"), "PHP/8.2.26", "{args:?}");
        assert_eq!(d.body(), b"Thank you for your order.\n", "{args:?}");
        assert_eq!(d.envelope_sender(pf), sender, "{args:?}: envelope sender");
    }
}

// ---------------------------------------------------------------------------------------
// 3. exit codes

#[test]
fn sendmail_exit_codes_for_refused_recipients_and_missing_config() {
    let Some(pf) = Postfix::get() else { return };
    let inst = Install::new();
    inst.write("etc/postie.toml", &postie_toml(pf, ""), 0o644);
    let message = b"Subject: refused\n\nnobody gets this\n";
    // (recipient, exit code, texts the one stderr line must carry)
    let cases: [(&str, i32, &[&str]); 2] = [
        (
            "nosuchuser@example.test",
            67,
            &["nosuchuser@example.test", "550"],
        ),
        (
            "tempfail@example.test",
            75,
            &["tempfail@example.test", "450"],
        ),
    ];
    for (rcpt, code, texts) in cases {
        let out = run(inst.sendmail(&["-oi", rcpt]), Some(message));
        out.assert_code(code, rcpt);
        out.assert_one_error_line("sendmail:", texts, rcpt);
    }

    // No config file anywhere: direct delivery to the recipient domain's MX hosts; here
    // (the test DNS server) the domain does not exist: EX_NOHOST, and nothing sent.
    let bare = Install::new();
    let rcpt = "sm-no-config@example.test";
    let msg = format!("To: {rcpt}\nSubject: x\n\nx\n");
    let dns = crate::support::dns_server::Zone::new()
        .nxdomain("example.test")
        .start();
    let mut cmd = bare.sendmail(&["-t"]);
    cmd.env("POSTIE_RESOLVER", dns.addr().to_string());
    let out = run(cmd, Some(msg.as_bytes()));
    out.assert_code(68, "no config");
    out.assert_one_error_line("sendmail:", &["NXDOMAIN"], "no config");
    assert_nothing_for(pf, rcpt, "no config");
}

// ---------------------------------------------------------------------------------------
// 4. mail persona

/// smartd's warning mail: `mail -s SUBJECT root`, body on stdin; root caught by the
/// aliases file's `default:` entry.
#[test]
fn smartd_mail_s_root_delivers_with_subject() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "sm-smartd@example.test";
    let subject = "SMART error (FailedReadSmartData) detected on host: x";
    let inst = Install::new();
    let aliases = inst.aliases(&format!("postmaster: admin\ndefault: {rcpt}\n"));
    inst.write(
        "etc/postie.toml",
        &postie_toml(pf, &toml_path("aliases", &aliases)),
        0o644,
    );
    let body = "This message was generated by the smartd daemon running on:\n\
                \n\
                \x20  host name:  x\n\
                \x20  DNS domain: example.test\n\
                \n\
                The following warning/error was logged by the smartd daemon:\n\
                \n\
                Device: /dev/sda [SAT], failed to read SMART Attribute Data\n";
    let mut cmd = inst.command("mail");
    cmd.args(["-s", subject, "root"]);
    run(cmd, Some(body.as_bytes())).assert_quiet_success("smartd");
    let d = Delivered::get(pf, rcpt);
    assert_eq!(d.one("Subject"), subject);
    assert_eq!(d.addresses("To"), [rcpt]);
    assert_eq!(d.addresses("From"), [SYSTEM_FROM]);
    let parsed = mail_parser::MessageParser::default()
        .parse(&d.message)
        .expect("parse");
    assert_eq!(parsed.body_text(0).as_deref(), Some(body), "body");
}

// ---------------------------------------------------------------------------------------
// 5. msmtprc

/// An msmtprc as msmtp users have it: defaults, an account inheriting another, the
/// default account inheriting that, a literal password, STARTTLS with a trust file.
fn msmtprc(pf: &Postfix) -> String {
    format!(
        "# ~/.msmtprc, unchanged from msmtp\n\
         defaults\n\
         tls on\n\
         tls_trust_file {ca}\n\
         auth on\n\
         timeout 30\n\
         \n\
         account base\n\
         host 127.0.0.1\n\
         port {port}\n\
         user {user}\n\
         password {password}\n\
         from msmtp-base@example.test\n\
         \n\
         # the work account differs in its sender and its EHLO name\n\
         account work : base\n\
         from msmtp-work@example.test\n\
         domain work-client.example.test\n\
         \n\
         account default : work\n",
        ca = pki().ca_pem.display(),
        port = pf.submission_port,
        user = pf.user,
        password = pf.password,
    )
}

#[test]
fn msmtprc_with_inherited_accounts_works_unchanged() {
    let Some(pf) = Postfix::get() else { return };
    let inst = Install::new();
    let rc = inst.write("home/.msmtprc", &msmtprc(pf), 0o600);
    let message = |rcpt: &str| format!("To: {rcpt}\nSubject: via msmtprc\n\nhello\n");

    // (recipient, extra arguments, expected sender, expected EHLO name)
    let cases: [(&str, &[&str], &str, &str); 3] = [
        // account default : work
        (
            "sm-msmtp-default@example.test",
            &[],
            "msmtp-work@example.test",
            "work-client.example.test",
        ),
        // -f picks the account whose from matches (msmtp's auto-from choice)
        (
            "sm-msmtp-f@example.test",
            &["-f", "msmtp-base@example.test"],
            "msmtp-base@example.test",
            "postie.test",
        ),
        // msmtp's --account in sendmail mode
        (
            "sm-msmtp-account@example.test",
            &["--account=base"],
            "msmtp-base@example.test",
            "postie.test",
        ),
    ];
    for (rcpt, extra, sender, helo) in cases {
        let mut cmd = inst.sendmail(&["-t"]);
        cmd.args(extra);
        run(cmd, Some(message(rcpt).as_bytes())).assert_quiet_success(&format!("{extra:?}"));
        let d = Delivered::get(pf, rcpt);
        assert_eq!(d.envelope_sender(pf), sender, "{extra:?}: envelope sender");
        assert_eq!(d.addresses("From"), [sender], "{extra:?}: added From");
        assert_eq!(d.helo(), helo, "{extra:?}: EHLO name in {:?}", d.received);
        assert!(
            d.received[0].contains("with ESMTPSA"),
            "{extra:?}: not TLS + AUTH: {:?}",
            d.received
        );
    }

    // The same file readable by others: refused before anything is sent.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let rcpt = "sm-msmtp-0644@example.test";
    let out = run(inst.sendmail(&["-t"]), Some(message(rcpt).as_bytes()));
    out.assert_code(78, "msmtprc mode 0644");
    out.assert_one_error_line("sendmail:", &["chmod", ".msmtprc"], "msmtprc mode 0644");
    assert!(!out.stderr.contains(&pf.password), "{}", out.describe());
    assert_nothing_for(pf, rcpt, "msmtprc mode 0644");
}

// ---------------------------------------------------------------------------------------
// 6. sendmail -bs

/// A scripted SMTP client talking to `sendmail -bs` over its stdin and stdout.
struct BsClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Everything said so far, for failure messages.
    log: Vec<String>,
}

impl BsClient {
    fn spawn(mut cmd: Command) -> BsClient {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn sendmail -bs");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout pipe");
        let stderr = Some(drain(child.stderr.take().expect("stderr pipe")));
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line).into_owned();
                        if tx.send(text).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        BsClient {
            child,
            stdin,
            lines,
            stderr,
            log: Vec::new(),
        }
    }

    fn transcript(&self) -> String {
        self.log.join("\n")
    }

    /// One reply (all its lines); each line must come within RUN_TIMEOUT and end in CRLF.
    fn reply(&mut self) -> (u16, Vec<String>) {
        let mut lines = Vec::new();
        loop {
            let line = match self.lines.recv_timeout(RUN_TIMEOUT) {
                Ok(l) => l,
                Err(e) => panic!(
                    "no reply line within {RUN_TIMEOUT:?} ({e}); transcript:\n{}",
                    self.transcript()
                ),
            };
            self.log.push(format!("S: {}", line.trim_end()));
            let text = line
                .strip_suffix("\r\n")
                .unwrap_or_else(|| panic!("reply line without CRLF: {line:?}"))
                .to_owned();
            let code: u16 = text
                .get(..3)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("not a reply line: {text:?}"));
            let last = text.as_bytes().get(3) != Some(&b'-');
            lines.push(text);
            if last {
                return (code, lines);
            }
        }
    }

    fn send(&mut self, line: &str) {
        self.log.push(format!("C: {line}"));
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{line}\r\n").as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing {line:?}: {e}"));
    }

    /// Sends `line` (if any) and checks the reply's code; returns the reply lines.
    fn expect(&mut self, line: Option<&str>, code: u16) -> Vec<String> {
        if let Some(l) = line {
            self.send(l);
        }
        let (got, lines) = self.reply();
        assert_eq!(
            got,
            code,
            "after {line:?}: transcript:\n{}",
            self.transcript()
        );
        lines
    }

    /// Closes stdin and waits (bounded) for the exit.
    fn finish(mut self) -> Outcome {
        drop(self.stdin.take());
        let code = wait_bounded(&mut self.child, RUN_TIMEOUT, "sendmail -bs");
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        Outcome {
            cmdline: "sendmail -bs".into(),
            code,
            stdout: String::new(),
            stderr,
            elapsed: Duration::ZERO,
        }
    }
}

impl Drop for BsClient {
    fn drop(&mut self) {
        // After a failed assertion: do not leave postie running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One -bs session: EHLO, MAIL, RCPT `rcpt`, DATA with `data` lines (already
/// dot-stuffed), QUIT; returns the end-of-data reply code and the outcome.
fn bs_session(inst: &Install, sender: &str, rcpt: &str, data: &[&str]) -> (u16, Outcome) {
    let mut c = BsClient::spawn(inst.sendmail(&["-bs"]));
    let greeting = c.expect(None, 220);
    assert!(greeting[0].starts_with("220 "), "{greeting:?}");
    let ehlo = c.expect(Some("EHLO client.example.test"), 250);
    assert!(ehlo.len() > 1, "EHLO should list extensions: {ehlo:?}");
    c.expect(Some(&format!("MAIL FROM:<{sender}>")), 250);
    c.expect(Some(&format!("RCPT TO:<{rcpt}>")), 250);
    c.expect(Some("DATA"), 354);
    for line in data {
        c.send(line);
    }
    c.send(".");
    let (end_of_data, lines) = c.reply();
    if end_of_data == 250 {
        // The server's own status once, then the upstream text: never "250 2.0.0 250 ...".
        let line = lines.last().map(String::as_str).unwrap_or_default();
        let text = line
            .strip_prefix("250 2.0.0 ")
            .unwrap_or_else(|| panic!("{lines:?}"));
        assert!(
            !text.starts_with("250") && !text.starts_with("2.0.0"),
            "{lines:?}"
        );
    }
    c.expect(Some("QUIT"), 221);
    let transcript = c.transcript();
    let out = c.finish();
    assert_eq!(
        out.code,
        Some(0),
        "sendmail -bs exit: {}\n--- transcript ---\n{transcript}",
        out.describe()
    );
    (end_of_data, out)
}

#[test]
fn bs_relays_a_scripted_smtp_session_and_passes_refusals_back() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "sm-bs@example.test";
    let inst = Install::new();
    let aliases = inst.aliases(&format!("root: {rcpt}\n"));
    inst.write(
        "etc/postie.toml",
        &postie_toml(pf, &toml_path("aliases", &aliases)),
        0o644,
    );
    // A complete message; the third and fifth lines are dot-stuffed (RFC 5321 §4.5.2).
    let data = [
        "From: Web App <webapp@example.test>",
        "To: Admin <sm-bs@example.test>",
        "Subject: via sendmail -bs",
        "Date: Mon, 23 Nov 2026 10:00:00 +0000",
        "Message-ID: <bs-1@example.test>",
        "",
        "first line",
        "..leading dot",
        "..",
        "last line",
    ];
    // RCPT TO:<root>: the bare name goes through the aliases file.
    let (code, out) = bs_session(&inst, "webapp@example.test", "root", &data);
    assert_eq!(code, 250, "end of data: {}", out.describe());
    let d = Delivered::get(pf, rcpt);
    let expected = "From: Web App <webapp@example.test>\n\
                    To: Admin <sm-bs@example.test>\n\
                    Subject: via sendmail -bs\n\
                    Date: Mon, 23 Nov 2026 10:00:00 +0000\n\
                    Message-ID: <bs-1@example.test>\n\
                    \n\
                    first line\n\
                    .leading dot\n\
                    .\n\
                    last line\n";
    assert_eq!(d.text(), expected, "delivered message");
    assert_eq!(d.envelope_sender(pf), "webapp@example.test");

    // Postfix refuses the recipient: the client hears a permanent failure at end of data.
    let (code, out) = bs_session(
        &inst,
        "webapp@example.test",
        "nosuchuser@example.test",
        &["Subject: refused", "", "never delivered"],
    );
    assert!(
        (500..600).contains(&code),
        "end of data for a refused recipient: {code}; {}",
        out.describe()
    );
    assert!(
        out.stderr.starts_with("sendmail:") && out.stderr.contains("nosuchuser@example.test"),
        "the refusal should be noted on stderr: {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------------------
// 7. queue and aliases commands

/// An msmtprc or postie.toml whose accounts include no default stops with 78 and names
/// the accounts (msmtp: "account default not found"), through every persona, instead of
/// delivering straight to the recipients' MX hosts unauthenticated.
#[test]
fn accounts_without_a_default_exit_78_naming_them_in_every_persona() {
    let inst = Install::new();
    inst.write(
        "home/.msmtprc",
        "account work\nhost smtp.work.example\nfrom me@work.example\nauth off\n\n\
         account home\nhost smtp.home.example\n",
        0o600,
    );
    let msmtp_line = "no default account (it defines: work, home): choose one with -A NAME, \
                      or set `account default : NAME`";
    let message = b"To: someone@example.org\nSubject: x\n\nbody\n";
    let runs: [(&str, &[&str]); 6] = [
        ("msmtp", &["-t"]),
        ("msmtp", &["someone@example.org"]),
        ("sendmail", &["-t"]),
        ("sendmail", &["someone@example.org"]),
        ("mail", &["-s", "x", "someone@example.org"]),
        ("mailx", &["-s", "x", "someone@example.org"]),
    ];
    for (name, args) in runs {
        let mut cmd = inst.command(name);
        cmd.args(args);
        let out = run(cmd, Some(message));
        out.assert_code(78, &format!("{name} {args:?}"));
        let program = if name == "mailx" { "mail" } else { name };
        assert_eq!(
            out.stderr,
            format!("{program}: ~/.msmtprc: {msmtp_line}\n"),
            "{name} {args:?}: {}",
            out.describe()
        );
    }
    let mut cmd = postie();
    cmd.env("HOME", &inst.home)
        .args(["-s", "x", "someone@example.org"]);
    let out = run(cmd, Some(b"body\n"));
    out.assert_code(78, "postie");
    assert_eq!(out.stderr, format!("postie: ~/.msmtprc: {msmtp_line}\n"));
    // Naming one (msmtp's -a, postie's -A) gets past the check (to --dry-run here).
    let mut cmd = postie();
    cmd.env("HOME", &inst.home)
        .args(["-A", "work", "--dry-run", "-s", "x", "someone@example.org"]);
    run(cmd, Some(b"body\n")).assert_code(0, "postie -A work --dry-run");
    // msmtp --host names the route itself: the file's accounts do not matter then.
    let mut cmd = inst.command("msmtp");
    cmd.args(["--host=127.0.0.1", "--port=1", "-P", "someone@example.org"]);
    run(cmd, None).assert_code(0, "msmtp --host -P");

    // postie's own TOML file: the same, with its own way to set a default.
    let toml = Install::new();
    toml.write(
        "etc/postie.toml",
        "[account.bob]\nserver = \"smtp.example.org\"\n",
        0o644,
    );
    let mut cmd = toml.sendmail(&["someone@example.org"]);
    cmd.env_remove("XDG_CONFIG_HOME");
    let out = run(cmd, Some(message));
    out.assert_code(78, "sendmail, postie.toml");
    assert!(
        out.stderr.ends_with(
            "no default account (it defines: bob): choose one with -A NAME, or set \
             default_account = \"NAME\" at the top of the file\n"
        ) && out.stderr.lines().count() == 1,
        "{}",
        out.describe()
    );
}

/// Senders are qualified like recipients, with the configured domain (never through the
/// aliases, which map recipients): `sendmail -f root`, a `From: root` header, and the
/// default sender of a systemd unit or container where USER and LOGNAME are unset.
#[test]
fn bare_and_default_senders_take_the_configured_domain() {
    let Some(pf) = Postfix::get() else { return };
    let domain = "sm-sender.example.test";
    let inst = Install::new();
    // root is aliased for mail *to* root; the sender root must stay root.
    let aliases = inst.aliases("root: sm-sender-root-mail@example.test\n");
    // Postfix's plain port takes mail from loopback without a login (a login that is an
    // address would itself be the default sender).
    let toml = format!(
        "[defaults]\nserver = \"127.0.0.1:{port}\"\ntls = \"none\"\ntimeout = 30\n\
         domain = \"{domain}\"\n{aliases}",
        port = pf.plain_port,
        aliases = toml_path("aliases", &aliases),
    );
    inst.write("etc/postie.toml", &toml, 0o644);

    let rcpt = "sm-sender-1@example.test";
    let mut cmd = inst.sendmail(&["-t"]);
    cmd.env_remove("USER").env_remove("LOGNAME");
    let message = format!("To: {rcpt}\nSubject: no USER\n\nbody\n");
    run(cmd, Some(message.as_bytes())).assert_quiet_success("sendmail without USER");
    let d = Delivered::get(pf, rcpt);
    assert_eq!(d.envelope_sender(pf), format!("postie@{domain}"));
    assert_eq!(d.addresses("From"), [format!("postie@{domain}")]);

    let rcpt = "sm-sender-2@example.test";
    let cmd = inst.sendmail(&["-f", "root", rcpt]);
    let message = "From: root\nSubject: from root\n\nbody\n";
    run(cmd, Some(message.as_bytes())).assert_quiet_success("sendmail -f root");
    let d = Delivered::get(pf, rcpt);
    assert_eq!(d.envelope_sender(pf), format!("root@{domain}"));
    assert_eq!(
        d.one("From"),
        format!("<root@{domain}>"),
        "From: is not aliased"
    );
}

/// The EHLO name is a fully qualified name or an address literal, never a bare host name
/// (Postfix's reject_non_fqdn_helo_hostname refuses those): a host called `box` with no
/// fully qualified form says EHLO [127.0.0.1]; `box.example.test` says its name.
#[test]
fn ehlo_is_a_fqdn_or_an_address_literal() {
    let Some(pf) = Postfix::get() else { return };
    let inst = Install::new();
    let toml = format!(
        "[defaults]\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\ntimeout = 30\n\
         from = \"{SYSTEM_FROM}\"\n",
        pf.plain_port
    );
    inst.write("etc/postie.toml", &toml, 0o644);
    for (host, want) in [
        ("box", "[127.0.0.1]"),
        ("box.example.test", "box.example.test"),
    ] {
        let rcpt = format!("sm-ehlo-{}@example.test", host.len());
        let mut cmd = inst.sendmail(&[&rcpt]);
        cmd.env("POSTIE_TEST_HOSTNAME", host);
        run(cmd, Some(b"Subject: ehlo\n\nbody\n")).assert_quiet_success(host);
        let d = Delivered::get(pf, &rcpt);
        assert_eq!(d.helo(), want, "host {host}: {:?}", d.received);
    }
}

/// A Debian-style /etc/aliases with `|command` and `:include:` lines is used for its
/// address lines, with one warning naming the lines skipped.
#[test]
fn aliases_with_pipes_and_includes_are_used_with_one_warning() {
    let Some(pf) = Postfix::get() else { return };
    let rcpt = "sm-aliases-pipe@example.test";
    let inst = Install::new();
    let aliases = inst.aliases(&format!(
        "# /etc/aliases\nmailer-daemon: postmaster\npostmaster: root\n\
         procmail: \"|/usr/bin/procmail -a $EXTENSION\"\nlists: :include:/etc/mail/lists\n\
         root: {rcpt}\n"
    ));
    inst.write(
        "etc/postie.toml",
        &postie_toml(pf, &toml_path("aliases", &aliases)),
        0o644,
    );
    let cmd = inst.sendmail(&["postmaster"]);
    let out = run(cmd, Some(b"Subject: to postmaster\n\nbody\n"));
    out.assert_code(0, "sendmail postmaster");
    assert_eq!(
        out.stderr,
        format!(
            "postie: warning: {}: skipping the targets postie cannot deliver to (|command, \
             /file, :include:) on lines 4, 5; the address lines are used\n",
            aliases.display()
        ),
        "{}",
        out.describe()
    );
    assert_eq!(Delivered::get(pf, rcpt).one("Subject"), "to postmaster");
}

/// The HTML report from cron: bsd-mailx's `-a 'Content-Type: text/html'` is a header
/// (not a file), s-nail's `-S from=ADDR` the sender; an `-a` naming a file that exists
/// is attached even when its name looks like a header.
#[test]
fn mailx_a_header_s_from_and_a_file_that_looks_like_a_header() {
    let Some(pf) = Postfix::get() else { return };
    let inst = Install::new();
    inst.write("etc/postie.toml", &postie_toml(pf, ""), 0o644);
    let rcpt = "sm-mailx-html@example.test";
    let mut cmd = inst.command("mail");
    cmd.args([
        "-a",
        "Content-Type: text/html; charset=UTF-8",
        "-S",
        "from=reports@example.test",
        "-s",
        "daily report",
        rcpt,
    ]);
    let html = "<html><body><h1>All good</h1></body></html>\n";
    run(cmd, Some(html.as_bytes())).assert_quiet_success("mail -a header -S from");
    let d = Delivered::get(pf, rcpt);
    assert_eq!(d.one("Content-Type"), "text/html; charset=\"utf-8\"");
    assert_eq!(d.one("Subject"), "daily report");
    assert_eq!(d.addresses("From"), ["reports@example.test"]);
    assert_eq!(d.envelope_sender(pf), "reports@example.test");
    assert_eq!(String::from_utf8_lossy(d.body()), html);

    let rcpt = "sm-mailx-file@example.test";
    let work = inst.root.join("work");
    std::fs::create_dir(&work).expect("work dir");
    std::fs::write(work.join("X-Report: 1"), "attached bytes\n").expect("odd file");
    let mut cmd = inst.command("mail");
    cmd.current_dir(&work)
        .args(["-a", "X-Report: 1", "-s", "odd file", rcpt]);
    run(cmd, Some(b"see attached\n")).assert_quiet_success("mail -a existing file");
    let d = Delivered::get(pf, rcpt);
    assert!(d.header("X-Report").is_empty(), "{}", d.text());
    assert!(
        d.one("Content-Type").starts_with("multipart/mixed"),
        "{}",
        d.text()
    );
    assert!(
        d.text().contains("X-Report: 1"),
        "the attachment's file name: {}",
        d.text()
    );
}

/// postie's subcommands are postie's alone: invoked as `sendmail` (and as `mail`), a local
/// recipient named `queue`, `batch`, `dkim` or `check` gets the message.
#[test]
fn subcommand_names_are_recipients_for_the_personas() {
    let Some(pf) = Postfix::get() else { return };
    let domain = "sm-subcmd.example.test";
    let inst = Install::new();
    inst.write(
        "etc/postie.toml",
        &postie_toml(pf, &format!("domain = \"{domain}\"\n")),
        0o644,
    );
    let message = "Subject: to a user named queue\n\nbody\n";
    let cmd = inst.sendmail(&["queue", "batch"]);
    run(cmd, Some(message.as_bytes())).assert_quiet_success("sendmail queue batch");
    for user in ["queue", "batch"] {
        let d = Delivered::get(pf, &format!("{user}@{domain}"));
        assert_eq!(d.one("Subject"), "to a user named queue", "sendmail {user}");
        assert_eq!(d.body(), b"body\n", "sendmail {user}");
    }
    let mut cmd = inst.command("mail");
    cmd.args(["-s", "to a user named check", "check", "dkim"]);
    run(cmd, Some(b"body\n")).assert_quiet_success("mail check dkim");
    for user in ["check", "dkim"] {
        let d = Delivered::get(pf, &format!("{user}@{domain}"));
        assert_eq!(d.one("Subject"), "to a user named check", "mail {user}");
    }
}

#[test]
fn queue_and_alias_commands_exit_zero_without_config() {
    let inst = Install::new();
    let cases: [(&str, &[&str], bool); 6] = [
        ("mailq", &[], true),
        ("sendmail", &["-bp"], true),
        ("newaliases", &[], false),
        ("sendmail", &["-bi"], false),
        ("sendmail", &["-q30m"], false),
        ("sendmail", &["-q"], false),
    ];
    for (name, args, lists_queue) in cases {
        let mut cmd = inst.command(name);
        cmd.args(args);
        let out = run(cmd, None);
        out.assert_code(0, &format!("{name} {args:?}"));
        if lists_queue {
            assert!(
                out.stdout.contains("Mail queue is empty"),
                "{name} {args:?}: {}",
                out.describe()
            );
        }
    }
    // The same through postie's first argument.
    for args in [&["mailq"][..], &["sendmail", "-bp"], &["newaliases"]] {
        let mut cmd = postie();
        cmd.args(args);
        run(cmd, None).assert_code(0, &format!("postie {args:?}"));
    }
}

// ---------------------------------------------------------------------------------------
// 8. --show-config

#[test]
fn show_config_prints_settings_but_never_the_password() {
    let secret = "Lit3ral-Pa55-w0rd";
    let inst = Install::new();
    let toml = inst.write(
        "cfg/postie.toml",
        &format!(
            "[defaults]\nserver = \"mail.example.test\"\nport = 2525\nuser = \"ops@example.test\"\n\
             password = \"{secret}\"\nfrom = \"ops@example.test\"\ndomain = \"example.test\"\n"
        ),
        0o600,
    );
    let rc = inst.write(
        "cfg/msmtprc",
        &format!(
            "defaults\ntls on\n\naccount ops\nhost mail.example.test\nport 2525\n\
             user ops@example.test\npassword {secret}\nfrom ops@example.test\n\n\
             account default : ops\n"
        ),
        0o600,
    );
    for file in [&toml, &rc] {
        let mut cmd = postie();
        cmd.arg("--show-config").arg("-C").arg(file);
        let out = run(cmd, None);
        out.assert_code(0, &file.display().to_string());
        for text in [
            "mail.example.test:2525",
            "ops@example.test",
            "(from the configuration file)",
        ] {
            assert!(
                out.stdout.contains(text),
                "{}: --show-config lacks {text:?}: {}",
                file.display(),
                out.describe()
            );
        }
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{}: the password is shown: {}",
            file.display(),
            out.describe()
        );
    }
}

/// Every configuration key that changes how mail goes out is in --show-config, resolved,
/// and nothing secret is: the whole output, for a TOML account that sets them all (and
/// once more with none set).
#[test]
fn show_config_shows_every_delivery_setting() {
    let secret = "Lit3ral-Pa55-w0rd";
    let inst = Install::new();
    let dir = inst.home.display().to_string();
    let aliases = inst.aliases("root: ops@example.test\n");
    let toml = inst.write(
        "cfg/postie.toml",
        &format!(
            "[defaults]\nserver = [\"mail.example.test\", \"relay.example.test\", \"backup.example.test:2526\"]\n\
             port = 2525\n\
             tls = \"starttls\"\ntls_ca = \"{dir}/ca.pem\"\ntls_verify = false\n\
             user = \"ops@example.test\"\npassword = \"{secret}\"\nauth = \"plain\"\n\
             from = \"ops@example.test\"\nhelo = \"client.example.test\"\n\
             domain = \"example.test\"\naliases = \"{}\"\ntimeout = 42\n\
             log = \"{dir}/postie.log\"\ndkim_key = \"{dir}/dkim.pem\"\n\
             dkim_selector = \"s1\"\ndkim_domain = \"example.test\"\nqueue = true\n\
             queue_dir = \"{dir}/queue\"\nqueue_max_age = \"90m\"\nall_or_nothing = true\n\
             allow_plaintext_auth = true\n",
            aliases.display()
        ),
        0o600,
    );
    let mut cmd = postie();
    cmd.arg("--show-config").arg("-C").arg(&toml);
    let out = run(cmd, None);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (Some(0), ""),
        "{}",
        out.describe()
    );
    let expected = [
        format!("config file    {}", toml.display()),
        "account        (chosen automatically)".into(),
        "server         mail.example.test:2525, relay.example.test:2525, backup.example.test:2526"
            .into(),
        "protocol       smtp".into(),
        "tls            starttls (required)".into(),
        format!("tls_ca         {dir}/ca.pem"),
        "tls_verify     OFF".into(),
        "user           ops@example.test".into(),
        "password       (from the configuration file)".into(),
        "auth           PLAIN".into(),
        "plaintext_auth allowed (AUTH may go without TLS)".into(),
        "from           ops@example.test".into(),
        "helo           client.example.test".into(),
        "resolver       system".into(),
        "domain         example.test".into(),
        format!("aliases        {}", aliases.display()),
        "timeout        42 s".into(),
        "all_or_nothing on (a refused recipient means the message goes to nobody)".into(),
        format!("dkim           key {dir}/dkim.pem, selector s1, domain example.test"),
        "queue          on".into(),
        format!("queue_dir      {dir}/queue"),
        "queue_max_age  90m".into(),
        format!("log            {dir}/postie.log"),
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    assert_eq!(out.stdout, expected);
    assert!(!out.stdout.contains(secret));

    // Nothing configured: the defaults, said as such.
    let empty = inst.write("cfg/empty.toml", "[defaults]\n", 0o600);
    let mut cmd = postie();
    cmd.arg("--show-config").arg("-C").arg(&empty);
    let out = run(cmd, None);
    out.assert_code(0, "empty configuration");
    let expected = [
        format!("config file    {}", empty.display()),
        "account        (chosen automatically)".into(),
        "server         (each recipient domain's MX, port 25)".into(),
        "protocol       smtp".into(),
        "tls            starttls (opportunistic)".into(),
        "tls_ca         (none)".into(),
        "tls_verify     on".into(),
        "user           (none)".into(),
        "password       (none)".into(),
        "auth           automatic".into(),
        "plaintext_auth refused (AUTH only inside TLS)".into(),
        "from           (none)".into(),
        "helo           postie.test".into(),
        "resolver       system".into(),
        "domain         (none)".into(),
        "aliases        (none)".into(),
        "timeout        RFC 5321 defaults".into(),
        "all_or_nothing off (the message goes to the recipients accepted)".into(),
        "dkim           (none)".into(),
        "queue          off".into(),
        "queue_dir      /nonexistent/postie-test-queue".into(),
        "queue_max_age  5d".into(),
        "log            (none)".into(),
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    assert_eq!(out.stdout, expected);
}

/// An aliases file whose names loop (`a: b`, `b: a`) has no address to send to: one line
/// naming the loop and the file, exit 78, before any connection; a name listing itself
/// (`root: root, ...`, sendmail's idiom) is not a loop. No server is needed: nothing may
/// be sent.
#[test]
fn an_alias_loop_is_reported_as_a_loop() {
    let inst = Install::new();
    let aliases = inst.aliases(
        "# /etc/aliases\npostmaster: root\nroot: admin\nadmin: ops, ops@example.test\nops: root\n",
    );
    inst.write(
        "etc/postie.toml",
        &format!(
            "[defaults]\nserver = \"127.0.0.1\"\nport = 9\ntls = \"none\"\n\
             from = \"{SYSTEM_FROM}\"\ndomain = \"example.test\"\n{}",
            toml_path("aliases", &aliases)
        ),
        0o644,
    );
    for args in [&["postmaster"][..], &["-t"][..]] {
        let cmd = inst.sendmail(args);
        let out = run(cmd, Some(b"To: postmaster\nSubject: loop\n\nbody\n"));
        out.assert_code(78, "alias loop");
        assert_eq!(
            out.stderr,
            format!(
                "sendmail: {}: alias loop: root -> admin -> ops -> root (no address to send \
                 to; fix the aliases file)\n",
                aliases.display()
            ),
            "{args:?}: {}",
            out.describe()
        );
    }
}
