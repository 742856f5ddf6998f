//! The password prompt on the terminal (`/dev/tty`), for a password no file, command,
//! environment variable or configuration gives.
//!
//! Owns: the order that keeps a password off the screen — echo is turned off *before* the
//! prompt is written (as glibc's getpass(3) does), so nothing typed once the prompt shows
//! is ever echoed (rpassword 7 wrote the prompt first and turned echo off after it); reading
//! the line byte by byte with the terminal in non-canonical mode and signals off, so that
//! Ctrl-C restores the terminal before postie stops (a signal would kill it with echo
//! still off); the terminal's settings put back on every path. Backspace and Ctrl-U edit
//! the line; Ctrl-D on an empty line ends it with nothing.
//!
//! Must not: decide whether to prompt (config does), keep the password anywhere but the
//! returned [`Secret`], or write anything but the prompt and a newline.
//!
//! POSIX termios (ECHO, ICANON, ISIG, VMIN/VTIME, TCSAFLUSH) through rustix: no unsafe.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

use crate::secret::Secret;

/// Why no password came from the terminal.
#[derive(Debug)]
pub enum Failure {
    /// No terminal to ask on (no `/dev/tty`, or it is not a terminal).
    NoTerminal(io::Error),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Reading failed, or the line ended (Ctrl-D, end of input) before Enter.
    Read(io::Error),
}

/// Ask on the terminal: echo off, then `prompt`, then the line up to Enter.
pub fn password(prompt: &str) -> Result<Secret, Failure> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(Failure::NoTerminal)?;
    let saved = termios::tcgetattr(&tty).map_err(|e| Failure::NoTerminal(e.into()))?;
    let guard = Restore {
        tty: &tty,
        saved: saved.clone(),
    };
    let mut quiet = saved;
    quiet
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
    quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
    // Flush: what was typed before the prompt (and echoed) is not part of the password.
    termios::tcsetattr(&tty, OptionalActions::Flush, &quiet)
        .map_err(|e| Failure::Read(e.into()))?;
    let mut out = &tty;
    out.write_all(prompt.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Failure::Read)?;
    let line = read_line(&tty);
    // The Enter the user pressed was not echoed.
    let _ = out.write_all(b"\n");
    drop(guard);
    line
}

/// The terminal's settings, put back when dropped.
struct Restore<'a> {
    tty: &'a File,
    saved: Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, OptionalActions::Flush, &self.saved);
    }
}

/// Ctrl-C, Ctrl-D, Ctrl-U, backspace and delete.
const INTERRUPT: u8 = 0x03;
const END: u8 = 0x04;
const KILL_LINE: u8 = 0x15;
const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;

/// One line from `input`, edited as a terminal line is (see the module docs).
fn read_line(mut input: impl Read) -> Result<Secret, Failure> {
    let mut line: Vec<u8> = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Err(Failure::Read(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Read(e)),
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            INTERRUPT => return Err(Failure::Interrupted),
            END if line.is_empty() => {
                return Err(Failure::Read(io::ErrorKind::UnexpectedEof.into()))
            }
            END => {}
            KILL_LINE => line.clear(),
            BACKSPACE | DELETE => {
                // One character, however many bytes its UTF-8 takes.
                while let Some(b) = line.pop() {
                    if b & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            b => line.push(b),
        }
    }
    String::from_utf8(line)
        .map(Secret::new)
        .map_err(|_| Failure::Read(io::Error::new(io::ErrorKind::InvalidData, "not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(typed: &[u8]) -> Result<String, Failure> {
        read_line(typed).map(|s| s.expose().to_string())
    }

    #[test]
    fn the_line_is_edited_as_a_terminal_line_is() {
        assert_eq!(line(b"s3cret\r").unwrap(), "s3cret");
        assert_eq!(line(b"s3cret\n").unwrap(), "s3cret");
        assert_eq!(line(b"s3cx\x7fret\r").unwrap(), "s3cret");
        assert_eq!(line(b"wrong\x15right\r").unwrap(), "right");
        assert_eq!(line("p\u{e4}\x08a\r".as_bytes()).unwrap(), "pa");
        assert_eq!(line("gr\u{fc}n\r".as_bytes()).unwrap(), "gr\u{fc}n");
        assert!(matches!(line(b"abc\x03"), Err(Failure::Interrupted)));
        assert!(matches!(line(b"\x04"), Err(Failure::Read(_))));
        assert!(matches!(line(b"no enter"), Err(Failure::Read(_))));
    }
}
