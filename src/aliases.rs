//! Aliases files in the `/etc/aliases` style msmtp's `aliases` setting reads: they map the
//! bare local names that cron, mdadm and smartd mail to (`root`, `www-data`) to real
//! addresses.
//!
//! Format (aliases(5), as msmtp reads it): `name: target, target2` lines; `#` starts a
//! comment at the start of a line or after white space; a line starting with white space
//! continues the previous entry's target list; names are case-insensitive; the name
//! `default` catches every name that is not listed. Targets may name other aliases, which
//! are expanded in turn (at most [`MAX_DEPTH`] levels). A name that lists itself (`root:
//! root, admin@x`, sendmail's idiom for "this mailbox too") stands for itself there; a loop
//! through other names (`a: b`, `b: a`) is a configuration error (EX_CONFIG) naming the
//! loop, since no address could be meant by it. A target written `\name` is taken
//! literally, without further expansion (as sendmail does). Targets a sending client cannot deliver to (`|command`, `/file`,
//! `:include:`) are skipped and noted, never sent to a server as addresses.
//!
//! This module reads the file and answers look-ups; it does not qualify names with a
//! domain (the caller does, for names that come back bare) and never touches a message.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use crate::error::Error;

/// How many levels of aliases naming aliases are followed.
pub const MAX_DEPTH: usize = 10;

/// One target of an alias.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    addr: String,
    /// `\name`: use as it is, do not look it up again.
    literal: bool,
}

/// A loaded aliases file.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    /// Lower-cased name → targets, in file order.
    map: HashMap<String, Vec<Target>>,
    /// What was skipped while loading, one line each, for the transcript.
    notes: Vec<String>,
    /// The file's name, as messages give it.
    origin: String,
    /// The lines that name targets a sending client cannot deliver to.
    undeliverable: Vec<usize>,
}

/// Read an aliases file. An unreadable file is EX_NOINPUT; a line that is not
/// `name: target, ...` is EX_CONFIG, naming the file and the line.
pub fn load(path: &Path) -> Result<Aliases> {
    let bytes = std::fs::read(path).map_err(|source| Error::NoInput {
        what: "aliases file",
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .map_or(0, |ok| ok.iter().filter(|&&b| b == b'\n').count())
            + 1;
        Error::Config(format!(
            "aliases file {} line {line}: not UTF-8 text",
            path.display()
        ))
    })?;
    Aliases::parse(&text, &path.display().to_string())
}

