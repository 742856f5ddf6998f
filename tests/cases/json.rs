//! `--json` end to end: the built postie against the scripted fake SMTP server, for a
//! success, a 550 and a 451 at RCPT, a refused AUTH (535), a certificate from an untrusted
//! CA, and failures before any SMTP (refused connection, bad command line, no server).
//! Every run's stdout must be exactly one JSON object that validates against
//! `schema/postie-result.schema.json` (draft 2020-12, with the `jsonschema` crate), whose
//! exit code is the process's, and which never contains the password.
//!
//! Owns: the `--json` contract as a user sees it. Must not: touch the network beyond
//! 127.0.0.1, put the password on argv (it goes in `POSTIE_PASSWORD`), or wait without
//! bound (every run is killed after [`RUN_LIMIT`]; postie gets `--timeout 10`).

use std::net::TcpListener;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::support::certs::{other_ca_pem, pki};
use crate::support::dns_server::Zone;
use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, quit, send, starttls, FakeServer, Step,
};
use crate::support::postie;

const FROM: &str = "sender@example.test";
const TO: &str = "rcpt@example.test";
const USER: &str = "user";
const PASSWORD: &str = "s3cr3t-Pa55";
/// base64("\0user\0s3cr3t-Pa55"), the AUTH PLAIN response, and base64 of the password.
const PLAIN_B64: &str = "AHVzZXIAczNjcjN0LVBhNTU=";
const PASS_B64: &str = "czNjcjN0LVBhNTU=";
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// One finished run of postie, with its stdout parsed as the JSON result.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    json: Value,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn schema_validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schema/postie-result.schema.json"
        );
        let text = std::fs::read_to_string(path).expect("read the schema");
        let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the schema compiles")
    })
}

/// Run postie (killed after `RUN_LIMIT`), then check what every `--json` run must give:
/// one line on stdout, one object valid against the schema, the process's exit code in it,
/// and no trace of the password.
#[track_caller]
fn run(cmd: Command) -> Run {
    let out = crate::support::run::run(cmd, None, RUN_LIMIT);
    let code = out.code.expect("postie exited normally");
    let json = match serde_json::from_str::<Value>(&out.stdout) {
        Ok(v) => v,
        Err(e) => panic!("stdout is not one JSON value: {e}\n{}", out.describe()),
    };
    let run = Run {
        code,
        stdout: out.stdout,
        stderr: out.stderr,
        json,
    };
    assert_eq!(run.stdout.lines().count(), 1, "one line on stdout\n{run}");
    assert!(run.stdout.ends_with('\n'), "{run}");
    let errors: Vec<String> = schema_validator()
        .iter_errors(&run.json)
        .map(|e| format!("{e} (at {})", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}\n{run}");
    assert_eq!(run.json["exit"]["code"], run.code, "{run}");
    for secret in [PASSWORD, PLAIN_B64, PASS_B64] {
        assert!(!run.stdout.contains(secret), "{secret} in stdout\n{run}");
    }
    run
}

/// postie with `--json`, pointed at `addr`, a 10 s timeout for every phase.
fn postie_json(addr: &str) -> Command {
    let mut cmd = postie();
    cmd.args(["--json", "--server", addr, "--timeout", "10"]);
    cmd
}

/// A composed message from `FROM` to `rcpts`, with `extra` arguments.
fn send_to(server: &FakeServer, extra: &[&str], rcpts: &[&str]) -> Command {
    let mut cmd = postie_json(&server.addr());
    cmd.args(["-f", FROM, "-s", "json test", "--body", "Hello"])
        .args(extra)
        .args(rcpts);
    cmd
}

/// [`send_to`] `TO` as `USER`, with the password in the environment.
fn auth_send(server: &FakeServer, extra: &[&str]) -> Command {
    let mut cmd = send_to(server, &[&["--user", USER], extra].concat(), &[TO]);
    cmd.env("POSTIE_PASSWORD", PASSWORD);
    cmd
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn starttls_prelude(exts: &[&str]) -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(&["STARTTLS", "ENHANCEDSTATUSCODES"]),
        starttls(Step::StartTls),
        ehlo(exts),
    ]
    .concat()
}

