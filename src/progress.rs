//! The progress bar for big message bodies (indicatif), on stderr: a UI choice the caller
//! makes when it hands a message to the session ([`watch`]), never the protocol code's.
//!
//! Owns: when a bar may show — only on a terminal (stderr), never with -v (it would garble
//! the transcript) or in test mode, and only once more than [`MIN_SIZE`] bytes have been
//! read, so a small message never flashes one — and how it looks.
//!
//! Must not: change a byte of the message, or know anything of SMTP: it only counts what
//! the session reads through it ([`Message::watched`]).

use std::io::{self, IsTerminal, Read};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;
use crate::message::Message;

/// The bar appears after this many bytes.
pub const MIN_SIZE: u64 = 4 * 1024 * 1024;

/// `message`, read through a progress bar when it is sent, if the configuration and stderr
/// allow one and the message is not known to be small.
pub fn watch(cfg: &Config, message: Message) -> Message {
    if cfg.verbosity > 0 || cfg.test_mode || !io::stderr().is_terminal() {
        return message;
    }
    let total = message.size;
    if total.is_some_and(|n| n < MIN_SIZE) {
        return message;
    }
    message.watched(Box::new(move |inner| {
        Box::new(Progress {
            inner,
            seen: 0,
            total,
            bar: None,
        })
    }))
}

/// Counts what is read through it; shows the bar past [`MIN_SIZE`].
struct Progress<R> {
    inner: R,
    seen: u64,
    total: Option<u64>,
    bar: Option<ProgressBar>,
}

fn new_bar(total: Option<u64>) -> ProgressBar {
    let template = match total {
        Some(_) => "{bytes}/{total_bytes} [{bar:30}] {bytes_per_sec}, {eta} left",
        None => "{bytes} sent, {bytes_per_sec}",
    };
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    match ProgressStyle::with_template(template) {
        Ok(style) => bar.with_style(style.progress_chars("=> ")),
        Err(_) => bar,
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if self.bar.is_none() && self.seen >= MIN_SIZE {
            self.bar = Some(new_bar(self.total));
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.seen);
        }
        Ok(n)
    }
}

impl<R> Drop for Progress<R> {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_message_is_not_watched() {
        let cfg = crate::config::for_tests(&["--server", "127.0.0.1", "--tls", "none"], &[]);
        let m = watch(
            &cfg,
            Message::in_memory(b"Subject: x\r\n\r\nhi\r\n".to_vec()),
        );
        assert!(format!("{m:?}").contains("watched: false"), "{m:?}");
    }

    #[test]
    fn a_watched_message_reads_the_same_bytes() {
        let text = b"Subject: x\r\n\r\nhi\r\n".to_vec();
        let m = Message::in_memory(text.clone()).watched(Box::new(|inner| {
            Box::new(Progress {
                inner,
                seen: 0,
                total: None,
                bar: None,
            })
        }));
        let mut got = Vec::new();
        m.into_reader().read_to_end(&mut got).unwrap();
        assert_eq!(got, text);
    }
}
