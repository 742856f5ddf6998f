//! The sending half of mail/mailx(1) (POSIX mailx, bsd-mailx, s-nail, heirloom), as
//! smartd, logrotate and scripts run it: `mail [-s SUBJ] [-a FILE] [-c CC] [-b BCC]
//! [-r FROM] [-E] [-n] [-N] [-i] [-v] [-S var[=val]] [--] RCPT... < body`.
//!
//! postie's own flags already follow mailx, so this module only translates the mailx
//! command line into postie's arguments ([`Args`], the fields its own flags set), which
//! then resolve into the run as postie's own command line does. Parsing is getopt(3)-style
//! like mailx's: clusters (`-nv`), attached values (`-sHi`), options after recipients,
//! `--` ends the options (a subject starting with `-` is a value). Values must be UTF-8,
//! as postie's own flags must.
//!
//! Mapping: `-s` → `--subject`, `-a` → `--attach` (s-nail's attachment; but a value that
//! is not an existing file and looks like a header field, `-a 'Content-Type: text/html'`,
//! is bsd-mailx's extra header and becomes `--header` — the only file system look here),
//! `-c` → `--cc`, `-b` → `--bcc`, `-r` and s-nail's `-S from=ADDR` → `--from`, `-v` →
//! `-v`, `-E` (do not send an empty body) → `--skip-empty`; `-n`, `-N`, `-i` and other
//! `-S var[=val]` only matter to an interactive mailx and are ignored. Reading mail (`-f`, `-e`, `-H`, `-u`, or no recipient) is refused
//! with EX_USAGE: postie only sends.

use std::ffi::OsString;

use anyhow::Result;

use crate::cli::Args;
use crate::error::Error;

/// Translate mailx arguments (those after the program name) into postie's arguments, as
/// postie's own command line would give them (`-s` is `--subject`, and so on).
pub fn translate(args: &[OsString]) -> Result<Args> {
    let mut out = Args::try_parse_argv(vec![OsString::from("postie")])?;
    let mut rest = args.iter();
    let mut options_ended = false;
    while let Some(arg) = rest.next() {
        let Some(s) = arg.to_str() else {
            if arg.to_string_lossy().starts_with('-') && !options_ended {
                return Err(usage(format!(
                    "option {:?} is not UTF-8",
                    arg.to_string_lossy()
                )));
            }
            return Err(usage(format!(
                "recipient {:?} is not UTF-8",
                arg.to_string_lossy()
            )));
        };
        if options_ended || s == "-" || !s.starts_with('-') {
            if !s.trim().is_empty() {
                out.recipients.push(s.to_string());
            }
            continue;
        }
        if s == "--" {
            options_ended = true;
            continue;
        }
        if s.starts_with("--") {
            return Err(usage(format!(
                "mail has no option {s}: run postie with its own flags instead"
            )));
        }
        let cluster = s.get(1..).unwrap_or("");
        for (pos, flag) in cluster.char_indices() {
            let attached = cluster.get(pos + flag.len_utf8()..).unwrap_or("");
            match flag {
                'v' => out.verbose = out.verbose.saturating_add(1),
                'E' => out.skip_empty = true,
                'n' | 'N' | 'i' => {}
                's' | 'a' | 'c' | 'b' | 'r' | 'S' => {
                    let value = if attached.is_empty() {
                        let Some(v) = rest.next() else {
                            return Err(usage(format!("mail -{flag} needs a value")));
                        };
                        v.to_str().ok_or_else(|| {
                            usage(format!(
                                "mail -{flag}: the value {:?} is not UTF-8",
                                v.to_string_lossy()
                            ))
                        })?
                    } else {
                        attached
                    };
                    let value = value.to_string();
                    match flag {
                        's' => out.subject = Some(value),
                        'a' if looks_like_header(&value)
                            && !std::path::Path::new(&value).exists() =>
                        {
                            out.header.push(value);
                        }
                        'a' => out.attach.push(value),
                        'c' => out.cc.push(value),
                        'b' => out.bcc.push(value),
                        'r' => out.from = Some(value),
                        // s-nail's -S from=ADDR is the sender, as -r is; any other
                        // -S var[=val] is a mailx setting, ignored.
                        _ => {
                            if let Some(addr) = value.strip_prefix("from=") {
                                out.from = Some(addr.to_string());
                            }
                        }
                    }
                    break;
                }
                'f' | 'e' | 'H' | 'u' => {
                    return Err(usage(format!(
                        "mail -{flag} reads mail; postie only sends it"
                    )))
                }
                other => return Err(usage(format!("unknown mail option -{other}"))),
            }
        }
    }
    if out.recipients.is_empty() {
        return Err(usage(
            "mail: no recipients (postie only sends mail: mail -s SUBJECT ADDRESS... < body)"
                .into(),
        ));
    }
    Ok(out)
}

/// bsd-mailx's `-a "Name: value"`: an ASCII field name, a colon, then white space or
/// nothing.
fn looks_like_header(v: &str) -> bool {
    match v.split_once(':') {
        Some((name, value)) => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && (value.is_empty() || value.starts_with([' ', '\t']))
        }
        None => false,
    }
}

