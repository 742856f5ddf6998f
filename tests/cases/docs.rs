//! The exit-code table is written once: `src/error.rs`'s [`postie::error::Exit`] is the
//! list of codes, and every place that documents them must say the same thing. And
//! README.md stays a front page that leads into GUIDE.md.
//!
//! Owns: that the tables under README.md's and GUIDE.md's "## Exit codes" and the man
//! page's EXIT STATUS section (man/sections/exit-status.roff, rendered into man/postie.1)
//! list exactly the codes and sysexits names of `Exit::ALL`, in order, and give each code
//! the same words (compared after removing Markdown backticks and roff escapes, ignoring
//! case and a final period); that README.md is at most 12 KiB; that every `GUIDE.md#anchor`
//! link in README.md, and every `#anchor` link within README.md or GUIDE.md, names a
//! heading of that file (GitHub's anchors); that README.md links to every top-level
//! section of GUIDE.md.
//! Must not: read anything outside the repository or run postie.

use std::path::PathBuf;

use postie::error::Exit;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    let path = root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One documented exit code: (code, sysexits name, when).
type Row = (u8, String, String);

/// The words of a row, compared loosely: no Markdown or roff markup, one space between
/// words, no final period, lower case.
fn words(text: &str) -> String {
    let mut t = text.replace('`', "");
    for escape in ["\\fB", "\\fR", "\\fI", "\\fP", "\\&"] {
        t = t.replace(escape, "");
    }
    t = t.replace("\\-", "-").replace("\\(em", "—");
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    t.trim_end_matches('.').to_lowercase()
}

/// The Markdown table under the first heading of `doc` whose text is "Exit codes"
/// (any level); `None` when there is no such heading.
fn markdown_table(doc: &str, file: &str) -> Option<Vec<Row>> {
    let mut lines = doc.lines();
    lines.find(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == "Exit codes")?;
    let table: Vec<&str> = lines
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert!(
        table.len() > 2,
        "{file}: no table under the Exit codes heading"
    );
    assert_eq!(
        table[0].replace(' ', ""),
        "|code|name|when|",
        "{file}: the table's header"
    );
    let rows = table[2..]
        .iter()
        .map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            assert_eq!(cells.len(), 3, "{file}: not 3 cells: {line}");
            let code = cells[0]
                .parse()
                .unwrap_or_else(|_| panic!("{file}: not a code: {line}"));
            (code, cells[1].to_string(), words(cells[2]))
        })
        .collect();
    Some(rows)
}

/// The `.TP` entries of the man page's EXIT STATUS section: `.B "CODE NAME"` then the
/// paragraph.
fn man_entries(page: &str) -> Vec<Row> {
    let section: Vec<&str> = page
        .lines()
        .skip_while(|l| *l != ".SH \"EXIT STATUS\"")
        .skip(1)
        .take_while(|l| !l.starts_with(".SH"))
        .collect();
    assert!(!section.is_empty(), "man/postie.1: no EXIT STATUS section");
    let mut rows = Vec::new();
    let mut lines = section.iter().peekable();
    while let Some(line) = lines.next() {
        if *line != ".TP" {
            continue;
        }
        let tag = lines.next().expect("a tag line after .TP");
        let tag = tag
            .strip_prefix(".B ")
            .unwrap_or_else(|| panic!("man page: tag is not .B \"CODE NAME\": {tag}"))
            .trim_matches('"');
        let (code, name) = tag
            .split_once(' ')
            .unwrap_or_else(|| panic!("man page: tag is not \"CODE NAME\": {tag}"));
        let mut text = Vec::new();
        while let Some(l) = lines.peek() {
            if l.starts_with('.') {
                break;
            }
            text.push(**l);
            lines.next();
        }
        let code = code
            .parse()
            .unwrap_or_else(|_| panic!("man page: not a code: {tag}"));
        rows.push((code, name.to_string(), words(&text.join(" "))));
    }
    rows
}

fn codes_and_names(rows: &[Row]) -> Vec<(u8, &str)> {
    rows.iter().map(|(c, n, _)| (*c, n.as_str())).collect()
}

