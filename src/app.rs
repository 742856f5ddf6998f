//! Wires the stages in order — args → config → message → envelope → engine → report —
//! and turns the outcome into the exit status.
//!
//! Owns: dispatch on the mode of the run (send, dry run, show config, probe, quit-after
//! rehearsal, batch, `-bs`), the --json, log and stderr reports of the outcome, and
//! committing a staged message to the queue. Must not: drive a connection or a session,
//! or decide whether a failure is retried (that is [`crate::engine`], through
//! [`crate::error::classify`]); compare reply text. `--probe` hands over to
//! [`crate::probe`]; `--quit-after` before DATA skips the message stage (stdin is never
//! read). The personas (`sendmail`, `mail`, `newaliases`, `mailq`) only change how the
//! command line is read and which message fix-ups apply; they share this pipeline.

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Args, QueueAction};
use crate::config::{
    Config, Dsn, Environment, Files, Mode as RunMode, Protocol, Route, Security, SendmailOptions,
};
use crate::envelope::{self, Envelope};
use crate::error::{exit_code, Error, Exit};
use crate::json::{self, Facts, JsonResult, Step};
use crate::message::{self, Message};
use crate::net::timeout::Milestone;
use crate::persona::sendmail::{self, Mode, SendmailArgs};
use crate::persona::smtp_server::{self, Incoming, Verdict};
use crate::persona::{self, mailx, msmtp, Persona};
use crate::probe::json::ProbeJson;
use crate::queue::{self, Sorted};
use crate::report::{Fate, Report};
use crate::smtp::session::Rehearsal;
use crate::transcript::printable;

/// The program: pick the persona, run, print at most one error line, exit with a sysexits
/// code.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let (persona, skip) = persona::detect(&argv);
    let own = argv.get(skip..).unwrap_or_default();
    let outcome = match persona {
        // Only postie's own command line has subcommands: `sendmail queue` sends to the
        // local user `queue`.
        Persona::Postie => return run_postie(argv),
        Persona::Mailx => mailx::translate(own).and_then(|a| run_as(a, persona)),
        Persona::Sendmail => sendmail::parse(own).and_then(run_sendmail),
        Persona::Msmtp => msmtp::parse(own).and_then(run_msmtp),
        Persona::Newaliases => Ok(Exit::Ok),
        Persona::Mailq => postie_defaults().and_then(|mut args| {
            args.queue_action = Some(QueueAction::List);
            run_as(args, persona)
        }),
    };
    finish_command(persona.program(), outcome)
}

/// `postie [OPTIONS] [RECIPIENT]...` or one of its subcommands. A usage error with --json
/// still prints a JSON result (for batch, the batch's setup-failure line).
fn run_postie(argv: Vec<OsString>) -> ExitCode {
    use crate::cli::Invocation;
    let json = json::requested(&argv);
    let batch = argv.get(1).is_some_and(|a| a == "batch");
    let probe = crate::probe::json::requested(&argv);
    let (program, outcome) = match crate::cli::parse(argv) {
        Ok(Invocation::Send(args)) => ("postie", run_as(*args, Persona::Postie)),
        Ok(Invocation::Batch(args)) => ("postie", run_batch(*args)),
        Ok(Invocation::Queue(action, args)) => (
            "postie",
            queue::command::main(action, *args, &mut crate::engine::attempt),
        ),
        Ok(Invocation::Dkim(args)) => ("postie", crate::dkim::run(args)),
        Ok(Invocation::Check(args)) => ("postie check", crate::check::run(&args)),
        Ok(Invocation::OAuth(args)) => ("postie oauth", run_oauth(args)),
        Err(clap_err) => {
            if clap_exit(&clap_err) != Exit::Ok && json {
                let usage = Error::Usage(clap_summary(&clap_err)).into();
                if batch {
                    crate::batch::Printer::setup_failure(true, &usage);
                } else if probe {
                    ProbeJson::default().finish(&Err(usage)).print();
                } else {
                    json::print(&JsonResult::new(&Facts::default(), &Err(usage)));
                }
            }
            ("postie", Err(clap_err.into()))
        }
    };
    finish_command(program, outcome)
}