/// Hex digits of a fingerprint, whatever the separators and case.
fn hex_only(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// SHA-256 of the test server's certificate, lower-case hex.
fn leaf_sha256() -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, &pki().cert_der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The phases that have a timing, in the order printed (serde_json's `Value` sorts keys,
/// so they are read from the text).
fn timed_phases(run: &Run) -> Vec<String> {
    let keys = run.json["timings"]["phases"]
        .as_object()
        .expect("phases object");
    let start = run.stdout.find("\"phases\":{").expect("phases in stdout");
    let mut names: Vec<(usize, String)> = keys
        .keys()
        .map(|k| {
            let at = run.stdout[start..]
                .find(&format!("\"{k}\":"))
                .expect("key in stdout");
            (at, k.clone())
        })
        .collect();
    names.sort();
    names.into_iter().map(|(_, k)| k).collect()
}

#[test]
fn json_success_over_starttls_with_auth() {
    let script = [
        starttls_prelude(&["AUTH PLAIN LOGIN"]),
        vec![
            expect(format!("AUTH PLAIN {PLAIN_B64}")),
            send("235 2.7.0 Authentication successful\r\n"),
        ],
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as 4F3AB12\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let port = server.port;
    let run = run(auth_send(&server, &["--tls-ca", path(&pki().ca_pem), "-v"]));
    server.finish_with(&run.to_string());
    let j = &run.json;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(j["exit"]["name"], "EX_OK");
    assert_eq!(j["error"], Value::Null);
    assert_eq!(j["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        j["route"],
        serde_json::json!({"host": "127.0.0.1", "address": "127.0.0.1",
                           "port": port, "protocol": "smtp+starttls"})
    );
    assert_eq!(
        j["attempts"],
        serde_json::json!([{"address": "127.0.0.1", "port": port, "error": null}])
    );
    assert_eq!(j["tls"]["established"], true, "{run}");
    assert_eq!(j["tls"]["verified"], true, "{run}");
    assert!(
        j["tls"]["version"].as_str().unwrap().starts_with("TLSv1."),
        "{run}"
    );
    let cert = &j["tls"]["certificate"];
    assert_eq!(
        hex_only(cert["sha256"].as_str().unwrap_or("")),
        leaf_sha256(),
        "{run}"
    );
    for name in ["DNS:localhost", "IP:127.0.0.1"] {
        assert!(
            cert["sans"]
                .as_array()
                .is_some_and(|s| s.iter().any(|n| n == name)),
            "{name}\n{run}"
        );
    }
    assert_eq!(
        j["auth"],
        serde_json::json!({"mechanism": "PLAIN", "user": USER})
    );
    assert_eq!(
        j["envelope"],
        serde_json::json!({"from": FROM, "recipients": [TO]})
    );
    assert_eq!(
        j["recipients"],
        serde_json::json!([{"address": TO, "status": "accepted", "code": 250,
                            "enhanced_code": "2.1.5", "text": "recipient ok"}])
    );
    assert_eq!(
        j["final_reply"],
        serde_json::json!({"code": 250, "enhanced_code": "2.0.0",
                           "text": "Ok: queued as 4F3AB12"})
    );
    assert_eq!(j["queue_id"], "4F3AB12");
    assert_eq!(
        timed_phases(&run),
        ["greeting", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "data_end", "quit"]
    );
    assert!(j["timings"]["total_ms"].as_f64().unwrap() > 0.0, "{run}");
    // The transcript is on stderr, the JSON alone on stdout.
    assert!(run.stderr.contains("=== Connected"), "{run}");
}

#[test]
fn json_550_at_rcpt_reports_each_recipient_and_the_queue_id() {
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
            expect("RCPT TO:<good@example.test>"),
            send("250 2.1.5 ok\r\n"),
            expect("RCPT TO:<bad@example.test>"),
            send("550 5.1.1 <bad@example.test>: user unknown\r\n"),
        ],
        data("250 2.0.0 Ok: queued as FAKE2\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(send_to(
        &server,
        &["--tls", "none"],
        &["good@example.test", "bad@example.test"],
    ));
    server.finish_with(&run.to_string());
    let j = &run.json;
    assert_eq!(run.code, 67, "{run}");
    assert_eq!(j["exit"]["name"], "EX_NOUSER");
    assert_eq!(j["route"]["protocol"], "smtp");
    assert_eq!(j["tls"], Value::Null);
    assert_eq!(j["auth"], Value::Null);
    assert_eq!(
        j["recipients"],
        serde_json::json!([
            {"address": "good@example.test", "status": "accepted", "code": 250,
             "enhanced_code": "2.1.5", "text": "ok"},
            {"address": "bad@example.test", "status": "permanent", "code": 550,
             "enhanced_code": "5.1.1", "text": "<bad@example.test>: user unknown"}
        ])
    );
    assert_eq!(j["queue_id"], "FAKE2");
    assert_eq!(j["final_reply"]["code"], 250);
    assert_eq!(j["error"]["phase"], "rcpt");
    let message = j["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("bad@example.test") && message.contains("550"),
        "{run}"
    );
    // The human line is still on stderr.
    assert!(
        run.stderr
            .contains("postie: RCPT TO <bad@example.test> refused"),
        "{run}"
    );
}

#[test]
fn json_all_or_nothing_marks_the_accepted_recipient_withheld() {
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
            expect("RCPT TO:<good@example.test>"),
            send("250 2.1.5 ok\r\n"),
            expect("RCPT TO:<bad@example.test>"),
            send("550 5.1.1 <bad@example.test>: user unknown\r\n"),
            expect("RSET"),
            send("250 2.0.0 ok\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(send_to(
        &server,
        &["--tls", "none", "--all-or-nothing"],
        &["good@example.test", "bad@example.test"],
    ));
    let session = server.finish_with(&run.to_string());
    assert!(session.data.is_empty(), "{run}");
    let j = &run.json;
    assert_eq!(run.code, 67, "{run}");
    assert_eq!(j["exit"]["name"], "EX_NOUSER");
    assert_eq!(
        j["recipients"],
        serde_json::json!([
            {"address": "good@example.test", "status": "withheld", "code": 250,
             "enhanced_code": "2.1.5", "text": "ok"},
            {"address": "bad@example.test", "status": "permanent", "code": 550,
             "enhanced_code": "5.1.1", "text": "<bad@example.test>: user unknown"}
        ])
    );
    assert_eq!(j["final_reply"], Value::Null);
    assert_eq!(j["queue_id"], Value::Null);
    assert_eq!(j["error"]["phase"], "rcpt");
}

#[test]
fn json_451_at_rcpt_is_transient_and_exit_75() {
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        vec![
            expect(format!("MAIL FROM:<{FROM}>")),
            send("250 2.1.0 ok\r\n"),
            expect(format!("RCPT TO:<{TO}>")),
            send("451 4.3.0 try again later\r\n"),
            Step::QuitOrClose,
        ],
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(send_to(&server, &["--tls", "none"], &[TO]));
    server.finish_with(&run.to_string());
    let j = &run.json;
    assert_eq!(run.code, 75, "{run}");
    assert_eq!(j["exit"]["name"], "EX_TEMPFAIL");
    assert_eq!(
        j["recipients"],
        serde_json::json!([{"address": TO, "status": "transient", "code": 451,
                            "enhanced_code": "4.3.0", "text": "try again later"}])
    );
    assert_eq!(j["final_reply"], Value::Null);
    assert_eq!(j["queue_id"], Value::Null);
    assert_eq!(j["error"]["phase"], "rcpt");
}

#[test]
fn json_auth_refused_535_names_the_mechanism_not_the_password() {
    let script = [
        vec![greeting()],
        ehlo(&["AUTH PLAIN LOGIN"]),
        vec![
            expect(format!("AUTH PLAIN {PLAIN_B64}")),
            send("535 5.7.8 Authentication credentials invalid\r\n"),
        ],
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(
        &server,
        &["--tls", "none", "--allow-plaintext-auth", "-vv"],
    ));
    server.finish_with(&run.to_string());
    let j = &run.json;
    assert_eq!(run.code, 77, "{run}");
    assert_eq!(j["exit"]["name"], "EX_NOPERM");
    assert_eq!(
        j["auth"],
        serde_json::json!({"mechanism": "PLAIN", "user": USER})
    );
    assert_eq!(j["error"]["phase"], "auth");
    assert_eq!(
        j["error"]["reply"],
        serde_json::json!({"code": 535, "enhanced_code": "5.7.8",
                           "text": "Authentication credentials invalid"})
    );
    assert_eq!(j["recipients"], serde_json::json!([]));
    assert_eq!(j["envelope"]["recipients"], serde_json::json!([TO]));
    assert!(!run.stderr.contains(PASSWORD), "{run}");
}

#[test]
fn json_untrusted_certificate_is_a_tls_handshake_failure() {
    let script = [
        vec![greeting()],
        ehlo(&["STARTTLS", "AUTH PLAIN LOGIN"]),
        starttls(Step::StartTlsRejected),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(&server, &["--tls-ca", path(other_ca_pem())]));
    server.finish_with(&run.to_string());
    let j = &run.json;
    assert_eq!(run.code, 69, "{run}");
    assert_eq!(j["exit"]["name"], "EX_UNAVAILABLE");
    assert_eq!(j["error"]["phase"], "tls_handshake", "{run}");
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("certificate"),
        "{run}"
    );
    // What was seen of the attempt: the certificate, not established, not verified.
    let tls = &j["tls"];
    assert_eq!(tls["established"], false, "{run}");
    assert_eq!(tls["verified"], false, "{run}");
    let sha = tls["certificate"]["sha256"].as_str().unwrap_or("");
    assert_eq!(hex_only(sha), leaf_sha256(), "{run}");
    // AUTH never started.
    assert_eq!(j["auth"], Value::Null);
    assert_eq!(j["route"]["address"], "127.0.0.1");
    assert_eq!(timed_phases(&run), ["greeting", "ehlo", "starttls"]);
}

