//! OAuth 2.0 through the built binary: `postie oauth login|token|status|logout` and sending
//! with an OAuth account, against the fake authorization server of
//! [`crate::support::idp`] (HTTPS on loopback, trusted through the account's `ca_file`) and
//! the scripted SMTP server. Covers the device flow (pending, slow_down, denied, expired),
//! the browser flow with PKCE and state (the test plays the browser), refresh before
//! expiry and on the server's refusal, refresh-token rotation, `invalid_grant` → 77, two
//! concurrent refreshes → one request, the token file's mode and atomic replacement, that
//! XOAUTH2/OAUTHBEARER carry the current token, msmtp's passwordeval, and that no output
//! of an OAuth send shows a token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use crate::support::certs::pki;
use crate::support::fake_server::{
    data, ehlo, envelope, expect, greeting, quit, send, starttls, FakeServer, Step,
};
use crate::support::idp::{error, tokens, Idp, Request};
use crate::support::postie;
use crate::support::run::{run, Outcome};

const LIMIT: Duration = Duration::from_secs(60);
const USER: &str = "me@example.test";
const TO: &str = "rcpt@example.test";
const SCOPES: &str = "https://outlook.office.com/SMTP.Send offline_access";

/// A configuration directory, a token directory and the config file for account `work`
/// (provider microsoft, endpoints on `idp`), optionally submitting to `smtp`.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(idp: &Idp, smtp: Option<&str>, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let server = smtp.map_or(String::new(), |s| {
            let (host, port) = s.rsplit_once(':').unwrap();
            format!(
                "server = \"{host}\"\nport = {port}\ntls_ca = \"{}\"\n",
                ca()
            )
        });
        let text = format!(
            "default_account = \"work\"\n\n[account.work]\n{server}user = \"{USER}\"\n\
             auth = \"xoauth2\"\ntimeout = 10\n{extra}\n\
             [account.work.oauth]\nprovider = \"microsoft\"\nclient_id = \"cid-123\"\n\
             token_url = \"{}\"\ndevice_url = \"{}\"\nauth_url = \"{}\"\nca_file = \"{}\"\n",
            idp.url("/token"),
            idp.url("/device"),
            idp.url("/authorize"),
            ca()
        );
        std::fs::write(&config, text).unwrap();
        Setup { dir, config }
    }

    fn tokens_dir(&self) -> PathBuf {
        self.dir.path().join("oauth")
    }

    fn token_file(&self) -> PathBuf {
        self.tokens_dir().join("work.json")
    }

    /// postie with this configuration and token directory.
    fn postie(&self, args: &[&str]) -> Command {
        let mut cmd = postie();
        cmd.env("POSTIE_OAUTH_DIR", self.tokens_dir())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .arg("-C")
            .arg(&self.config)
            .args(args);
        cmd
    }

    /// `postie oauth -C FILE ARGS...` with this token directory.
    fn oauth(&self, args: &[&str]) -> Command {
        let mut cmd = postie();
        cmd.env("POSTIE_OAUTH_DIR", self.tokens_dir())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .arg("oauth")
            .arg("-C")
            .arg(&self.config)
            .args(args);
        cmd
    }

    /// Keep tokens as a login would have: `expires_in` seconds from now (negative: past).
    fn seed(&self, access: &str, refresh: Option<&str>, expires_in: i64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let refresh = refresh.map_or(String::new(), |r| format!("\"refresh_token\": \"{r}\","));
        let json = format!(
            "{{\"version\": 1, \"account\": \"work\", \"provider\": \"microsoft\", \
             \"client_id\": \"cid-123\", \"access_token\": \"{access}\", {refresh} \
             \"expires_at\": {}, \"scope\": \"{SCOPES}\", \"obtained_at\": {now}}}",
            now + expires_in
        );
        std::fs::create_dir_all(self.tokens_dir()).unwrap();
        std::fs::write(self.token_file(), json).unwrap();
    }

    fn kept(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.token_file()).unwrap()).unwrap()
    }
}

fn ca() -> &'static str {
    pki().ca_pem.to_str().unwrap()
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// base64 of XOAUTH2's initial response for `token`.
fn xoauth2(token: &str) -> String {
    STANDARD.encode(format!("user={USER}\x01auth=Bearer {token}\x01\x01"))
}

/// The SMTP script up to the AUTH command: greeting, EHLO, STARTTLS, EHLO with AUTH.
fn prelude() -> Vec<Step> {
    [
        vec![greeting()],
        ehlo(&["STARTTLS"]),
        starttls(Step::StartTls),
        ehlo(&["AUTH XOAUTH2 OAUTHBEARER"]),
    ]
    .concat()
}

