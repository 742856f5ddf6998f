//! The sendmail command line (sendmail(8)) as real callers pass it: cron, mdadm, git
//! send-email, mutt, PHP's `mail()`, symfony/mailer, plus msmtp's `--account`.
//!
//! This module only reads the arguments into [`SendmailArgs`]; it does no I/O and applies
//! no configuration. Parsing follows getopt(3), as sendmail does: boolean flags may be
//! clustered (`-ti`, `-it`), a value may be attached (`-FCronDaemon`, `-oem`) or be the
//! next argument (`-f addr`), options may follow recipients, and `--` ends the options.
//! Flags that only tune a real MTA (`-oem`, `-odi`, `-B8BITMIME`, `-L tag`, ...) are
//! accepted and recorded in [`SendmailArgs::ignored`] for a `-v` note; unknown flags are
//! EX_USAGE, naming the flag. `-X FILE` (a traffic log file) is refused: `-v` prints the
//! transcript on stderr instead.
//!
//! DSN values (`-N`, `-R`, `-V`) are checked and normalized to their RFC 3461 forms here;
//! whether the server offers DSN is the session's business.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;

use crate::error::Error;
use crate::message::headers;

/// What sendmail is asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// `-bm` (the default): read a message from stdin and deliver it.
    #[default]
    Deliver,
    /// `-bs`: speak SMTP on stdin/stdout.
    Smtp,
    /// `-bp`, `-bP` (and the `mailq` name): list the queue.
    PrintQueue,
    /// `-q`, `-q30m`, `-qf`, `-qI...`: run the queue.
    RunQueue,
    /// `-bi`, `-I` (and the `newaliases` name): rebuild the aliases database.
    InitAliases,
}

/// The sendmail command line, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendmailArgs {
    pub mode: Mode,
    /// `-t`: take recipients from the message's To, Cc and Bcc (as well as the arguments).
    pub extract_recipients: bool,
    /// `-f ADDR` / `-r ADDR`: the envelope sender, as typed (the last one given wins).
    pub sender: Option<String>,
    /// `-F NAME`: the sender's full name, for a From: that postie adds.
    pub full_name: Option<String>,
    /// `-N`: RFC 3461 NOTIFY value, upper case: `NEVER`, or a comma list of `SUCCESS`,
    /// `DELAY`, `FAILURE`.
    pub dsn_notify: Option<String>,
    /// `-R full|hdrs`: RFC 3461 RET value, `FULL` or `HDRS`.
    pub dsn_return: Option<String>,
    /// `-V ENVID`: RFC 3461 ENVID, as typed (printable ASCII; not yet xtext-encoded).
    pub envid: Option<String>,
    /// `-C FILE`: configuration file.
    pub config: Option<PathBuf>,
    /// `--account=NAME` / `--account NAME` (msmtp's sendmail mode; sendmail has none).
    pub account: Option<String>,
    /// `-v`, counted.
    pub verbose: u8,
    /// Recipient arguments, comma lists split, display names dropped; bare local names
    /// (`root`) kept as they are.
    pub recipients: Vec<String>,
    /// Flags accepted and ignored, as typed (`-oem`, `-B 8BITMIME`), for a `-v` note.
    pub ignored: Vec<String>,
}

/// Longest ENVID RFC 3461 §4.4 allows.
const MAX_ENVID: usize = 100;

