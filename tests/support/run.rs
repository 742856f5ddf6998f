//! Running the built binary with a bound, and reading what it left behind; shared by the
//! Postfix and persona suites.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What one postie run left behind.
pub struct Outcome {
    /// The command as a shell would show it (environment, arguments).
    pub cmdline: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "$ {}", self.cmdline)?;
        writeln!(f, "exit status: {:?} after {:.2?}", self.code, self.elapsed)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// `cmd` as a shell would show it: the environment it sets, then the arguments.
pub fn describe_command(cmd: &Command) -> String {
    let mut out = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            out.push_str(&format!(
                "{}={:?} ",
                k.to_string_lossy(),
                v.to_string_lossy()
            ));
        }
    }
    out.push_str("postie");
    for a in cmd.get_args() {
        out.push_str(&format!(" {:?}", a.to_string_lossy()));
    }
    out
}

impl Outcome {
    pub fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn assert_code(&self, code: i32, what: &str) {
        assert_eq!(self.code, Some(code), "{what}: {}", self.describe());
    }

    /// Exit 0 and silence, as promised for a successful send.
    pub fn assert_quiet_success(&self, what: &str) {
        self.assert_code(0, what);
        assert!(
            self.stdout.is_empty() && self.stderr.is_empty(),
            "{what}: success must be silent: {}",
            self.describe()
        );
    }

    /// The commands postie sent, per the `-v` transcript (` -> ` clear, ` ~> ` in TLS).
    pub fn sent_commands(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                l.strip_prefix("->").or_else(|| l.strip_prefix("~>"))
            })
            .map(|c| c.trim().to_owned())
            .collect()
    }

    /// Exactly one stderr line, starting with `prefix` and containing each of `texts`.
    pub fn assert_one_error_line(&self, prefix: &str, texts: &[&str], what: &str) {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].starts_with(prefix),
            "{what}: expected one stderr line starting {prefix:?}: {}",
            self.describe()
        );
        for text in texts {
            assert!(
                lines[0].contains(text),
                "{what}: the stderr line lacks {text:?}: {}",
                self.describe()
            );
        }
    }
}

/// Reads a pipe to its end on a thread.
pub fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` until `limit` has passed; kills it (and panics) after that.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for postie") {
            return status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: postie still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with `stdin` (or none), killed after `limit`.
pub fn run(mut cmd: Command, stdin: Option<&[u8]>, limit: Duration) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let what = format!("{cmd:?}");
    let cmdline = describe_command(&cmd);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn postie");
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let bytes = bytes.to_vec();
        // postie may stop reading early when it fails; its exit code says so.
        std::thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let out = drain(child.stdout.take().expect("stdout pipe"));
    let err = drain(child.stderr.take().expect("stderr pipe"));
    let code = wait_bounded(&mut child, limit, &what);
    let elapsed = start.elapsed();
    if let Some(w) = writer {
        let _ = w.join();
    }
    Outcome {
        cmdline,
        elapsed,
        code,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Splits a delivered message into the leading `Received:` headers Postfix prepended
/// (continuation lines included) and the rest, which is what the client sent.
pub fn strip_received(delivered: &[u8]) -> (Vec<String>, &[u8]) {
    let mut received: Vec<String> = Vec::new();
    let mut rest = delivered;
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        if line.len() >= 9 && line[..9].eq_ignore_ascii_case(b"received:") {
            received.push(String::from_utf8_lossy(line).into_owned());
        } else if !received.is_empty() && matches!(line.first(), Some(b' ' | b'\t')) {
            let last = received.last_mut().expect("a Received header");
            last.push_str(&String::from_utf8_lossy(line));
        } else {
            return (received, rest);
        }
        rest = &rest[end..];
    }
}