fn accepted() -> Vec<Step> {
    [
        envelope(USER, &[TO]),
        data("250 2.0.0 Ok: queued as OAUTH1\r\n"),
        quit(),
    ]
    .concat()
}

/// Send a composed message with the account.
fn send_args() -> Vec<&'static str> {
    vec!["-f", USER, "-s", "hi", "--body", "Hello", TO]
}

fn token_grant(r: &Request) -> bool {
    r.path == "/token" && r.field("grant_type") == "refresh_token"
}

// ---------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------

/// A kept token with more than a minute left is used as it is: no request to the
/// authorization server, and XOAUTH2 carries it.
#[test]
fn a_fresh_token_is_sent_without_asking_the_provider() {
    let idp = Idp::start(|_| error("unexpected", "no request expected"));
    let server = FakeServer::start(
        [
            prelude(),
            vec![
                expect(format!("AUTH XOAUTH2 {}", xoauth2("AT-fresh"))),
                send("235 2.7.0 ok\r\n"),
            ],
            accepted(),
        ]
        .concat(),
    );
    let setup = Setup::new(&idp, Some(&server.addr()), "");
    setup.seed("AT-fresh", Some("RT-1"), 3600);
    let out = run(setup.postie(&send_args()), None, LIMIT);
    server.finish_with(&out.to_string());
    out.assert_quiet_success("fresh token");
    assert!(idp.requests().is_empty(), "{:?}", idp.requests());
}

/// A token with less than a minute left is refreshed before AUTH; a rotated refresh token
/// is kept; OAUTHBEARER carries the new token.
#[test]
fn an_expiring_token_is_refreshed_first_and_a_rotated_refresh_token_kept() {
    let idp = Idp::start(|r| {
        if token_grant(r) && r.field("refresh_token") == "RT-1" && r.field("client_id") == "cid-123"
        {
            tokens("AT-new", Some("RT-2"), 3600)
        } else {
            error("invalid_request", "unexpected request")
        }
    });
    let server = FakeServer::start(
        [
            prelude(),
            vec![
                crate::support::fake_server::expect_prefix("AUTH OAUTHBEARER "),
                send("235 2.7.0 ok\r\n"),
            ],
            accepted(),
        ]
        .concat(),
    );
    let setup = Setup::new(&idp, Some(&server.addr()), "");
    setup.seed("AT-old", Some("RT-1"), 30);
    let mut args = vec!["--auth", "oauthbearer"];
    args.extend(send_args());
    let port = server.addr().rsplit_once(':').unwrap().1.to_string();
    let out = run(setup.postie(&args), None, LIMIT);
    let session = server.finish_with(&out.to_string());
    out.assert_quiet_success("refresh before expiry");
    // RFC 7628 §3.1: the GS2 header, host and port of the server, the bearer token.
    let auth = session
        .received_in_tls()
        .iter()
        .find_map(|l| l.strip_prefix("AUTH OAUTHBEARER "))
        .map(|b| String::from_utf8(STANDARD.decode(b).unwrap()).unwrap());
    assert_eq!(
        auth.as_deref(),
        Some(
            format!("n,a={USER},\x01host=127.0.0.1\x01port={port}\x01auth=Bearer AT-new\x01\x01")
                .as_str()
        )
    );
    let refreshes: Vec<_> = idp.requests().into_iter().filter(token_grant).collect();
    assert_eq!(refreshes.len(), 1, "{refreshes:?}");
    assert_eq!(refreshes[0].field("scope"), SCOPES);
    let kept = setup.kept();
    assert_eq!(kept["access_token"], "AT-new");
    assert_eq!(kept["refresh_token"], "RT-2");
    assert_eq!(mode(&setup.token_file()), 0o600);
}

/// The server refuses a token whose expiry said it was good (revoked): XOAUTH2's error
/// challenge is answered with an empty line, the token refreshed once, AUTH retried once.
#[test]
fn a_refused_token_is_refreshed_once_and_auth_retried() {
    let idp = Idp::start(|r| {
        if token_grant(r) {
            tokens("AT-second", None, 3600)
        } else {
            error("invalid_request", "unexpected")
        }
    });
    let server = FakeServer::start(
        [
            prelude(),
            vec![
                expect(format!("AUTH XOAUTH2 {}", xoauth2("AT-revoked"))),
                send("334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n"),
                expect(""),
                send("535 5.7.8 Username and Password not accepted\r\n"),
                expect(format!("AUTH XOAUTH2 {}", xoauth2("AT-second"))),
                send("235 2.7.0 ok\r\n"),
            ],
            accepted(),
        ]
        .concat(),
    );
    let setup = Setup::new(&idp, Some(&server.addr()), "");
    setup.seed("AT-revoked", Some("RT-1"), 3600);
    let out = run(setup.postie(&send_args()), None, LIMIT);
    server.finish_with(&out.to_string());
    out.assert_quiet_success("refresh on refusal");
    assert_eq!(idp.requests().iter().filter(|r| token_grant(r)).count(), 1);
    // No rotation in the answer: the old refresh token stays.
    assert_eq!(setup.kept()["refresh_token"], "RT-1");
    assert_eq!(setup.kept()["access_token"], "AT-second");
}