/// A subcommand's outcome as the exit status: clap's own output for --help and usage
/// errors, else at most one error line.
fn finish_command(program: &str, outcome: Result<Exit>) -> ExitCode {
    match outcome {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            if let Some(clap_err) = err.downcast_ref::<clap::Error>() {
                let _ = clap_err.print();
                return ExitCode::from(clap_exit(clap_err).code());
            }
            eprintln!("{program}: {}", printable(&format!("{err:#}")));
            ExitCode::from(exit_code(&err).code())
        }
    }
}

fn parse_postie(argv: Vec<OsString>) -> Result<Args> {
    Ok(Args::try_parse_argv(argv)?)
}

/// postie's arguments with nothing given: what a persona fills in.
fn postie_defaults() -> Result<Args> {
    parse_postie(vec![OsString::from("postie")])
}

/// The first line of clap's error, without its "error: " label.
fn clap_summary(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// --help and --version exit 0; every other command-line error is EX_USAGE.
fn clap_exit(e: &clap::Error) -> Exit {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
        _ => Exit::Usage,
    }
}

/// Send (or, with --dry-run, show) one message. Refused recipients are reported here; every
/// other failure comes back as an error.
pub fn run(args: Args) -> Result<Exit> {
    run_as(args, Persona::Postie)
}

/// [`run`], with messages named after the persona (`mail: ...`). With --json, the result
/// goes to stdout however the run ends.
fn run_as(args: Args, persona: Persona) -> Result<Exit> {
    if !args.messages.is_empty() {
        return run_batch(args);
    }
    let json = args.json;
    // --probe --json has its own document (schema/postie-probe.schema.json), also when
    // the run fails before probing anything.
    let mut probed = (json && args.probe).then(ProbeJson::default);
    let mut facts = Facts::default();
    let outcome = Config::resolve(args, &Environment::real())
        .and_then(|cfg| dispatch(&cfg, persona.program(), &mut facts, probed.as_mut()));
    match probed {
        Some(doc) => doc.finish(&outcome).print(),
        None if json => json::print(&JsonResult::new(&facts, &outcome)),
        None => {}
    }
    outcome
}

/// One message's run, by mode. `program` starts each stderr line (`postie`, `sendmail`,
/// `mail`); `facts` collects what --json reports, as far as the run gets, and `probed`
/// what --probe --json does.
fn dispatch(
    cfg: &Config,
    program: &str,
    facts: &mut Facts,
    probed: Option<&mut ProbeJson>,
) -> Result<Exit> {
    facts.note_config(cfg);
    if cfg.mode != RunMode::ShowConfig && !cfg.tls_verify {
        eprintln!("{program}: warning: TLS certificates are NOT verified (--tls-no-verify)");
    }
    match &cfg.mode {
        RunMode::ShowConfig => show_config(cfg),
        RunMode::Probe(probe) => crate::probe::run(cfg, probe, probed),
        RunMode::Rehearse(stop) if *stop < Milestone::Data => rehearse(cfg, *stop, program, facts),
        RunMode::Batch(_) => batch(cfg, cfg.verbosity, false),
        RunMode::Queue(action) => queue::command::on(
            cfg,
            *action,
            &cfg.recipients.to,
            &mut crate::engine::attempt,
        ),
        RunMode::ServeSmtp => serve_smtp(cfg),
        RunMode::Send | RunMode::DryRun | RunMode::Rehearse(_) => send(cfg, program, facts),
    }
}

/// Send (or with --dry-run show, or with --quit-after data rehearse) one message.
fn send(cfg: &Config, program: &str, facts: &mut Facts) -> Result<Exit> {
    send_input(cfg, program, facts, Box::new(io::stdin()))
}

