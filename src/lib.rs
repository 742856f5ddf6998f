//! postie: a command-line mail sending client.
//!
//! Data flows one way, one stage a module (ARCHITECTURE.md draws it and names each
//! stage's files):
//!
//! ```text
//! argv ─► persona/cli ─► config ─► message ─► envelope ─► engine ─► report
//!                                                  (route ─► net ─► smtp session)
//! ```
//!
//! * [`persona`] reads sendmail(8) and mailx(1) command lines; [`cli`] is postie's own
//!   clap tree, subcommands included (no I/O);
//! * [`config`] resolves the arguments and configuration files ([`settings`]) into one
//!   [`config::Config`] whose [`config::Mode`] says what the run does;
//! * [`message`] builds the RFC 5322 message (mail-builder) or opens a ready one;
//! * [`envelope`] fixes the SMTP reverse-path and forward-paths ([`address`] holds the
//!   mailbox grammar);
//! * [`engine`] is the only code that drives route → connection → session, for every
//!   mode: host order and fallback, MX, MTA-STS ([`mta_sts`]) and DANE ([`dane`]),
//!   reconnects; [`error::classify`] decides, once, what a failure means;
//! * [`route`] turns names into socket addresses ([`dns`] answers MX and address
//!   questions, the crate's only async code, behind blocking calls);
//! * [`net`] is the only place bytes cross the wire, and where the transcript is written;
//! * [`smtp`] parses replies and runs the dialogue;
//! * [`report`] holds what happened per recipient and the exit code it stands for;
//!   [`json`] and [`log`] print it.
//!
//! [`queue`] keeps messages whose delivery failed temporarily (`--queue`) and retries
//! them through the engine (`postie queue run`). [`batch`] (`postie batch`) sends many
//! messages over one engine session. [`probe`] (`--probe`) and [`check`] (`postie check`)
//! report instead of sending. [`error`] maps every failure to one sysexits code.
//! [`oauth`] (`postie oauth`) signs accounts in with OAuth 2.0 and gives the session the
//! access token for XOAUTH2/OAUTHBEARER, refreshed; [`http`] is its HTTPS client.
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
pub mod http;
pub mod json;
pub mod log;
pub mod message;
pub mod mta_sts;
pub mod net;
pub mod oauth;
pub mod persona;
pub mod probe;
pub mod progress;
pub mod prompt;
pub mod queue;
pub mod report;
pub mod route;
pub mod secret;
pub mod settings;
pub mod smtp;
pub mod trace;
pub mod transcript;
