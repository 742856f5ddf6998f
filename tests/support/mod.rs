//! Shared test support: the binary under test, test certificates, the scripted fake
//! server, the test DNS server and the real-Postfix harness.
#![allow(dead_code)]

pub mod certs;
pub mod dns_server;
pub mod fake_server;
pub mod idp;
pub mod mta;
pub mod run;

use std::io::Write;
use std::process::{Command, Stdio};

/// Says that the running test skips, and why, where `cargo test` shows it: straight to
/// the process's stderr, past libtest's capture of `eprintln!` (which would hide it
/// unless the test failed). The line names the test (libtest names the thread after it).
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipping {test}: {reason}");
}

/// The built binary with a deterministic environment: test mode on (fixed EHLO name, Date,
/// Message-ID), no password in the environment, stdin empty.
pub fn postie() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postie"));
    // No configuration file of the machine's or the user's may leak into a test.
    cmd.env("POSTIE_TEST_MODE", "1")
        .env("POSTIE_SYSCONFDIR", "/nonexistent/postie-test-etc")
        .env("HOME", "/nonexistent/postie-test-home")
        // Tests run as root in CI, whose default queue is /var/spool/postie: never the
        // machine's queue either.
        .env("POSTIE_QUEUE_DIR", "/nonexistent/postie-test-queue")
        // Nor the machine's OAuth tokens.
        .env("POSTIE_OAUTH_DIR", "/nonexistent/postie-test-oauth")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("POSTIE_PASSWORD")
        .env_remove("POSTIE_RESOLVER")
        .stdin(Stdio::null());
    cmd
}
