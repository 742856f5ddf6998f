//! End to end through the msmtp persona (issue 13): the built binary run as `msmtp` (a
//! symlink in a private `bin/`, see `sendmail::Install`) with the command lines mutt and
//! neomutt, git send-email and msmtpq use, against the real Postfix of `support::mta`,
//! with an msmtprc of accounts in `~/.msmtprc` (or named with `-C`).
//!
//! What is checked is what arrives: the message byte for byte (stdin is a ready message:
//! nothing is added to a complete one, only Bcc is removed), the envelope sender (Postfix's
//! log), the EHLO name of the account chosen (by `-a`, by From: with
//! `--read-envelope-from`, or the default), the exit codes of sysexits(3) with the one
//! stderr line a failure prints, `--serverinfo`'s report on stdout and `-P`'s settings
//! without the password. Each test uses its own recipients; Postfix tests skip themselves
//! (printing why) when Postfix cannot run here; the `-P` and usage tests need no server.

use crate::support::certs::pki;
use crate::support::mta::Postfix;

use super::sendmail::{run, Delivered, Install};

/// A complete LF message (From, To, Date, Message-ID), with 8-bit text and a line starting
/// with a dot, so that nothing needs adding and it must arrive exactly as written.
fn complete_message(from: &str, to: &str, id: &str) -> String {
    format!(
        "From: Sender Person <{from}>\n\
         To: {to}\n\
         Subject: msmtp persona {id}\n\
         Date: Tue, 04 Mar 2025 10:00:00 +0000\n\
         Message-ID: <{id}@client.example.test>\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=UTF-8\n\
         Content-Transfer-Encoding: 8bit\n\
         \n\
         Grüße from the msmtp persona.\n\
         .a line starting with a dot\n\
         \n\
         -- \n\
         sig\n"
    )
}

/// `~/.msmtprc` as msmtp users have it: TLS with a trust file, AUTH with a literal
/// password, an account inheriting another, the default account.
fn msmtprc(pf: &Postfix) -> String {
    format!(
        "# written by tests/cases/msmtp.rs\n\
         defaults\n\
         tls on\n\
         tls_trust_file {ca}\n\
         auth on\n\
         timeout 30\n\
         \n\
         account work\n\
         host 127.0.0.1\n\
         port {port}\n\
         user {user}\n\
         password {password}\n\
         from msmtp-work@example.test\n\
         domain work-client.example.test\n\
         \n\
         account home : work\n\
         from msmtp-home@example.test\n\
         domain home-client.example.test\n\
         \n\
         account default : work\n",
        ca = pki().ca_pem.display(),
        port = pf.submission_port,
        user = pf.user,
        password = pf.password,
    )
}

/// An installation with `~/.msmtprc` written.
fn installed(pf: &Postfix) -> Install {
    let inst = Install::new();
    inst.write("home/.msmtprc", &msmtprc(pf), 0o600);
    inst
}

fn msmtp(inst: &Install, args: &[&str]) -> std::process::Command {
    let mut cmd = inst.command("msmtp");
    cmd.args(args);
    cmd
}

/// mutt: `set sendmail="msmtp -a home"` runs `msmtp -a home -- RCPT`. The account's from is
/// the envelope sender; the message arrives unchanged, over TLS with AUTH.
#[test]
fn msmtp_mutt_account_sends_the_message_unchanged() {
    let Some(pf) = Postfix::get() else { return };
    let inst = installed(pf);
    let rcpt = "ms-mutt@example.test";
    let message = complete_message("alice@example.test", rcpt, "mutt");
    run(
        msmtp(&inst, &["-a", "home", "--", rcpt]),
        Some(message.as_bytes()),
    )
    .assert_quiet_success("msmtp -a home");
    let d = Delivered::get(pf, rcpt);
    assert_eq!(d.text(), message, "the message must arrive byte for byte");
    assert_eq!(d.envelope_sender(pf), "msmtp-home@example.test");
    assert_eq!(d.helo(), "home-client.example.test", "{:?}", d.received);
    assert!(
        d.received[0].contains("with ESMTPSA"),
        "not TLS + AUTH: {:?}",
        d.received
    );
}

