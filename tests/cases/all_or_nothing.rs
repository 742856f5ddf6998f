//! One of several recipients refused (issue 13): sendmail's behaviour — deliver to the
//! others, exit 67 (75 when the refusal was temporary) with a per-recipient report — for
//! postie, sendmail and mailx; msmtp's — send to nobody — for the msmtp persona, and for
//! postie with `--all-or-nothing` or `all_or_nothing = true`: RSET instead of DATA.
//!
//! Owns: the scripted-server dialogues (whole `-v` transcripts where the order matters)
//! and the exit codes and stderr lines of every persona in both behaviours.

use std::process::Command;
use std::time::Duration;

use crate::support::fake_server::{ehlo, expect, greeting, quit, send, FakeServer, Session, Step};
use crate::support::postie;
use crate::support::run::Outcome;

use super::sendmail::Install;

const FROM: &str = "sender@example.test";
const OK_RCPT: &str = "a@example.test";
const GONE: &str = "gone@example.test";
const RUN_LIMIT: Duration = Duration::from_secs(60);
const MESSAGE: &str = "From: sender@example.test\nTo: a@example.test\nSubject: two\n\nhello\n";

fn run(cmd: Command, stdin: Option<&[u8]>) -> Outcome {
    crate::support::run::run(cmd, stdin, RUN_LIMIT)
}

/// MAIL, RCPT for OK_RCPT (250) and GONE (`gone_reply`), one at a time.
fn envelope_one_refused(gone_reply: &'static str) -> Vec<Step> {
    vec![
        expect(format!("MAIL FROM:<{FROM}>")),
        send("250 2.1.0 sender ok\r\n"),
        expect(format!("RCPT TO:<{OK_RCPT}>")),
        send("250 2.1.5 recipient ok\r\n"),
        expect(format!("RCPT TO:<{GONE}>")),
        send(gone_reply),
    ]
}

/// Sendmail's way, without PIPELINING: the message goes to the one accepted.
fn partial_delivery() -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(&[]),
        envelope_one_refused("550 5.1.1 no such user\r\n"),
        vec![
            expect("DATA"),
            send("354 go ahead\r\n"),
            Step::ReadData,
            send("250 2.0.0 Ok: queued as P1\r\n"),
        ],
        quit(),
    ]
    .concat()
}

/// msmtp's way, without PIPELINING: RSET instead of DATA.
fn nothing_sent(gone_reply: &'static str) -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(&[]),
        envelope_one_refused(gone_reply),
        vec![expect("RSET"), send("250 2.0.0 Ok\r\n")],
        quit(),
    ]
    .concat()
}

const REFUSED_LINE: &str =
    "RCPT TO <gone@example.test> refused: 550 5.1.1 no such user (permanent negative completion)";
const PARTIAL_LINE: &str = "message accepted for 1 of 2 recipients: 250 2.0.0 Ok: queued as P1";
const WITHHELD_LINE: &str = "message sent to nobody (all or nothing): not to <a@example.test> \
                             either, accepted but withheld because a recipient was refused";

fn postie_to(server: &FakeServer, extra: &[&str]) -> Command {
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--tls",
        "none",
        "--timeout",
        "10",
    ])
    .args(["-f", FROM, "--message", "-"])
    .args(extra)
    .args([OK_RCPT, GONE]);
    cmd
}

fn assert_no_data(session: &Session) {
    assert!(session.data.is_empty(), "no message may be sent");
    assert!(
        !session.received.iter().any(|l| l == "DATA"),
        "{:?}",
        session.received
    );
}

#[test]
fn by_default_postie_delivers_to_the_accepted_and_exits_67() {
    let server = FakeServer::start(partial_delivery());
    let out = run(postie_to(&server, &[]), Some(MESSAGE.as_bytes()));
    let session = server.finish_with(&out.stderr);
    out.assert_code(67, "one of two refused");
    assert_eq!(
        out.stderr,
        format!("postie: {REFUSED_LINE}\npostie: {PARTIAL_LINE}\n")
    );
    assert_eq!(session.data.len(), 1);
}

