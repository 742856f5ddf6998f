//! The inputs of `postie batch`: what each PATH holds, checked whole before anything is
//! sent ([`plan`]), read again one message at a time as the batch goes ([`Items`]), and
//! each message turned into an envelope and a [`Message`] when its turn comes
//! ([`Prepare`]).
//!
//! A PATH is a directory (its `*.eml` files, in byte order of their names, for a stable
//! order), an mbox file, a JSON-lines file, or a single message file. Files are told apart
//! by extension (`.eml`, `.mbox`, `.jsonl`/`.ndjson`), else by their first bytes (`From `:
//! mbox; `{`: JSON lines; anything else: one message).
//!
//! Messages are built and opened by `message` and enveloped by `envelope`, exactly as for a
//! single message: a JSON line's body is composed with mail-builder (`message::prepare` on a
//! [`Compose`]); a ready message (an .eml, an mbox entry, a JSON line's `path`) goes through
//! the sendmail persona's `-t` handling (recipients from To/Cc/Bcc, Bcc removed, a missing
//! From/Date/Message-ID added) unless the command line names recipients. Ready messages
//! stream from their files. A JSON-lines file or an mbox is read whole to check it (and
//! count its messages), and nothing of it is kept: [`Items`] scans it again as the batch
//! goes, yielding where each message starts (an [`Item`], a few words) when its turn
//! comes, and the line is parsed again then. So memory does not grow with the number of
//! messages, only with the number of files of the directories named (whose names are
//! kept, sorted, for the order). A file that changed between the check and its turn
//! fails the messages that are no longer where they were ([`Item::Gone`]), never more or
//! fewer messages than were counted.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use serde::Deserialize;

use super::mbox;
use crate::config::{Body, Compose, Config, Content, Recipients, SendmailOptions, Source};
use crate::envelope::{self, Envelope};
use crate::error::Error;
use crate::message::{self, Message};

/// One message to send, as found by [`plan`].
#[derive(Debug, Clone)]
pub enum Item {
    /// A ready message in a file of its own.
    File(PathBuf),
    /// One message of an mbox file (`number` counts from 1).
    Mbox {
        /// Shared by the file's messages.
        path: Arc<Path>,
        number: usize,
        span: mbox::Span,
    },
    /// One line of a JSON-lines file (`line` counts from 1), checked by [`plan`]; it
    /// starts `offset` bytes into the file and is read again by [`Prepare::item`].
    Json {
        /// Shared by the file's lines.
        path: Arc<Path>,
        line: usize,
        offset: u64,
    },
    /// Message `number` (from 1) of the mbox or JSON-lines file `path` as [`plan`] counted
    /// them, no longer there when its turn came (the file changed meanwhile).
    Gone { path: Arc<Path>, number: usize },
}

impl Item {
    /// Where the message comes from, for the report: `dir/a.eml`, `box.mbox#2`,
    /// `list.jsonl:5`.
    pub fn source(&self) -> String {
        match self {
            Item::File(p) => p.display().to_string(),
            Item::Mbox { path, number, .. } => format!("{}#{number}", path.display()),
            Item::Json { path, line, .. } => format!("{}:{line}", path.display()),
            Item::Gone { path, number } => format!("{} (message {number})", path.display()),
        }
    }
}

/// A string or a list of strings (`"to": "a@x"` or `"to": ["a@x", "b@x"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// One line of a JSON-lines file. Unknown fields are refused, so a typo is an error and
/// not a silently missing header.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    from: Option<String>,
    to: Option<OneOrMany>,
    cc: Option<OneOrMany>,
    bcc: Option<OneOrMany>,
    subject: Option<String>,
    body: Option<String>,
    /// A ready message file, sent as it is (relative to the JSON-lines file).
    path: Option<PathBuf>,
}

impl Entry {
    fn recipients(&self) -> Recipients {
        let list = |v: &Option<OneOrMany>| v.as_ref().map_or_else(Vec::new, OneOrMany::list);
        Recipients {
            to: list(&self.to),
            cc: list(&self.cc),
            bcc: list(&self.bcc),
        }
    }
}