/// neomutt: `msmtp --read-envelope-from -t`: the From: address is the envelope sender
/// and picks the account whose from matches; recipients come from To/Cc/Bcc and Bcc is
/// removed from what arrives.
#[test]
fn msmtp_read_envelope_from_picks_the_account_and_reads_recipients() {
    let Some(pf) = Postfix::get() else { return };
    let inst = installed(pf);
    let (to, bcc) = ("ms-ref-to@example.test", "ms-ref-bcc@example.test");
    let complete = complete_message("msmtp-home@example.test", to, "ref");
    let (head, body) = complete.split_once("\n\n").expect("a header block");
    let with_bcc = format!("{head}\nBcc: {bcc}\n\n{body}");
    run(
        msmtp(&inst, &["--read-envelope-from", "-t"]),
        Some(with_bcc.as_bytes()),
    )
    .assert_quiet_success("msmtp --read-envelope-from -t");
    for rcpt in [to, bcc] {
        let d = Delivered::get(pf, rcpt);
        assert_eq!(d.text(), complete, "{rcpt}: unchanged but for the Bcc line");
        assert_eq!(d.envelope_sender(pf), "msmtp-home@example.test", "{rcpt}");
        assert_eq!(d.helo(), "home-client.example.test", "{rcpt}: account home");
    }
}

/// git send-email with `sendemail.smtpServer = /usr/bin/msmtp`: `msmtp -i -f SENDER
/// RCPT...`. -f is the envelope sender; no account's from matches, so the default one
/// (work) is used. Also `--host`: the command line alone, no configuration data (no TLS,
/// no AUTH: the plain port takes mail for example.test without).
#[test]
fn msmtp_git_send_email_and_host_without_the_file() {
    let Some(pf) = Postfix::get() else { return };
    let inst = installed(pf);
    let (r1, r2) = ("ms-git-1@example.test", "ms-git-2@example.test");
    let sender = "dev@example.test";
    let message = complete_message(sender, &format!("{r1}, {r2}"), "git");
    run(
        msmtp(&inst, &["-i", "-f", sender, r1, r2]),
        Some(message.as_bytes()),
    )
    .assert_quiet_success("git send-email");
    for rcpt in [r1, r2] {
        let d = Delivered::get(pf, rcpt);
        assert_eq!(d.text(), message, "{rcpt}");
        assert_eq!(d.envelope_sender(pf), sender, "{rcpt}");
        assert_eq!(
            d.helo(),
            "work-client.example.test",
            "{rcpt}: default account"
        );
    }

    let rcpt = "ms-host@example.test";
    let message = complete_message(sender, rcpt, "host");
    let port = pf.plain_port.to_string();
    let args = [
        "--host=127.0.0.1",
        "--port",
        &port,
        "--domain=cli.example.test",
        "-f",
        sender,
        rcpt,
    ];
    run(msmtp(&inst, &args), Some(message.as_bytes())).assert_quiet_success("--host");
    let d = Delivered::get(pf, rcpt);
    assert_eq!(d.text(), message);
    assert_eq!(d.helo(), "cli.example.test");
    assert!(
        d.received[0].contains("with ESMTP ") || d.received[0].contains("with ESMTP;"),
        "--host must not take TLS or AUTH from the file: {:?}",
        d.received
    );
}

/// msmtpq (msmtp-queue) flushes with `msmtp -C FILE -a ACCOUNT -- RCPT...`, the message on
/// stdin; here the file is not ~/.msmtprc (HOME has none).
#[test]
fn msmtp_msmtpq_file_and_account() {
    let Some(pf) = Postfix::get() else { return };
    let inst = Install::new();
    let rc = inst.write("queue/msmtprc", &msmtprc(pf), 0o600);
    let rc = rc.to_str().expect("UTF-8 path");
    let (r1, r2) = ("ms-q-1@example.test", "ms-q-2@example.test");
    let message = complete_message("msmtp-work@example.test", r1, "msmtpq");
    run(
        msmtp(&inst, &["-C", rc, "-a", "work", "--", r1, r2]),
        Some(message.as_bytes()),
    )
    .assert_quiet_success("msmtpq");
    for rcpt in [r1, r2] {
        let d = Delivered::get(pf, rcpt);
        assert_eq!(d.text(), message, "{rcpt}");
        assert_eq!(d.envelope_sender(pf), "msmtp-work@example.test", "{rcpt}");
    }
}

/// Exit codes: a refused recipient is 67 with one line naming it and the reply; a 4xx is
/// 75 (msmtp says 69); nothing is delivered to anyone else in the same run.
#[test]
fn msmtp_exit_codes_for_refused_recipients() {
    let Some(pf) = Postfix::get() else { return };
    let inst = installed(pf);
    let message = b"Subject: refused\n\nnobody gets this\n";
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
        let out = run(msmtp(&inst, &["-a", "work", "--", rcpt]), Some(message));
        out.assert_code(code, rcpt);
        out.assert_one_error_line("msmtp:", texts, rcpt);
    }
}

