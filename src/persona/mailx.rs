//! The sending half of mail/mailx(1) (POSIX mailx, bsd-mailx, s-nail, heirloom), as
//! smartd, logrotate and scripts run it: `mail [-s SUBJ] [-a FILE] [-c CC] [-b BCC]
//! [-r FROM] [-E] [-n] [-N] [-i] [-v] [-S var[=val]] [--] RCPT... < body`.
//!
//! postie's own flags already follow mailx, so this module only translates the mailx
//! command line into postie's argv, which clap then parses as usual: values are passed as
//! `--name=VALUE` (so a subject starting with `-` stays a value), recipients follow `--`.
//! Parsing is getopt(3)-style like mailx's: clusters (`-nv`), attached values (`-sHi`),
//! options after recipients.
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

use crate::error::Error;

/// Translate mailx arguments (those after the program name) into a postie argv, starting
/// with `postie`.
pub fn translate(args: &[OsString]) -> Result<Vec<OsString>> {
    let mut out = vec![OsString::from("postie")];
    let mut recipients: Vec<OsString> = Vec::new();
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
            recipients.push(arg.clone());
            continue;
        };
        if options_ended || s == "-" || !s.starts_with('-') {
            if !s.trim().is_empty() {
                recipients.push(arg.clone());
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
                'v' => out.push("-v".into()),
                'E' => out.push("--skip-empty".into()),
                'n' | 'N' | 'i' => {}
                's' | 'a' | 'c' | 'b' | 'r' | 'S' => {
                    let value = if attached.is_empty() {
                        match rest.next() {
                            Some(v) => v.clone(),
                            None => return Err(usage(format!("mail -{flag} needs a value"))),
                        }
                    } else {
                        OsString::from(attached)
                    };
                    let mut value = value;
                    let long = match flag {
                        's' => "--subject=",
                        'a' if value.to_str().is_some_and(looks_like_header)
                            && !std::path::Path::new(&value).exists() =>
                        {
                            "--header="
                        }
                        'a' => "--attach=",
                        'c' => "--cc=",
                        'b' => "--bcc=",
                        'r' => "--from=",
                        // s-nail's -S from=ADDR is the sender, as -r is.
                        'S' => match value.to_str().and_then(|v| v.strip_prefix("from=")) {
                            Some(addr) => {
                                value = OsString::from(addr);
                                "--from="
                            }
                            None => break, // any other -S var[=val]: a mailx setting, ignored
                        },
                        _ => break,
                    };
                    let mut joined = OsString::from(long);
                    joined.push(&value);
                    out.push(joined);
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
    if recipients.is_empty() {
        return Err(usage(
            "mail: no recipients (postie only sends mail: mail -s SUBJECT ADDRESS... < body)"
                .into(),
        ));
    }
    out.push("--".into());
    out.extend(recipients);
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

    fn run(args: &[&str]) -> Result<Vec<String>> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        translate(&args).map(|v| {
            v.into_iter()
                .map(|o| o.into_string().unwrap())
                .collect::<Vec<_>>()
        })
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
            assert_eq!(run(args).unwrap(), *want, "{what}");
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
            ["postie", &format!("--attach={name}"), "--", "t@x"]
        );
    }

    #[test]
    fn translations_parse_as_postie_arguments() {
        let args = [
            "-E", "-v", "-s", "-x", "-c", "c@x", "-r", "me@x", "--", "-root",
        ];
        let argv = translate(&args.map(OsString::from)).unwrap();
        let a = crate::cli::Args::try_parse_argv(argv).unwrap();
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
    fn non_utf8_values_pass_through() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let subject = OsString::from_vec(b"caf\xe9".to_vec());
        let argv = translate(&[OsString::from("-s"), subject, OsString::from("t@x")]).unwrap();
        assert_eq!(argv[1].as_bytes(), b"--subject=caf\xe9");
    }
}
