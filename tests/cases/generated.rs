//! The man page and shell completions are generated from the clap definitions and checked
//! in; these tests fail when the checked-in copies are stale. `BLESS=1 cargo test --test
//! cli generated` rewrites them.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// A fixed date keeps the man page reproducible.
const MAN_DATE: &str = "2026-11-23";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn man_page() -> Vec<u8> {
    let cmd = postie::cli::command();
    let man = clap_mangen::Man::new(cmd)
        .date(MAN_DATE)
        .manual("postie manual");
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    // after_long_help's examples are for --help; the man page has its own EXAMPLES section.
    for section in [
        "examples.roff",
        "sendmail.roff",
        "queue.roff",
        "exit-status.roff",
        "environment.roff",
    ] {
        let path = root().join("man/sections").join(section);
        out.extend(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    }
    man.render_version_section(&mut out).unwrap();
    out
}

fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = postie::cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "postie", &mut out);
    out
}

fn check(path: &Path, want: &[u8]) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(path, want).unwrap();
        return;
    }
    let have = std::fs::read(path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: run `BLESS=1 cargo test --test cli generated`",
        path.display()
    );
}

#[test]
fn man_page_is_fresh() {
    check(&root().join("man/postie.1"), &man_page());
}

#[test]
fn completions_are_fresh() {
    let files = [
        (Shell::Bash, "postie.bash"),
        (Shell::Zsh, "_postie"),
        (Shell::Fish, "postie.fish"),
        (Shell::Elvish, "postie.elv"),
        (Shell::PowerShell, "_postie.ps1"),
    ];
    for (shell, name) in files {
        check(&root().join("completions").join(name), &completion(shell));
    }
}

#[test]
fn cli_definition_is_consistent() {
    postie::cli::command().debug_assert();
}

/// `man ./man/postie.1` renders without warnings (skipped, with a reason, where man-db is
/// not installed).
#[test]
fn man_page_renders_without_warnings() {
    let page = root().join("man/postie.1");
    let out = match std::process::Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "100")
        .env("MAN_KEEP_FORMATTING", "0")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping: man is not installed ({e})");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man failed: {stderr}");
    assert!(stderr.trim().is_empty(), "man warns: {stderr}");
    // man may embolden with overstrikes ("E\x08E"): keep only what is finally shown.
    let mut text = String::new();
    for c in String::from_utf8_lossy(&out.stdout).chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    for section in [
        "EXAMPLES",
        "EXIT STATUS",
        "TRANSCRIPT FORMAT",
        "SENDMAIL COMPATIBILITY",
        "QUEUE",
        "FILES",
        "ENVIRONMENT",
    ] {
        assert!(
            text.lines().any(|l| l.trim_end() == section),
            "no {section} section"
        );
    }
}