/// [`send`], with `input` in place of stdin.
fn send_input(
    cfg: &Config,
    program: &str,
    facts: &mut Facts,
    input: Box<dyn io::Read>,
) -> Result<Exit> {
    let message = message::prepare(cfg, input)?;
    if cfg.skip_empty && message.empty_body {
        return Ok(Exit::Ok);
    }
    let envelope = envelope::build(cfg, &message)?;
    facts.envelope = Some(envelope.clone());
    if cfg.mode == RunMode::DryRun {
        return dry_run(cfg, &envelope, message);
    }
    // --queue: the message goes to the spool first and is sent from there, so it can be
    // kept whichever phase fails (stdin cannot be read twice).
    let (message, staged) = if cfg.queue.enabled && cfg.quit_after().is_none() {
        let staged = queue::Spool::for_config(cfg)?.stage(message, cfg.session.dkim.as_ref())?;
        (staged.message(cfg)?, Some(staged))
    } else {
        (message, None)
    };
    let size = message.size;
    let mut direct = None;
    let outcome = if matches!(cfg.route, Route::Mx { .. }) {
        facts.stage = Some(Step::Resolve);
        let started = std::time::Instant::now();
        let delivery =
            crate::engine::mx::run(cfg, &envelope, Some(message), cfg.quit_after(), facts)?;
        facts.elapsed = Some(started.elapsed());
        facts.domains.clone_from(&delivery.domains);
        let result = delivery.as_result();
        facts.report = Some(delivery.report());
        direct = Some(delivery);
        result
    } else {
        crate::engine::submit(cfg, &envelope, message, facts)
    };
    if let Ok(report) = &outcome {
        facts.report = Some(report.clone());
    }
    // --quit-after data sends no message, so there is nothing to log.
    if (cfg.log.is_some() || cfg.syslog) && cfg.quit_after().is_none() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let line = crate::log::line(now, cfg, &envelope, size, &outcome);
        if let Some(path) = &cfg.log {
            crate::log::append(path, &line);
        }
        if cfg.syslog {
            let failed = outcome.as_ref().map_or(true, |r| r.exit() != Exit::Ok);
            crate::log::syslog(&line, failed);
        }
    }
    if let Some(staged) = staged {
        let sorted = match &direct {
            Some(d) => d.sorted(false),
            None => Sorted::of(&envelope.forward_paths, &outcome, false),
        };
        if !sorted.deferred.is_empty() {
            return queue_rest(
                cfg, program, facts, staged, &envelope, &sorted, &outcome, direct,
            );
        }
    }
    if let Some(delivery) = direct {
        for line in delivery.failure_lines() {
            eprintln!("{program}: {}", printable(&line));
        }
        return Ok(delivery.exit());
    }
    let report = outcome?;
    for line in report.failure_lines() {
        eprintln!("{program}: {}", printable(&line));
    }
    Ok(report.exit())
}

/// --queue and a temporary failure: commit the staged message for the recipients still
/// to do, say "queued as ID", report the permanent refusals, and exit with their code
/// (0 when there are none).
#[allow(clippy::too_many_arguments)]
fn queue_rest(
    cfg: &Config,
    program: &str,
    facts: &mut Facts,
    staged: queue::Staged,
    envelope: &Envelope,
    sorted: &Sorted,
    outcome: &Result<Report>,
    direct: Option<crate::engine::mx::Delivery>,
) -> Result<Exit> {
    let rest = Envelope {
        reverse_path: envelope.reverse_path.clone(),
        forward_paths: sorted.deferred.clone(),
    };
    let id = staged.commit(&rest, &sorted.deferred_reason, queue::now(cfg))?;
    facts.queued = Some(json::Queued {
        id: id.clone(),
        reason: sorted.deferred_reason.clone(),
        recipients: sorted.deferred.clone(),
    });
    let mut lines = Vec::new();
    match (&direct, outcome) {
        (Some(d), _) => {
            for domain in &d.domains {
                if !matches!(domain.exit(), Exit::Ok | Exit::TempFail) {
                    lines.extend(domain.failure_lines());
                }
            }
        }
        (None, Ok(report)) if !sorted.refused.is_empty() => {
            let refused = Report {
                recipients: report
                    .recipients
                    .iter()
                    .filter(|r| !sorted.deferred.contains(&r.address))
                    .cloned()
                    .collect(),
                final_reply: report.final_reply.clone(),
            };
            lines.extend(refused.failure_lines());
        }
        _ => {}
    }
    for line in lines {
        eprintln!("{program}: {}", printable(&line));
    }
    eprintln!(
        "{program}: queued as {id}: {}",
        printable(&sorted.deferred_reason)
    );
    Ok(sorted.refused_exit)
}

