//! A private, real Postfix on loopback for postie's interop tests.
//!
//! [`Postfix::get`] starts one Postfix per test process (shared by all tests; each test uses
//! its own recipient addresses) and returns `None` after printing `skipping: <reason>` when
//! Postfix cannot run here. With `POSTIE_REQUIRE_POSTFIX=1` (CI sets it) that is a panic
//! instead, so interop tests cannot silently skip.
//!
//! What it needs: Debian's `postfix`, `sasl2-bin` (saslpasswd2) and `libsasl2-modules`
//! (PLAIN, LOGIN), run as root (Postfix's master must be root; daemons drop to user
//! `postfix`, the capture pipe runs as `nobody`, so the run directory's parents must be
//! world-searchable). It never touches /etc/postfix, the system queue or port 25.
//!
//! How it works: a run directory `$CARGO_TARGET_TMPDIR/postfix-<pid>` (or
//! `<temp dir>/postie-tests/postfix-<pid>` when an ancestor of the former is not
//! world-searchable, e.g. a checkout under /root) gets its own config
//! directory (`conf/main.cf`, `conf/master.cf` from the templates in `support/postfix/`),
//! queue, data directory, log file (`maillog`, via postlogd: no syslog needed), sasldb with
//! one user, and a texthash recipient access map (`tempfail@example.test` → 450 4.2.0,
//! `nosuchuser@example.test` → 550 5.1.1). `postfix -c conf check` creates the queue
//! subdirectories; then `support/postfix/watchdog.sh` starts a background loop and execs
//! `master -c conf` (in the foreground, as this process's child); the loop stops master
//! (TERM, then KILL after 5 s) within about a second of this test process disappearing:
//! statics have no `Drop`, so the watchdog is the cleanup. Run directories of earlier,
//! finished test processes are removed at start; the current one is kept for post-mortems.
//!
//! Listeners, all on 127.0.0.1 with free ports picked at start:
//! - `plain_port`: no TLS offered, AUTH PLAIN/LOGIN allowed in clear text;
//! - `submission_port`: STARTTLS required before MAIL, AUTH only inside TLS (RFC 6409, 3207);
//! - `smtps_port`: implicit TLS (RFC 8314), AUTH inside TLS;
//! - `seven_bit_port`: as `plain_port`, but without 8BITMIME in its EHLO reply
//!   (`smtpd_discard_ehlo_keywords = 8bitmime`).
//!
//! The server certificate is `certs::pki()`'s leaf (localhost, 127.0.0.1, ::1). Mail for
//! `example.test` (a relay domain, so no relay permission is needed) goes to a pipe(8)
//! transport that stores each message per recipient as `mail/<recipient>`: the bytes as
//! delivered, with LF line endings (pipe converts CRLF) and Postfix's `Received:` header
//! prepended, nothing else added (no Return-Path/Delivered-To, no header rewriting, no MIME
//! conversion). `message_size_limit` is 20 MiB. DNS is never consulted (no peer name
//! lookup, no DNS in the SMTP client, fixed `myhostname`).
//!
//! Must not: talk to anything but 127.0.0.1, wait without a bound, or leave a daemon
//! running after the tests.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MAIN_CF: &str = include_str!("postfix/main.cf.in");
const MASTER_CF: &str = include_str!("postfix/master.cf.in");
const CAPTURE_SH: &str = include_str!("postfix/capture.sh");
const WATCHDOG_SH: &str = include_str!("postfix/watchdog.sh");

const ACCESS: &str = "tempfail@example.test 450 4.2.0 try later\n\
                      nosuchuser@example.test 550 5.1.1 no such user\n";
const SASL_CONF: &str = "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN SCRAM-SHA-256 CRAM-MD5\n";

/// How long `get` waits for the listeners, and `delivered` for a message.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// One running private Postfix (see the module docs).
pub struct Postfix {
    pub plain_port: u16,
    pub submission_port: u16,
    pub smtps_port: u16,
    /// Like `plain_port`, but EHLO does not offer 8BITMIME (RFC 6152).
    pub seven_bit_port: u16,
    /// SASL login, e.g. `alice@example.test`.
    pub user: String,
    pub password: String,
    /// A file holding exactly `password` (no newline), for `--password-file`.
    pub password_file: PathBuf,
    /// The run directory (config, queue, `maillog`, `mail/`).
    pub dir: PathBuf,
}

