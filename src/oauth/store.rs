//! Where an account's OAuth tokens are kept: `ACCOUNT.json` in the token directory
//! ([`dir`]), private (0600, in a 0700 directory), replaced atomically (a temporary file in
//! the same directory, fsync, rename, fsync of the directory), and a lock file beside it
//! that makes concurrent refreshes (two cron jobs) take turns. Optionally piped through the
//! user's `token_command_store` / `token_command_load` (encryption, as mutt_oauth2.py does
//! with gpg).
//!
//! Must not: print a token (the file's contents never reach an error message), or leave a
//! half-written file where the last good one was.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::secret::Secret;

/// Overrides the token directory (tests; a system with its own layout).
pub const DIR_ENV: &str = "POSTIE_OAUTH_DIR";

/// The format version written in every token file.
const VERSION: u32 = 1;

/// The token directory: `$POSTIE_OAUTH_DIR`, else `/var/lib/postie/oauth` for root, else
/// `$XDG_STATE_HOME/postie/oauth`, else `~/.local/state/postie/oauth` (as the queue's).
pub fn dir(var: &dyn Fn(&str) -> Option<String>, root: bool) -> Option<PathBuf> {
    let var = |k: &str| var(k).filter(|v| !v.is_empty());
    if let Some(d) = var(DIR_ENV) {
        Some(PathBuf::from(d))
    } else if root {
        Some(PathBuf::from("/var/lib/postie/oauth"))
    } else if let Some(state) = var("XDG_STATE_HOME") {
        Some(PathBuf::from(state).join("postie/oauth"))
    } else {
        var("HOME").map(|h| PathBuf::from(h).join(".local/state/postie/oauth"))
    }
}

/// What is kept for an account. Its `Debug` shows no token.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Kept {
    pub version: u32,
    pub account: String,
    pub provider: String,
    pub client_id: String,
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Unix time the access token stops working; unknown when the server did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The scopes granted, as the server listed them (space-separated), else those asked.
    #[serde(default)]
    pub scope: String,
    /// Unix time of the last token answer.
    pub obtained_at: u64,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("account", &self.account)
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "(kept)"),
            )
            .finish_non_exhaustive()
    }
}

impl Kept {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        account: &str,
        provider: &str,
        client_id: &str,
        access_token: &Secret,
        refresh_token: Option<&Secret>,
        expires_at: Option<u64>,
        scope: String,
        obtained_at: u64,
    ) -> Kept {
        Kept {
            version: VERSION,
            account: account.to_string(),
            provider: provider.to_string(),
            client_id: client_id.to_string(),
            access_token: access_token.expose().to_string(),
            refresh_token: refresh_token.map(|s| s.expose().to_string()),
            expires_at,
            scope,
            obtained_at,
        }
    }

    pub fn access_token(&self) -> Secret {
        Secret::new(self.access_token.clone())
    }

    pub fn refresh_token(&self) -> Option<Secret> {
        self.refresh_token.clone().map(Secret::new)
    }

    /// Usable for at least `margin` seconds more at `now` (a token of unknown lifetime
    /// counts as usable: the server's refusal then triggers the refresh).
    pub fn fresh(&self, now: u64, margin: u64) -> bool {
        self.expires_at
            .is_none_or(|t| t > now.saturating_add(margin))
    }
}

/// One account's token file and its lock.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    load_command: Option<String>,
    store_command: Option<String>,
}