/// --quit-after before DATA: no message; the envelope only from `mail` on. Refused
/// recipients (`rcpt`) are reported and decide the exit code as usual.
fn rehearse(cfg: &Config, stop: Milestone, program: &str, facts: &mut Facts) -> Result<Exit> {
    if matches!(cfg.route, Route::Mx { .. }) {
        // The recipients' domains decide where to go, so the envelope is needed at once.
        let envelope = envelope::without_message(cfg)?;
        facts.envelope = Some(envelope.clone());
        let delivery = crate::engine::mx::run(cfg, &envelope, None, Some(stop), facts)?;
        facts.domains.clone_from(&delivery.domains);
        facts.report = Some(delivery.report());
        for line in delivery.failure_lines() {
            eprintln!("{program}: {}", printable(&line));
        }
        return Ok(delivery.exit());
    }
    // The envelope only from `mail` on: a rehearsal of the greeting needs no recipients.
    let rehearsal = Rehearsal::new(stop, || envelope::without_message(cfg))?;
    facts.envelope = rehearsal.envelope().cloned();
    let report = crate::engine::rehearse(cfg, &rehearsal, facts)?;
    facts.report = Some(report.clone());
    for line in report.failure_lines() {
        eprintln!("{program}: {}", printable(&line));
    }
    Ok(report.exit())
}

/// `postie oauth ...` with the process's environment.
fn run_oauth(args: crate::oauth::command::OAuthArgs) -> Result<Exit> {
    let env = Environment::real();
    let var = |k: &str| (env.var)(k);
    crate::oauth::command::run(
        args,
        &crate::oauth::command::Env {
            var: &var,
            etc: env.system_dir(),
            root: crate::config::running_as_root(&env),
        },
    )
}

/// `--messages` / `postie batch`: every message over one connection (reconnecting when
/// the server asks), through [`crate::batch`]. With --json, a run that stops before sending
/// still ends with its summary object.
fn run_batch(args: Args) -> Result<Exit> {
    let json = args.json;
    let verbosity = args.verbose;
    let outcome =
        Config::resolve(args, &Environment::real()).and_then(|cfg| batch(&cfg, verbosity, json));
    if let Err(e) = &outcome {
        crate::batch::Printer::setup_failure(json, e);
    }
    outcome
}

/// Send every message of a batch (`Mode::Batch`) over the server and its fallbacks.
fn batch(cfg: &Config, verbosity: u8, json: bool) -> Result<Exit> {
    if matches!(cfg.route, Route::Mx { .. }) {
        return Err(Error::Config(
            "--messages sends every message to one server: give --server HOST[:PORT], \
             --socket PATH or an account with a server (direct MX delivery sends one \
             message at a time)"
                .into(),
        )
        .into());
    }
    if !cfg.tls_verify {
        eprintln!("postie: warning: TLS certificates are NOT verified (--tls-no-verify)");
    }
    // The server and its fallbacks, through the engine (as a single message goes);
    // connection i of --connections starts at server i of the list.
    let connect = |i: usize| crate::engine::Sessions::new(cfg).starting_at(i);
    // --queue: a message that failed temporarily goes to the spool (durably, before it
    // counts as done); without it nothing takes the message, and it is deferred (75).
    let mut spool: Option<queue::Spool> = None;
    let mut on_retryable =
        |envelope: &Envelope, message: &mut dyn io::Read, why: &str| -> Result<Option<String>> {
            if !cfg.queue.enabled {
                return Ok(None);
            }
            let spool = match &mut spool {
                Some(s) => s,
                None => spool.insert(queue::Spool::for_config(cfg)?),
            };
            // Batch signs each message when cfg.session.dkim says so (message::prepare).
            spool
                .add(envelope, message, why, cfg.session.dkim.as_ref())
                .map(Some)
        };
    let mut printer = crate::batch::Printer::new("postie", verbosity, json);
    crate::batch::run(cfg, &connect, &mut on_retryable, &mut printer).map(|summary| summary.exit)
}

