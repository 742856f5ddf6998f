//! `--log FILE` (msmtp's `logfile`): one line per message, appended, as `key=value` pairs
//! that grep and awk can read. It records what happened — server, security, sender,
//! recipients, size, the server's last reply, the exit code — and never a secret: the
//! password is not in any value this module is given.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use crate::config::{Config, Security};
use crate::envelope::Envelope;
use crate::error::{exit_code, Error};
use crate::report::{Fate, Report};
use crate::transcript::printable;

/// A value, quoted when it holds spaces, quotes or `=`; control characters escaped.
fn value(v: &str) -> String {
    let v = printable(v);
    if !v.is_empty() && !v.contains([' ', '"', '=', '\\'].as_slice()) {
        return v.into_owned();
    }
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The log line for one message.
pub fn line(
    unix_time: i64,
    cfg: &Config,
    envelope: &Envelope,
    size: Option<u64>,
    outcome: &anyhow::Result<Report>,
) -> String {
    let mut fields: Vec<(&str, String)> = vec![(
        "time",
        mail_builder::headers::date::Date::new(unix_time).to_rfc822(),
    )];
    if let Some(s) = cfg.route.server() {
        fields.push(("host", s.host.clone()));
        fields.push(("port", s.port.to_string()));
    }
    let tls = match cfg.session.security {
        Security::StartTlsRequired => "starttls",
        Security::Implicit => "implicit",
        Security::Plain => "none",
        Security::Opportunistic => "opportunistic",
    };
    fields.push(("tls", tls.into()));
    fields.push((
        "auth",
        if cfg.session.credentials.is_some() {
            "on"
        } else {
            "off"
        }
        .into(),
    ));
    if let Some(c) = &cfg.session.credentials {
        fields.push(("user", c.user.clone()));
    }
    fields.push(("from", envelope.reverse_path.clone()));
    fields.push(("recipients", envelope.forward_paths.join(",")));
    if let Some(n) = size {
        fields.push(("mailsize", n.to_string()));
    }
    let exit = match outcome {
        Ok(report) => {
            if let Some(reply) = &report.final_reply {
                fields.push(("smtpstatus", reply.code.to_string()));
                fields.push(("smtpmsg", reply.summary()));
            }
            let refused: Vec<String> = report
                .outcomes()
                .iter()
                .filter(|o| o.fate != Fate::Delivered)
                .map(|o| format!("{} {}", o.address, o.why()))
                .collect();
            if !refused.is_empty() {
                fields.push(("refused", refused.join("; ")));
            }
            report.exit()
        }
        Err(e) => {
            if let Some(Error::Reply { reply, .. }) = e.downcast_ref::<Error>() {
                fields.push(("smtpstatus", reply.code.to_string()));
                fields.push(("smtpmsg", reply.summary()));
            }
            fields.push(("errormsg", format!("{e:#}")));
            exit_code(e)
        }
    };
    fields.push(("exitcode", exit.name().into()));
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", value(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Append `line` to `path` ("-" is stdout). A log that cannot be written is reported on
/// stderr and does not change the outcome: the mail was (or was not) sent either way.
pub fn append(path: &Path, line: &str) {
    let result = if path.as_os_str() == "-" {
        writeln!(std::io::stdout(), "{line}")
    } else {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"))
    };
    if let Err(e) = result {
        eprintln!("postie: warning: cannot write log {}: {e}", path.display());
    }
}

/// Environment variable naming the syslog socket instead of `/dev/log`.
pub const SYSLOG_SOCKET_ENV: &str = "POSTIE_SYSLOG_SOCKET";

/// Send `line` to the local syslog daemon (facility mail, severity info, or err when the
/// exit code is not 0), as an RFC 3164 datagram on `/dev/log`. Failure only warns.
pub fn syslog(line: &str, failed: bool) {
    let path = std::env::var_os(SYSLOG_SOCKET_ENV)
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/dev/log".into());
    // facility mail (2) * 8 + severity info (6) or err (3)
    let priority = if failed { 2 * 8 + 3 } else { 2 * 8 + 6 };
    let datagram = format!("<{priority}>postie[{}]: {line}", std::process::id());
    let result = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|s| s.send_to(datagram.as_bytes(), &path));
    if let Err(e) = result {
        eprintln!(
            "postie: warning: cannot write to syslog at {}: {e}",
            std::path::Path::new(&path).display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(value("smtp.example.com"), "smtp.example.com");
        assert_eq!(value("250 2.0.0 Ok"), "\"250 2.0.0 Ok\"");
        assert_eq!(value("a\"b"), "\"a\\\"b\"");
        assert_eq!(value(""), "\"\"");
        // The escape's backslash makes it quoted, with the backslash doubled.
        assert_eq!(value("x\u{1b}y"), "\"x\\\\u{1b}y\"");
    }
}