fn has_recipients(r: &Recipients) -> bool {
    !(r.to.is_empty() && r.cc.is_empty() && r.bcc.is_empty())
}

fn no_input(what: &'static str, path: &Path, source: io::Error) -> anyhow::Error {
    Error::NoInput {
        what,
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// What [`plan`] found in the PATHs: how many messages, and where, in order.
#[derive(Debug)]
pub struct Plan {
    /// Messages in all.
    pub total: usize,
    inputs: Vec<Input>,
}

/// One PATH, or a directory's files.
#[derive(Debug)]
enum Input {
    /// Ready messages, one per file (a directory's .eml files, sorted, or one file).
    Files(Vec<PathBuf>),
    /// An mbox file holding `count` messages.
    Mbox { path: Arc<Path>, count: usize },
    /// A JSON-lines file holding `count` messages (lines that are not empty).
    Json { path: Arc<Path>, count: usize },
}

impl Plan {
    /// The messages, in order, read from the inputs again as they are taken: exactly
    /// [`Plan::total`] of them.
    pub fn items(&self) -> Items<'_> {
        Items {
            inputs: self.inputs.iter(),
            current: None,
        }
    }
}

/// Every message the PATHs hold, counted and checked, in order. Fails, naming the file
/// (and line), when a PATH cannot be read, a directory has no .eml files, an mbox is not
/// one, a JSON line is not a valid message, or there is nothing to send at all.
pub fn plan(cfg: &Config, paths: &[PathBuf]) -> Result<Plan> {
    let mut inputs = Vec::new();
    let mut total = 0usize;
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| no_input("input", path, e))?;
        let input = if meta.is_dir() {
            Input::Files(directory(path)?)
        } else {
            match kind(path)? {
                Kind::Message => Input::Files(vec![path.clone()]),
                Kind::Mbox => Input::Mbox {
                    path: Arc::from(path.as_path()),
                    count: mbox_count(path)?,
                },
                Kind::Json => Input::Json {
                    path: Arc::from(path.as_path()),
                    count: json_count(cfg, path)?,
                },
            }
        };
        total += match &input {
            Input::Files(files) => files.len(),
            Input::Mbox { count, .. } | Input::Json { count, .. } => *count,
        };
        inputs.push(input);
    }
    if total == 0 {
        return Err(Error::Data(format!(
            "no messages to send in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    Ok(Plan { total, inputs })
}

/// The messages of a [`Plan`], one at a time ([`Plan::items`]).
pub struct Items<'a> {
    inputs: std::slice::Iter<'a, Input>,
    current: Option<Scan<'a>>,
}

/// Where [`Items`] is in one input.
enum Scan<'a> {
    Files(std::slice::Iter<'a, PathBuf>),
    /// An mbox or a JSON-lines file, scanned again.
    Counted {
        path: &'a Arc<Path>,
        count: usize,
        /// Messages yielded so far.
        taken: usize,
        /// `None` when the file could not be opened again, or its scan failed.
        reader: Option<Reread>,
    },
}

/// The scan of an mbox or a JSON-lines file, again.
enum Reread {
    Mbox(mbox::Spans<BufReader<File>>),
    Json(JsonLines),
}

impl Reread {
    fn open(input: &Input) -> Option<Reread> {
        match input {
            Input::Files(_) => None,
            Input::Mbox { path, .. } => File::open(path).ok().map(|f| {
                let what = path.display().to_string();
                let input = BufReader::with_capacity(64 * 1024, f);
                Reread::Mbox(mbox::Spans::new(input, &what))
            }),
            Input::Json { path, .. } => File::open(path).ok().map(|f| {
                Reread::Json(JsonLines {
                    input: BufReader::new(f),
                    offset: 0,
                    line: 0,
                    text: String::new(),
                })
            }),
        }
    }

    /// Message `number` of `path`; `None` at the end of the file or when it fails.
    fn next(&mut self, path: &Arc<Path>, number: usize) -> Option<Item> {
        let path = Arc::clone(path);
        match self {
            Reread::Mbox(spans) => match spans.next()? {
                Ok(span) => Some(Item::Mbox { path, number, span }),
                Err(_) => None,
            },
            Reread::Json(lines) => {
                lines
                    .next()
                    .map(|(line, offset)| Item::Json { path, line, offset })
            }
        }
    }
}

impl Iterator for Items<'_> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.current.as_mut().and_then(Scan::next) {
                return Some(item);
            }
            let input = self.inputs.next()?;
            self.current = Some(match input {
                Input::Files(files) => Scan::Files(files.iter()),
                Input::Mbox { path, count } | Input::Json { path, count } => Scan::Counted {
                    path,
                    count: *count,
                    taken: 0,
                    reader: Reread::open(input),
                },
            });
        }
    }
}

