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
    man.render_subcommands_section(&mut out).unwrap();
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

/// One page per subcommand, as `postie.1`'s SUBCOMMANDS section names them
/// (postie-queue.1, postie-queue-run.1, ...): (file name, page).
fn subcommand_pages() -> Vec<(String, Vec<u8>)> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) {
        for sub in cmd.get_subcommands() {
            let man = clap_mangen::Man::new(sub.clone())
                .date(MAN_DATE)
                .manual("postie manual");
            let mut page = Vec::new();
            man.render(&mut page).unwrap();
            out.push((man.get_filename(), page));
            walk(sub, out);
        }
    }
    let mut cmd = postie::cli::command();
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, &mut out);
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
    let pages = subcommand_pages();
    for (name, page) in &pages {
        check(&root().join("man").join(name), page);
    }
    // No page is left over from a subcommand that is gone.
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("man"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("postie-") && n.ends_with(".1"))
        .collect();
    on_disk.sort();
    let mut want: Vec<String> = pages.into_iter().map(|(n, _)| n).collect();
    want.sort();
    assert_eq!(on_disk, want, "man/ holds pages for other subcommands");
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
            crate::support::skip(&format!("man is not installed ({e})"));
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man failed: {stderr}");
    assert!(stderr.trim().is_empty(), "man warns: {stderr}");
    for (name, _) in subcommand_pages() {
        let sub = std::process::Command::new("man")
            .args(["--warnings", "-l"])
            .arg(root().join("man").join(&name))
            .env("MANWIDTH", "100")
            .output()
            .expect("man ran once already");
        let stderr = String::from_utf8_lossy(&sub.stderr);
        assert!(
            sub.status.success() && stderr.trim().is_empty(),
            "{name}: {stderr}"
        );
    }
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

/// The subcommands are in `postie --help`, in the man page's SUBCOMMANDS section and in
/// every completion script, from the one clap definition.
#[test]
fn subcommands_reach_help_man_page_and_completions() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postie"))
        .arg("--help")
        .output()
        .expect("run postie --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(listed, postie::cli::SUBCOMMANDS, "postie --help:\n{help}");
    let man = String::from_utf8_lossy(&man_page()).into_owned();
    assert!(man.contains(".SH SUBCOMMANDS"), "no SUBCOMMANDS section");
    for name in postie::cli::SUBCOMMANDS {
        assert!(
            man.contains(&format!("postie\\-{name}(1)")),
            "man page lacks {name}"
        );
        let bash = String::from_utf8_lossy(&completion(Shell::Bash)).into_owned();
        assert!(
            bash.contains(&format!("cmd=\"postie__subcmd__{name}\"")),
            "bash completion lacks {name}"
        );
        let fish = String::from_utf8_lossy(&completion(Shell::Fish)).into_owned();
        assert!(
            fish.contains(&format!("-a \"{name}\"")),
            "fish completion lacks {name}"
        );
    }
    // queue run completes postie's own options (the connection it delivers over).
    let bash = String::from_utf8_lossy(&completion(Shell::Bash)).into_owned();
    let run = bash
        .split("\n        postie__subcmd__queue__subcmd__run)")
        .nth(1)
        .expect("queue run in bash completion");
    let run = run.split(";;").next().unwrap_or_default();
    assert!(
        run.contains("--server") && run.contains("--queue-dir"),
        "{run}"
    );
}
