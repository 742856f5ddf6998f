//! The password prompt on a real terminal (issue 13): the built postie runs with a
//! pseudo-terminal as its controlling terminal (python3's `os.openpty`, a new session,
//! `TIOCSCTTY`), so its `/dev/tty` is the pty; the test reads the pty's other side like a
//! user's screen and types into it.
//!
//! Owns: that echo is already off when the prompt becomes visible, that nothing typed is
//! echoed, that the typed password is the one used for AUTH, that the terminal's settings
//! (echo on) come back afterwards, and that Ctrl-C at the prompt ends postie with one line
//! (78) and the terminal restored. The order itself (echo off, then the prompt) cannot be
//! caught reliably from outside — with the opposite order a fast child could still turn
//! echo off before the reader looks — so the check at the prompt is one-sided: it can
//! only fail when echo is on at that moment, which is the bug.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

use crate::support::fake_server::{data, ehlo, envelope, expect, greeting, quit, send, FakeServer};
use crate::support::postie;
use crate::support::run::Outcome;

/// The user side of the terminal: runs `argv` on a new pty, waits for the prompt, records
/// whether ECHO is off then, types `typed`, and reports as JSON what the screen showed
/// after the prompt, whether echo is on again after the exit, and the exit status.
const PTY_USER: &str = r#"
import fcntl, json, os, select, sys, termios, time
typed = sys.argv[1].encode().decode('unicode_escape').encode('latin-1')
argv = sys.argv[2:]
m, s = os.openpty()
pid = os.fork()
if pid == 0:
    os.close(m)
    os.setsid()
    fcntl.ioctl(s, termios.TIOCSCTTY, 0)
    os.execv(argv[0], argv)
def read_until(pred, limit):
    seen = b''
    end = time.time() + limit
    while time.time() < end and not pred(seen):
        r, _, _ = select.select([m], [], [], 0.1)
        if r:
            try:
                chunk = os.read(m, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen
screen = read_until(lambda b: b'password for' in b and b.endswith(b': '), 20)
echo_at_prompt = bool(termios.tcgetattr(s)[3] & termios.ECHO)
os.write(m, typed)
after = b''
status = None
end = time.time() + 30
while time.time() < end:
    after += read_until(lambda b: False, 0.2)
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
after += read_until(lambda b: False, 0.3)
echo_after = bool(termios.tcgetattr(s)[3] & termios.ECHO)
print(json.dumps({
    "prompt": screen.decode('utf-8', 'replace'),
    "echo_at_prompt": echo_at_prompt,
    "after": after.decode('utf-8', 'replace'),
    "echo_after": echo_after,
    "exit": os.waitstatus_to_exitcode(status) if status is not None else None,
}))
"#;

/// postie's environment (test mode, no config) for the python runner.
fn user_at_terminal(typed: &str, postie_args: &[&str]) -> Option<(serde_json::Value, Outcome)> {
    let probe = Command::new("python3").arg("-c").arg("import pty").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        crate::support::skip("python3 is not installed (needed to drive a pty)");
        return None;
    }
    let base = postie();
    let mut cmd = Command::new("python3");
    for (key, value) in base.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd.arg("-c")
        .arg(PTY_USER)
        .arg(typed)
        .arg(env!("CARGO_BIN_EXE_postie"))
        .args(postie_args)
        .stdin(Stdio::null());
    let out = crate::support::run::run(cmd, None, Duration::from_secs(90));
    let report = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("the pty runner's report ({e}): {}", out.describe()));
    Some((report, out))
}

#[test]
fn the_prompt_hides_what_is_typed_and_restores_the_terminal() {
    let password = "s3cret-T\u{e9}st";
    let plain = format!("\0alice\0{password}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(plain);
    let script = [
        vec![greeting()],
        ehlo(&["AUTH PLAIN"]),
        vec![
            expect(format!("AUTH PLAIN {b64}")),
            send("235 2.7.0 ok\r\n"),
        ],
        envelope("a@example.test", &["b@example.test"]),
        data("250 2.0.0 queued\r\n"),
        quit(),
    ]
    .concat();
    let server = FakeServer::start(script);
    let addr = server.addr();
    let args = [
        "--server",
        &addr,
        "--tls",
        "none",
        "--allow-plaintext-auth",
        "--user",
        "alice",
        "--timeout",
        "10",
        "-f",
        "a@example.test",
        "-s",
        "hi",
        "--body",
        "hi",
        "b@example.test",
    ];
    // Typed with a slip corrected by backspace, then Enter.
    let typed = "s3cret-T\\xc3\\xa9sx\\x7ft\\r";
    let Some((report, out)) = user_at_terminal(typed, &args) else {
        return;
    };
    server.finish_with(&out.stderr);
    assert_eq!(report["exit"], 0, "{report}\n{}", out.describe());
    assert_eq!(report["prompt"], "postie: password for alice: ", "{report}");
    assert_eq!(
        report["echo_at_prompt"], false,
        "echo on at the prompt: {report}"
    );
    // Only the newline for the Enter that was not echoed.
    assert_eq!(report["after"], "\r\n", "{report}");
    assert_eq!(report["echo_after"], true, "{report}");
}

#[test]
fn ctrl_c_at_the_prompt_ends_postie_with_the_terminal_restored() {
    let args = [
        "--server",
        "127.0.0.1:9",
        "--tls",
        "none",
        "--allow-plaintext-auth",
        "--user",
        "alice",
        "-f",
        "a@example.test",
        "--body",
        "hi",
        "b@example.test",
    ];
    let Some((report, out)) = user_at_terminal("abc\\x03", &args) else {
        return;
    };
    assert_eq!(report["exit"], 78, "{report}\n{}", out.describe());
    assert_eq!(report["echo_at_prompt"], false, "{report}");
    assert_eq!(report["echo_after"], true, "{report}");
    assert_eq!(
        out.stderr,
        "postie: no password for alice: the prompt was interrupted\n"
    );
}