fn usage(msg: String) -> anyhow::Error {
    Error::Usage(msg).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};

    /// The translation, as its Debug text (Args has no PartialEq).
    fn run(args: &[&str]) -> Result<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        translate(&args).map(|a| format!("{a:?}"))
    }

    /// What postie's own parser makes of `argv`: the arguments the translation must equal.
    fn postie(argv: &[&str]) -> String {
        let argv = argv.iter().map(OsString::from).collect();
        format!("{:?}", Args::try_parse_argv(argv).unwrap())
    }

    #[test]
    fn translations() {
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "smartd",
                &[
                    "-s",
                    "SMART error (FailedReadSmartData) detected on host: db1",
                    "root",
                ],
                &[
                    "postie",
                    "--subject=SMART error (FailedReadSmartData) detected on host: db1",
                    "--",
                    "root",
                ],
            ),
            (
                "logrotate (mail command plus subject and address)",
                &["-s", "/var/log/app.log.1", "ops@example.com"],
                &[
                    "postie",
                    "--subject=/var/log/app.log.1",
                    "--",
                    "ops@example.com",
                ],
            ),
            (
                "attachments, cc and bcc lists, from",
                &[
                    "-s",
                    "report",
                    "-a",
                    "r.pdf",
                    "-a",
                    "data.csv",
                    "-c",
                    "a@x,b@x",
                    "-b",
                    "c@x",
                    "-r",
                    "Ops <ops@x>",
                    "t@x",
                    "u@x",
                ],
                &[
                    "postie",
                    "--subject=report",
                    "--attach=r.pdf",
                    "--attach=data.csv",
                    "--cc=a@x,b@x",
                    "--bcc=c@x",
                    "--from=Ops <ops@x>",
                    "--",
                    "t@x",
                    "u@x",
                ],
            ),
            (
                "bsd-mailx's -a adds a header",
                &[
                    "-a",
                    "Content-Type: text/html",
                    "-a",
                    "X-Empty:",
                    "-a",
                    "notes:v2.txt",
                    "t@x",
                ],
                &[
                    "postie",
                    "--header=Content-Type: text/html",
                    "--header=X-Empty:",
                    "--attach=notes:v2.txt",
                    "--",
                    "t@x",
                ],
            ),
            (
                "ignored flags, -E, -v, clusters, attached values, options after recipients",
                &[
                    "-nNiv",
                    "-E",
                    "-S",
                    "sendwait",
                    "-Sv15-compat=yes",
                    "-sHi",
                    "t@x",
                    "-c",
                    "c@x",
                ],
                &[
                    "postie",
                    "-v",
                    "--skip-empty",
                    "--subject=Hi",
                    "--cc=c@x",
                    "--",
                    "t@x",
                ],
            ),
            (
                "s-nail's -S from=ADDR is the sender; other -S settings are ignored",
                &[
                    "-S",
                    "from=Reports <reports@x>",
                    "-Sttycharset=utf-8",
                    "t@x",
                ],
                &["postie", "--from=Reports <reports@x>", "--", "t@x"],
            ),
            (
                "a subject starting with a dash stays a value; -- ends options",
                &["-s", "-5% disk", "--", "-odd@x"],
                &["postie", "--subject=-5% disk", "--", "-odd@x"],
            ),
        ];
        for (what, args, want) in cases {
            assert_eq!(run(args).unwrap(), postie(want), "{what}");
        }
    }

    /// An existing file whose name looks like a header is attached (s-nail's -a).
    #[test]
    fn an_existing_file_is_attached_even_if_it_looks_like_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().join("X-Report: 2026");
        std::fs::write(&name, "data").unwrap();
        let name = name.to_str().unwrap();
        assert_eq!(
            run(&["-a", name, "t@x"]).unwrap(),
            postie(&["postie", &format!("--attach={name}"), "--", "t@x"])
        );
    }

    #[test]
    fn translations_are_postie_arguments() {
        let args = [
            "-E", "-v", "-s", "-x", "-c", "c@x", "-r", "me@x", "--", "-root",
        ];
        let a = translate(&args.map(OsString::from)).unwrap();
        assert!(a.skip_empty);
        assert_eq!(a.verbose, 1);
        assert_eq!(a.subject.as_deref(), Some("-x"));
        assert_eq!(a.cc, ["c@x"]);
        assert_eq!(a.from.as_deref(), Some("me@x"));
        assert_eq!(a.recipients, ["-root"]);
    }

    #[test]
    fn errors() {
        let cases: &[(&[&str], &str)] = &[
            (&["-s", "x"], "no recipients"),
            (&[], "no recipients"),
            (&["-f", "/var/mail/root"], "mail -f reads mail"),
            (&["-H"], "mail -H reads mail"),
            (&["-Z", "t@x"], "unknown mail option -Z"),
            (&["--subject=x", "t@x"], "mail has no option --subject=x"),
            (&["t@x", "-s"], "mail -s needs a value"),
        ];
        for (args, msg) in cases {
            let err = run(args).unwrap_err();
            assert_eq!(exit_code(&err), Exit::Usage, "{args:?}");
            assert!(err.to_string().contains(msg), "{args:?}: {err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_values_are_refused_naming_the_option() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || OsString::from_vec(b"caf\xe9".to_vec());
        let err = translate(&[OsString::from("-s"), bad(), OsString::from("t@x")]).unwrap_err();
        assert_eq!(exit_code(&err), Exit::Usage);
        assert_eq!(
            err.to_string(),
            "mail -s: the value \"caf\u{fffd}\" is not UTF-8"
        );
        let err = translate(&[bad()]).unwrap_err();
        assert_eq!(err.to_string(), "recipient \"caf\u{fffd}\" is not UTF-8");
    }
}