/// The sendmail command line: the message comes from stdin (or, with -bs, over SMTP on
/// stdin/stdout); the server and credentials from the configuration file.
fn run_sendmail(sa: SendmailArgs) -> Result<Exit> {
    // Where the configuration is, whatever the mode.
    let mut args = postie_defaults()?;
    args.config = sa.config.clone();
    args.account = sa.account.clone();
    args.verbose = sa.verbose;
    match sa.mode {
        Mode::InitAliases => return Ok(Exit::Ok),
        Mode::PrintQueue => args.queue_action = Some(QueueAction::List),
        // Postfix's `sendmail -q` is `postqueue -f`: every entry now, due or not.
        Mode::RunQueue => args.queue_action = Some(QueueAction::Flush),
        Mode::Smtp => args.serve_smtp = true,
        Mode::Deliver => {
            args.from = sa.sender.clone();
            args.recipients = sa.recipients.clone();
            args.message = Some("-".into());
        }
    }
    let mut cfg = Config::resolve(args, &Environment::real())?;
    if let RunMode::Queue(action) = cfg.mode {
        return queue::command::on(&cfg, action, &[], &mut crate::engine::attempt);
    }
    cfg.sendmail = SendmailOptions {
        extract_recipients: sa.extract_recipients,
        rewrite_headers: true,
        full_name: sa.full_name.clone(),
    };
    // sendmail callers cannot retry well: queue whenever a queue directory is configured.
    cfg.queue.enabled |= cfg.queue.dir_configured;
    cfg.session.dsn = Dsn {
        notify: sa.dsn_notify.clone(),
        ret: sa.dsn_return.clone(),
        envid: sa.envid.clone(),
    };
    if cfg.verbosity > 0 && !sa.ignored.is_empty() {
        eprintln!(
            "=== sendmail options accepted and ignored: {}",
            sa.ignored.join(" ")
        );
    }
    match cfg.mode {
        RunMode::ServeSmtp => serve_smtp(&cfg),
        _ => send(&cfg, Persona::Sendmail.program(), &mut Facts::default()),
    }
}

/// msmtp's command line: its settings go over the chosen account (as msmtp applies them),
/// then the run is sendmail's: the message on stdin, Bcc stripped, From/Date/Message-ID
/// added when missing; `-P` is --show-config and `--serverinfo` is --probe.
fn run_msmtp(ma: msmtp::MsmtpArgs) -> Result<Exit> {
    let program = Persona::Msmtp.program();
    match ma.mode {
        msmtp::Mode::Version => {
            return print_line(&format!("{program} (postie {})", env!("CARGO_PKG_VERSION")))
        }
        msmtp::Mode::Help => return print_line(msmtp::HELP),
        _ => {}
    }
    let mut args = ma.postie_args()?;
    let mut input: Box<dyn io::Read> = Box::new(io::stdin());
    if ma.read_envelope_from && ma.mode == msmtp::Mode::Send {
        // The From: address picks the account (unless -a does) and is the envelope sender.
        let (from, whole) = msmtp::peek_from(input)?;
        args.from = from;
        input = whole;
    }
    // msmtp's --host: this server, settings from the command line only, no file read.
    let files = if ma.overrides.host.is_some() {
        Files::Ignore
    } else {
        Files::Read
    };
    let mut cfg = Config::resolve_edited(args, &Environment::real(), files, &|a| {
        ma.overrides.apply(a)
    })?;
    cfg.sendmail = SendmailOptions {
        extract_recipients: ma.read_recipients,
        rewrite_headers: true,
        full_name: ma.full_name.clone(),
    };
    cfg.session.dsn = Dsn {
        notify: ma.dsn_notify.clone(),
        ret: ma.dsn_return.clone(),
        envid: None,
    };
    if cfg.verbosity > 0 && !ma.ignored.is_empty() {
        eprintln!(
            "=== msmtp options accepted and ignored: {}",
            ma.ignored.join(" ")
        );
    }
    let mut facts = Facts::default();
    match cfg.mode {
        RunMode::Send => send_input(&cfg, program, &mut facts, input),
        _ => dispatch(&cfg, program, &mut facts, None),
    }
}

/// `text` and a newline on stdout.
fn print_line(text: &str) -> Result<Exit> {
    let mut out = io::stdout().lock();
    finish_stdout(writeln!(out, "{text}").and_then(|()| out.flush()))
}