impl Postfix {
    /// The shared Postfix of this test process, started on first use; `None` (after
    /// saying `skipping TEST: <reason>`) when Postfix is not usable here, a panic instead when
    /// `POSTIE_REQUIRE_POSTFIX=1`, and a panic when it is installed but fails to start.
    pub fn get() -> Option<&'static Postfix> {
        static PF: OnceLock<Result<Result<Postfix, String>, String>> = OnceLock::new();
        match PF.get_or_init(start) {
            Ok(Ok(pf)) => Some(pf),
            // Every test that skips says so, not only the first.
            Ok(Err(reason)) => {
                super::skip(reason);
                None
            }
            Err(e) => panic!("test Postfix failed to start: {e}"),
        }
    }

    /// The message delivered to `rcpt`, as stored by the capture pipe (LF line endings,
    /// `Received:` prepended). Waits up to 20 s; panics with the end of the Postfix log.
    pub fn delivered(&self, rcpt: &str) -> Vec<u8> {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            if let Some(bytes) = self.try_delivered(rcpt) {
                return bytes;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no message delivered to {rcpt} within {DELIVERY_TIMEOUT:?}; delivered: \
                     {:?}\n--- Postfix log (tail) ---\n{}",
                    self.mailboxes(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The message delivered to `rcpt` so far, without waiting.
    pub fn try_delivered(&self, rcpt: &str) -> Option<Vec<u8>> {
        std::fs::read(self.mail_dir().join(rcpt.to_ascii_lowercase())).ok()
    }

    /// The whole Postfix log so far (for asserting on `sasl_method=...` and the like).
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }

    /// The last `n` lines of the Postfix log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        tail(&self.log(), n)
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.join("mail")
    }

    fn mailboxes(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.mail_dir())
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// `Ok(Err(reason))`: not usable here, skip; `Err`: installed but failed to start.
fn start() -> Result<Result<Postfix, String>, String> {
    let tools = match find_tools() {
        Ok(t) => t,
        Err(reason) => {
            if std::env::var_os("POSTIE_REQUIRE_POSTFIX").is_some_and(|v| v == "1") {
                panic!("POSTIE_REQUIRE_POSTFIX=1 but Postfix is not usable: {reason}");
            }
            return Ok(Err(reason));
        }
    };
    let base = run_base()?;
    remove_stale_run_dirs(&base);
    let dir = base.join(format!("postfix-{}", std::process::id()));
    let dir_str = dir.to_str().ok_or("run dir is not UTF-8")?.to_owned();
    if dir_str.contains(|c: char| c.is_whitespace() || c == ',') {
        return Err(format!(
            "run dir {dir_str:?} must not contain spaces or commas"
        ));
    }
    // Ports are picked by binding :0 and letting go, so another process may grab one
    // before master binds it: then master dies at once and we try again with new ports.
    let mut errors = Vec::new();
    for _attempt in 0..3 {
        match start_in(&tools, &dir, &dir_str) {
            Ok(pf) => return Ok(Ok(pf)),
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("\n--- next attempt ---\n"))
}

struct Tools {
    postfix: PathBuf,
    master: PathBuf,
    saslpasswd2: PathBuf,
}

/// Finds what is needed, or says (for the skip message) what is missing.
fn find_tools() -> Result<Tools, String> {
    let postfix = which("postfix").ok_or("postfix is not installed (apt-get install postfix)")?;
    let postconf = which("postconf").ok_or("postconf not found (postfix package broken?)")?;
    let saslpasswd2 =
        which("saslpasswd2").ok_or("saslpasswd2 not found (apt-get install sasl2-bin)")?;
    // `postconf -d` works without any main.cf.
    let out = Command::new(&postconf)
        .args(["-d", "-h", "daemon_directory"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running postconf: {e}"))?;
    let daemon_dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let master = Path::new(&daemon_dir).join("master");
    if !out.status.success() || !master.is_file() {
        return Err(format!(
            "Postfix master not found (daemon_directory {daemon_dir:?})"
        ));
    }
    if !is_root() {
        return Err("Postfix's master must run as root, and these tests do not".into());
    }
    Ok(Tools {
        postfix,
        master,
        saslpasswd2,
    })
}

/// Where run directories go: `$CARGO_TARGET_TMPDIR`, unless one of its ancestors is not
/// searchable by others (a checkout under /root, say): then postfix and nobody could not
/// reach the run directory, so `<temp dir>/postie-tests` is used instead.
fn run_base() -> Result<PathBuf, String> {
    let preferred = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if world_searchable(&preferred) {
        return Ok(preferred);
    }
    let fallback = std::env::temp_dir().join("postie-tests");
    std::fs::create_dir_all(&fallback)
        .map_err(|e| format!("creating {}: {e}", fallback.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fallback, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", fallback.display()))?;
    }
    if world_searchable(&fallback) {
        Ok(fallback)
    } else {
        Err(format!(
            "neither {} nor {} is reachable by the postfix and nobody users",
            preferred.display(),
            fallback.display()
        ))
    }
}

/// Whether `dir` and all its ancestors carry the search (x) bit for others.
fn world_searchable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors().all(|d| {
        d.as_os_str().is_empty()
            || std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    })
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    // The effective uid is the second field of "Uid:" in /proc/self/status.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Removes `postfix-<pid>` run directories whose test process is gone.
fn remove_stale_run_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("postfix-")) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("picking a free port: {e}"))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn start_in(tools: &Tools, dir: &Path, dir_str: &str) -> Result<Postfix, String> {
    use std::os::unix::fs::PermissionsExt;

    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("clearing {dir_str}: {e}"))?;
    }
    let conf = dir.join("conf");
    for d in ["conf/sasl", "queue", "data", "mail"] {
        std::fs::create_dir_all(dir.join(d)).map_err(|e| format!("creating {d}: {e}"))?;
    }
    // World-traversable run dir; the capture pipe (user nobody) writes into mail/.
    let mode = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m))
            .map_err(|e| format!("chmod {}: {e}", p.display()))
    };
    mode(dir, 0o755)?;
    mode(&dir.join("mail"), 0o1777)?;

    let pki = crate::support::certs::pki();
    let (plain, submission, smtps) = (free_port()?, free_port()?, free_port()?);
    let seven_bit = free_port()?;
    let fill = |t: &str| {
        t.replace("@RUN@", dir_str)
            .replace("@CERT@", &pki.cert_pem.to_string_lossy())
            .replace("@KEY@", &pki.key_pem.to_string_lossy())
            .replace("@PLAIN_PORT@", &plain.to_string())
            .replace("@SUBMISSION_PORT@", &submission.to_string())
            .replace("@SMTPS_PORT@", &smtps.to_string())
            .replace("@SEVEN_BIT_PORT@", &seven_bit.to_string())
    };
    write(&conf.join("main.cf"), &fill(MAIN_CF))?;
    write(&conf.join("master.cf"), &fill(MASTER_CF))?;
    write(&conf.join("access"), ACCESS)?;
    let sasldb = dir.join("sasldb2");
    write(
        &conf.join("sasl/smtpd.conf"),
        &format!("{SASL_CONF}sasldb_path: {dir_str}/sasldb2\n"),
    )?;
    write(&dir.join("capture.sh"), CAPTURE_SH)?;
    write(&dir.join("watchdog.sh"), WATCHDOG_SH)?;

    let (login, realm, password) = ("alice", "example.test", "s3cret-T3st-pass");
    let password_file = dir.join("password");
    write(&password_file, password)?;
    mode(&password_file, 0o600)?;
    let mut child = Command::new(&tools.saslpasswd2)
        .args(["-p", "-c", "-f"])
        .arg(&sasldb)
        .args(["-u", realm, login])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running saslpasswd2: {e}"))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or("saslpasswd2: no stdin")?;
        stdin
            .write_all(password.as_bytes())
            .map_err(|e| format!("saslpasswd2 stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("saslpasswd2: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "saslpasswd2: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // smtpd (user postfix) reads the sasldb; data_directory belongs to postfix.
    run(
        Command::new("chgrp").arg("postfix").arg(&sasldb),
        "chgrp postfix sasldb2",
    )?;
    mode(&sasldb, 0o640)?;
    run(
        Command::new("chown").arg("postfix").arg(dir.join("data")),
        "chown postfix data",
    )?;
    run(
        Command::new(&tools.postfix)
            .arg("-c")
            .arg(&conf)
            .arg("check"),
        "postfix check",
    )?;

    let master_out = std::fs::File::create(dir.join("master.out"))
        .map_err(|e| format!("creating master.out: {e}"))?;
    let master_err = master_out
        .try_clone()
        .map_err(|e| format!("master.out: {e}"))?;
    // The shell execs master, so `master` is master's own process.
    let mut master = Command::new("/bin/sh")
        .arg(dir.join("watchdog.sh"))
        .arg(std::process::id().to_string())
        .arg(&tools.master)
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(master_out)
        .stderr(master_err)
        .spawn()
        .map_err(|e| format!("starting master: {e}"))?;

    // master binds every listener before it serves any, so two probes cover all three;
    // the submission probe also proves smtpd starts with the TLS settings. (A probe of the
    // wrapper-mode port would only leave an "SSL_accept error" in the log.)
    let ports = [plain, submission];
    if let Err(e) = wait_ready(&ports, &mut master) {
        let _ = master.kill();
        let _ = master.wait();
        return Err(format!(
            "{e}\n--- master.out ---\n{}\n--- Postfix log (tail) ---\n{}",
            std::fs::read_to_string(dir.join("master.out")).unwrap_or_default(),
            tail(&read_log(dir), 30)
        ));
    }
    // Not waited for: master ends (via the watchdog loop) after this process has.
    drop(master);
    Ok(Postfix {
        plain_port: plain,
        submission_port: submission,
        smtps_port: smtps,
        seven_bit_port: seven_bit,
        user: format!("{login}@{realm}"),
        password: password.to_owned(),
        password_file,
        dir: dir.to_path_buf(),
    })
}

fn read_log(dir: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join("maillog")).unwrap_or_default()).into_owned()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits until each of `ports` greets with 220, or master has died, or START_TIMEOUT has
/// passed.
fn wait_ready(ports: &[u16], master: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    for &port in ports {
        loop {
            if let Ok(Some(status)) = master.try_wait() {
                return Err(format!("master exited early ({status})"));
            }
            let err = match probe(port) {
                Ok(()) => break,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "port {port} not ready after {START_TIMEOUT:?}: {err}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn probe(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let n = s
        .read(&mut buf)
        .map_err(|e| format!("read greeting: {e}"))?;
    if buf[..n].starts_with(b"220 ") {
        use std::io::Write;
        let _ = s.write_all(b"QUIT\r\n");
        Ok(())
    } else {
        Err(format!(
            "greeting: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ))
    }
}