/// Refused again after the refresh: the server's answer stands (77), AUTH tried twice.
#[test]
fn a_token_refused_twice_exits_77() {
    let idp = Idp::start(|_| tokens("AT-2", None, 3600));
    let server = FakeServer::start(
        [
            prelude(),
            vec![
                expect(format!("AUTH XOAUTH2 {}", xoauth2("AT-1"))),
                send("535 5.7.3 Authentication unsuccessful\r\n"),
                expect(format!("AUTH XOAUTH2 {}", xoauth2("AT-2"))),
                send("535 5.7.3 Authentication unsuccessful\r\n"),
            ],
            quit(),
        ]
        .concat(),
    );
    let setup = Setup::new(&idp, Some(&server.addr()), "");
    setup.seed("AT-1", Some("RT-1"), 3600);
    let out = run(setup.postie(&send_args()), None, LIMIT);
    server.finish_with(&out.to_string());
    out.assert_code(77, "refused twice");
    assert_eq!(
        out.stderr,
        "postie: AUTH XOAUTH2 refused: 535 5.7.3 Authentication unsuccessful (permanent negative completion)\n"
    );
}

/// A refresh token the provider no longer accepts: 77, one line naming the login to run,
/// and nothing sent past EHLO.
#[test]
fn invalid_grant_exits_77_naming_the_login() {
    let idp = Idp::start(|_| {
        error(
            "invalid_grant",
            "AADSTS70008: The refresh token has expired",
        )
    });
    let server = FakeServer::start([prelude(), quit()].concat());
    let setup = Setup::new(&idp, Some(&server.addr()), "");
    setup.seed("AT-old", Some("RT-dead"), -10);
    let out = run(setup.postie(&send_args()), None, LIMIT);
    server.finish_with(&out.to_string());
    out.assert_code(77, "invalid_grant");
    assert_eq!(
        out.stderr,
        "postie: account work: microsoft no longer accepts the refresh token (invalid_grant: \
         AADSTS70008: The refresh token has expired): run `postie oauth login work`\n"
    );
    // The old file is left as it was.
    assert_eq!(setup.kept()["refresh_token"], "RT-dead");
}

/// Never signed in: 77 with the login to run; a provider that is down: 75 (so --queue
/// keeps the message).
#[test]
fn no_token_is_77_and_an_unreachable_provider_is_75() {
    let idp = Idp::start(|_| (503, "{}".into()));
    let server = FakeServer::start([prelude(), quit()].concat());
    let setup_smtp = Setup::new(&idp, Some(&server.addr()), "");
    let out = run(setup_smtp.postie(&send_args()), None, LIMIT);
    server.finish_with(&out.to_string());
    out.assert_code(77, "no token");
    assert!(
        out.stderr
            .starts_with("postie: account work: not signed in to microsoft (no token in ")
            && out.stderr.ends_with("): run `postie oauth login work`\n"),
        "{out}"
    );
    let setup = Setup::new(&idp, None, "");
    setup.seed("AT-old", Some("RT-1"), -10);
    let out = run(setup.oauth(&["token", "work"]), None, LIMIT);
    out.assert_code(75, "provider down");
    assert_eq!(
        out.stderr,
        format!(
            "postie oauth: the token endpoint {} failed: HTTP 503 (a server error: try again \
             later)\n",
            idp.url("/token")
        )
    );
}