/// `sendmail -bs`: act as an SMTP server on stdin/stdout and submit each message received
/// through the configured route, answering its end of data with the real outcome.
fn serve_smtp(cfg: &Config) -> Result<Exit> {
    let mut deliver_one = |incoming: Incoming| -> Verdict {
        let result = (|| -> Result<Report> {
            let mut paths = Vec::new();
            for raw in &incoming.forward_paths {
                for a in envelope::qualify(cfg, raw)? {
                    if !paths.contains(&a) {
                        paths.push(a);
                    }
                }
            }
            let reverse_path = if incoming.reverse_path.is_empty() {
                String::new()
            } else {
                envelope::sender(cfg, &incoming.reverse_path)?
            };
            let envelope = Envelope {
                reverse_path,
                forward_paths: paths,
            };
            let message = message::sign(cfg, Message::in_memory(incoming.data))?;
            crate::engine::submit(cfg, &envelope, message, &mut crate::report::Unobserved)
        })();
        match result {
            Ok(report) => {
                for line in report.failure_lines() {
                    eprintln!("sendmail: {}", printable(&line));
                }
                let later = report.outcomes().iter().any(|o| o.fate == Fate::Deferred);
                match (later, &report.final_reply) {
                    // The upstream text only: the -bs reply puts its own code and status
                    // in front (never "250 2.0.0 250 2.0.0 ...").
                    (_, Some(reply)) => Verdict::Accepted(reply.text()),
                    (true, None) => Verdict::TempFail("all recipients deferred".into()),
                    (false, None) => Verdict::PermFail("all recipients refused".into()),
                }
            }
            Err(e) => {
                let text = format!("{e:#}");
                eprintln!("sendmail: {}", printable(&text));
                match Fate::of_exit(crate::error::exit_code(&e)) {
                    Fate::Deferred => Verdict::TempFail(text),
                    _ => Verdict::PermFail(text),
                }
            }
        }
    };
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    smtp_server::serve(
        stdin,
        stdout,
        &cfg.session.helo,
        &smtp_server::Limits::default(),
        &mut deliver_one,
    )
    .map_err(|e| Error::Io(format!("SMTP on stdin/stdout: {e}")))?;
    Ok(Exit::Ok)
}

