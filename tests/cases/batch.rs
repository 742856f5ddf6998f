//! `postie batch PATH...` / `postie --messages PATH...`: many messages over one connection,
//! against the scripted fake server (what the server saw: connections, greetings, MAIL
//! transactions, QUIT, the DATA payloads) and, when Postfix is installed, its smtp-sink.
//!
//! Owns: the batch inputs (.eml directory, mbox with mboxrd quoting, JSON lines), the
//! per-message report and summary, the exit code over all messages (design.md §2),
//! reconnecting after 421 / 452 / a refused connection, and checking every input before
//! anything is sent. Must not: touch anything but loopback, or wait unboundedly (every run
//! is killed after [`RUN_LIMIT`], postie gets `--timeout 10`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, pool_server, pooled_transcript, quit, send, FakeServer,
    Session, Step,
};
use crate::support::postie;
use crate::support::run::{run, Outcome};

const RUN_LIMIT: Duration = Duration::from_secs(60);
const OK: &str = "250 2.0.0 Ok: queued as ABC123\r\n";

/// `postie batch` pointed at `server`, plain text, with `args` (the PATHs among them).
fn batch(server: &str, args: &[&str]) -> Command {
    let mut cmd = postie();
    cmd.args([
        "batch",
        "--server",
        server,
        "--tls",
        "none",
        "--timeout",
        "10",
    ])
    .args(args);
    cmd
}

fn go(cmd: Command) -> Outcome {
    run(cmd, None, RUN_LIMIT)
}

/// What the server expects between two transactions on one connection when the first
/// was delivered or abandoned with RSET: nothing. The reply to the end of the data ended
/// the transaction, so no RSET is sent (RFC 5321 §4.1.1.5 needs one only for a
/// transaction still open).
fn between() -> Vec<Step> {
    Vec::new()
}

/// One whole transaction: MAIL, the RCPTs, DATA, the message, `OK`.
fn transaction(from: &str, rcpts: &[&str]) -> Vec<Step> {
    [envelope(from, rcpts), data(OK)].concat()
}

/// Greeting and EHLO without extensions, then `transactions` separated by [`between`],
/// and QUIT.
fn one_connection(transactions: Vec<Vec<Step>>) -> Vec<Step> {
    let mut script = vec![greeting()];
    script.extend(ehlo(&[]));
    for (i, t) in transactions.into_iter().enumerate() {
        if i > 0 {
            script.extend(between());
        }
        script.extend(t);
    }
    script.extend(quit());
    script
}