/// Every output of an OAuth send — -vv transcript, --json, the log file, stderr — shows
/// neither the access token nor the refresh token, also when a refresh happened.
#[test]
fn no_output_of_an_oauth_send_shows_a_token() {
    let idp = Idp::start(|_| tokens("AT-SECRET-NEW-9f8e", Some("RT-SECRET-NEW-7d6c"), 3600));
    let server = FakeServer::start(
        [
            prelude(),
            vec![
                expect(format!("AUTH XOAUTH2 {}", xoauth2("AT-SECRET-NEW-9f8e"))),
                send("235 2.7.0 ok\r\n"),
            ],
            accepted(),
        ]
        .concat(),
    );
    let setup = Setup::new(&idp, Some(&server.addr()), "");
    setup.seed("AT-SECRET-OLD-1a2b", Some("RT-SECRET-OLD-3c4d"), -5);
    let log = setup.dir.path().join("send.log");
    let mut args = vec!["-vv", "--json", "--log", log.to_str().unwrap()];
    args.extend(send_args());
    let out = run(setup.postie(&args), None, LIMIT);
    server.finish_with(&out.to_string());
    out.assert_code(0, "send");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        out.stderr.contains("AUTH XOAUTH2"),
        "the transcript is there: {out}"
    );
    assert!(!log_text.is_empty(), "the log line is there");
    let show = run(setup.postie(&["--show-config"]), None, LIMIT);
    show.assert_code(0, "show-config");
    assert!(
        show.stdout.contains("OAuth 2.0 token of account work"),
        "{show}"
    );
    for secret in [
        "AT-SECRET",
        "RT-SECRET",
        "9f8e",
        "7d6c",
        "1a2b",
        "3c4d",
        &xoauth2("AT-SECRET-NEW-9f8e"),
    ] {
        for (what, text) in [
            ("stdout (--json)", &out.stdout),
            ("stderr (-vv)", &out.stderr),
            ("log", &log_text),
            ("--show-config", &show.stdout),
        ] {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// postie oauth token / status / logout
// ---------------------------------------------------------------------------------------

/// `postie oauth token` prints the kept token, or refreshes it first; the file is replaced
/// whole (no temporary file left) and stays 0600.
#[test]
fn token_prints_a_valid_access_token() {
    let idp = Idp::start(|r| {
        if token_grant(r) {
            tokens("AT-refreshed", Some("RT-2"), 3600)
        } else {
            error("invalid_request", "unexpected")
        }
    });
    let setup = Setup::new(&idp, None, "");
    setup.seed("AT-kept", Some("RT-1"), 3600);
    let out = run(setup.oauth(&["token", "work"]), None, LIMIT);
    out.assert_code(0, "token");
    assert_eq!(out.stdout, "AT-kept\n");
    assert!(idp.requests().is_empty());
    setup.seed("AT-kept", Some("RT-1"), 59);
    let out = run(setup.oauth(&["token", "work"]), None, LIMIT);
    out.assert_code(0, "token");
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("AT-refreshed\n", "")
    );
    assert_eq!(setup.kept()["refresh_token"], "RT-2");
    assert_eq!(mode(&setup.token_file()), 0o600);
    let mut names: Vec<_> = std::fs::read_dir(setup.tokens_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["work.json", "work.lock"]);
}

/// Two postie processes with the same expired token (two cron jobs) refresh once: the
/// second waits for the lock and finds the first one's token.
#[test]
fn two_concurrent_refreshes_make_one_token_request() {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let idp = Idp::start(move |r| {
        if token_grant(r) {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            // Slow enough that the other process is waiting on the lock meanwhile.
            std::thread::sleep(Duration::from_millis(800));
            tokens(&format!("AT-{n}"), Some(&format!("RT-{}", n + 1)), 3600)
        } else {
            error("invalid_request", "unexpected")
        }
    });
    let setup = Setup::new(&idp, None, "");
    setup.seed("AT-0", Some("RT-1"), -100);
    let spawn = || {
        setup
            .oauth(&["token", "work"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{a:?} {b:?}");
    assert_eq!(String::from_utf8_lossy(&a.stdout), "AT-1\n");
    assert_eq!(String::from_utf8_lossy(&b.stdout), "AT-1\n");
    assert_eq!(count.load(Ordering::SeqCst), 1, "{:?}", idp.requests());
    assert_eq!(setup.kept()["refresh_token"], "RT-2");
}

/// status says where the token is, until when, and which scopes — never the token; a
/// named account not signed in is 77; logout removes the file.
#[test]
fn status_and_logout() {
    let idp = Idp::start(|_| error("invalid_request", "unexpected"));
    let setup = Setup::new(&idp, None, "");
    let file = setup.token_file();
    let out = run(setup.oauth(&["status", "work"]), None, LIMIT);
    out.assert_code(77, "not signed in");
    assert_eq!(
        out.stdout,
        format!(
            "work (microsoft): not signed in (run `postie oauth login work`); token file {}\n",
            file.display()
        )
    );
    setup.seed("AT-status-secret", Some("RT-status-secret"), 600);
    let out = run(setup.oauth(&["status"]), None, LIMIT);
    out.assert_code(0, "status");
    assert!(
        out.stdout
            .starts_with("work (microsoft): access token valid (until 20")
            && out.stdout.ends_with(&format!(
                ", in 10 min), refresh token kept; scopes: {SCOPES}; token file {}\n",
                file.display()
            )),
        "{out}"
    );
    assert!(!out.stdout.contains("secret") && !out.stderr.contains("secret"));
    let out = run(setup.oauth(&["logout", "work"]), None, LIMIT);
    out.assert_code(0, "logout");
    assert!(!file.exists());
    let out = run(setup.oauth(&["logout", "work"]), None, LIMIT);
    assert_eq!(
        out.stderr,
        "postie oauth: account work: no tokens were kept\n"
    );
}

// ---------------------------------------------------------------------------------------
// Login: device flow
// ---------------------------------------------------------------------------------------

/// A device endpoint answer with the given lifetime and interval.
fn device_answer(expires_in: u64, interval: u64) -> (u16, String) {
    (
        200,
        format!(
            "{{\"device_code\":\"DC-1\",\"user_code\":\"ABCD-EFGH\",\
             \"verification_uri\":\"https://microsoft.example/devicelogin\",\
             \"expires_in\":{expires_in},\"interval\":{interval}}}"
        ),
    )
}

fn device_poll(r: &Request) -> bool {
    r.path == "/token"
        && r.field("grant_type") == "urn:ietf:params:oauth:grant-type:device_code"
        && r.field("device_code") == "DC-1"
        && r.field("client_id") == "cid-123"
}

/// Pending twice, then slow_down (the next interval grows by 5 s), then tokens: the login
/// prints where to go and the code, waits as told, and keeps the tokens 0600.
#[test]
fn device_login_polls_until_signed_in_and_honours_slow_down() {
    let polls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&polls);
    let idp = Idp::start(move |r| {
        if r.path == "/device" && r.field("client_id") == "cid-123" && r.field("scope") == SCOPES {
            return device_answer(60, 1);
        }
        if !device_poll(r) {
            return error("invalid_request", "unexpected");
        }
        match seen.fetch_add(1, Ordering::SeqCst) {
            0 => error("authorization_pending", "waiting"),
            1 => error("slow_down", "too fast"),
            _ => tokens("AT-device", Some("RT-device"), 3600),
        }
    });
    let setup = Setup::new(&idp, None, "");
    let out = run(setup.oauth(&["login", "work"]), None, LIMIT);
    out.assert_code(0, "device login");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "postie oauth: to sign in account work, open https://microsoft.example/devicelogin and enter \
         the code ABCD-EFGH (valid for 1 min)"
    );
    assert!(
        lines[1].starts_with("postie oauth: account work signed in (until 20")
            && lines[1].ends_with(&format!(
                "in 60 min), with a refresh token; token kept in {}",
                setup.token_file().display()
            )),
        "{out}"
    );
    assert_eq!(lines.len(), 2, "{out}");
    let times: Vec<Instant> = idp
        .requests()
        .iter()
        .filter(|r| device_poll(r))
        .map(|r| r.at)
        .collect();
    assert_eq!(times.len(), 3);
    let gap = times[2] - times[1];
    assert!(
        gap >= Duration::from_secs(6),
        "slow_down must add 5 s: {gap:?}"
    );
    assert_eq!(setup.kept()["access_token"], "AT-device");
    assert_eq!(setup.kept()["refresh_token"], "RT-device");
    assert_eq!(mode(&setup.token_file()), 0o600);
}

/// The user declines: 77, nothing kept. The code expires: 77 with the login to run again.
#[test]
fn device_login_denied_or_expired_exits_77() {
    let idp = Idp::start(|r| {
        if r.path == "/device" {
            device_answer(60, 1)
        } else {
            error("access_denied", "the user said no")
        }
    });
    let setup = Setup::new(&idp, None, "");
    let out = run(setup.oauth(&["login", "work", "--device"]), None, LIMIT);
    out.assert_code(77, "denied");
    assert_eq!(
        out.stderr.lines().last(),
        Some("postie oauth: account work: the sign-in was declined")
    );
    assert!(!setup.token_file().exists());

    let idp = Idp::start(|r| {
        if r.path == "/device" {
            device_answer(3, 1)
        } else {
            error("authorization_pending", "")
        }
    });
    let setup = Setup::new(&idp, None, "");
    let started = Instant::now();
    let out = run(setup.oauth(&["login", "work"]), None, LIMIT);
    out.assert_code(77, "expired");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        out.stderr.lines().last(),
        Some(
            "postie oauth: account work: the code expired before the sign-in was finished: run \
             `postie oauth login work`"
        )
    );
    let idp = Idp::start(|r| {
        if r.path == "/device" {
            device_answer(60, 1)
        } else {
            error("expired_token", "")
        }
    });
    let setup = Setup::new(&idp, None, "");
    let out = run(setup.oauth(&["login", "work"]), None, LIMIT);
    out.assert_code(77, "expired_token");
}

// ---------------------------------------------------------------------------------------
// Login: browser flow
// ---------------------------------------------------------------------------------------

/// Start `postie oauth login work --browser` and read its stderr up to the address to
/// open; the child, the address, and the rest of stderr.
fn start_browser_login(
    setup: &Setup,
) -> (
    std::process::Child,
    String,
    BufReader<std::process::ChildStderr>,
) {
    let mut child = setup
        .oauth(&["login", "work", "--browser"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut url = String::new();
    for _ in 0..5 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(u) = line.trim().strip_prefix("https://") {
            url = format!("https://{u}");
            break;
        }
    }
    assert!(!url.is_empty(), "no address printed");
    (child, url, err)
}

fn query(url: &str) -> std::collections::BTreeMap<String, String> {
    let (_, q) = url.split_once('?').unwrap();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The browser's GET of the redirect address (plain HTTP to postie's loopback listener).
fn browser_get(url: &str) -> (u16, String) {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut r = agent.get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// PKCE (S256) and state: the test plays the browser, returning to the loopback address
/// with the code; the token request carries the verifier whose hash was the challenge.
#[test]
fn browser_login_with_pkce_and_state() {
    let idp = Idp::start(|r| {
        if r.path == "/token"
            && r.field("grant_type") == "authorization_code"
            && r.field("code") == "CODE-1"
        {
            tokens("AT-browser", Some("RT-browser"), 3600)
        } else {
            error("invalid_grant", "unexpected")
        }
    });
    let setup = Setup::new(&idp, None, "");
    let (mut child, url, _err) = start_browser_login(&setup);
    assert!(
        url.starts_with(&format!("{}?", idp.url("/authorize"))),
        "{url}"
    );
    let q = query(&url);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "cid-123");
    assert_eq!(q["scope"], SCOPES);
    assert_eq!(q["code_challenge_method"], "S256");
    let redirect = &q["redirect_uri"];
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with('/'),
        "{redirect}"
    );
    // A stray request (a favicon) is answered 404 and the login keeps waiting.
    assert_eq!(browser_get(&format!("{redirect}favicon.ico")).0, 404);
    let (status, page) = browser_get(&format!("{redirect}?code=CODE-1&state={}", q["state"]));
    assert_eq!(
        (status, page.as_str()),
        (200, "postie oauth: signed in. You can close this window.")
    );
    let code = crate::support::run::wait_bounded(&mut child, LIMIT, "browser login");
    assert_eq!(code, Some(0));
    let exchange = idp.requests_to("/token");
    assert_eq!(exchange.len(), 1);
    let verifier = exchange[0].field("code_verifier");
    let hashed = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    assert_eq!(hashed, q["code_challenge"]);
    assert_eq!(exchange[0].field("redirect_uri"), redirect);
    assert_eq!(setup.kept()["access_token"], "AT-browser");
}

/// A redirect with another state did not come from this login: refused (400 to the
/// browser, 77), no code exchanged.
#[test]
fn browser_login_refuses_a_foreign_state() {
    let idp = Idp::start(|_| tokens("AT-x", None, 3600));
    let setup = Setup::new(&idp, None, "");
    let (mut child, url, mut err) = start_browser_login(&setup);
    let redirect = query(&url)["redirect_uri"].clone();
    let (status, _) = browser_get(&format!("{redirect}?code=CODE-1&state=forged"));
    assert_eq!(status, 400);
    let code = crate::support::run::wait_bounded(&mut child, LIMIT, "browser login");
    assert_eq!(code, Some(77));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(
        rest.ends_with(
            "postie oauth: the browser's redirect carried a different state: it did not come from \
         this login (start it again)\n"
        ),
        "{rest}"
    );
    assert!(idp.requests().is_empty());
    assert!(!setup.token_file().exists());
}

// ---------------------------------------------------------------------------------------
// Configuration and msmtp
// ---------------------------------------------------------------------------------------

/// A client secret in the file makes it private, as a password does; a misspelt key in
/// the oauth table is an error naming it.
#[test]
fn oauth_tables_are_checked() {
    let idp = Idp::start(|_| error("x", "y"));
    let setup = Setup::new(&idp, None, "");
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(&setup.config, format!("{text}client_secret = \"cs\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&setup.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(setup.oauth(&["status"]), None, LIMIT);
    out.assert_code(78, "world-readable secret");
    assert!(out.stderr.contains("password"), "{out}");
    std::fs::write(&setup.config, format!("{text}clientid = \"x\"\n")).unwrap();
    let out = run(setup.oauth(&["status"]), None, LIMIT);
    out.assert_code(78, "unknown key");
    assert!(out.stderr.contains("oauth.clientid: unknown key"), "{out}");
}

/// `postie oauth token` as msmtp's passwordeval: msmtp authenticates with XOAUTH2 and the
/// token postie printed.
#[test]
fn msmtp_uses_postie_as_its_token_manager() {
    if Command::new("msmtp").arg("--version").output().is_err() {
        crate::support::skip("msmtp is not installed");
        return;
    }
    let idp = Idp::start(|_| error("x", "y"));
    let server = FakeServer::start(
        [
            vec![greeting()],
            vec![expect_prefix_ehlo()],
            vec![send(crate::support::fake_server::ehlo_reply(&["STARTTLS"]))],
            starttls(Step::StartTls),
            vec![expect_prefix_ehlo()],
            vec![send(crate::support::fake_server::ehlo_reply(&[
                "AUTH XOAUTH2",
            ]))],
            // msmtp sends no initial response.
            vec![
                expect("AUTH XOAUTH2"),
                send("334 \r\n"),
                expect(xoauth2("AT-for-msmtp")),
                send("235 2.7.0 ok\r\n"),
            ],
            envelope(USER, &[TO]),
            data("250 2.0.0 Ok\r\n"),
            vec![expect("QUIT"), send("221 bye\r\n")],
        ]
        .concat(),
    );
    let setup = Setup::new(&idp, None, "");
    setup.seed("AT-for-msmtp", Some("RT"), 3600);
    let postie = env!("CARGO_BIN_EXE_postie");
    let (host, port) = server
        .addr()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .unwrap();
    let rc = setup.dir.path().join("msmtprc");
    std::fs::write(
        &rc,
        format!(
            "account default\nhost {host}\nport {port}\ntls on\ntls_starttls on\ntls_trust_file {}\n\
             auth xoauth2\nuser {USER}\nfrom {USER}\n\
             passwordeval \"POSTIE_OAUTH_DIR={} {postie} oauth -C {} token work\"\n",
            ca(),
            setup.tokens_dir().display(),
            setup.config.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut cmd = Command::new("msmtp");
    cmd.arg("-C").arg(&rc).arg(TO);
    let out: Outcome = run(cmd, Some(b"Subject: hi\r\n\r\nHello\r\n"), LIMIT);
    server.finish_with(&out.to_string());
    out.assert_code(0, "msmtp with passwordeval");
}

fn expect_prefix_ehlo() -> Step {
    crate::support::fake_server::expect_prefix("EHLO ")
}

// ---------------------------------------------------------------------------------------
// Every mode that authenticates
// ---------------------------------------------------------------------------------------

/// The SMTP script of one authenticated connection carrying `messages` transactions from
/// [`USER`] to [`TO`], AUTH XOAUTH2 with `token`.
fn authenticated(token: &str, messages: usize) -> Vec<Step> {
    let mut script = prelude();
    script.push(expect(format!("AUTH XOAUTH2 {}", xoauth2(token))));
    script.push(send("235 2.7.0 ok\r\n"));
    // No RSET between delivered messages: each end-of-data reply ended its transaction.
    for _ in 0..messages {
        script.extend(envelope(USER, &[TO]));
        script.extend(data("250 2.0.0 Ok: queued\r\n"));
    }
    script.extend(quit());
    script
}

/// A system configuration directory holding `postie.toml` = the setup's file with
/// `server` replaced, and a bin/ with the persona symlinks.
fn system_install(setup: &Setup, server: &str) -> (PathBuf, PathBuf) {
    let etc = setup.dir.path().join("etc");
    let bin = setup.dir.path().join("bin");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let text = std::fs::read_to_string(&setup.config).unwrap();
    let text = text
        .lines()
        .filter(|l| !l.starts_with("server = ") && !l.starts_with("port = "))
        .map(|l| {
            if l == "[account.work]" {
                format!("{l}\nserver = {server}\ntls_ca = \"{}\"", ca())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(etc.join("postie.toml"), text).unwrap();
    for name in ["sendmail", "mail"] {
        let link = bin.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_postie"), link).unwrap();
        }
    }
    (etc, bin)
}

/// `program` (postie or a persona from `bin`) with the system configuration in `etc`.
fn installed(setup: &Setup, etc: &Path, program: PathBuf, args: &[&str]) -> Command {
    let base = postie();
    let mut cmd = Command::new(program);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("POSTIE_SYSCONFDIR", etc)
        .env("POSTIE_OAUTH_DIR", setup.tokens_dir())
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// The account's token reaches AUTH whichever way the message goes: the sendmail and mailx
/// personas, `postie batch` (one AUTH for two messages), the fallback list (the first
/// server refuses the connection), a queue flush of a queued message, and sendmail -bs.
#[test]
fn every_mode_authenticates_with_the_kept_token() {
    let idp = Idp::start(|_| error("invalid_request", "no request expected"));
    let setup = Setup::new(&idp, None, "");
    setup.seed("AT-modes", Some("RT-modes"), 3600);
    let message = format!("From: {USER}\r\nTo: {TO}\r\nSubject: modes\r\n\r\nHello\r\n");

    // Each case: what runs, its stdin, how many messages the server takes.
    let outbox = setup.dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    for i in 1..=2 {
        std::fs::write(outbox.join(format!("m{i}.eml")), &message).unwrap();
    }
    let bs_input = format!(
        "EHLO client.example.test\r\nMAIL FROM:<{USER}>\r\nRCPT TO:<{TO}>\r\nDATA\r\n{message}.\r\nQUIT\r\n"
    );
    let postie_bin = PathBuf::from(env!("CARGO_BIN_EXE_postie"));
    type Case<'a> = (&'a str, Vec<String>, Option<String>, usize);
    let outbox_arg = outbox.to_str().unwrap().to_string();
    let cases: Vec<Case> = vec![
        ("sendmail -t", vec!["-t".into()], Some(message.clone()), 1),
        (
            "mail -s",
            vec!["-s".into(), "modes".into(), TO.into()],
            Some("Hello\n".into()),
            1,
        ),
        ("postie batch", vec!["batch".into(), outbox_arg], None, 2),
        ("sendmail -bs", vec!["-bs".into()], Some(bs_input), 1),
    ];
    for (what, args, stdin, messages) in cases {
        let server = FakeServer::start(authenticated("AT-modes", messages));
        let (etc, bin) = system_install(&setup, &format!("\"{}\"", server.addr()));
        let program = match what.split(' ').next() {
            Some("postie") => postie_bin.clone(),
            Some(name) => bin.join(name),
            None => unreachable!(),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(
            installed(&setup, &etc, program, &args),
            stdin.as_deref().map(str::as_bytes),
            LIMIT,
        );
        server.finish_with(&format!("{what}\n{out}"));
        out.assert_code(0, what);
    }

    // The fallback list: the first server refuses the connection, the second takes AUTH.
    let server = FakeServer::start(authenticated("AT-modes", 1));
    let (etc, _) = system_install(&setup, &format!("[\"127.0.0.1:1\", \"{}\"]", server.addr()));
    let out = run(
        installed(&setup, &etc, postie_bin.clone(), &send_args()),
        None,
        LIMIT,
    );
    server.finish_with(&out.to_string());
    out.assert_code(0, "fallback list");

    // A queue run: queued while no server answers, delivered by `postie queue run`.
    let queue = setup.dir.path().join("queue");
    let (etc, _) = system_install(&setup, "\"127.0.0.1:1\"");
    let mut args = vec!["--queue", "--queue-dir", queue.to_str().unwrap()];
    args.extend(send_args());
    let out = run(
        installed(&setup, &etc, postie_bin.clone(), &args),
        None,
        LIMIT,
    );
    out.assert_code(0, "queued");
    let server = FakeServer::start(authenticated("AT-modes", 1));
    let (etc, _) = system_install(&setup, &format!("\"{}\"", server.addr()));
    let out = run(
        installed(
            &setup,
            &etc,
            postie_bin,
            &["queue", "flush", "--queue-dir", queue.to_str().unwrap()],
        ),
        None,
        LIMIT,
    );
    server.finish_with(&out.to_string());
    out.assert_code(0, "queue flush");
    assert!(idp.requests().is_empty(), "{:?}", idp.requests());
}

/// A token endpoint whose certificate the account does not trust: 69 with the reason in
/// words, and the kept token left alone.
#[test]
fn an_untrusted_token_endpoint_is_refused() {
    let idp = Idp::start(|_| tokens("AT-never", None, 3600));
    let setup = Setup::new(&idp, None, "");
    let text = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("ca_file = \"{}\"", ca()),
        &format!(
            "ca_file = \"{}\"",
            crate::support::certs::other_ca_pem().display()
        ),
    );
    std::fs::write(&setup.config, text).unwrap();
    setup.seed("AT-old", Some("RT-1"), -10);
    let out = run(setup.oauth(&["token", "work"]), None, LIMIT);
    out.assert_code(69, "untrusted");
    assert!(
        out.stderr.starts_with(&format!(
            "postie oauth: the token endpoint {}: TLS certificate of 127.0.0.1 rejected: ",
            idp.url("/token")
        )),
        "{out}"
    );
    assert!(idp.requests().is_empty());
    assert_eq!(setup.kept()["access_token"], "AT-old");
}
