//! Wires the stages in order — args → config → message → envelope → route → connection →
//! session → report — and turns the outcome into the exit status. No protocol knowledge
//! lives here.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Args;
use crate::config::{Config, Environment, Security};
use crate::envelope::{self, Envelope};
use crate::error::{exit_code, Error, Exit};
use crate::message::{self, Message};
use crate::net::{self, Connection};
use crate::route;
use crate::smtp;
use crate::transcript::{printable, Transcript};

/// The program: parse, run, print at most one error line, exit with a sysexits code.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let args = match Args::try_parse_argv(argv) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
                _ => Exit::Usage,
            };
            let _ = e.print();
            return ExitCode::from(code.code());
        }
    };
    match run(args) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            eprintln!("postie: {}", printable(&format!("{err:#}")));
            ExitCode::from(exit_code(&err).code())
        }
    }
}

/// Send (or, with --dry-run, show) one message. Refused recipients are reported here; every
/// other failure comes back as an error.
pub fn run(args: Args) -> Result<Exit> {
    let cfg = Config::resolve(args, &Environment::real())?;
    let message = message::prepare(&cfg, Box::new(io::stdin()))?;
    let envelope = envelope::build(&cfg, &message)?;
    if cfg.dry_run {
        return dry_run(&cfg, &envelope, message);
    }
    let Some(server) = &cfg.server else {
        return Err(Error::Config("no mail server given: use --server HOST[:PORT]".into()).into());
    };
    let route = route::submission(server, cfg.security)?;
    let tls = net::tls::client_config(cfg.tls_ca.as_deref())?;
    let transcript = Transcript::stderr(cfg.verbosity);
    let implicit = (route.security == Security::Implicit).then_some(&tls);
    let conn = Connection::open(
        &route.host,
        &route.addrs,
        implicit,
        cfg.timeouts,
        transcript,
    )?;
    let report = smtp::session::deliver(conn, &cfg, &tls, &envelope, message)?;
    for line in report.failure_lines() {
        eprintln!("postie: {line}");
    }
    Ok(report.exit())
}

/// Print the envelope, the route and the message exactly as it would be sent, and send
/// nothing. A closed stdout (`| head`) is not an error.
fn dry_run(cfg: &Config, envelope: &Envelope, message: Message) -> Result<Exit> {
    let mut out = io::stdout().lock();
    let result = (|| -> io::Result<()> {
        if let Some(s) = &cfg.server {
            let security = match cfg.security {
                Security::StartTlsRequired => "starttls",
                Security::Implicit => "implicit TLS",
                Security::Plain => "no TLS",
            };
            writeln!(out, "# server: {}:{} ({security})", s.host, s.port)?;
        }
        writeln!(out, "MAIL FROM:<{}>", envelope.reverse_path)?;
        for r in &envelope.forward_paths {
            writeln!(out, "RCPT TO:<{r}>")?;
        }
        writeln!(out)?;
        message.write_to(&mut out)?;
        out.flush()
    })();
    match result {
        Ok(()) => Ok(Exit::Ok),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(e) => Err(Error::Io(format!("writing to stdout: {e}")).into()),
    }
}