impl Scan<'_> {
    /// The input's next message: as many as [`plan`] counted, those no longer there
    /// [`Item::Gone`].
    fn next(&mut self) -> Option<Item> {
        match self {
            Scan::Files(files) => files.next().cloned().map(Item::File),
            Scan::Counted {
                path,
                count,
                taken,
                reader,
            } => {
                if *taken == *count {
                    return None;
                }
                *taken += 1;
                let item = reader.as_mut().and_then(|r| r.next(path, *taken));
                if item.is_none() {
                    *reader = None;
                }
                Some(item.unwrap_or_else(|| Item::Gone {
                    path: Arc::clone(path),
                    number: *taken,
                }))
            }
        }
    }
}

/// A JSON-lines file read again: where each line that is not empty starts (the line is
/// parsed when its turn comes, by [`Prepare`]).
struct JsonLines {
    input: BufReader<File>,
    offset: u64,
    /// The last line read (from 1).
    line: usize,
    text: String,
}

impl JsonLines {
    /// The next line that is not empty: its number and where it starts. `None` at the
    /// end, or when the file cannot be read.
    fn next(&mut self) -> Option<(usize, u64)> {
        loop {
            self.text.clear();
            let n = self.input.read_line(&mut self.text).ok()?;
            if n == 0 {
                return None;
            }
            let start = self.offset;
            self.offset += n as u64;
            self.line += 1;
            if !self.text.trim().is_empty() {
                return Some((self.line, start));
            }
        }
    }
}

enum Kind {
    Message,
    Mbox,
    Json,
}

fn kind(path: &Path) -> Result<Kind> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("eml") => return Ok(Kind::Message),
        Some("mbox") => return Ok(Kind::Mbox),
        Some("jsonl" | "ndjson") => return Ok(Kind::Json),
        _ => {}
    }
    let mut head = [0u8; 5];
    let mut file = File::open(path).map_err(|e| no_input("input", path, e))?;
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(no_input("input", path, e)),
        }
    }
    Ok(match &head[..got] {
        b"From " => Kind::Mbox,
        h if h.starts_with(b"{") => Kind::Json,
        _ => Kind::Message,
    })
}

/// A directory's .eml files (any case of the extension), sorted by name.
fn directory(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| no_input("message directory", dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| no_input("message directory", dir, e))?;
        let path = entry.path();
        let is_eml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("eml"));
        // A directory named x.eml is not a message; symlinks to files are. The entry's
        // type comes with the listing: no stat per file unless it is a link.
        let is_file = match entry.file_type() {
            Ok(t) if t.is_symlink() => path.is_file(),
            Ok(t) => t.is_file(),
            Err(_) => path.is_file(),
        };
        if is_eml && is_file {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(no_input(
            "message directory",
            dir,
            io::Error::new(io::ErrorKind::NotFound, "it has no .eml files"),
        ));
    }
    files.sort();
    Ok(files)
}

/// How many messages an mbox holds (at least one, or it fails), scanned whole.
fn mbox_count(path: &Path) -> Result<usize> {
    let file = File::open(path).map_err(|e| no_input("mbox", path, e))?;
    let what = path.display().to_string();
    let mut count = 0usize;
    for span in mbox::Spans::new(BufReader::with_capacity(64 * 1024, file), &what) {
        span?;
        count += 1;
    }
    if count == 0 {
        return Err(no_input(
            "mbox",
            path,
            io::Error::new(io::ErrorKind::NotFound, "it has no messages"),
        ));
    }
    Ok(count)
}