/// Read the arguments that follow the program name (`argv[1..]` for `sendmail`,
/// `argv[2..]` for `postie sendmail`).
pub fn parse(args: &[OsString]) -> Result<SendmailArgs> {
    let mut a = SendmailArgs::default();
    let mut rest = args.iter();
    let mut options_ended = false;
    while let Some(arg) = rest.next() {
        let Some(s) = arg.to_str() else {
            let lossy = arg.to_string_lossy();
            return Err(usage(if lossy.starts_with("-C") && !options_ended {
                "the -C path is not UTF-8: give it as a separate argument (-C FILE)".into()
            } else {
                format!("argument {lossy:?} is not UTF-8")
            }));
        };
        if s == "-" && !options_ended {
            return Err(usage(
                "\"-\" is not a recipient (the message is always read from stdin)".into(),
            ));
        }
        if options_ended || !s.starts_with('-') {
            add_recipients(&mut a, s)?;
            continue;
        }
        if s == "--" {
            options_ended = true;
            continue;
        }
        if let Some(long) = s.strip_prefix("--") {
            let name = match long.split_once('=') {
                Some(("account", value)) => value.to_string(),
                None if long == "account" => match rest.next() {
                    Some(v) => utf8(v, "--account")?.to_string(),
                    None => return Err(usage("--account needs a NAME".into())),
                },
                _ => {
                    return Err(usage(format!(
                        "unknown option {s} (sendmail mode takes sendmail's flags, and --account)"
                    )))
                }
            };
            if name.trim().is_empty() {
                return Err(usage("--account needs a NAME".into()));
            }
            a.account = Some(name);
            continue;
        }
        // A cluster of one-letter flags; a flag that takes a value ends it.
        let cluster = s.get(1..).unwrap_or("");
        for (pos, flag) in cluster.char_indices() {
            let attached = cluster.get(pos + flag.len_utf8()..).unwrap_or("");
            match flag {
                't' => a.extract_recipients = true,
                'v' => a.verbose = a.verbose.saturating_add(1),
                'I' => a.mode = Mode::InitAliases,
                // -i/-oi (input is always read to EOF), -n (no aliasing), -m (me too),
                // -U (initial submission), -G (relay), -c, -s (obsolete).
                'i' | 'n' | 'm' | 'U' | 'G' | 'c' | 's' => a.ignored.push(format!("-{flag}")),
                // -Ac / -Am pick sendmail's configuration file.
                'A' => {
                    a.ignored.push(format!("-A{attached}"));
                    break;
                }
                // -q, -q30m, -qf, -qIsubstr, ...: the rest of the word belongs to -q.
                'q' => {
                    a.mode = Mode::RunQueue;
                    break;
                }
                'X' => {
                    return Err(usage(
                        "-X (write a traffic log file) is not supported: -v prints the SMTP \
                         transcript on stderr"
                            .into(),
                    ))
                }
                'f' | 'r' | 'F' | 'N' | 'R' | 'V' | 'C' | 'b' | 'o' | 'O' | 'B' | 'L' | 'h'
                | 'e' | 'M' | 'p' => {
                    let value = if attached.is_empty() {
                        match rest.next() {
                            Some(v) => Value::Separate(v.clone()),
                            None => return Err(usage(format!("-{flag} needs a value"))),
                        }
                    } else {
                        Value::Attached(attached.to_string())
                    };
                    apply(&mut a, flag, value)?;
                    break;
                }
                other => {
                    let context = if cluster.chars().count() > 1 {
                        format!(" (in {s})")
                    } else {
                        String::new()
                    };
                    return Err(usage(format!("unknown sendmail option -{other}{context}")));
                }
            }
        }
    }
    Ok(a)
}

enum Value {
    Attached(String),
    Separate(OsString),
}

fn apply(a: &mut SendmailArgs, flag: char, value: Value) -> Result<()> {
    if flag == 'C' {
        a.config = Some(match value {
            Value::Attached(s) => PathBuf::from(s),
            Value::Separate(os) => PathBuf::from(os),
        });
        return Ok(());
    }
    let (text, shown) = match &value {
        Value::Attached(s) => (s.as_str(), format!("-{flag}{s}")),
        Value::Separate(os) => {
            let s = utf8(os, &format!("-{flag}"))?;
            (s, format!("-{flag} {s}"))
        }
    };
    match flag {
        'f' | 'r' => a.sender = Some(no_line_breaks(flag, text)?),
        'F' => a.full_name = Some(no_line_breaks(flag, text)?),
        'N' => a.dsn_notify = Some(dsn_notify(text)?),
        'R' => {
            a.dsn_return = Some(match text.to_ascii_lowercase().as_str() {
                "full" => "FULL".into(),
                "hdrs" => "HDRS".into(),
                _ => return Err(usage(format!("-R {text}: expected full or hdrs"))),
            })
        }
        'V' => {
            if text.is_empty()
                || text.len() > MAX_ENVID
                || !text.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(usage(format!(
                    "-V {text:?}: an envelope id is 1 to {MAX_ENVID} printable ASCII characters \
                     without spaces"
                )));
            }
            a.envid = Some(text.to_string());
        }
        'b' => {
            a.mode = match text {
                "m" => Mode::Deliver,
                "s" => Mode::Smtp,
                "p" | "P" => Mode::PrintQueue,
                "i" => Mode::InitAliases,
                _ => {
                    return Err(usage(format!(
                        "sendmail -b{text} is not supported (postie knows -bm, -bs, -bp and -bi)"
                    )))
                }
            }
        }
        // -oXvalue options, -O opt=val, -Btype, -L tag, -h hops, -e mode, -Mxvalue, -p proto.
        _ => a.ignored.push(shown),
    }
    Ok(())
}