/// `msmtp --serverinfo` (and `-S`): exit 0 and the server's capabilities on stdout,
/// inside TLS (the account's STARTTLS); nothing is sent.
#[test]
fn msmtp_serverinfo_reports_capabilities() {
    let Some(pf) = Postfix::get() else { return };
    let inst = installed(pf);
    for args in [&["--serverinfo"][..], &["-a", "home", "-S"]] {
        let out = run(msmtp(&inst, args), None);
        out.assert_code(0, &format!("{args:?}"));
        for text in ["STARTTLS", "PLAIN", "PIPELINING", "TLS"] {
            assert!(
                out.stdout.contains(text),
                "{args:?}: no {text} in the report: {}",
                out.describe()
            );
        }
        assert!(!out.stdout.contains(&pf.password), "{}", out.describe());
    }
}

/// `msmtp -P` prints the settings that would be used, password never; the command line's
/// settings are in them. No server is needed.
#[test]
fn msmtp_pretend_prints_the_config_without_the_password() {
    let inst = Install::new();
    let password = "s3cret-not-to-print";
    inst.write(
        "home/.msmtprc",
        &format!(
            "defaults\ntls on\nauth on\n\
             account work\nhost smtp.work.example\nport 587\nuser me@work.example\n\
             password {password}\nfrom me@work.example\n\
             account default : work\n"
        ),
        0o600,
    );
    let out = run(msmtp(&inst, &["-P"]), None);
    out.assert_code(0, "-P");
    for text in [
        "server         smtp.work.example:587\n",
        "tls            starttls (required)\n",
        "user           me@work.example\n",
        "password       (from the configuration file)\n",
        "from           me@work.example\n",
        // msmtp's behaviour when a recipient is refused.
        "all_or_nothing on (a refused recipient means the message goes to nobody)\n",
    ] {
        assert!(
            out.stdout.contains(text),
            "-P lacks {text:?}: {}",
            out.describe()
        );
    }
    assert!(!out.stdout.contains(password) && !out.stderr.contains(password));

    let args = [
        "--pretend",
        "--tls-starttls=off",
        "--port=465",
        "--passwordeval=pass show mail",
        "--domain=laptop.example",
    ];
    let out = run(msmtp(&inst, &args), None);
    out.assert_code(0, "--pretend with settings");
    for text in [
        "server         smtp.work.example:465\n",
        "tls            implicit\n",
        "password       (from command \"pass show mail\")\n",
        "helo           laptop.example\n",
    ] {
        assert!(
            out.stdout.contains(text),
            "lacks {text:?}: {}",
            out.describe()
        );
    }
    assert!(!out.stdout.contains(password));
}

/// msmtp's `--host`: "use this SMTP server with settings from the command line; do not
/// use any configuration file data". No file is read at all: a ~/.msmtprc that does not
/// even parse, or a `-C` file that does not exist, changes nothing; `-P` shows no file and
/// none of its settings (TLS off and port 25 are msmtp's defaults for --host).
#[test]
fn msmtp_host_reads_no_configuration_file() {
    use crate::support::fake_server::{data, ehlo, envelope, greeting, quit, FakeServer};
    let inst = Install::new();
    // Broken (an unknown command): read, it would stop the run with 78.
    inst.write(
        "home/.msmtprc",
        "defaults\ntls on\nauth on\nuser file-user\npassword file-secret\n\
         from file@example.test\nno_such_command x\naccount default\nhost file.example.test\n",
        0o600,
    );
    let sender = "cli@example.test";
    let rcpt = "host@example.test";
    let message = complete_message(sender, rcpt, "host-no-file");
    for extra in [&[][..], &["-C", "/nonexistent/msmtprc"]] {
        let server = FakeServer::start(
            [
                vec![greeting()],
                ehlo(&[]),
                envelope(sender, &[rcpt]),
                data("250 2.0.0 Ok: queued as H1\r\n"),
                quit(),
            ]
            .concat(),
        );
        let port = server.addr().rsplit_once(':').map(|(_, p)| p.to_string());
        let port = port.unwrap_or_default();
        let mut cmd = msmtp(&inst, extra);
        cmd.args(["--host=127.0.0.1", "--port", &port, "-f", sender, rcpt]);
        let out = run(cmd, Some(message.as_bytes()));
        let session = server.finish_with(&out.describe());
        out.assert_quiet_success(&format!("--host {extra:?}"));
        assert_eq!(session.data.len(), 1);
    }

    let out = run(msmtp(&inst, &["-P", "--host=mail.example.test"]), None);
    out.assert_code(0, "-P --host");
    let expected = [
        "config file    (none)",
        "account        (chosen automatically)",
        "server         mail.example.test:25",
        "protocol       smtp",
        "tls            none",
        "tls_ca         (none)",
        "tls_verify     on",
        "user           (none)",
        "password       (none)",
        "auth           automatic",
        "plaintext_auth refused (AUTH only inside TLS)",
        "from           (none)",
        "helo           postie.test",
        "resolver       system",
        "domain         (none)",
        "aliases        (none)",
        "timeout        RFC 5321 defaults",
        "all_or_nothing on (a refused recipient means the message goes to nobody)",
        "dkim           (none)",
        "queue          off",
        "queue_dir      /nonexistent/postie-test-queue",
        "queue_max_age  5d",
        "log            (none)",
    ]
    .map(|l| format!("{l}\n"))
    .concat();
    assert_eq!(out.stdout, expected, "{}", out.describe());
}