/// Every line of a JSON-lines file, each checked: valid JSON of the [`Entry`] shape,
/// `body` or `path` (not both, and no `subject` with `path`), recipients (its own or the
/// command line's; a `path` message may take them from its headers), well-formed
/// addresses, and a `path` that exists. Empty lines are skipped. Returns how many lines
/// are messages.
fn json_count(cfg: &Config, path: &Path) -> Result<usize> {
    let file = File::open(path).map_err(|e| no_input("JSON-lines file", path, e))?;
    let mut input = BufReader::new(file);
    let (mut offset, mut number, mut count) = (0u64, 0usize, 0usize);
    let mut text = String::new();
    loop {
        number += 1;
        let Some(entry) = json_line(cfg, path, number, &mut input, &mut text, &mut offset)? else {
            break;
        };
        if entry.is_some() {
            count += 1;
        }
    }
    Ok(count)
}

/// Read line `number` of JSON-lines file `path` from `input` (into `text`; `offset` moves
/// past it) and check it as [`json_count`] does: `None` at the end of the file,
/// `Some(None)` for an empty line, else the entry, a relative `path` made absolute.
fn json_line(
    cfg: &Config,
    path: &Path,
    number: usize,
    input: &mut impl BufRead,
    text: &mut String,
    offset: &mut u64,
) -> Result<Option<Option<Entry>>> {
    let at = || format!("{}:{number}", path.display());
    text.clear();
    let n = input
        .read_line(text)
        .map_err(|e| Error::Data(format!("{}: {e}", at())))?;
    if n == 0 {
        return Ok(None);
    }
    *offset += n as u64;
    if text.trim().is_empty() {
        return Ok(Some(None));
    }
    let mut entry: Entry = serde_json::from_str(text)
        .map_err(|e| Error::Data(format!("{}: not a message: {e}", at())))?;
    let base = path.parent().unwrap_or(Path::new("."));
    check_entry(cfg, &mut entry, base).map_err(|e| match e {
        Error::NoInput { what, path, source } => Error::NoInput {
            what,
            path,
            source: io::Error::new(source.kind(), format!("{} ({source})", at())),
        },
        Error::Data(m) => Error::Data(format!("{}: {m}", at())),
        other => other,
    })?;
    Ok(Some(Some(entry)))
}

/// The checks of [`json_count`] for one line; a relative `path` is made relative to `base`.
fn check_entry(cfg: &Config, entry: &mut Entry, base: &Path) -> Result<(), Error> {
    match (&entry.body, &entry.path, &entry.subject) {
        (Some(_), Some(_), _) => {
            return Err(Error::Data(
                "\"body\" and \"path\" both given: one message is either".into(),
            ))
        }
        (None, None, _) => {
            return Err(Error::Data(
                "neither \"body\" nor \"path\": nothing to send".into(),
            ))
        }
        (None, Some(_), Some(_)) => {
            return Err(Error::Data(
                "\"subject\" with \"path\": a ready message is sent as it is".into(),
            ))
        }
        _ => {}
    }
    if let Some(p) = entry.path.take() {
        let full = if p.is_absolute() { p } else { base.join(p) };
        File::open(&full).map_err(|source| Error::NoInput {
            what: "message file",
            path: full.clone(),
            source,
        })?;
        entry.path = Some(full);
    }
    let data = |e: anyhow::Error| Error::Data(format!("{e:#}"));
    if let Some(from) = &entry.from {
        envelope::sender(cfg, from).map_err(data)?;
    }
    let own = entry.recipients();
    for r in own.to.iter().chain(&own.cc).chain(&own.bcc) {
        envelope::qualify(cfg, r).map_err(data)?;
    }
    if entry.body.is_some() && !has_recipients(&own) && !has_recipients(&cfg.recipients) {
        return Err(Error::Data(
            "no recipients: give \"to\" (or --to on the command line)".into(),
        ));
    }
    Ok(())
}

