//! `--log FILE`: one key=value line per message, for successes and failures, never a secret.

use crate::support::fake_server::{data, ehlo, envelope, expect, greeting, quit, send, FakeServer};
use crate::support::postie;

fn run_logged(server: &FakeServer, log: &std::path::Path, extra: &[&str]) -> std::process::Output {
    postie()
        .args([
            "--server",
            &server.addr(),
            "--tls",
            "none",
            "--timeout",
            "10",
        ])
        .args(["-f", "a@example.test", "--body", "hi", "--log"])
        .arg(log)
        .args(extra)
        .env("POSTIE_PASSWORD", "Sekr1t-log")
        .output()
        .unwrap()
}

#[test]
fn log_line_for_an_accepted_message() {
    let mut script = vec![greeting()];
    script.extend(ehlo(&["8BITMIME"]));
    script.extend(envelope("a@example.test", &["b@example.test"]));
    script.extend(data("250 2.0.0 Ok: queued as 4F3A\r\n"));
    script.extend(quit());
    let server = FakeServer::start(script);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("postie.log");
    let out = run_logged(&server, &log, &["b@example.test"]);
    server.finish();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let l = lines[0];
    assert!(l.starts_with("time=\""), "{l}");
    for want in [
        "host=127.0.0.1",
        "tls=none",
        "auth=off",
        "from=a@example.test",
        "recipients=b@example.test",
        "smtpstatus=250",
        "smtpmsg=\"250 2.0.0 Ok: queued as 4F3A\"",
        "exitcode=EX_OK",
    ] {
        assert!(l.contains(want), "{want} missing in {l}");
    }
    assert!(!l.contains("Sekr1t"), "{l}");
}

#[test]
fn log_line_for_a_refused_sender_appends_and_names_the_error() {
    let mut script = vec![greeting()];
    script.extend(ehlo(&[]));
    script.push(expect("MAIL FROM:<a@example.test>"));
    script.push(send("553 5.7.1 sender rejected\r\n"));
    script.extend(quit());
    let server = FakeServer::start(script);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("postie.log");
    std::fs::write(&log, "earlier line\n").unwrap();
    let out = run_logged(&server, &log, &["b@example.test"]);
    server.finish();
    assert_eq!(out.status.code(), Some(65), "{out:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "earlier line");
    let l = lines[1];
    for want in [
        "smtpstatus=553",
        "errormsg=\"MAIL FROM <a@example.test> refused: 553 5.7.1 sender rejected",
        "exitcode=EX_DATAERR",
    ] {
        assert!(l.contains(want), "{want} missing in {l}");
    }
}

#[test]
fn syslog_gets_the_same_line_with_facility_mail() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut script = vec![greeting()];
    script.extend(ehlo(&[]));
    script.extend(envelope("a@example.test", &["b@example.test"]));
    script.extend(data("250 2.0.0 Ok: queued as 77\r\n"));
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = postie()
        .args([
            "--server",
            &server.addr(),
            "--tls",
            "none",
            "--timeout",
            "10",
        ])
        .args([
            "-f",
            "a@example.test",
            "--body",
            "hi",
            "--syslog",
            "b@example.test",
        ])
        .env("POSTIE_SYSLOG_SOCKET", &sock_path)
        .output()
        .unwrap();
    server.finish();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a syslog datagram");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("<22>postie["), "{text}");
    assert!(text.contains("exitcode=EX_OK"), "{text}");
    assert!(
        text.contains("smtpmsg=\"250 2.0.0 Ok: queued as 77\""),
        "{text}"
    );
}