#[test]
fn all_or_nothing_pipelined_holds_data_back_and_resets_on_a_refusal() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING", "CHUNKING"]),
        vec![
            // No DATA and no BDAT in the group: the RCPT replies decide first.
            Step::ExpectPipelined(vec![
                format!("MAIL FROM:<{FROM}>"),
                format!("RCPT TO:<{OK_RCPT}>"),
                format!("RCPT TO:<{GONE}>"),
            ]),
            send("250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n550 5.1.1 no such user\r\n"),
            expect("RSET"),
            send("250 2.0.0 Ok\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let addr = server.addr();
    let out = run(
        postie_to(&server, &["--all-or-nothing", "-v"]),
        Some(MESSAGE.as_bytes()),
    );
    let session = server.finish_with(&out.stderr);
    out.assert_code(67, "all or nothing, one refused");
    let expected: String = [
        format!("=== Trying {addr}..."),
        format!("=== Connected to {addr}"),
        "<-  220 fake.test ESMTP postie-fake   [2xx positive completion]".into(),
        " -> EHLO postie.test".into(),
        "<-  250-fake.test greets postie.test".into(),
        "<-  250-PIPELINING".into(),
        "<-  250 CHUNKING   [2xx positive completion]".into(),
        format!(" -> MAIL FROM:<{FROM}>"),
        format!(" -> RCPT TO:<{OK_RCPT}>"),
        format!(" -> RCPT TO:<{GONE}>"),
        "<-  250 2.1.0 sender ok   [2xx positive completion; 2.1.0 other address status]".into(),
        "<-  250 2.1.5 recipient ok   [2xx positive completion; 2.1.5 destination address valid]"
            .into(),
        "<-  550 5.1.1 no such user   [5xx permanent negative completion; 5.1.1 bad destination mailbox address]".into(),
        "=== all or nothing: a recipient was refused, so the message goes to nobody (RSET)".into(),
        " -> RSET".into(),
        "<-  250 2.0.0 Ok   [2xx positive completion; 2.0.0 other undefined status]".into(),
        " -> QUIT".into(),
        "<-  221 2.0.0 fake.test closing   [2xx positive completion; 2.0.0 other undefined status]"
            .into(),
        format!("postie: {REFUSED_LINE}"),
        format!("postie: {WITHHELD_LINE}"),
    ]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect();
    assert_eq!(out.stderr, expected);
    assert_no_data(&session);
}

#[test]
fn all_or_nothing_with_every_recipient_accepted_sends_once_all_replies_are_in() {
    let script = [
        vec![greeting()],
        ehlo(&["PIPELINING"]),
        vec![
            Step::ExpectPipelined(vec![
                format!("MAIL FROM:<{FROM}>"),
                format!("RCPT TO:<{OK_RCPT}>"),
                format!("RCPT TO:<{GONE}>"),
            ]),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"),
            expect("DATA"),
            send("354 go ahead\r\n"),
            Step::ReadData,
            send("250 2.0.0 Ok: queued as A1\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let out = run(
        postie_to(&server, &["--all-or-nothing"]),
        Some(MESSAGE.as_bytes()),
    );
    let session = server.finish_with(&out.stderr);
    out.assert_quiet_success("all accepted");
    assert_eq!(session.data.len(), 1);
}

#[test]
fn all_or_nothing_from_the_config_file_and_a_temporary_refusal_exits_75() {
    let inst = Install::new();
    let server = FakeServer::start(nothing_sent("450 4.2.0 try later\r\n"));
    let port = server
        .addr()
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .unwrap_or_default();
    let config = inst.write(
        "home/postie.toml",
        &format!(
            "[defaults]\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
             all_or_nothing = true\n"
        ),
        0o644,
    );
    let mut cmd = postie();
    cmd.arg("--config")
        .arg(&config)
        .args(["-f", FROM, "--message", "-", OK_RCPT, GONE]);
    let out = run(cmd, Some(MESSAGE.as_bytes()));
    let session = server.finish_with(&out.stderr);
    out.assert_code(75, "all or nothing, a 4xx");
    assert_eq!(
        out.stderr,
        format!(
            "postie: RCPT TO <gone@example.test> refused: 450 4.2.0 try later (transient \
             negative completion)\npostie: {WITHHELD_LINE}\n"
        )
    );
    assert_no_data(&session);
}

/// A config file for the personas: the fake server, plain text, no AUTH.
fn persona_config(inst: &Install, server: &FakeServer) {
    let port = server
        .addr()
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .unwrap_or_default();
    inst.write(
        "etc/postie.toml",
        &format!(
            "[defaults]\nserver = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"{FROM}\"\n"
        ),
        0o644,
    );
}

#[test]
fn the_sendmail_persona_delivers_to_the_accepted_and_exits_67() {
    let inst = Install::new();
    let server = FakeServer::start(partial_delivery());
    persona_config(&inst, &server);
    let mut cmd = inst.command("sendmail");
    cmd.args(["-i", OK_RCPT, GONE]);
    let out = run(cmd, Some(MESSAGE.as_bytes()));
    let session = server.finish_with(&out.stderr);
    out.assert_code(67, "sendmail, one of two refused");
    assert_eq!(
        out.stderr,
        format!("sendmail: {REFUSED_LINE}\nsendmail: {PARTIAL_LINE}\n")
    );
    assert_eq!(session.data.len(), 1);
}

#[test]
fn the_mailx_persona_delivers_to_the_accepted_and_exits_67() {
    let inst = Install::new();
    let server = FakeServer::start(partial_delivery());
    persona_config(&inst, &server);
    let mut cmd = inst.command("mail");
    cmd.args(["-s", "two", OK_RCPT, GONE]);
    let out = run(cmd, Some(b"hello\n"));
    let session = server.finish_with(&out.stderr);
    out.assert_code(67, "mail, one of two refused");
    assert_eq!(
        out.stderr,
        format!("mail: {REFUSED_LINE}\nmail: {PARTIAL_LINE}\n")
    );
    assert_eq!(session.data.len(), 1);
}

#[test]
fn the_msmtp_persona_sends_nothing_when_a_recipient_is_refused() {
    let inst = Install::new();
    let server = FakeServer::start(nothing_sent("550 5.1.1 no such user\r\n"));
    let port = server
        .addr()
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .unwrap_or_default();
    let mut cmd = inst.command("msmtp");
    cmd.args(["--host=127.0.0.1", &format!("--port={port}")])
        .args([&format!("--from={FROM}"), OK_RCPT, GONE]);
    let out = run(cmd, Some(MESSAGE.as_bytes()));
    let session = server.finish_with(&out.stderr);
    out.assert_code(67, "msmtp, one of two refused");
    assert_eq!(
        out.stderr,
        format!("msmtp: {REFUSED_LINE}\nmsmtp: {WITHHELD_LINE}\n")
    );
    assert_no_data(&session);
}