/// Turns [`Item`]s into envelopes and messages, one at a time, through a working copy of the
/// configuration whose message fields change per item.
pub struct Prepare<'a> {
    cfg: &'a Config,
    work: Config,
    /// The JSON-lines file read last, kept open for its next line.
    json: Option<(Arc<Path>, BufReader<File>)>,
}

impl<'a> Prepare<'a> {
    pub fn new(cfg: &'a Config) -> Self {
        Prepare {
            cfg,
            work: cfg.clone(),
            json: None,
        }
    }

    /// Line `line` of `path`, starting at `offset`: read, parsed and checked again (the
    /// file may have changed since [`plan`]; then this message fails, as it would had it
    /// changed before).
    fn json_entry(&mut self, path: &Arc<Path>, line: usize, offset: u64) -> Result<Entry> {
        let cfg = self.cfg;
        let kept = match self.json.take() {
            Some((open, reader)) if Arc::ptr_eq(&open, path) => (open, reader),
            _ => {
                let file = File::open(path).map_err(|e| no_input("JSON-lines file", path, e))?;
                (Arc::clone(path), BufReader::new(file))
            }
        };
        let (_, reader) = self.json.insert(kept);
        reader
            .seek(SeekFrom::Start(offset))
            .map_err(|e| no_input("JSON-lines file", path, e))?;
        let (mut text, mut at) = (String::new(), offset);
        match json_line(cfg, path, line, reader, &mut text, &mut at)? {
            Some(Some(entry)) => Ok(entry),
            _ => Err(Error::Data(format!(
                "{}:{line}: the line is gone (the file changed while the batch ran)",
                path.display()
            ))
            .into()),
        }
    }