/// `never`, or a comma list of `success`, `delay`, `failure` (any case, no repeats); also
/// the msmtp persona's -N.
pub(super) fn dsn_notify(text: &str) -> Result<String> {
    let words: Vec<String> = text
        .split(',')
        .map(|w| w.trim().to_ascii_uppercase())
        .collect();
    let known = ["SUCCESS", "DELAY", "FAILURE"];
    let ok = if words.iter().any(|w| w == "NEVER") {
        words.len() == 1
    } else {
        words.iter().all(|w| known.contains(&w.as_str()))
            && words
                .iter()
                .enumerate()
                .all(|(i, w)| !words.iter().skip(i + 1).any(|x| x == w))
    };
    if !ok {
        return Err(usage(format!(
            "-N {text}: expected never, or a comma list of success, delay and failure"
        )));
    }
    Ok(words.join(","))
}

/// A recipient argument: an address list (`a@x, b@y` is two recipients). Empty arguments
/// (an unset `$MAILTO` in a script) are skipped.
fn add_recipients(a: &mut SendmailArgs, arg: &str) -> Result<()> {
    for r in split_recipients(arg)? {
        if !a.recipients.contains(&r) {
            a.recipients.push(r);
        }
    }
    Ok(())
}

/// The addresses in one recipient argument (none for an empty one); also the msmtp
/// persona's.
pub(super) fn split_recipients(arg: &str) -> Result<Vec<String>> {
    if arg.trim().is_empty() {
        return Ok(Vec::new());
    }
    if arg.contains(['\r', '\n']) {
        return Err(Error::Data(format!("recipient {arg:?} contains a line break")).into());
    }
    match headers::address_list(arg) {
        Some(list) if !list.is_empty() => Ok(list),
        _ => Err(Error::Data(format!("recipient {arg:?} is not an address")).into()),
    }
}

fn no_line_breaks(flag: char, text: &str) -> Result<String> {
    if text.chars().any(char::is_control) {
        return Err(Error::Data(format!(
            "-{flag} {text:?}: control characters or line breaks are not allowed"
        ))
        .into());
    }
    Ok(text.to_string())
}

/// An option's value as text, or a usage error naming the option (shared with msmtp).
pub(super) fn utf8<'a>(os: &'a OsString, what: &str) -> Result<&'a str> {
    os.to_str().ok_or_else(|| {
        usage(format!(
            "the value of {what} is not UTF-8: {:?}",
            os.to_string_lossy()
        ))
    })
}