/// A failure without a phase of its own is placed where the dialogue was, not at the QUIT
/// that politely follows it.
#[test]
fn json_starttls_not_offered_fails_after_ehlo_not_at_quit() {
    let script = [vec![greeting()], ehlo(&["AUTH PLAIN"]), quit()].concat();
    let server = FakeServer::start(script);
    let run = run(send_to(&server, &[], &[TO]));
    server.finish_with(&run.to_string());
    let j = &run.json;
    assert_eq!(run.code, 69, "{run}");
    assert_eq!(j["error"]["phase"], "ehlo", "{run}");
    assert_eq!(j["error"]["reply"], Value::Null);
    assert_eq!(j["tls"], Value::Null);
    assert_eq!(timed_phases(&run), ["greeting", "ehlo", "quit"]);
}

/// --quit-after rcpt: the recipients' answers and no message, a success when all accepted.
#[test]
fn json_quit_after_rcpt_reports_recipients_without_a_message() {
    let script = [
        vec![greeting()],
        ehlo(&["ENHANCEDSTATUSCODES"]),
        envelope(FROM, &[TO]),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let mut cmd = postie_json(&server.addr());
    cmd.args(["--tls", "none", "-f", FROM, "--quit-after", "rcpt", TO]);
    let run = run(cmd);
    server.finish_with(&run.to_string());
    let j = &run.json;
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(j["error"], Value::Null);
    assert_eq!(
        j["envelope"],
        serde_json::json!({"from": FROM, "recipients": [TO]})
    );
    assert_eq!(j["recipients"][0]["status"], "accepted", "{run}");
    assert_eq!(j["final_reply"], Value::Null);
    assert_eq!(j["queue_id"], Value::Null);
    assert_eq!(
        timed_phases(&run),
        ["greeting", "ehlo", "mail", "rcpt", "quit"]
    );
}

#[test]
fn json_refused_connection_lists_the_attempt() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cmd = postie_json(&format!("127.0.0.1:{port}"));
    cmd.args(["--tls", "none", "-f", FROM, "-s", "x", "--body", "x", TO]);
    let run = run(cmd);
    let j = &run.json;
    assert_eq!(run.code, 75, "{run}");
    assert_eq!(j["error"]["phase"], "connect");
    assert_eq!(j["route"]["address"], Value::Null);
    let attempts = j["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{run}");
    assert_eq!(attempts[0]["port"], port);
    assert!(attempts[0]["error"].is_string(), "{run}");
    assert_eq!(j["timings"]["phases"], serde_json::json!({}));
}