    /// The envelope and the message of `item`, opened (and for ready messages, only their
    /// header block read). Fails as a single message would: unreadable file (66), no
    /// recipients or a malformed address (65), ...
    pub fn item(&mut self, item: &Item) -> Result<(Envelope, Message)> {
        let cfg = self.cfg;
        let typed = has_recipients(&cfg.recipients);
        self.work.from.clone_from(&cfg.from);
        self.work.recipients.clone_from(&cfg.recipients);
        // Ready messages: -t unless the command line names recipients; Bcc always removed.
        self.work.sendmail = SendmailOptions {
            extract_recipients: !typed,
            rewrite_headers: true,
            full_name: None,
        };
        let message = match item {
            Item::File(path) => {
                self.work.content = Content::Ready(Source::File(path.clone()));
                message::prepare(&self.work, Box::new(io::empty()))?
            }
            Item::Gone { .. } => {
                return Err(Error::Data(format!(
                    "{}: the message is gone (the file changed while the batch ran)",
                    item.source()
                ))
                .into())
            }
            Item::Mbox { path, span, .. } => {
                let mut file = File::open(path).map_err(|e| no_input("mbox", path, e))?;
                file.seek(SeekFrom::Start(span.start))
                    .map_err(|e| no_input("mbox", path, e))?;
                let region = BufReader::with_capacity(64 * 1024, file.take(span.end - span.start));
                self.work.content = Content::Ready(Source::Stdin);
                message::prepare(&self.work, Box::new(mbox::Unquote::new(region)))?
            }
            Item::Json { path, line, offset } => {
                let entry = self.json_entry(path, *line, *offset)?;
                if entry.from.is_some() {
                    self.work.from.clone_from(&entry.from);
                }
                let own = entry.recipients();
                if !typed && has_recipients(&own) {
                    self.work.recipients = own;
                    self.work.sendmail.extract_recipients = false;
                }
                self.work.content = match (entry.path, entry.body) {
                    (Some(path), _) => Content::Ready(Source::File(path)),
                    (None, body) => Content::Compose(Compose {
                        subject: entry.subject,
                        reply_to: Vec::new(),
                        headers: Vec::new(),
                        body: Some(Body::Text(body.unwrap_or_default())),
                        html: None,
                        attachments: Vec::new(),
                    }),
                };
                message::prepare(&self.work, Box::new(io::empty()))?
            }
        };
        let envelope = envelope::build(&self.work, &message)?;
        Ok((envelope, message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole message as text.
    fn all(m: Message) -> String {
        let mut out = Vec::new();
        m.write_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn config(args: &[&str]) -> Config {
        let argv: Vec<&str> = ["--server", "127.0.0.1:25", "--tls", "none"]
            .into_iter()
            .chain(args.iter().copied())
            .collect();
        crate::config::for_tests(&argv, &[(crate::config::TEST_MODE_ENV, "1")])
    }

    /// Every item of the plan of `paths`, in order.
    fn all_items(cfg: &Config, paths: &[PathBuf]) -> Vec<Item> {
        let plan = plan(cfg, paths).unwrap();
        let items: Vec<Item> = plan.items().collect();
        assert_eq!(items.len(), plan.total);
        items
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn directory_eml_files_in_name_order_only() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.eml", "a.eml", "c.EML", "notes.txt"] {
            write(dir.path(), name, "To: x@y.example\n\nhi\n");
        }
        std::fs::create_dir(dir.path().join("d.eml")).unwrap();
        let items = all_items(&config(&[]), &[dir.path().to_path_buf()]);
        let names: Vec<String> = items
            .iter()
            .map(|i| match i {
                Item::File(p) => p.file_name().unwrap().to_string_lossy().into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["a.eml", "b.eml", "c.EML"]);
    }

    #[test]
    fn empty_directory_and_missing_path_are_no_input() {
        let dir = tempfile::tempdir().unwrap();
        for path in [dir.path().to_path_buf(), dir.path().join("missing.jsonl")] {
            let err = plan(&config(&[]), std::slice::from_ref(&path)).unwrap_err();
            assert_eq!(crate::error::exit_code(&err), crate::error::Exit::NoInput);
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn kinds_by_extension_then_content() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mbox = write(d, "box", "From a@x Mon\nTo: b@y.example\n\nhi\n");
        let json = write(d, "list", "{\"to\":\"b@y.example\",\"body\":\"hi\"}\n");
        let eml = write(d, "one", "To: b@y.example\n\nhi\n");
        let items = all_items(&config(&[]), &[mbox, json, eml]);
        assert!(matches!(items[0], Item::Mbox { number: 1, .. }));
        assert!(matches!(items[1], Item::Json { line: 1, .. }));
        assert!(matches!(items[2], Item::File(_)));
        assert_eq!(
            items.iter().map(Item::source).collect::<Vec<_>>(),
            [
                format!("{}#1", d.join("box").display()),
                format!("{}:1", d.join("list").display()),
                d.join("one").display().to_string()
            ]
        );
    }

    #[test]
    fn bad_json_lines_are_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "{\"to\":\"a@x.example\",\"body\":\"hi\"}\n{\"to\": 5}\n",
                ":2",
                "not a message",
            ),
            ("not json\n", ":1", "not a message"),
            (
                "{\"to\":\"a@x.example\",\"body\":\"x\",\"sbject\":\"s\"}\n",
                ":1",
                "sbject",
            ),
            ("{\"to\":\"a@x.example\"}\n", ":1", "nothing to send"),
            ("{\"body\":\"x\"}\n", ":1", "no recipients"),
            (
                "\n{\"to\":\"a b@x\",\"body\":\"x\"}\n",
                ":2",
                "malformed address",
            ),
            (
                "{\"to\":\"a@x.example\",\"body\":\"x\",\"from\":\"@\"}\n",
                ":1",
                "malformed",
            ),
            (
                "{\"to\":\"a@x.example\",\"body\":\"x\",\"path\":\"m.eml\"}\n",
                ":1",
                "both",
            ),
        ];
        for (text, at, why) in cases {
            let p = write(dir.path(), "l.jsonl", text);
            let err = plan(&config(&[]), std::slice::from_ref(&p)).unwrap_err();
            assert_eq!(
                crate::error::exit_code(&err),
                crate::error::Exit::DataErr,
                "{text}: {err:#}"
            );
            let msg = format!("{err:#}");
            assert!(msg.contains(&format!("{}{at}", p.display())), "{msg}");
            assert!(msg.contains(why), "{text}: {msg}");
        }
        let p = write(
            dir.path(),
            "l.jsonl",
            "{\"to\":\"a@x.example\",\"path\":\"gone.eml\"}\n",
        );
        let err = plan(&config(&[]), std::slice::from_ref(&p)).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::Exit::NoInput);
        assert!(format!("{err:#}").contains("l.jsonl:1"), "{err:#}");
        // Recipients on the command line make "to" optional.
        let p = write(dir.path(), "l.jsonl", "{\"body\":\"x\"}\n");
        assert_eq!(
            plan(&config(&["--to", "z@x.example"]), &[p]).unwrap().total,
            1
        );
    }

    #[test]
    fn prepared_messages_and_envelopes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "ready.eml",
            "From: Me <me@x.example>\nTo: a@y.example\nBcc: hidden@y.example\n\nready\n",
        );
        let json = write(
            d,
            "l.jsonl",
            "{\"from\":\"j@x.example\",\"to\":[\"a@y.example\",\"b@y.example\"],\"bcc\":\"c@y.example\",\"subject\":\"S\",\"body\":\"hello\"}\n\
             {\"to\":\"only@y.example\",\"path\":\"ready.eml\"}\n",
        );
        let mbox = write(
            d,
            "b.mbox",
            "From x Mon\nFrom: m@x.example\nTo: t@y.example\n\n>From the start\n\nFrom y Tue\nTo: u@y.example\n\ntwo\n",
        );
        let cfg = config(&[]);
        let items = all_items(&cfg, &[json, mbox]);
        let mut prep = Prepare::new(&cfg);
        let got: Vec<(Envelope, String)> = items
            .iter()
            .map(|i| {
                let (e, m) = prep.item(i).unwrap();
                (e, all(m))
            })
            .collect();
        assert_eq!(got[0].0.reverse_path, "j@x.example");
        assert_eq!(
            got[0].0.forward_paths,
            ["a@y.example", "b@y.example", "c@y.example"]
        );
        assert!(got[0].1.contains("Subject: S\r\n"), "{}", got[0].1);
        assert!(!got[0].1.contains("c@y.example"), "{}", got[0].1);
        // "path": sent as it is (Bcc removed), recipients from the line, sender from From:.
        assert_eq!(got[1].0.reverse_path, "me@x.example");
        assert_eq!(got[1].0.forward_paths, ["only@y.example"]);
        assert!(got[1].1.contains("\n\nready\n") && !got[1].1.contains("Bcc"));
        // mbox: From_ line dropped, >From unquoted, the separating empty line gone.
        assert_eq!(got[2].0.forward_paths, ["t@y.example"]);
        assert!(got[2].1.ends_with("\n\nFrom the start\n"), "{:?}", got[2].1);
        assert!(!got[2].1.starts_with("From x"), "{:?}", got[2].1);
        assert_eq!(got[3].0.forward_paths, ["u@y.example"]);
        assert!(got[3].1.ends_with("\n\ntwo\n"), "{:?}", got[3].1);
        // Command-line recipients replace every message's own; -f the sender.
        let cfg = config(&["--to", "z@y.example", "-f", "f@x.example"]);
        let mut prep = Prepare::new(&cfg);
        for item in &items {
            let (e, _) = prep.item(item).unwrap();
            assert_eq!(e.forward_paths, ["z@y.example"], "{}", item.source());
        }
    }

    /// Only where each line starts is kept: the lines are read again, in any order (a
    /// message sent again after a reconnect), across files and CRLF or empty lines; a
    /// line gone since the plan fails that message alone.
    #[test]
    fn json_lines_are_read_again_from_where_they_start() {
        let dir = tempfile::tempdir().unwrap();
        let one = write(
            dir.path(),
            "a.jsonl",
            "{\"to\":\"a1@y.example\",\"body\":\"one\"}\r\n\r\n\
             {\"to\":\"a2@y.example\",\"body\":\"two\"}\n\
             {\"to\":\"a3@y.example\",\"body\":\"three\"}",
        );
        let two = write(
            dir.path(),
            "b.jsonl",
            "{\"to\":\"b1@y.example\",\"body\":\"b\"}\n",
        );
        let cfg = config(&[]);
        let items = all_items(&cfg, &[one.clone(), two]);
        assert_eq!(
            items.iter().map(Item::source).collect::<Vec<_>>(),
            [
                format!("{}:1", one.display()),
                format!("{}:3", one.display()),
                format!("{}:4", one.display()),
                format!("{}:1", dir.path().join("b.jsonl").display()),
            ]
        );
        let mut prep = Prepare::new(&cfg);
        for (i, rcpt) in [(2, "a3"), (3, "b1"), (0, "a1"), (1, "a2"), (2, "a3")] {
            let (e, _) = prep.item(&items[i]).unwrap();
            assert_eq!(e.forward_paths, [format!("{rcpt}@y.example")]);
        }
        std::fs::write(&one, "{\"to\":\"a1@y.example\",\"body\":\"one\"}\n").unwrap();
        let err = Prepare::new(&cfg).item(&items[2]).unwrap_err();
        assert!(format!("{err:#}").contains("a.jsonl:4"), "{err:#}");
        assert!(
            std::mem::size_of::<Item>() <= 48,
            "{}",
            std::mem::size_of::<Item>()
        );
    }

    /// Nothing of an mbox or a JSON-lines file is kept between the check and the send:
    /// the scan is done again, and gives exactly the messages counted. A file that shrank
    /// meanwhile gives its missing messages as gone (each fails alone, naming the file);
    /// one that grew gives no more than were counted.
    #[test]
    fn items_are_scanned_again_and_exactly_as_many_as_counted() {
        let dir = tempfile::tempdir().unwrap();
        let line = |i: usize| format!("{{\"to\":\"r{i}@y.example\",\"body\":\"b\"}}\n");
        let json_text: String = (1..=3).map(line).collect();
        let json = write(dir.path(), "l.jsonl", &json_text);
        let msg = |i: usize| format!("From x Mon\nTo: m{i}@y.example\n\nbody {i}\n\n");
        let mbox_text: String = (1..=3).map(msg).collect();
        let mbox = write(dir.path(), "b.mbox", &mbox_text);
        let cfg = config(&[]);
        let plan = plan(&cfg, &[json.clone(), mbox.clone()]).unwrap();
        assert_eq!(plan.total, 6);
        let rcpts = |plan: &Plan| -> Vec<Result<String, String>> {
            let mut prep = Prepare::new(&cfg);
            plan.items()
                .map(|item| match prep.item(&item) {
                    Ok((e, _)) => Ok(e.forward_paths.join(",")),
                    Err(e) => {
                        assert_eq!(crate::error::exit_code(&e), crate::error::Exit::DataErr);
                        Err(format!("{e:#}"))
                    }
                })
                .collect()
        };
        let ok = |s: &str| Ok::<String, String>(s.to_string());
        let counted: Vec<Result<String, String>> = ["r1", "r2", "r3", "m1", "m2", "m3"]
            .iter()
            .map(|r| ok(&format!("{r}@y.example")))
            .collect();
        assert_eq!(rcpts(&plan), counted);
        // Shrunk to one message each.
        std::fs::write(&json, line(1)).unwrap();
        std::fs::write(&mbox, msg(1)).unwrap();
        let got = rcpts(&plan);
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], ok("r1@y.example"));
        assert_eq!(got[3], ok("m1@y.example"));
        for (i, path, number) in [(1, &json, 2), (2, &json, 3), (4, &mbox, 2), (5, &mbox, 3)] {
            let want = format!(
                "{} (message {number}): the message is gone (the file changed while the batch ran)",
                path.display()
            );
            assert_eq!(got[i], Err(want));
        }
        // Grown: still the three counted.
        std::fs::write(&json, (1..=5).map(line).collect::<String>()).unwrap();
        std::fs::write(&mbox, (1..=5).map(msg).collect::<String>()).unwrap();
        assert_eq!(rcpts(&plan), counted);
        // Gone altogether.
        std::fs::remove_file(&mbox).unwrap();
        assert!(rcpts(&plan)[3..].iter().all(Result::is_err));
    }
}
