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