#[test]
fn json_dns_failures_are_placed_at_resolve() {
    // (how the test DNS server answers for the host, exit code, exit name)
    let table = [
        ("NXDOMAIN", 68, "EX_NOHOST"),
        ("SERVFAIL", 75, "EX_TEMPFAIL"),
    ];
    for (answer, code, name) in table {
        let zone = Zone::new();
        let dns = match answer {
            "NXDOMAIN" => zone.nxdomain("mail.example.test"),
            _ => zone.servfail("mail.example.test"),
        }
        .start();
        let resolver = dns.addr().to_string();
        let mut cmd = postie_json("mail.example.test:2525");
        cmd.args(["--resolver", &resolver, "--tls", "none"])
            .args(["-f", FROM, "-s", "x", "--body", "x", TO]);
        let run = run(cmd);
        let j = &run.json;
        assert_eq!(run.code, code, "{answer}\n{run}");
        assert_eq!(j["exit"]["name"], name);
        assert_eq!(j["error"]["phase"], "resolve", "{answer}\n{run}");
        assert_eq!(j["route"]["host"], "mail.example.test");
        assert_eq!(j["route"]["address"], Value::Null);
        assert_eq!(j["attempts"], serde_json::json!([]));
        assert_eq!(j["envelope"]["recipients"], serde_json::json!([TO]));
    }
}