impl Aliases {
    /// Parse the text of an aliases file; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Aliases> {
        let mut aliases = Aliases {
            origin: origin.to_string(),
            ..Aliases::default()
        };
        // The entry being read: (line number, name, raw targets).
        let mut current: Option<(usize, String, String)> = None;
        for (index, raw_line) in text.lines().enumerate() {
            let n = index + 1;
            let line = strip_comment(raw_line);
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match &mut current {
                    Some((_, _, targets)) => {
                        targets.push(',');
                        targets.push_str(line);
                    }
                    None => {
                        return Err(config(
                            origin,
                            n,
                            "continuation line (starts with white space) before any alias",
                        ))
                    }
                }
                continue;
            }
            if let Some((first, name, targets)) = current.take() {
                aliases.add(origin, first, name, &targets)?;
            }
            let Some((name, targets)) = line.split_once(':') else {
                return Err(config(origin, n, "expected \"name: address, ...\""));
            };
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(config(
                    origin,
                    n,
                    &format!("{name:?} is not an alias name (one word before the colon)"),
                ));
            }
            current = Some((n, name.to_lowercase(), targets.to_string()));
        }
        if let Some((first, name, targets)) = current {
            aliases.add(origin, first, name, &targets)?;
        }
        Ok(aliases)
    }

    fn add(&mut self, origin: &str, line: usize, name: String, raw: &str) -> Result<()> {
        let mut targets = Vec::new();
        let mut listed = false;
        for t in split_targets(raw) {
            let t = t.trim();
            if t.is_empty() {
                continue;
            }
            listed = true;
            // `"|/usr/bin/procmail -a $EXTENSION"`: a command is often quoted (it has spaces).
            let bare = t
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(t);
            if bare.starts_with(['|', '/']) || bare.to_ascii_lowercase().starts_with(":include:") {
                if !self.undeliverable.contains(&line) {
                    self.undeliverable.push(line);
                }
                self.notes.push(format!(
                    "{origin} line {line}: skipped target {t:?} of {name:?} (postie delivers only to addresses)"
                ));
                continue;
            }
            let (t, literal) = match t.strip_prefix('\\') {
                Some(rest) => (rest, true),
                None => (t, false),
            };
            // `Name <addr>` and `<addr>`: only the address matters here.
            let addr = match (t.rfind('<'), t.strip_suffix('>')) {
                (Some(open), Some(inner)) => inner.get(open + 1..).unwrap_or("").trim(),
                _ => t,
            };
            if addr.is_empty()
                || addr.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',')
                })
            {
                return Err(config(
                    origin,
                    line,
                    &format!("{t:?} (alias {name:?}) is not an address"),
                ));
            }
            targets.push(Target {
                addr: addr.to_string(),
                literal,
            });
        }
        if !listed {
            return Err(config(
                origin,
                line,
                &format!("alias {name:?} has no target"),
            ));
        }
        if targets.is_empty() {
            self.notes.push(format!(
                "{origin} line {line}: alias {name:?} has no deliverable target; treated as not listed"
            ));
            return Ok(());
        }
        if self.map.contains_key(&name) {
            self.notes.push(format!(
                "{origin} line {line}: alias {name:?} defined again; the first definition is used"
            ));
            return Ok(());
        }
        self.map.insert(name, targets);
        Ok(())
    }

    /// The addresses `local` stands for: its targets, with targets that are themselves
    /// listed expanded in turn; for a name that is not listed, the `default` entry's.
    /// Targets that are bare names not listed (and not caught by `default`), literal
    /// `\name` targets, a name that lists itself, and names deeper than [`MAX_DEPTH`]
    /// come back as they are, for the caller to qualify. Order is kept; duplicates are
    /// dropped. `Ok(None)` when neither `local` nor `default` is listed; an error naming
    /// the loop when the expansion comes back to a name through others (EX_CONFIG).
    pub fn expand(&self, local: &str) -> Result<Option<Vec<String>>> {
        let key = local.to_lowercase();
        if !self.map.contains_key(&key) && !self.map.contains_key("default") {
            return Ok(None);
        }
        let mut out = Vec::new();
        let mut path = Vec::new();
        self.expand_into(local, &mut path, &mut out)?;
        Ok(Some(out))
    }

    fn expand_into(&self, name: &str, path: &mut Vec<String>, out: &mut Vec<String>) -> Result<()> {
        let key = name.to_lowercase();
        let entry = match self.map.get(&key) {
            Some(t) => Some((key, t)),
            None => self.map.get("default").map(|t| ("default".to_string(), t)),
        };
        let Some((key, targets)) = entry else {
            push_unique(out, name);
            return Ok(());
        };
        // A name listing itself means its own mailbox (sendmail's `root: root, admin@x`).
        if path.last() == Some(&key) || path.len() >= MAX_DEPTH {
            push_unique(out, name);
            return Ok(());
        }
        if let Some(start) = path.iter().position(|p| *p == key) {
            let mut chain = path[start..].to_vec();
            chain.push(key);
            return Err(Error::Config(format!(
                "{}: alias loop: {} (no address to send to; fix the aliases file)",
                self.origin,
                chain.join(" -> ")
            ))
            .into());
        }
        path.push(key);
        for t in targets {
            if t.literal || t.addr.contains('@') {
                push_unique(out, &t.addr);
            } else {
                self.expand_into(&t.addr, path, out)?;
            }
        }
        path.pop();
        Ok(())
    }

    /// One warning for the whole file when it has `|command`, `/file` or `:include:`
    /// targets (Debian's /etc/aliases may): they are skipped, the address lines used.
    pub fn warning(&self) -> Option<String> {
        if self.undeliverable.is_empty() {
            return None;
        }
        let lines: Vec<String> = self.undeliverable.iter().map(usize::to_string).collect();
        let which = if lines.len() == 1 { "line" } else { "lines" };
        Some(format!(
            "{}: skipping the targets postie cannot deliver to (|command, /file, \
             :include:) on {which} {}; the address lines are used",
            self.origin,
            lines.join(", ")
        ))
    }

    /// Notes about skipped targets and repeated names, for `-v`.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