/// Held while a process refreshes; released on drop (the OS releases it if the process
/// dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Store {
    /// The token file of `account` in `dir`. Account names become file names, so only
    /// letters, digits, `.`, `_`, `-` and `@` are allowed, and no leading dot.
    pub fn new(
        dir: &Path,
        account: &str,
        load_command: Option<String>,
        store_command: Option<String>,
    ) -> Result<Store> {
        let ok = |c: char| c.is_ascii_alphanumeric() || "._-@".contains(c);
        if account.is_empty() || account.starts_with('.') || !account.chars().all(ok) {
            return Err(Error::Config(format!(
                "account {account:?}: an OAuth account's name must be letters, digits, '.', \
                 '_', '-' or '@' (it names the token file)"
            ))
            .into());
        }
        Ok(Store {
            path: dir.join(format!("{account}.json")),
            load_command,
            store_command,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }

    /// The kept tokens, or `None` when there is no file (never signed in, or logged out).
    pub fn load(&self) -> Result<Option<Kept>> {
        let raw = match std::fs::read(&self.path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::NoInput {
                    what: "OAuth token file",
                    path: self.path.clone(),
                    source,
                }
                .into())
            }
        };
        let text = match &self.load_command {
            Some(cmd) => pipe(cmd, &raw, "token_command_load")?,
            None => raw,
        };
        let kept: Kept = serde_json::from_slice(&text).map_err(|e| {
            // serde_json's message names a position, never the contents.
            Error::Config(format!(
                "OAuth token file {}: unreadable ({e}); run postie oauth login again",
                self.path.display()
            ))
        })?;
        if kept.version != VERSION {
            return Err(Error::Config(format!(
                "OAuth token file {}: format {} is not one this postie reads (it reads {VERSION})",
                self.path.display(),
                kept.version
            ))
            .into());
        }
        Ok(Some(kept))
    }

    /// Replace the token file atomically: a private temporary file beside it, written and
    /// synced, renamed over the old one, and the directory synced.
    pub fn save(&self, kept: &Kept) -> Result<()> {
        let dir = self.dir();
        create_private_dir(dir)?;
        let json = serde_json::to_vec_pretty(kept).context("encoding the token file")?;
        let bytes = match &self.store_command {
            Some(cmd) => pipe(cmd, &json, "token_command_store")?,
            None => json,
        };
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = (|| -> std::io::Result<()> {
            let mut f = private_options().open(&temp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            File::open(dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::Io(format!(
                "cannot write the OAuth token file {}: {e}",
                self.path.display()
            ))
            .into());
        }
        Ok(())
    }

    /// Remove the token file (and its lock file). `false`: there was none.
    pub fn remove(&self) -> Result<bool> {
        let removed = match std::fs::remove_file(&self.path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(Error::Io(format!(
                    "cannot remove the OAuth token file {}: {e}",
                    self.path.display()
                ))
                .into())
            }
        };
        let _ = std::fs::remove_file(self.lock_path());
        Ok(removed)
    }

    /// Wait for the account's lock (another postie refreshing), then hold it.
    pub fn lock(&self) -> Result<Lock> {
        create_private_dir(self.dir())?;
        let path = self.lock_path();
        let locked = private_options()
            .truncate(false)
            .open(&path)
            .and_then(|f| f.lock().map(|()| f));
        match locked {
            Ok(file) => Ok(Lock { _file: file }),
            Err(e) => Err(Error::Io(format!(
                "cannot lock the OAuth token file ({}): {e}",
                path.display()
            ))
            .into()),
        }
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Write-only, created 0600 where the platform has modes.
fn private_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Create `dir` (and its parents) if missing; a directory postie creates is 0700.
fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| {
        Error::Io(format!(
            "cannot create the OAuth token directory {}: {e}",
            dir.display()
        ))
        .into()
    })
}