/// --show-config: the resolved settings, password masked, nothing sent.
fn show_config(cfg: &Config) -> Result<Exit> {
    let mut out = io::stdout().lock();
    let or_none = |v: Option<String>| v.unwrap_or_else(|| "(none)".into());
    let lines = [
        (
            "config file",
            or_none(cfg.config_file.as_ref().map(|p| p.display().to_string())),
        ),
        (
            "account",
            cfg.account_name
                .clone()
                .unwrap_or_else(|| "(chosen automatically)".into()),
        ),
        (
            "server",
            match &cfg.route {
                Route::Submission(servers) => servers
                    .iter()
                    .map(|s| format!("{}:{}", s.host, s.port))
                    .collect::<Vec<_>>()
                    .join(", "),
                Route::Mx { port } => format!("(each recipient domain's MX, port {port})"),
                Route::Socket(path) => format!("(unix socket {})", path.display()),
                Route::Nowhere => "(none)".into(),
            },
        ),
        (
            "protocol",
            match cfg.session.protocol {
                Protocol::Smtp => "smtp",
                Protocol::Lmtp => "lmtp",
            }
            .into(),
        ),
        (
            "tls",
            match cfg.session.security {
                Security::StartTlsRequired => "starttls (required)",
                Security::Implicit => "implicit",
                Security::Plain => "none",
                Security::Opportunistic => "starttls (opportunistic)",
            }
            .into(),
        ),
        (
            "tls_ca",
            or_none(cfg.tls_ca.as_ref().map(|p| p.display().to_string())),
        ),
        (
            "tls_verify",
            if cfg.tls_verify { "on" } else { "OFF" }.into(),
        ),
        ("user", or_none(cfg.user.clone())),
        ("password", or_none(cfg.password_source.clone())),
        (
            "auth",
            match (&cfg.session.auth, cfg.auth_off) {
                (_, true) => "off".into(),
                (Some(m), _) => m.name().to_string(),
                (None, _) => "automatic".into(),
            },
        ),
        (
            "plaintext_auth",
            if cfg.session.allow_plaintext_auth {
                "allowed (AUTH may go without TLS)"
            } else {
                "refused (AUTH only inside TLS)"
            }
            .into(),
        ),
        ("from", or_none(cfg.from.clone())),
        ("helo", cfg.session.helo.clone()),
        (
            "resolver",
            cfg.resolver.map_or("system".into(), |r| r.to_string()),
        ),
        ("domain", or_none(cfg.domain.clone())),
        (
            "aliases",
            or_none(cfg.aliases_file.as_ref().map(|p| p.display().to_string())),
        ),
        (
            "timeout",
            cfg.timeouts
                .uniform
                .map_or("RFC 5321 defaults".into(), |d| format!("{} s", d.as_secs())),
        ),
        (
            "all_or_nothing",
            if cfg.session.all_or_nothing {
                "on (a refused recipient means the message goes to nobody)"
            } else {
                "off (the message goes to the recipients accepted)"
            }
            .into(),
        ),
        (
            "dkim",
            cfg.session.dkim.as_ref().map_or("(none)".into(), |d| {
                format!(
                    "key {}, selector {}, domain {}{}",
                    d.key.display(),
                    d.selector,
                    d.domain.as_deref().unwrap_or("(the From: address's)"),
                    d.expire
                        .map_or(String::new(), |x| format!(", expire {x} s"))
                )
            }),
        ),
        ("queue", if cfg.queue.enabled { "on" } else { "off" }.into()),
        (
            "queue_dir",
            or_none(cfg.queue.dir.as_ref().map(|p| p.display().to_string())),
        ),
        ("queue_max_age", seconds(cfg.queue.max_age.as_secs())),
        (
            "log",
            match (&cfg.log, cfg.syslog) {
                (Some(p), true) => format!("{} and syslog", p.display()),
                (Some(p), false) => p.display().to_string(),
                (None, true) => "syslog".into(),
                (None, false) => "(none)".into(),
            },
        ),
    ];
    let result = lines
        .iter()
        .try_for_each(|(k, v)| writeln!(out, "{k:<14} {}", printable(v)));
    finish_stdout(result.and_then(|()| out.flush()))
}

/// Seconds in the largest unit that divides them: `5d`, `90m`, `42s` (as `queue_max_age`
/// takes them).
fn seconds(s: u64) -> String {
    match s {
        0 => "0s".into(),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// A closed stdout (`| head`) is not an error.
fn finish_stdout(result: io::Result<()>) -> Result<Exit> {
    match result {
        Ok(()) => Ok(Exit::Ok),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::Ok),
        Err(e) => Err(Error::Io(format!("writing to stdout: {e}")).into()),
    }
}

/// Print the envelope, the route and the message exactly as it would be sent, and send
/// nothing.
fn dry_run(cfg: &Config, envelope: &Envelope, message: Message) -> Result<Exit> {
    let mut out = io::stdout().lock();
    let result = (|| -> io::Result<()> {
        let security = match cfg.session.security {
            Security::StartTlsRequired => "starttls",
            Security::Implicit => "implicit TLS",
            Security::Plain => "no TLS",
            Security::Opportunistic => "opportunistic STARTTLS",
        };
        match &cfg.route {
            Route::Submission(servers) => {
                for s in servers.iter().take(1) {
                    writeln!(out, "# server: {}:{} ({security})", s.host, s.port)?;
                }
            }
            Route::Mx { port } => writeln!(
                out,
                "# server: each recipient domain's MX, port {port} ({security})"
            )?,
            Route::Socket(path) => writeln!(out, "# socket: {}", path.display())?,
            Route::Nowhere => {}
        }
        writeln!(out, "MAIL FROM:<{}>", envelope.reverse_path)?;
        for r in &envelope.forward_paths {
            writeln!(out, "RCPT TO:<{r}>")?;
        }
        writeln!(out)?;
        message.write_to(&mut out)?;
        out.flush()
    })();
    finish_stdout(result)
}