fn push_unique(out: &mut Vec<String>, addr: &str) {
    if !out.iter().any(|a| a.eq_ignore_ascii_case(addr)) {
        out.push(addr.to_string());
    }
}

/// Cut a `#` comment: one at the start of the line (after any white space) or after white
/// space. A `#` inside a word (`a#b@x`) is kept.
fn strip_comment(line: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && prev_space {
            return line.get(..i).unwrap_or(line);
        }
        prev_space = c == ' ' || c == '\t';
    }
    line
}

/// Split a target list on commas that are not inside double quotes or angle brackets.
fn split_targets(raw: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    for (i, c) in raw.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(raw.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(raw.get(start..).unwrap_or(""));
    parts
}

fn config(origin: &str, line: usize, what: &str) -> anyhow::Error {
    Error::Config(format!("aliases file {origin} line {line}: {what}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{exit_code, Exit};

    const FILE: &str = "\
# Example aliases file
root: joe@example.com, Jane Chang <jane@example.com>  # the admins
cron: mark@example.com
Postmaster: root
abuse:
  root,
\tsecurity@example.com
ops: \\root, pager@example.com
loop1: loop2
loop2: loop1, l@example.com
self: self, s@example.com
pipe: |/usr/bin/procmail, p@example.com
onlypipe: |/bin/true
hash: a#b@example.com
root: duplicate@example.com
ring1: ring2
ring2: ring3
ring3: ring1, z@example.com
";

    fn file() -> Aliases {
        Aliases::parse(FILE, "test").unwrap()
    }

    #[test]
    fn expansions() {
        let with_default = Aliases::parse(
            &format!("{FILE}default: catch@example.com\nnobody: user\n"),
            "t",
        )
        .unwrap();
        let cases: &[(&Aliases, &str, Option<&[&str]>)] = &[
            (
                &file(),
                "root",
                Some(&["joe@example.com", "jane@example.com"]),
            ),
            (
                &file(),
                "ROOT",
                Some(&["joe@example.com", "jane@example.com"]),
            ),
            (&file(), "cron", Some(&["mark@example.com"])),
            (
                &file(),
                "postmaster",
                Some(&["joe@example.com", "jane@example.com"]),
            ),
            (
                &file(),
                "abuse",
                Some(&[
                    "joe@example.com",
                    "jane@example.com",
                    "security@example.com",
                ]),
            ),
            (&file(), "ops", Some(&["root", "pager@example.com"])),
            (&file(), "self", Some(&["self", "s@example.com"])),
            (&file(), "pipe", Some(&["p@example.com"])),
            (&file(), "onlypipe", None),
            (&file(), "hash", Some(&["a#b@example.com"])),
            (&file(), "www-data", None),
            (&with_default, "www-data", Some(&["catch@example.com"])),
            (&with_default, "onlypipe", Some(&["catch@example.com"])),
            (
                &with_default,
                "root",
                Some(&["joe@example.com", "jane@example.com"]),
            ),
            // `user` is not listed, so the catch-all applies to it as well.
            (&with_default, "nobody", Some(&["catch@example.com"])),
        ];
        for (aliases, name, want) in cases {
            let got = aliases.expand(name).unwrap();
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn default_pointing_at_an_unlisted_name_stops() {
        let a = Aliases::parse("default: admin\n", "t").unwrap();
        assert_eq!(a.expand("anyone").unwrap(), Some(vec!["admin".to_string()]));
    }

    #[test]
    fn depth_is_bounded() {
        let text: String = (0..30).map(|i| format!("a{i}: a{}\n", i + 1)).collect();
        let a = Aliases::parse(&text, "t").unwrap();
        assert_eq!(a.expand("a0").unwrap(), Some(vec![format!("a{MAX_DEPTH}")]));
    }

    #[test]
    fn a_loop_through_other_names_is_an_error_naming_it() {
        for (name, chain) in [
            ("loop1", "loop1 -> loop2 -> loop1"),
            ("loop2", "loop2 -> loop1 -> loop2"),
            ("ring2", "ring2 -> ring3 -> ring1 -> ring2"),
        ] {
            let err = file().expand(name).unwrap_err();
            assert_eq!(exit_code(&err), Exit::Config, "{err:#}");
            assert_eq!(
                format!("{err:#}"),
                format!("test: alias loop: {chain} (no address to send to; fix the aliases file)")
            );
        }
        // Reaching a loop from outside names the loop itself.
        let a = Aliases::parse("root: admin\nadmin: ops\nops: admin\n", "t").unwrap();
        let err = a.expand("root").unwrap_err();
        assert!(format!("{err:#}").contains("alias loop: admin -> ops -> admin"));
    }

    #[test]
    fn one_warning_names_the_lines_skipped() {
        assert_eq!(
            file().warning().as_deref(),
            Some(
                "test: skipping the targets postie cannot deliver to (|command, /file, \
                 :include:) on lines 12, 13; the address lines are used"
            )
        );
        let include = Aliases::parse(
            "lists: :include:/etc/mail/lists\nproc: \"|/usr/bin/procmail -a x\"\nroot: r@x\n",
            "a",
        )
        .unwrap();
        assert!(include.warning().unwrap().contains("on lines 1, 2;"));
        assert_eq!(
            include.expand("root").unwrap(),
            Some(vec!["r@x".to_string()])
        );
        assert_eq!(Aliases::parse("root: r@x\n", "a").unwrap().warning(), None);
    }

    #[test]
    fn notes_name_what_was_skipped() {
        let notes = file().notes().join("\n");
        assert!(
            notes.contains("line 12: skipped target \"|/usr/bin/procmail\""),
            "{notes}"
        );
        assert!(
            notes.contains("line 13: alias \"onlypipe\" has no deliverable"),
            "{notes}"
        );
        assert!(
            notes.contains("line 15: alias \"root\" defined again"),
            "{notes}"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("root joe@example.com\n", "line 1: expected"),
            ("# c\n  joe@example.com\n", "line 2: continuation line"),
            (
                "a: b@x\nroot:\n\nx: y@x\n",
                "line 2: alias \"root\" has no target",
            ),
            ("two words: x@y\n", "line 1: \"two words\" is not an alias"),
            (": x@y\n", "line 1: \"\" is not an alias"),
            (
                "a: x y@z\n",
                "line 1: \"x y@z\" (alias \"a\") is not an address",
            ),
            (
                "a: b@x,\n  \"q\"@x\n",
                "line 1: \"\\\"q\\\"@x\" (alias \"a\") is not an address",
            ),
        ];
        for (text, want) in cases {
            let err = Aliases::parse(text, "f").unwrap_err();
            assert_eq!(exit_code(&err), Exit::Config, "{text:?}");
            let msg = err.to_string();
            assert!(msg.starts_with("aliases file f "), "{msg}");
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
    }

    #[test]
    fn load_reads_files_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("aliases");
        std::fs::write(&good, "root: r@example.com\n").unwrap();
        let a = load(&good).unwrap();
        assert_eq!(
            a.expand("root").unwrap(),
            Some(vec!["r@example.com".to_string()])
        );

        let err = load(&dir.path().join("missing")).unwrap_err();
        assert_eq!(exit_code(&err), Exit::NoInput);

        let latin1 = dir.path().join("latin1");
        std::fs::write(&latin1, b"a: b@x\nj\xfcrgen: j@x\n").unwrap();
        let err = load(&latin1).unwrap_err();
        assert_eq!(exit_code(&err), Exit::Config);
        assert!(err.to_string().contains("line 2: not UTF-8"), "{err}");
    }

    #[test]
    fn comments_and_splitting() {
        let cases = [
            ("a: b@x # c", "a: b@x "),
            ("# all", ""),
            ("a: b#c@x", "a: b#c@x"),
            ("a: b@x\t#c", "a: b@x\t"),
        ];
        for (line, want) in cases {
            assert_eq!(strip_comment(line), want, "{line}");
        }
        assert_eq!(
            split_targets(" \"Doe, J\" <j@x>, <a,b@x>,c@x"),
            [" \"Doe, J\" <j@x>", " <a,b@x>", "c@x"]
        );
    }
}
