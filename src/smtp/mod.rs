//! SMTP (RFC 5321) as types and as a dialogue.
//!
//! ```text
//!  connect ─► greeting 220 ─► EHLO ──(5xx)──► HELO
//!                              │
//!              [STARTTLS ─► 220 ─► TLS handshake ─► EHLO again]   (capabilities re-learned)
//!                              │
//!              [AUTH MECH [ir] ─► (334 ─► answer)* ─► 235]       (never over plaintext
//!                              │                                   unless allowed)
//!              MAIL FROM ─► RCPT TO × n ─► DATA 354 ─► data . ─► 250
//!                              │                 (no recipient accepted: RSET)
//!                             QUIT                (on every path where the server still talks)
//! ```
//!
//! `reply` parses server replies once into typed codes (`enhanced` says what RFC 3463
//! codes mean, for people); `command` renders commands;
//! `ehlo` reads capabilities; `auth` chooses and runs SASL mechanisms (`scram` holds
//! SCRAM-SHA-256's arithmetic); `session` drives the dialogue
//! over a [`crate::net::Connection`].

pub mod auth;
pub mod command;
pub mod ehlo;
pub mod enhanced;
pub mod reply;
mod scram;
pub mod session;
