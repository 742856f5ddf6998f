//! Shared test support: the binary under test, test certificates, the scripted fake
//! server and the real-Postfix harness.
#![allow(dead_code)]

pub mod certs;
pub mod fake_server;
pub mod mta;

use std::process::{Command, Stdio};

/// The built binary with a deterministic environment: test mode on (fixed EHLO name, Date,
/// Message-ID), no password in the environment, stdin empty.
pub fn postie() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_postie"));
    cmd.env("POSTIE_TEST_MODE", "1")
        .env_remove("POSTIE_PASSWORD")
        .stdin(Stdio::null());
    cmd
}