fn usage(msg: String) -> anyhow::Error {
    Error::Usage(msg).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};

    fn run(args: &[&str]) -> Result<SendmailArgs> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&args)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn real_callers() {
        let d = SendmailArgs::default;
        let cases: Vec<(&str, &[&str], SendmailArgs)> = vec![
            (
                "cron (Debian, -t)",
                &["-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t"],
                SendmailArgs {
                    extract_recipients: true,
                    full_name: Some("CronDaemon".into()),
                    ignored: strings(&["-i", "-odi", "-oem", "-oi"]),
                    ..d()
                },
            ),
            (
                "cron (with a recipient)",
                &["-i", "-FCronDaemon", "-B8BITMIME", "-oem", "root"],
                SendmailArgs {
                    full_name: Some("CronDaemon".into()),
                    recipients: strings(&["root"]),
                    ignored: strings(&["-i", "-B8BITMIME", "-oem"]),
                    ..d()
                },
            ),
            (
                "mdadm",
                &["-t"],
                SendmailArgs {
                    extract_recipients: true,
                    ..d()
                },
            ),
            (
                "git send-email",
                &["-i", "-f", "sender@x", "rcpt1@x", "rcpt2@x"],
                SendmailArgs {
                    sender: Some("sender@x".into()),
                    recipients: strings(&["rcpt1@x", "rcpt2@x"]),
                    ignored: strings(&["-i"]),
                    ..d()
                },
            ),
            (
                "mutt",
                &["-oem", "-oi", "--", "rcpt@x"],
                SendmailArgs {
                    recipients: strings(&["rcpt@x"]),
                    ignored: strings(&["-oem", "-oi"]),
                    ..d()
                },
            ),
            (
                "mutt with envelope sender, DSN and 8BITMIME; a recipient after -- may start with -",
                &[
                    "-oem", "-oi", "-f", "me@x", "-N", "failure,delay", "-R", "hdrs",
                    "-B8BITMIME", "--", "a@x", "-odd@x",
                ],
                SendmailArgs {
                    sender: Some("me@x".into()),
                    dsn_notify: Some("FAILURE,DELAY".into()),
                    dsn_return: Some("HDRS".into()),
                    recipients: strings(&["a@x", "-odd@x"]),
                    ignored: strings(&["-oem", "-oi", "-B8BITMIME"]),
                    ..d()
                },
            ),
            (
                "PHP mail() default sendmail_path",
                &["-t", "-i"],
                SendmailArgs {
                    extract_recipients: true,
                    ignored: strings(&["-i"]),
                    ..d()
                },
            ),
            (
                "PHP sendmail_path with -f, plus additional_params -f attached",
                &["-t", "-i", "-f", "www@x", "-fbounce@x"],
                SendmailArgs {
                    extract_recipients: true,
                    sender: Some("bounce@x".into()),
                    ignored: strings(&["-i"]),
                    ..d()
                },
            ),
            (
                "clustered booleans, and a value flag closing a cluster",
                &["-ti", "-it", "-vif", "s@x"],
                SendmailArgs {
                    extract_recipients: true,
                    verbose: 1,
                    sender: Some("s@x".into()),
                    ignored: strings(&["-i", "-i", "-i"]),
                    ..d()
                },
            ),
            (
                "-r, -F with a separate value, -C, -v -v, options after recipients",
                &["root", "-r", "r@x", "-F", "Cron Daemon", "-C", "/etc/p.toml", "-v", "-v"],
                SendmailArgs {
                    sender: Some("r@x".into()),
                    full_name: Some("Cron Daemon".into()),
                    config: Some(PathBuf::from("/etc/p.toml")),
                    verbose: 2,
                    recipients: strings(&["root"]),
                    ..d()
                },
            ),
            (
                "DSN",
                &["-N", "success,failure", "-R", "hdrs", "-V", "abc", "a@x"],
                SendmailArgs {
                    dsn_notify: Some("SUCCESS,FAILURE".into()),
                    dsn_return: Some("HDRS".into()),
                    envid: Some("abc".into()),
                    recipients: strings(&["a@x"]),
                    ..d()
                },
            ),
            (
                "DSN attached, any case",
                &["-NNever", "-RFULL", "-Vq+1", "a@x"],
                SendmailArgs {
                    dsn_notify: Some("NEVER".into()),
                    dsn_return: Some("FULL".into()),
                    envid: Some("q+1".into()),
                    recipients: strings(&["a@x"]),
                    ..d()
                },
            ),
            (
                "the ignored crowd",
                &[
                    "-o", "i", "-Am", "-Ac", "-L", "tag", "-h", "17", "-n", "-U", "-G", "-m",
                    "-O", "DeliveryMode=b", "-B", "7BIT", "-odb", "-bm", "a@x",
                ],
                SendmailArgs {
                    recipients: strings(&["a@x"]),
                    ignored: strings(&[
                        "-o i", "-Am", "-Ac", "-L tag", "-h 17", "-n", "-U", "-G", "-m",
                        "-O DeliveryMode=b", "-B 7BIT", "-odb",
                    ]),
                    ..d()
                },
            ),
            (
                "msmtp's --account, both forms; recipient lists split",
                &["--account=work", "--account", "home", "a@x, Ops <ops@x>", "", "a@x"],
                SendmailArgs {
                    account: Some("home".into()),
                    recipients: strings(&["a@x", "ops@x"]),
                    ..d()
                },
            ),
        ];
        for (what, args, want) in cases {
            assert_eq!(run(args).unwrap(), want, "{what}");
        }
    }

    #[test]
    fn modes() {
        let cases: &[(&[&str], Mode)] = &[
            (&[], Mode::Deliver),
            (&["-bm", "a@x"], Mode::Deliver),
            (&["-bs"], Mode::Smtp),
            (&["-b", "s"], Mode::Smtp),
            (&["-bp"], Mode::PrintQueue),
            (&["-bP"], Mode::PrintQueue),
            (&["-q"], Mode::RunQueue),
            (&["-q30m"], Mode::RunQueue),
            (&["-qf"], Mode::RunQueue),
            (&["-qIexample.com"], Mode::RunQueue),
            (&["-v", "-q"], Mode::RunQueue),
            (&["-bi"], Mode::InitAliases),
            (&["-I"], Mode::InitAliases),
            (&["-bs", "-bm"], Mode::Deliver),
        ];
        for (args, want) in cases {
            assert_eq!(run(args).unwrap().mode, *want, "{args:?}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&[&str], Exit, &str)] = &[
            (&["-Z"], Exit::Usage, "unknown sendmail option -Z"),
            (
                &["-tZi"],
                Exit::Usage,
                "unknown sendmail option -Z (in -tZi)",
            ),
            (&["--foo"], Exit::Usage, "unknown option --foo"),
            (&["--account="], Exit::Usage, "--account needs a NAME"),
            (&["--account"], Exit::Usage, "--account needs a NAME"),
            (
                &["-X", "/tmp/log"],
                Exit::Usage,
                "-X (write a traffic log file)",
            ),
            (&["-bd"], Exit::Usage, "sendmail -bd is not supported"),
            (&["-bt"], Exit::Usage, "sendmail -bt is not supported"),
            (&["-f"], Exit::Usage, "-f needs a value"),
            (&["-t", "-F"], Exit::Usage, "-F needs a value"),
            (&["-N", "bogus"], Exit::Usage, "-N bogus: expected never"),
            (&["-N", "never,success"], Exit::Usage, "-N never,success"),
            (&["-Nsuccess,success"], Exit::Usage, "-N success,success"),
            (
                &["-R", "some"],
                Exit::Usage,
                "-R some: expected full or hdrs",
            ),
            (&["-V", "a b"], Exit::Usage, "-V \"a b\""),
            (&["-", "a@x"], Exit::Usage, "\"-\" is not a recipient"),
            (
                &["John Smith"],
                Exit::DataErr,
                "recipient \"John Smith\" is not an address",
            ),
            (
                &["a@x\r\nRCPT TO:<e@x>"],
                Exit::DataErr,
                "contains a line break",
            ),
            (
                &["-f", "a@x\nBcc: e@x"],
                Exit::DataErr,
                "-f \"a@x\\nBcc: e@x\"",
            ),
        ];
        for (args, exit, msg) in cases {
            let err = run(args).unwrap_err();
            assert_eq!(exit_code(&err), *exit, "{args:?}");
            assert!(err.to_string().contains(msg), "{args:?}: {err}");
        }
        let long_envid = "x".repeat(MAX_ENVID + 1);
        assert!(run(&["-V", &long_envid]).is_err());
        assert!(run(&["-V", &long_envid[1..]]).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_arguments() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(b"/etc/p\xff.toml".to_vec());
        let a = parse(&[OsString::from("-C"), odd.clone()]).unwrap();
        assert_eq!(a.config, Some(PathBuf::from(odd)));
        let attached = OsString::from_vec(b"-C/etc/p\xff".to_vec());
        let err = parse(&[attached]).unwrap_err();
        assert_eq!(exit_code(&err), Exit::Usage);
        let rcpt = OsString::from_vec(b"r\xff@x".to_vec());
        assert_eq!(exit_code(&parse(&[rcpt]).unwrap_err()), Exit::Usage);
        let from = OsString::from_vec(b"r\xff@x".to_vec());
        let err = parse(&[OsString::from("-f"), from]).unwrap_err();
        assert_eq!(exit_code(&err), Exit::Usage);
    }
}