/// Run `cmd` through `sh -c` with `input` on its standard input; its standard output.
/// The command's own error output goes to the terminal, its output never to a message.
fn pipe(cmd: &str, input: &[u8], key: &str) -> Result<Vec<u8>> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Config(format!("{key}: cannot run {cmd:?}: {e}")))?;
    let mut stdin = child.stdin.take();
    let input = input.to_vec();
    // Written from a thread so that a command that answers before reading everything
    // cannot deadlock against us.
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Config(format!("{key}: {cmd:?}: {e}")))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(Error::Config(format!("{key}: {cmd:?} failed ({})", out.status)).into());
    }
    if out.stdout.is_empty() {
        return Err(Error::Config(format!("{key}: {cmd:?} printed nothing")).into());
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(access: &str, expires_at: Option<u64>) -> Kept {
        Kept::new(
            "work",
            "microsoft",
            "cid",
            &Secret::new(access),
            Some(&Secret::new("r1")),
            expires_at,
            "a b".into(),
            100,
        )
    }

    #[test]
    fn token_directories_follow_the_queue_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        type Vars = &'static [(&'static str, &'static str)];
        let cases: [(Vars, bool, Option<&str>); 5] = [
            (&[(DIR_ENV, "/x"), ("HOME", "/h")], true, Some("/x")),
            (&[("HOME", "/h")], true, Some("/var/lib/postie/oauth")),
            (
                &[("XDG_STATE_HOME", "/s"), ("HOME", "/h")],
                false,
                Some("/s/postie/oauth"),
            ),
            (
                &[("HOME", "/h")],
                false,
                Some("/h/.local/state/postie/oauth"),
            ),
            (&[], false, None),
        ];
        for (vars, root, want) in cases {
            assert_eq!(
                dir(&env(vars), root),
                want.map(PathBuf::from),
                "{vars:?} {root}"
            );
        }
    }

    #[test]
    fn account_names_must_be_file_names() {
        let d = Path::new("/t");
        for bad in ["", ".hidden", "a/b", "../x", "a b", "é"] {
            let e = Store::new(d, bad, None, None).unwrap_err();
            assert!(
                format!("{e}").contains("names the token file"),
                "{bad:?}: {e}"
            );
        }
        let s = Store::new(d, "me@work-1.x_y", None, None).unwrap();
        assert_eq!(s.path(), Path::new("/t/me@work-1.x_y.json"));
    }

    #[test]
    fn saved_files_are_private_replaced_whole_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("oauth");
        let store = Store::new(&dir, "work", None, None).unwrap();
        assert_eq!(store.load().unwrap(), None);
        store.save(&kept("a1", Some(500))).unwrap();
        store.save(&kept("a2", Some(900))).unwrap();
        assert_eq!(store.load().unwrap(), Some(kept("a2", Some(900))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(store.path()), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        // Only the file itself is left: no temporary files.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["work.json"]);
        assert!(store.remove().unwrap());
        assert!(!store.remove().unwrap());
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn token_commands_transform_what_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A reversible "encryption": base64.
        let store = Store::new(
            tmp.path(),
            "work",
            Some("base64 -d".into()),
            Some("base64".into()),
        )
        .unwrap();
        store.save(&kept("secret-access", Some(7))).unwrap();
        let raw = std::fs::read_to_string(store.path()).unwrap();
        assert!(!raw.contains("secret-access"), "{raw}");
        assert_eq!(store.load().unwrap(), Some(kept("secret-access", Some(7))));
        let failing = Store::new(tmp.path(), "work", Some("exit 3".into()), None).unwrap();
        let e = failing.load().unwrap_err();
        assert_eq!(
            format!("{e}"),
            "token_command_load: \"exit 3\" failed (exit status: 3)"
        );
    }

    #[test]
    fn debug_output_and_errors_show_no_token() {
        let k = kept("TOPSECRET", None);
        let shown = format!("{k:?}");
        assert!(
            !shown.contains("TOPSECRET") && !shown.contains("r1"),
            "{shown}"
        );
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path(), "work", None, None).unwrap();
        std::fs::write(store.path(), "{\"access_token\": \"TOPSECRET\"").unwrap();
        let e = format!("{:#}", store.load().unwrap_err());
        assert!(e.contains("unreadable") && !e.contains("TOPSECRET"), "{e}");
    }

    #[test]
    fn freshness_keeps_a_margin() {
        assert!(kept("a", Some(200)).fresh(100, 60));
        assert!(!kept("a", Some(150)).fresh(100, 60));
        assert!(kept("a", None).fresh(100, 60));
    }
}