#[test]
fn exit_codes_agree_in_error_rs_readme_guide_and_man_page() {
    let want: Vec<(u8, &str)> = Exit::ALL.iter().map(|e| (e.code(), e.name())).collect();

    let readme = markdown_table(&read("README.md"), "README.md")
        .expect("README.md has an \"## Exit codes\" section");
    assert_eq!(
        codes_and_names(&readme),
        want,
        "README.md's exit-code table and src/error.rs's Exit::ALL differ"
    );

    let man = man_entries(&read("man/postie.1"));
    assert_eq!(
        codes_and_names(&man),
        want,
        "the man page's EXIT STATUS (man/sections/exit-status.roff) and src/error.rs differ"
    );
    for ((code, _, doc), (_, _, page)) in readme.iter().zip(&man) {
        assert_eq!(
            doc, page,
            "exit {code}: README.md and man/sections/exit-status.roff say different things"
        );
    }

    let guide = markdown_table(&read("GUIDE.md"), "GUIDE.md")
        .expect("GUIDE.md has an \"## Exit codes\" section");
    assert_eq!(
        guide, readme,
        "GUIDE.md's exit-code table and README.md's differ"
    );
}

/// Every `{code, name}` exit object described in `schema` (found by its `name` enum
/// holding "EX_OK"): (codes, names) per object.
fn schema_exit_enums(schema: &serde_json::Value, out: &mut Vec<(Vec<u64>, Vec<String>)>) {
    match schema {
        serde_json::Value::Object(map) => {
            let props = map.get("properties");
            let names = props.and_then(|p| p["name"]["enum"].as_array());
            if let Some(names) = names.filter(|n| n.iter().any(|v| v == "EX_OK")) {
                let codes = props.and_then(|p| p["code"]["enum"].as_array());
                out.push((
                    codes
                        .map(|c| c.iter().filter_map(|v| v.as_u64()).collect())
                        .unwrap_or_default(),
                    names
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                ));
            }
            map.values().for_each(|v| schema_exit_enums(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| schema_exit_enums(v, out)),
        _ => {}
    }
}

/// The JSON schemas (--json, batch --json, --probe --json) allow exactly the codes of
/// `Exit::ALL` in their `exit` objects.
#[test]
fn exit_codes_agree_in_the_json_schemas() {
    let codes: Vec<u64> = Exit::ALL.iter().map(|e| u64::from(e.code())).collect();
    let names: Vec<String> = Exit::ALL.iter().map(|e| e.name().to_string()).collect();
    let mut schemas: Vec<PathBuf> = std::fs::read_dir(root().join("schema"))
        .expect("schema/")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    schemas.sort();
    assert!(!schemas.is_empty(), "no schema/*.json");
    for path in schemas {
        let text = std::fs::read_to_string(&path).expect("read a schema");
        let schema: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let mut found = Vec::new();
        schema_exit_enums(&schema, &mut found);
        assert!(!found.is_empty(), "{}: no exit object", path.display());
        for (c, n) in found {
            assert_eq!(c, codes, "{}: exit codes", path.display());
            assert_eq!(n, names, "{}: exit names", path.display());
        }
    }
}

/// The checks above can fail: a row with another code, name or text is caught.
#[test]
fn exit_code_table_parsers_see_what_differs() {
    let doc = "# x\n\n## Exit codes\n\n| code | name | when |\n|---|---|---|\n\
               | 0 | EX_OK | all `sent` |\n| 75 | EX_TEMPFAIL | later |\n\nmore\n";
    let rows = markdown_table(doc, "test").expect("a table");
    assert_eq!(
        rows,
        vec![
            (0, "EX_OK".into(), "all sent".into()),
            (75, "EX_TEMPFAIL".into(), "later".into())
        ]
    );
    assert_eq!(markdown_table("# Other\n| a |\n", "test"), None);
    let page = ".SH \"EXIT STATUS\"\nintro\n.TP\n.B \"0 EX_OK\"\nAll \\fBsent\\fR.\n\
                .TP\n.B \"75 EX_TEMPFAIL\"\nLater\nstill.\n.SH ENVIRONMENT\n.TP\n.B \"1 X\"\n";
    assert_eq!(
        man_entries(page),
        vec![
            (0, "EX_OK".into(), "all sent".into()),
            (75, "EX_TEMPFAIL".into(), "later still".into())
        ]
    );
    assert_ne!(words("a 4xx reply"), words("a 5xx reply"));
}

/// README.md is the front page (issue 16): at most 12 KiB; the reference is GUIDE.md.
const README_MAX_BYTES: usize = 12 * 1024;

#[test]
fn readme_is_a_front_page_of_at_most_12_kib() {
    let size = read("README.md").len();
    assert!(
        size <= README_MAX_BYTES,
        "README.md is {size} bytes, over {README_MAX_BYTES}: move the detail to GUIDE.md"
    );
}

/// GitHub's anchor for a heading's text: lower case, Markdown backticks and punctuation
/// dropped (letters, digits, `-` and `_` kept), each space a `-`.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// A Markdown document's ATX headings, outside fenced code blocks (where `#` starts a
/// shell comment), as (level, anchor); a repeated anchor gets `-1`, `-2`, ... as on GitHub.
fn headings(doc: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut fenced = false;
    for line in doc.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || line.len() - trimmed.len() > 3 {
            continue;
        }
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        let Some(text) = trimmed[level..].strip_prefix(' ') else {
            continue;
        };
        if !(1..=6).contains(&level) {
            continue;
        }
        let base = anchor(text.trim().trim_end_matches('#').trim());
        let mut name = base.clone();
        let mut n = 0;
        while out.iter().any(|(_, a)| *a == name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        out.push((level, name));
    }
    out
}

/// The anchors of a Markdown document's headings (see [`headings`]).
fn anchors(doc: &str) -> Vec<String> {
    headings(doc).into_iter().map(|(_, a)| a).collect()
}

/// The anchors of the Markdown links in `doc` to `target` (`GUIDE.md#x` for "GUIDE.md",
/// `#x` for ""): the part between `](TARGET#` and `)`.
fn links_to(doc: &str, target: &str) -> Vec<String> {
    let start = format!("]({target}#");
    doc.match_indices(&start)
        .map(|(at, _)| {
            let rest = &doc[at + start.len()..];
            rest[..rest.find(')').expect("a link ends with )")].to_string()
        })
        .collect()
}

#[test]
fn readme_links_reach_headings_of_guide_md() {
    let readme = read("README.md");
    let guide = read("GUIDE.md");
    let guide_anchors = anchors(&guide);
    let to_guide = links_to(&readme, "GUIDE.md");
    assert!(
        !to_guide.is_empty(),
        "README.md links to no GUIDE.md section"
    );
    for link in &to_guide {
        assert!(
            guide_anchors.contains(link),
            "README.md links to GUIDE.md#{link}, which is no heading of GUIDE.md"
        );
    }
    for (name, doc) in [("README.md", &readme), ("GUIDE.md", &guide)] {
        let own = anchors(doc);
        for link in links_to(doc, "") {
            assert!(
                own.contains(&link),
                "{name} links to #{link}, which is no heading of {name}"
            );
        }
    }
}

/// A reader of README.md alone finds every part of the guide: each top-level section of
/// GUIDE.md is linked from README.md, except its contents and its exit codes (README.md
/// has the table itself).
#[test]
fn readme_links_every_section_of_guide_md() {
    let readme = read("README.md");
    let linked = links_to(&readme, "GUIDE.md");
    for (level, section) in headings(&read("GUIDE.md")) {
        if level != 2 || section == "contents" || section == "exit-codes" {
            continue;
        }
        assert!(
            linked.contains(&section),
            "README.md does not link to GUIDE.md#{section}"
        );
    }
}

/// The anchor rules above match GitHub's, and headings in code blocks are not headings.
#[test]
fn anchors_follow_github() {
    assert_eq!(
        anchor("Sending many messages: `postie batch`"),
        "sending-many-messages-postie-batch"
    );
    assert_eq!(
        anchor("Moving from mailx (bsd-mailx, s-nail) and a sendmail (Postfix, msmtp-mta)"),
        "moving-from-mailx-bsd-mailx-s-nail-and-a-sendmail-postfix-msmtp-mta"
    );
    assert_eq!(
        anchor("Reliability: fuzzing, 2 ways"),
        "reliability-fuzzing-2-ways"
    );
    let doc =
        "# postie\n\n## Queue\n\n```sh\n# not a heading\n```\n\n  ```json\n## nor this\n  ```\n\n\
               ### Queue\n#hashtag\n";
    assert_eq!(anchors(doc), vec!["postie", "queue", "queue-1"]);
    assert_eq!(
        headings(doc).iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let links = "see [a](GUIDE.md#queue) and [b](#postie), [c](GUIDE.md) [d](GUIDE.md#x-y)";
    assert_eq!(links_to(links, "GUIDE.md"), vec!["queue", "x-y"]);
    assert_eq!(links_to(links, ""), vec!["postie"]);
}