#[test]
fn json_failures_before_connecting_still_print_the_object() {
    // (arguments, exit code, exit name)
    let table: [(&[&str], i32, &str); 3] = [
        // clap refuses the command line.
        (&["--json", "--no-such-flag", TO], 64, "EX_USAGE"),
        // An account asked for, but no configuration file anywhere. (No server anywhere is
        // no error: postie then delivers to the recipients' MX hosts, see tests/cases/mx.rs.)
        (
            &[
                "--json", "-A", "work", "-f", FROM, "-s", "x", "--body", "x", TO,
            ],
            78,
            "EX_CONFIG",
        ),
        // A CA file that does not exist.
        (
            &[
                "--json",
                "--server",
                "127.0.0.1:1",
                "--tls-ca",
                "/nonexistent/ca.pem",
                "-f",
                FROM,
                "-s",
                "x",
                "--body",
                "x",
                TO,
            ],
            66,
            "EX_NOINPUT",
        ),
    ];
    for (args, code, name) in table {
        let mut cmd = postie();
        cmd.args(args);
        let run = run(cmd);
        let j = &run.json;
        assert_eq!(run.code, code, "{args:?}\n{run}");
        assert_eq!(j["exit"]["name"], name, "{args:?}");
        assert_eq!(j["error"]["phase"], "setup", "{args:?}\n{run}");
        assert_eq!(j["attempts"], serde_json::json!([]), "{args:?}");
        assert_eq!(j["tls"], Value::Null);
        assert!(!run.stderr.is_empty(), "the error is also on stderr\n{run}");
    }
}

/// The password (and the AUTH payloads made from it) never reach stdout, however far the
/// run gets; `run` checks this for every case above too.
#[test]
fn json_never_contains_the_password() {
    let script = [
        vec![greeting()],
        ehlo(&["AUTH LOGIN"]),
        vec![
            expect("AUTH LOGIN"),
            send("334 VXNlcm5hbWU6\r\n"),
            expect("dXNlcg=="),
            send("334 UGFzc3dvcmQ6\r\n"),
            expect(PASS_B64),
            send("235 2.7.0 ok\r\n"),
        ],
        envelope(FROM, &[TO]),
        data("250 2.0.0 Ok: queued as S3CR3T0\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let run = run(auth_send(
        &server,
        &["--tls", "none", "--allow-plaintext-auth", "--auth", "LOGIN"],
    ));
    server.finish_with(&run.to_string());
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json["auth"]["mechanism"], "LOGIN");
    for secret in [PASSWORD, PASS_B64, "Pa55"] {
        assert!(!run.stdout.contains(secret), "{secret}\n{run}");
    }
}