/// Unknown options (and ones postie cannot honour) are EX_USAGE with one line naming the
/// option; nothing is read or sent. No server is needed.
#[test]
fn msmtp_unknown_and_refused_options_exit_64() {
    let inst = Install::new();
    let cases: [(&[&str], &str); 4] = [
        (&["--no-such-option", "a@example.test"], "--no-such-option"),
        (&["-Z", "a@example.test"], "-Z"),
        (
            &["--tls-cert-file=c.pem", "a@example.test"],
            "--tls-cert-file",
        ),
        (&["--host=h", "-a", "work", "a@example.test"], "--host"),
    ];
    for (args, name) in cases {
        let out = run(msmtp(&inst, args), Some(b"Subject: x\n\nx\n"));
        out.assert_code(64, name);
        out.assert_one_error_line("msmtp:", &[name], name);
    }
}

/// AUTH without TLS, as msmtp decides it: `auth on` (postie chooses the method) refuses to
/// send the password in clear text, exit 69 with the one line saying how to allow it and
/// nothing but EHLO and QUIT on the wire; `auth plain` named explicitly in the msmtprc, or
/// `--auth=plain` on the command line, is msmtp's permission and AUTH PLAIN goes as it is
/// (a local bridge, a LAN relay).
#[test]
fn msmtp_sends_auth_without_tls_only_for_a_method_named_explicitly() {
    use crate::support::fake_server::{
        data, ehlo, envelope, expect, greeting, quit, send, FakeServer,
    };
    let sender = "bridge@example.test";
    let rcpt = "plain@example.test";
    let message = complete_message(sender, rcpt, "plain-auth");
    // base64("\0bridge\0s3cret")
    let auth_plain = "AUTH PLAIN AGJyaWRnZQBzM2NyZXQ=";
    let rc = |port: &str, auth: &str| {
        format!(
            "account default\nhost 127.0.0.1\nport {port}\ntls off\nauth {auth}\n\
             user bridge\npassword s3cret\nfrom {sender}\n"
        )
    };
    let port_of = |server: &FakeServer| {
        server
            .addr()
            .rsplit_once(':')
            .map(|(_, p)| p.to_string())
            .unwrap_or_default()
    };
    let accepted = || {
        [
            vec![greeting()],
            ehlo(&["AUTH PLAIN LOGIN"]),
            vec![
                expect(auth_plain),
                send("235 2.7.0 Authentication successful\r\n"),
            ],
            envelope(sender, &[rcpt]),
            data("250 2.0.0 Ok: queued as P1\r\n"),
            quit(),
        ]
        .concat()
    };

    // `auth plain` in the file.
    let inst = Install::new();
    let server = FakeServer::start(accepted());
    inst.write("home/.msmtprc", &rc(&port_of(&server), "plain"), 0o600);
    let out = run(msmtp(&inst, &[rcpt]), Some(message.as_bytes()));
    server.finish_with(&out.describe());
    out.assert_quiet_success("auth plain in the msmtprc");

    // `auth on` in the file, `--auth=plain` on the command line.
    let inst = Install::new();
    let server = FakeServer::start(accepted());
    inst.write("home/.msmtprc", &rc(&port_of(&server), "on"), 0o600);
    let out = run(
        msmtp(&inst, &["--auth=plain", rcpt]),
        Some(message.as_bytes()),
    );
    server.finish_with(&out.describe());
    out.assert_quiet_success("--auth=plain");

    // `auth on`: refused before AUTH.
    let inst = Install::new();
    let server =
        FakeServer::start([vec![greeting()], ehlo(&["AUTH PLAIN LOGIN"]), quit()].concat());
    inst.write("home/.msmtprc", &rc(&port_of(&server), "on"), 0o600);
    let out = run(msmtp(&inst, &[rcpt]), Some(message.as_bytes()));
    server.finish_with(&out.describe());
    out.assert_code(69, "auth on without TLS");
    assert_eq!(
        out.stderr,
        "msmtp: refusing to send the password over a connection without TLS (use TLS; if you \
         must: --allow-plaintext-auth, allow_plaintext_auth = true in the account, or an \
         msmtprc's explicit `auth plain`)\n"
    );
}