fn count(session: &Session, verb: &str) -> usize {
    session
        .received
        .iter()
        .filter(|l| l.len() >= verb.len() && l[..verb.len()].eq_ignore_ascii_case(verb))
        .count()
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A directory of `n` messages `m1.eml` ... each from FROM to `r<i>@y.example`.
fn eml_dir(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 1..=n {
        write(
            dir.path(),
            &format!("m{i}.eml"),
            &format!(
                "From: sender@x.example\nTo: r{i}@y.example\nSubject: number {i}\n\nbody {i}\n"
            ),
        );
    }
    dir
}

const FROM: &str = "sender@x.example";

#[test]
fn a_directory_of_eml_files_goes_over_one_connection_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    // Written out of order: the name decides.
    write(
        dir.path(),
        "b.eml",
        "From: sender@x.example\nTo: two@y.example\nBcc: hidden@y.example\nSubject: two\n\nsecond\n",
    );
    write(
        dir.path(),
        "a.eml",
        "From: sender@x.example\nTo: one@y.example\nSubject: one\n\nfirst\n",
    );
    write(
        dir.path(),
        "c.eml",
        "From: Other <other@x.example>\nTo: three@y.example\nSubject: three\n\nthird\n.\n",
    );
    write(dir.path(), "notes.txt", "not a message");
    let server = FakeServer::start(one_connection(vec![
        transaction(FROM, &["one@y.example"]),
        transaction(FROM, &["two@y.example", "hidden@y.example"]),
        transaction("other@x.example", &["three@y.example"]),
    ]));
    let out = go(batch(&server.addr(), &[s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_quiet_success("three messages");
    assert_eq!(seen.connections, 1);
    assert_eq!(count(&seen, "EHLO"), 1);
    assert_eq!(count(&seen, "MAIL FROM"), 3);
    assert_eq!(count(&seen, "QUIT"), 1);
    let bodies: Vec<String> = seen.data.iter().map(|d| text(d)).collect();
    assert!(bodies[0].contains("Subject: one\r\n") && bodies[0].contains("\r\nfirst\r\n"));
    assert!(bodies[1].contains("\r\nsecond\r\n"), "{}", bodies[1]);
    assert!(!bodies[1].contains("hidden"), "Bcc must go: {}", bodies[1]);
    // Dot-stuffed on the wire, as for any message.
    assert!(
        bodies[2].ends_with("\r\nthird\r\n..\r\n.\r\n"),
        "{:?}",
        bodies[2]
    );
}

#[test]
fn messages_flag_is_the_same_as_batch() {
    let dir = eml_dir(2);
    let server = FakeServer::start(one_connection(vec![
        transaction(FROM, &["r1@y.example"]),
        transaction(FROM, &["r2@y.example"]),
    ]));
    let mut cmd = postie();
    cmd.args([
        "--server",
        &server.addr(),
        "--tls",
        "none",
        "--timeout",
        "10",
    ])
    .args(["--messages", s(dir.path())]);
    let out = go(cmd);
    let seen = server.finish_with(&out.describe());
    out.assert_quiet_success("--messages");
    assert_eq!((seen.connections, seen.data.len()), (1, 2));
}

#[test]
fn an_mbox_is_split_and_from_quoting_undone() {
    let dir = tempfile::tempdir().unwrap();
    let mbox = write(
        dir.path(),
        "archive.mbox",
        "From sender@x.example Thu Jan  1 00:00:00 2026\n\
         From: sender@x.example\nTo: one@y.example\nSubject: one\n\n\
         >From the top, a quoted line\n>>From stays quoted once\nend one\n\n\
         From sender@x.example Thu Jan  1 00:00:01 2026\n\
         From: sender@x.example\nTo: two@y.example\nSubject: two\n\nend two\n",
    );
    let server = FakeServer::start(one_connection(vec![
        transaction(FROM, &["one@y.example"]),
        transaction(FROM, &["two@y.example"]),
    ]));
    let out = go(batch(&server.addr(), &[s(&mbox)]));
    let seen = server.finish_with(&out.describe());
    out.assert_quiet_success("mbox");
    let one = text(&seen.data[0]);
    assert!(
        one.ends_with(
            "\r\n\r\nFrom the top, a quoted line\r\n>From stays quoted once\r\nend one\r\n.\r\n"
        ),
        "{one:?}"
    );
    assert!(
        !one.starts_with("From "),
        "the From_ line is not sent: {one:?}"
    );
    let two = text(&seen.data[1]);
    assert!(two.ends_with("\r\n\r\nend two\r\n.\r\n"), "{two:?}");
}

#[test]
fn json_lines_with_string_and_array_recipients() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ready.eml",
        "From: ready@x.example\nTo: somebody@y.example\nSubject: ready\n\nas it is\n",
    );
    let list = write(
        dir.path(),
        "list.jsonl",
        concat!(
            r#"{"from":"j@x.example","to":"a@y.example","subject":"one","body":"first line"}"#,
            "\n\n",
            r#"{"to":["b@y.example","c@y.example"],"cc":"d@y.example","bcc":["e@y.example"],"subject":"two","body":"second"}"#,
            "\n",
            r#"{"to":"f@y.example","path":"ready.eml"}"#,
            "\n",
        ),
    );
    let server = FakeServer::start(one_connection(vec![
        transaction("j@x.example", &["a@y.example"]),
        transaction(
            "default@x.example",
            &["b@y.example", "c@y.example", "d@y.example", "e@y.example"],
        ),
        // -f is the envelope sender of a ready message too, as for `postie --message`.
        transaction("default@x.example", &["f@y.example"]),
    ]));
    let out = go(batch(
        &server.addr(),
        &["-f", "default@x.example", s(&list)],
    ));
    let seen = server.finish_with(&out.describe());
    out.assert_quiet_success("jsonl");
    let one = text(&seen.data[0]);
    assert!(one.contains("From: <j@x.example>\r\n"), "{one}");
    assert!(
        one.contains("Subject: one\r\n") && one.contains("first line"),
        "{one}"
    );
    let two = text(&seen.data[1]);
    assert!(two.contains("c@y.example") && two.contains("Cc: "), "{two}");
    assert!(
        !two.contains("e@y.example"),
        "Bcc must not be in the message: {two}"
    );
    let three = text(&seen.data[2]);
    assert!(three.contains("To: somebody@y.example\r\n") && three.contains("\r\nas it is\r\n"));
}

#[test]
fn a_refused_message_is_reported_and_the_others_still_go() {
    let dir = eml_dir(3);
    let refused = vec![
        expect(format!("MAIL FROM:<{FROM}>")),
        send("250 2.1.0 sender ok\r\n"),
        expect("RCPT TO:<r2@y.example>"),
        send("550 5.1.1 <r2@y.example>: no such user\r\n"),
        // No recipient left: the transaction is abandoned.
        expect("RSET"),
        send("250 2.0.0 Ok\r\n"),
    ];
    let server = FakeServer::start(one_connection(vec![
        transaction(FROM, &["r1@y.example"]),
        refused,
        transaction(FROM, &["r3@y.example"]),
    ]));
    let out = go(batch(&server.addr(), &[s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(67, "one recipient refused");
    assert_eq!((seen.connections, seen.data.len()), (1, 2));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.describe());
    assert!(
        lines[0].starts_with("postie: ")
            && lines[0].contains("m2.eml: RCPT TO <r2@y.example> refused: 550 5.1.1"),
        "{}",
        out.describe()
    );
    assert_eq!(lines[1], "postie: sent 2 of 3 messages, 1 failed");
}

#[test]
fn a_421_after_the_second_message_reconnects_and_all_are_delivered() {
    let dir = eml_dir(3);
    let mut script = one_connection(vec![
        transaction(FROM, &["r1@y.example"]),
        transaction(FROM, &["r2@y.example"]),
    ]);
    // Instead of QUIT: the server's limit.
    script.truncate(script.len() - quit().len());
    script.extend(between());
    script.extend([
        expect(format!("MAIL FROM:<{FROM}>")),
        send("421 4.7.0 fake.test too many messages, closing\r\n"),
        Step::Reconnect,
        greeting(),
    ]);
    script.extend(ehlo(&[]));
    script.extend(transaction(FROM, &["r3@y.example"]));
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &[s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_quiet_success("421 then reconnect");
    assert_eq!(seen.connections, 2);
    assert_eq!(seen.data.len(), 3);
    assert!(text(&seen.data[2]).contains("body 3"));
}

#[test]
fn a_452_too_many_messages_at_mail_reconnects() {
    let dir = eml_dir(2);
    let mut script = vec![greeting()];
    script.extend(ehlo(&[]));
    script.extend(transaction(FROM, &["r1@y.example"]));
    script.extend(between());
    script.extend([
        expect(format!("MAIL FROM:<{FROM}>")),
        send("452 4.5.3 Too many messages for this session\r\n"),
        // No RSET: the session is given up, so QUIT at once.
        expect("QUIT"),
        send("221 2.0.0 bye\r\n"),
        Step::ExpectClose,
        Step::Reconnect,
        greeting(),
    ]);
    script.extend(ehlo(&[]));
    script.extend(transaction(FROM, &["r2@y.example"]));
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &["-v", s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(0, "452 then reconnect");
    assert_eq!((seen.connections, seen.data.len()), (2, 2));
    // -v: the transcript covers both connections, and each message and the summary get a line.
    assert_eq!(
        out.stderr.matches("=== Connected to").count(),
        2,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("reconnecting"), "{}", out.stderr);
    assert!(out
        .stderr
        .contains("m2.eml: sent: 250 2.0.0 Ok: queued as ABC123"));
    assert!(
        out.stderr.contains("postie: sent 2 of 2 messages\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_server_that_cannot_be_reached_defers_everything_after_bounded_retries() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = eml_dir(3);
    let started = Instant::now();
    let out = go(batch(&format!("127.0.0.1:{port}"), &[s(dir.path())]));
    out.assert_code(75, "connection refused");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.describe());
    assert!(
        lines[0].contains("m1.eml: ") && lines[0].contains("127.0.0.1"),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("postie: giving up") && lines[1].contains("2 message"));
    assert_eq!(lines[2], "postie: sent 0 of 3 messages, 3 deferred");
}

#[test]
fn a_bad_json_line_stops_the_run_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let list = write(
        dir.path(),
        "list.jsonl",
        "{\"to\":\"a@y.example\",\"body\":\"fine\"}\n{\"to\":\"b@y.example\",\"body\":\"x\",\n",
    );
    let server = FakeServer::start(vec![greeting()]);
    let out = go(batch(&server.addr(), &[s(&list)]));
    let seen = server.finish_if_connected(&out.describe());
    assert!(seen.is_none(), "nothing may be sent: {}", out.describe());
    out.assert_one_error_line(
        "postie: ",
        &[&format!("{}:2", list.display()), "not a message"],
        "bad line",
    );
    out.assert_code(65, "bad line");
}

#[test]
fn an_empty_directory_is_no_input() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(vec![greeting()]);
    let out = go(batch(&server.addr(), &[s(dir.path())]));
    assert!(server.finish_if_connected(&out.describe()).is_none());
    out.assert_one_error_line(
        "postie: ",
        &[&dir.path().display().to_string(), "no .eml files"],
        "empty directory",
    );
    out.assert_code(66, "empty directory");
}

#[test]
fn batch_help_names_paths_and_usage_errors_are_64() {
    let mut cmd = postie();
    cmd.args(["batch", "--help"]);
    let out = go(cmd);
    out.assert_code(0, "batch --help");
    assert!(out.stdout.contains("<PATH>..."), "{}", out.stdout);
    let mut cmd = postie();
    cmd.args([
        "batch",
        "--server",
        "127.0.0.1:1",
        "-s",
        "subject",
        "x.jsonl",
    ]);
    go(cmd).assert_code(64, "batch with -s");
    let mut cmd = postie();
    cmd.args(["batch", "--server", "127.0.0.1:1"]);
    go(cmd).assert_code(64, "batch without PATH");
}

fn batch_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/postie-batch.schema.json");
        let schema: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("the batch schema compiles")
    })
}

fn valid(doc: &serde_json::Value) {
    let errors: Vec<String> = batch_schema()
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{doc:#}: {errors:#?}");
}

#[test]
fn json_gives_one_line_per_message_and_a_summary() {
    let dir = eml_dir(2);
    let refused = vec![
        expect(format!("MAIL FROM:<{FROM}>")),
        send("250 2.1.0 sender ok\r\n"),
        expect("RCPT TO:<r2@y.example>"),
        send("451 4.3.0 try later\r\n"),
        expect("RSET"),
        send("250 2.0.0 Ok\r\n"),
    ];
    let server = FakeServer::start(one_connection(vec![
        transaction(FROM, &["r1@y.example"]),
        refused,
    ]));
    let out = go(batch(&server.addr(), &["--json", s(dir.path())]));
    server.finish_with(&out.describe());
    out.assert_code(75, "one deferred");
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(docs.len(), 3, "{}", out.stdout);
    for d in &docs {
        valid(d);
    }
    assert_eq!(docs[0]["type"], "message");
    assert_eq!(docs[0]["status"], "sent");
    assert_eq!(docs[0]["queue_id"], "ABC123");
    assert_eq!(docs[1]["status"], "deferred");
    assert_eq!(docs[1]["recipients"][0]["code"], 451);
    assert_eq!(docs[1]["exit"]["code"], 75);
    assert_eq!(docs[2]["type"], "summary");
    assert_eq!(
        (
            &docs[2]["sent"],
            &docs[2]["deferred"],
            &docs[2]["connections"]
        ),
        (&1.into(), &1.into(), &1.into())
    );
    assert_eq!(docs[2]["exit"]["name"], "EX_TEMPFAIL");
    // A run stopped by its input still ends with a summary object.
    let empty = tempfile::tempdir().unwrap();
    let out = go(batch("127.0.0.1:1", &["--json", s(empty.path())]));
    out.assert_code(66, "empty directory");
    let doc: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    valid(&doc);
    assert_eq!(doc["error"]["phase"], "setup");
}

// ---------------------------------------------------------------------------------------
// Postfix's smtp-sink
// ---------------------------------------------------------------------------------------

/// smtp-sink on a free loopback port, dumping each transaction into `dump`; killed on drop.
struct Sink {
    child: Child,
    port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_sink(dump: &Path, options: &[&str]) -> Option<Sink> {
    let bin = ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(bin) = bin else {
        if std::env::var_os("POSTIE_REQUIRE_POSTFIX").is_some_and(|v| v == "1") {
            panic!("POSTIE_REQUIRE_POSTFIX=1 but smtp-sink is not installed");
        }
        eprintln!("skipped: smtp-sink (package postfix) is not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(bin);
    // As root it must drop privileges; the dump directory is then written as nobody.
    if is_root() {
        cmd.args(["-u", "nobody"]);
    }
    let template = format!("{}/", dump.display());
    cmd.args(options)
        .args(["-d", &template, &format!("127.0.0.1:{port}"), "64"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("start smtp-sink");
    let sink = Sink { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "smtp-sink did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(sink)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// 200 JSON-lines messages through `postie batch` with `options` to a loopback
/// smtp-sink: the run's outcome, once smtp-sink has dumped exactly 200 transactions (one
/// file each: every message arrived once). `None` when smtp-sink is not installed (the
/// skip is printed; POSTIE_REQUIRE_POSTFIX=1 makes it a failure).
fn two_hundred_to_smtp_sink(options: &[&str]) -> Option<Outcome> {
    let dump = tempfile::tempdir().unwrap();
    // smtp-sink writes as nobody when started as root.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dump.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let sink = smtp_sink(dump.path(), &[])?;
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..200 {
        lines.push_str(&format!(
            "{{\"to\":\"r{i}@y.example\",\"subject\":\"n{i}\",\"body\":\"message {i}\"}}\n"
        ));
    }
    let list = write(dir.path(), "list.jsonl", &lines);
    let addr = format!("127.0.0.1:{}", sink.port);
    let mut args = options.to_vec();
    args.extend(["-f", FROM, s(&list)]);
    let out = go(batch(&addr, &args));
    out.assert_code(0, "200 messages to smtp-sink");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut files;
    loop {
        files = std::fs::read_dir(dump.path()).unwrap().count();
        if files >= 200 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // No late extra transaction either.
    std::thread::sleep(Duration::from_millis(200));
    files = std::fs::read_dir(dump.path()).unwrap().count();
    assert_eq!(files, 200, "{}", out.describe());
    drop(sink);
    Some(out)
}

#[test]
fn smtp_sink_takes_200_messages_over_one_connection() {
    let Some(out) = two_hundred_to_smtp_sink(&["-v"]) else {
        return;
    };
    assert_eq!(
        out.stderr.matches("=== Connected to").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("postie: sent 200 of 200 messages\n"));
}

#[test]
fn with_queue_a_deferred_message_is_spooled_for_the_recipients_still_due() {
    let dir = eml_dir(2);
    let spool = tempfile::tempdir().unwrap();
    // Message 2 has two recipients: one accepted, one deferred; only the deferred one is
    // queued (the other has its copy).
    write(
        dir.path(),
        "m2.eml",
        "From: sender@x.example\nTo: r2@y.example, later@y.example\nSubject: two\n\nbody 2\n",
    );
    let partly = vec![
        expect(format!("MAIL FROM:<{FROM}>")),
        send("250 2.1.0 sender ok\r\n"),
        expect("RCPT TO:<r2@y.example>"),
        send("250 2.1.5 ok\r\n"),
        expect("RCPT TO:<later@y.example>"),
        send("452 4.2.2 mailbox full, try later\r\n"),
        expect("DATA"),
        send("354 go ahead\r\n"),
        Step::ReadData,
        send(OK),
    ];
    let server = FakeServer::start(one_connection(vec![
        transaction(FROM, &["r1@y.example"]),
        partly,
    ]));
    let mut cmd = batch(&server.addr(), &["--json", "--queue", "--queue-dir"]);
    cmd.arg(spool.path()).arg(dir.path());
    let out = go(cmd);
    server.finish_with(&out.describe());
    out.assert_code(0, "deferred recipient queued");
    let ids: Vec<String> = std::fs::read_dir(spool.path().join("meta"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{}", out.describe());
    assert!(
        out.stderr
            .contains(&format!("m2.eml: queued as {}", ids[0])),
        "{}",
        out.describe()
    );
    assert!(out
        .stderr
        .contains("postie: sent 1 of 2 messages, 1 queued\n"));
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for d in &docs {
        valid(d);
    }
    assert_eq!(docs[1]["status"], "queued");
    assert_eq!(docs[1]["spool_id"], ids[0].as_str());
    let mut list = postie();
    list.args(["queue", "list", "--queue-dir"])
        .arg(spool.path());
    let listed = go(list);
    listed.assert_code(0, "queue list");
    assert!(
        listed.stdout.contains("later@y.example") && !listed.stdout.contains("r2@y.example"),
        "{}",
        listed.describe()
    );
    let stored = std::fs::read(spool.path().join("msg").join(&ids[0])).unwrap();
    assert!(String::from_utf8_lossy(&stored).contains("body 2"));
}

#[test]
fn a_refused_first_server_falls_back_to_the_next_for_the_whole_batch() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let dir = eml_dir(2);
    let server = FakeServer::start(one_connection(vec![
        transaction(FROM, &["r1@y.example"]),
        transaction(FROM, &["r2@y.example"]),
    ]));
    let servers = format!("127.0.0.1:{dead},{}", server.addr());
    let out = go(batch(&servers, &["-v", s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(0, "fallback server takes the batch");
    assert_eq!((seen.connections, seen.data.len()), (1, 2));
    assert!(
        out.stderr.contains("=== Falling back to 127.0.0.1:"),
        "{}",
        out.stderr
    );
}

/// smtp-sink `-8` offers no 8BITMIME: each 8-bit message of the batch is converted to
/// 7-bit (RFC 6152 §3) and every transaction smtp-sink records is 7-bit.
#[test]
fn smtp_sink_without_8bitmime_gets_the_8bit_messages_converted() {
    let dump = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dump.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let Some(sink) = smtp_sink(dump.path(), &["-8"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for i in 1..=3 {
        write(
            dir.path(),
            &format!("m{i}.eml"),
            &format!(
                "From: sender@x.example\nTo: r{i}@y.example\nSubject: n{i}\n\n\
                 Gr\u{fc}\u{df}e {i}, caf\u{e9}\n"
            ),
        );
    }
    let addr = format!("127.0.0.1:{}", sink.port);
    let out = go(batch(&addr, &["-v", "-f", FROM, s(dir.path())]));
    out.assert_code(0, "8-bit messages to smtp-sink -8");
    assert!(!out.stderr.contains("<-  250-8BITMIME"), "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("=== the server does not offer 8BITMIME: converted 1 MIME part to quoted-printable\n")
            .count(),
        3,
        "{}",
        out.stderr
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let files = loop {
        let files: Vec<PathBuf> = std::fs::read_dir(dump.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        if files.len() >= 3 || Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(files.len(), 3);
    for f in files {
        let dumped = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&dumped);
        assert!(dumped.is_ascii(), "{}: {text}", f.display());
        assert!(text.contains("caf=C3=A9"), "{}: {text}", f.display());
    }
    drop(sink);
}

/// All or nothing with a temporary refusal: the message reached nobody, so the recipient
/// that was accepted and withheld is as due as the refused one, and both are queued (the
/// same fate a single submission and a queue run give them).
#[test]
fn all_or_nothing_queues_the_withheld_recipients_with_the_deferred_one() {
    let dir = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "m1.eml",
        "From: sender@x.example\nTo: r1@y.example, later@y.example\nSubject: one\n\nbody 1\n",
    );
    let mut script = vec![greeting()];
    script.extend(ehlo(&[]));
    script.extend([
        expect(format!("MAIL FROM:<{FROM}>")),
        send("250 2.1.0 sender ok\r\n"),
        expect("RCPT TO:<r1@y.example>"),
        send("250 2.1.5 ok\r\n"),
        expect("RCPT TO:<later@y.example>"),
        send("452 4.2.2 mailbox full, try later\r\n"),
        expect("RSET"),
        send("250 2.0.0 Ok\r\n"),
    ]);
    script.extend(quit());
    let server = FakeServer::start(script);
    let mut cmd = batch(
        &server.addr(),
        &["--all-or-nothing", "--queue", "--queue-dir"],
    );
    cmd.arg(spool.path()).arg(dir.path());
    let out = go(cmd);
    let seen = server.finish_with(&out.describe());
    assert!(seen.data.is_empty(), "nothing may be sent");
    out.assert_code(0, "the message is queued");
    let mut list = postie();
    list.args(["queue", "list", "--queue-dir"])
        .arg(spool.path());
    let listed = go(list);
    listed.assert_code(0, "queue list");
    // ID, AGE, SIZE, SENDER, RECIPIENTS, ...: the entry's recipients are both.
    let entry: Vec<&str> = listed
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        entry.get(3..5),
        Some(&["sender@x.example", "r1@y.example,later@y.example"][..]),
        "{}",
        listed.describe()
    );
}

/// A directory of `n` ready messages with Date and Message-ID (so postie adds nothing),
/// and each message's bytes as they go in BDAT (CRLF line ends).
fn fixed_eml_dir(n: usize) -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut wire = Vec::new();
    for i in 1..=n {
        let text = format!(
            "From: sender@x.example\nTo: r{i}@y.example\nDate: Mon, 1 Jun 2026 10:00:00 +0000\n\
             Message-ID: <m{i}@x.example>\nSubject: number {i}\n\nbody {i}\n"
        );
        write(dir.path(), &format!("m{i}.eml"), &text);
        wire.push(text.replace('\n', "\r\n"));
    }
    (dir, wire)
}

/// Message `i`'s (1-based) whole transaction in a window: the guard RSET when a message
/// ahead of it is unanswered, MAIL, RCPT, `BDAT n LAST`.
fn in_flight(i: usize, wire: &[String], behind: bool) -> Vec<String> {
    let mut lines = Vec::new();
    if behind {
        lines.push("RSET".to_string());
    }
    lines.push(format!("MAIL FROM:<{FROM}>"));
    lines.push(format!("RCPT TO:<r{i}@y.example>"));
    lines.push(format!("BDAT {} LAST", wire[i - 1].len()));
    lines
}

#[test]
fn a_window_of_messages_goes_in_one_write_and_each_is_judged_by_its_own_replies() {
    let (dir, wire) = fixed_eml_dir(4);
    let group: Vec<String> = (1..=4).flat_map(|i| in_flight(i, &wire, i > 1)).collect();
    let mut script = vec![greeting()];
    script.extend(ehlo(&["PIPELINING", "CHUNKING"]));
    script.extend([
        // All four in one write (the default window is 16): nothing waited for a reply.
        Step::ExpectPipelined(group),
        send(concat!(
            "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as Q1\r\n",
            // The second: its recipient refused in the middle of the window.
            "250 2.0.0 reset\r\n250 2.1.0 ok\r\n550 5.1.1 <r2@y.example>: no such user\r\n",
            "554 5.5.1 Error: no valid recipients\r\n",
            "250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as Q3\r\n",
            "250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as Q4\r\n",
        )),
    ]);
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &["--json", s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(67, "the second message's recipient refused");
    assert_eq!(seen.connections, 1);
    let chunks: Vec<String> = seen.chunks.iter().map(|c| text(c)).collect();
    assert_eq!(chunks, wire, "every message whole, in order");
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let statuses: Vec<&str> = docs[..4]
        .iter()
        .map(|d| d["status"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        statuses,
        ["sent", "failed", "sent", "sent"],
        "{}",
        out.stdout
    );
    let ids: Vec<&str> = docs[..4]
        .iter()
        .map(|d| d["queue_id"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(ids, ["Q1", "-", "Q3", "Q4"], "{}", out.stdout);
    assert_eq!(docs[4]["type"], "summary", "{}", out.stdout);
}

#[test]
fn window_1_sends_one_message_at_a_time_without_rset_after_a_delivered_one() {
    let (dir, wire) = fixed_eml_dir(2);
    let mut script = vec![greeting()];
    script.extend(ehlo(&["PIPELINING", "CHUNKING"]));
    for i in 1..=2 {
        script.extend([
            Step::ExpectPipelined(in_flight(i, &wire, false)),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued\r\n"),
        ]);
    }
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &["--window", "1", s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_quiet_success("two messages, one at a time");
    assert_eq!((seen.connections, seen.chunks.len()), (1, 2));
}

#[test]
fn a_421_in_the_middle_of_the_window_sends_the_unanswered_messages_again_once() {
    let (dir, wire) = fixed_eml_dir(3);
    let group: Vec<String> = (1..=3).flat_map(|i| in_flight(i, &wire, i > 1)).collect();
    let mut script = vec![greeting()];
    script.extend(ehlo(&["PIPELINING", "CHUNKING"]));
    script.extend([
        Step::ExpectPipelined(group),
        // The first is delivered; then the server ends the session: the second and third
        // are unanswered.
        send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as Q1\r\n421 4.7.0 fake.test closing\r\n"),
        Step::Reconnect,
        greeting(),
    ]);
    script.extend(ehlo(&["PIPELINING", "CHUNKING"]));
    // Sent again the ordinary way (one at a time), each exactly once.
    for i in 2..=3 {
        script.extend([
            Step::ExpectPipelined(in_flight(i, &wire, false)),
            send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued again\r\n"),
        ]);
    }
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &["-v", s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(0, "421 mid-window, then a new session");
    assert_eq!(seen.connections, 2);
    let chunks: Vec<String> = seen.chunks.iter().map(|c| text(c)).collect();
    // Three in the first window, then the two unanswered ones again.
    assert_eq!(chunks, [&wire[..], &wire[1..]].concat());
    assert!(out.stderr.contains("reconnecting"), "{}", out.stderr);
    for i in 1..=3 {
        assert_eq!(
            out.stderr.matches(&format!("m{i}.eml: sent")).count(),
            1,
            "{}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------
// PIPELINING without CHUNKING: the next message's commands ride with the end of data
// ---------------------------------------------------------------------------------------

/// Greeting, EHLO with PIPELINING (no CHUNKING), and the first message's MAIL, RCPT and
/// DATA in one write, answered up to its 354.
fn data_overlap_lead() -> Vec<Step> {
    let mut script = vec![greeting()];
    script.extend(ehlo(&["PIPELINING"]));
    script.extend([
        Step::ExpectPipelined(vec![
            format!("MAIL FROM:<{FROM}>"),
            "RCPT TO:<r1@y.example>".into(),
            "DATA".into(),
        ]),
        send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"),
    ]);
    script
}

/// A message's data, and message `i`'s MAIL, RCPT and DATA found already buffered behind
/// its end (written with it, before any reply to it).
fn next_group_buffered(i: usize) -> Vec<Step> {
    vec![
        Step::ReadData,
        Step::ExpectBuffered(format!("MAIL FROM:<{FROM}>")),
        Step::ExpectBuffered(format!("RCPT TO:<r{i}@y.example>")),
        Step::ExpectBuffered("DATA".into()),
    ]
}

/// With DATA (no CHUNKING), RFC 2920 §3.1 lets the next MAIL, RCPT and DATA go in the same
/// write as the end of data: the fake finds each next group already buffered when it has
/// read a message, before it has answered it (a client waiting for the 250 would time
/// out), so a batch costs one round trip per message instead of two.
#[test]
fn with_pipelining_and_data_the_next_commands_go_with_the_end_of_data() {
    let (dir, wire) = fixed_eml_dir(3);
    let mut script = data_overlap_lead();
    for i in 2..=3 {
        script.extend(next_group_buffered(i));
        script.extend([send(format!(
            "250 2.0.0 queued as Q{}\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n",
            i - 1
        ))]);
    }
    script.extend([Step::ReadData, send("250 2.0.0 queued as Q3\r\n")]);
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &[s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(0, "three messages");
    assert_eq!(
        seen.received,
        pooled_transcript(FROM, &[1, 2, 3], |_| "DATA".to_string())
    );
    let want: Vec<String> = wire.iter().map(|w| format!("{w}.\r\n")).collect();
    let got: Vec<String> = seen.data.iter().map(|d| text(d)).collect();
    assert_eq!(got, want);
    assert_eq!(out.stderr, "", "quiet when all is sent: {}", out.describe());
}

/// A message whose recipient is refused (550, then 554 to DATA) in the overlap leaves its
/// transaction open: the next message's group starts with RSET, and each message has its
/// own outcome (67 for the refused one, the others sent).
#[test]
fn with_pipelining_and_data_a_refused_message_is_followed_by_rset() {
    let (dir, wire) = fixed_eml_dir(3);
    let mut script = data_overlap_lead();
    script.extend(next_group_buffered(2));
    script.extend([
        send(concat!(
            "250 2.0.0 queued as Q1\r\n250 2.1.0 ok\r\n",
            "550 5.1.1 <r2@y.example>: no such user\r\n",
            "554 5.5.1 Error: no valid recipients\r\n"
        )),
        Step::ExpectPipelined(vec![
            "RSET".into(),
            format!("MAIL FROM:<{FROM}>"),
            "RCPT TO:<r3@y.example>".into(),
            "DATA".into(),
        ]),
        send("250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"),
        Step::ReadData,
        send("250 2.0.0 queued as Q3\r\n"),
    ]);
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &["--json", s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(67, "one recipient unknown");
    let statuses: Vec<String> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .filter(|d| d["type"] == "message")
        .map(|d| d["status"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(statuses, ["sent", "failed", "sent"], "{}", out.stdout);
    let got: Vec<String> = seen.data.iter().map(|d| text(d)).collect();
    assert_eq!(
        got,
        [format!("{}.\r\n", wire[0]), format!("{}.\r\n", wire[2])]
    );
}

/// A 421 to the next MAIL, read after the previous message's 250: that message stands
/// (sent once), and the next one — whose data never went — is sent on a new session.
#[test]
fn with_pipelining_and_data_a_421_in_the_overlap_reconnects_for_the_next_message() {
    let (dir, wire) = fixed_eml_dir(2);
    let mut script = data_overlap_lead();
    script.extend(next_group_buffered(2));
    script.extend([
        send("250 2.0.0 queued as Q1\r\n421 4.3.2 too many messages, closing\r\n"),
        Step::Close,
        Step::Reconnect,
        greeting(),
    ]);
    script.extend(ehlo(&["PIPELINING"]));
    script.extend([
        Step::ExpectPipelined(vec![
            format!("MAIL FROM:<{FROM}>"),
            "RCPT TO:<r2@y.example>".into(),
            "DATA".into(),
        ]),
        send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"),
        Step::ReadData,
        send("250 2.0.0 queued as Q2\r\n"),
    ]);
    script.extend(quit());
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &[s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(0, "reconnected");
    assert_eq!(seen.connections, 2);
    let got: Vec<String> = seen.data.iter().map(|d| text(d)).collect();
    assert_eq!(
        got,
        [format!("{}.\r\n", wire[0]), format!("{}.\r\n", wire[1])]
    );
}

// ---------------------------------------------------------------------------------------
// --connections N: sessions in parallel over the server list
// ---------------------------------------------------------------------------------------

/// Which message of [`fixed_eml_dir`] `bytes` is (from its Message-ID), 1-based.
fn number_of(bytes: &[u8]) -> usize {
    let text = text(bytes);
    let start = text.find("Message-ID: <m").expect("a Message-ID") + "Message-ID: <m".len();
    let end = start + text[start..].find('@').expect("an @");
    text[start..end].parse().expect("a message number")
}

/// The JSON lines of a run: every message in input order and sent, then the summary.
fn assert_json_in_order(out: &Outcome, n: usize) -> serde_json::Value {
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(docs.len(), n + 1, "{}", out.describe());
    for (i, d) in docs[..n].iter().enumerate() {
        valid(d);
        assert_eq!(d["type"], "message");
        assert_eq!(d["index"], i + 1, "input order: {}", out.stdout);
        let source = format!("/m{}.eml", i + 1);
        assert!(
            d["source"].as_str().is_some_and(|s| s.ends_with(&source)),
            "{d}"
        );
        assert_eq!(d["status"], "sent", "{d}");
    }
    valid(&docs[n]);
    assert_eq!(docs[n]["type"], "summary");
    assert_eq!(docs[n]["sent"], n);
    docs[n].clone()
}

#[test]
fn connections_2_spread_the_batch_over_two_servers_and_send_each_message_once() {
    // 9 messages: m1 ... m9 sort in number order.
    for exts in [
        &[][..],
        &["PIPELINING"][..],
        &["PIPELINING", "CHUNKING"][..],
    ] {
        let chunking = exts.contains(&"CHUNKING");
        let n = 9;
        let (dir, wire) = fixed_eml_dir(n);
        let a = pool_server(exts, 1);
        let b = pool_server(exts, 1);
        let servers = format!("{},{}", a.addr(), b.addr());
        let out = go(batch(
            &servers,
            &["--connections", "2", "--json", s(dir.path())],
        ));
        let seen_a = a.finish_with(&out.describe());
        let seen_b = b.finish_with(&out.describe());
        out.assert_code(0, "two connections");
        assert_eq!(out.stderr, "", "{}", out.describe());
        let summary = assert_json_in_order(&out, n);
        assert_eq!(summary["connections"], 2, "{}", out.stdout);
        let mut all = Vec::new();
        for seen in [&seen_a, &seen_b] {
            // Each server had one session of its own ...
            assert_eq!(seen.connections, 1);
            let numbers = seen.numbers_per_session().concat();
            // ... whose messages went in input order, each whole ...
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
            let payloads = if !chunking { &seen.data } else { &seen.chunks };
            let got: Vec<usize> = payloads.iter().map(|p| number_of(p)).collect();
            assert_eq!(got, numbers, "payloads in RCPT order");
            for (p, i) in payloads.iter().zip(&numbers) {
                let mut want = wire[i - 1].clone();
                if !chunking {
                    want.push_str(".\r\n");
                }
                assert_eq!(text(p), want);
            }
            // ... and its whole transcript is EHLO, one transaction per message, QUIT
            // (RSET only as the guard in front of a pipelined group).
            let want = pooled_transcript(FROM, &numbers, |i| {
                if !chunking {
                    "DATA".to_string()
                } else {
                    format!("BDAT {} LAST", wire[i - 1].len())
                }
            });
            assert_eq!(seen.received_but_rset(chunking), want, "{exts:?}");
            all.extend(numbers);
        }
        // Every message exactly once, over both.
        all.sort_unstable();
        assert_eq!(all, (1..=n).collect::<Vec<_>>(), "{exts:?}");
    }
}

#[test]
fn connections_2_with_one_server_refusing_send_everything_through_the_other_once() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let n = 8;
    let (dir, wire) = fixed_eml_dir(n);
    // Connection 1 starts at the dead server and falls back to the live one: both
    // sessions end up there.
    let live = pool_server(&[], 2);
    let servers = format!("{},127.0.0.1:{dead}", live.addr());
    let out = go(batch(
        &servers,
        &["--connections", "2", "--json", "-v", s(dir.path())],
    ));
    let seen = live.finish_with(&out.describe());
    out.assert_code(0, "one server refuses");
    assert!(
        out.stderr.contains("=== Falling back to 127.0.0.1:"),
        "{}",
        out.stderr
    );
    let summary = assert_json_in_order(&out, n);
    assert_eq!(summary["connections"], 2, "{}", out.stdout);
    assert_eq!(seen.connections, 2);
    let per_session = seen.numbers_per_session();
    assert_eq!(per_session.len(), 2);
    for numbers in &per_session {
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }
    let mut all = per_session.concat();
    let payloads: Vec<usize> = seen.data.iter().map(|p| number_of(p)).collect();
    assert_eq!(payloads, all, "payloads in RCPT order");
    for (p, i) in seen.data.iter().zip(&all) {
        assert_eq!(text(p), format!("{}.\r\n", wire[i - 1]));
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=n).collect::<Vec<_>>(),
        "every message exactly once"
    );
    for i in 1..=n {
        assert_eq!(
            out.stderr.matches(&format!("m{i}.eml: sent")).count(),
            1,
            "{}",
            out.stderr
        );
    }
}

#[test]
fn connections_2_with_no_server_reachable_defer_everything_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = eml_dir(4);
    let started = Instant::now();
    let out = go(batch(
        &format!("127.0.0.1:{port}"),
        &["--connections", "2", "--json", s(dir.path())],
    ));
    out.assert_code(75, "connection refused");
    assert!(started.elapsed() < Duration::from_secs(20));
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(docs.len(), 5, "{}", out.describe());
    for (i, d) in docs[..4].iter().enumerate() {
        valid(d);
        assert_eq!(d["index"], i + 1);
        assert_eq!(d["status"], "deferred");
    }
    assert!(
        out.stderr.contains("giving up on one connection"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .ends_with("postie: sent 0 of 4 messages, 4 deferred\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn smtp_sink_takes_200_messages_over_4_connections() {
    let Some(out) = two_hundred_to_smtp_sink(&["--connections", "4", "--json"]) else {
        return;
    };
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(docs.len(), 201, "{}", out.describe());
    for (i, d) in docs[..200].iter().enumerate() {
        assert_eq!(d["index"], i + 1);
        assert!(d["source"]
            .as_str()
            .is_some_and(|s| s.ends_with(&format!("list.jsonl:{}", i + 1))));
        assert_eq!(d["status"], "sent");
    }
    valid(&docs[0]);
    valid(&docs[200]);
    assert_eq!(docs[200]["connections"], 4, "{}", out.stdout);
}

/// A message answered in the window before the run gave up keeps its outcome: here the
/// first message's 452 "too many messages" ends the session, the two behind it are read
/// and delivered, and then no new session can be had for the first.
#[test]
fn messages_answered_before_the_run_gave_up_are_reported_sent() {
    let (dir, wire) = fixed_eml_dir(3);
    let group: Vec<String> = (1..=3).flat_map(|i| in_flight(i, &wire, i > 1)).collect();
    let mut script = vec![greeting()];
    script.extend(ehlo(&["PIPELINING", "CHUNKING"]));
    script.extend([
        Step::ExpectPipelined(group),
        send(concat!(
            "452 4.5.3 too many messages\r\n503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n",
            "250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as Q2\r\n",
            "250 2.0.0 reset\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 queued as Q3\r\n",
        )),
    ]);
    // The server stops listening after this session: the reconnections are refused.
    script.push(Step::QuitOrClose);
    let server = FakeServer::start(script);
    let out = go(batch(&server.addr(), &["--json", s(dir.path())]));
    let seen = server.finish_with(&out.describe());
    out.assert_code(75, "the first message deferred");
    assert_eq!(seen.connections, 1);
    let docs: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let statuses: Vec<&str> = docs[..3]
        .iter()
        .map(|d| d["status"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(statuses, ["deferred", "sent", "sent"], "{}", out.describe());
}
