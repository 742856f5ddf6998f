//! postie: a command-line mail sending client.
//!
//! Data flows one way, one stage a module:
//!
//! ```text
//! cli args ─► config ─► message ─► envelope ─► route ─► connection ─► session ─► report
//! ```
//!
//! * [`cli`] holds the raw arguments exactly as typed (no I/O);
//! * [`config`] resolves them: defaults, ports, the TLS policy, the password;
//! * [`message`] builds the RFC 5322 message (mail-builder) or opens a ready one;
//! * [`envelope`] fixes the SMTP reverse-path and forward-paths;
//! * [`route`] turns the server name into socket addresses ([`dns`] answers MX and address
//!   questions, the crate's only async code, behind blocking calls; [`dane`] asks a
//!   validating resolver for TLSA records and checks certificates against them);
//! * [`net`] is the only place bytes cross the wire, and where the transcript is written;
//! * [`smtp`] parses replies and runs the dialogue;
//! * [`report`] prints what happened per recipient and picks the exit code.
//!
//! [`queue`] keeps messages whose delivery failed temporarily (`--queue`) and retries
//! them (`postie queue run`).
//!
//! [`error`] maps every failure to one sysexits code, in one place. [`probe`] (`--probe`)
//! runs a short dialogue of its own and reports what a server offers instead of sending.
//! [`batch`] (`postie batch`, `--messages`) sends many messages over one connection.
//! [`progress`] is the bar a big message shows on a terminal as it goes, which the
//! [`engine`] puts on the message it hands to the session.
#![forbid(unsafe_code)]

pub mod address;
pub mod aliases;
pub mod app;
pub mod batch;
pub mod check;
pub mod cli;
pub mod config;
pub mod dane;
pub mod dkim;
pub mod dns;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod json;
pub mod log;
pub mod message;
pub mod mta_sts;
pub mod net;
pub mod persona;
pub mod probe;
pub mod progress;
pub mod queue;
pub mod report;
pub mod route;
pub mod secret;
pub mod settings;
pub mod smtp;
pub mod trace;
pub mod transcript;
