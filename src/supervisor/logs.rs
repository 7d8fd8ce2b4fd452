//! A component process's stdout and stderr, line by line, into `tracing`.
//!
//! The pipes are drained for as long as they are open, whatever comes out,
//! so the process never blocks on a full pipe and plughost never runs out of
//! memory: a line is cut at [`MAX_LINE`] bytes (the rest up to the newline is
//! counted and dropped), at most [`LINES_PER_SECOND`] lines a second per
//! stream reach the log (the others are counted, and the count is logged),
//! bytes that are not UTF-8 are replaced and control characters escaped. The
//! last [`TAIL_LINES`] lines are kept for error messages ("exited before
//! serving its socket; last output: ...").

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Longest line logged, in bytes.
pub const MAX_LINE: usize = 4096;
/// Lines kept for error messages.
pub const TAIL_LINES: usize = 20;
/// Lines logged per second and stream; the rest are counted.
pub const LINES_PER_SECOND: u32 = 200;

/// The last lines a process printed, on either stream.
#[derive(Debug, Default)]
pub struct Tail(Mutex<VecDeque<String>>);

impl Tail {
    fn push(&self, stream: &str, line: &str) {
        let mut lines = self.0.lock().expect("tail lock");
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(format!("{stream}: {line}"));
    }

    /// `; last output:` and the lines, indented; empty if there were none.
    pub fn render(&self) -> String {
        let lines = self.0.lock().expect("tail lock");
        if lines.is_empty() {
            return "; it printed nothing".to_owned();
        }
        let mut out = String::from("; last output:");
        for line in lines.iter() {
            out.push_str("\n    ");
            out.push_str(line);
        }
        out
    }

    /// Forgets the lines of an earlier run.
    pub fn clear(&self) {
        self.0.lock().expect("tail lock").clear();
    }
}

/// Splits bytes into lines of at most `max` bytes without holding more.
#[derive(Debug)]
pub struct Lines {
    max: usize,
    current: Vec<u8>,
    /// Bytes of the current line beyond `max`, dropped.
    cut: usize,
}

impl Lines {
    /// A splitter cutting lines at `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max, current: Vec::with_capacity(256), cut: 0 }
    }

    /// Feeds `bytes`; calls `line` for every complete line with its (capped)
    /// bytes and how many bytes were cut off it.
    pub fn feed(&mut self, mut bytes: &[u8], mut line: impl FnMut(&[u8], usize)) {
        while !bytes.is_empty() {
            let end = memchr::memchr(b'\n', bytes);
            let part = &bytes[..end.unwrap_or(bytes.len())];
            let room = self.max - self.current.len();
            self.current.extend_from_slice(&part[..part.len().min(room)]);
            self.cut += part.len().saturating_sub(room);
            match end {
                Some(end) => {
                    line(&self.current, self.cut);
                    self.current.clear();
                    self.cut = 0;
                    bytes = &bytes[end + 1..];
                }
                None => return,
            }
        }
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self, mut line: impl FnMut(&[u8], usize)) {
        if !self.current.is_empty() || self.cut > 0 {
            line(&self.current, self.cut);
            self.current.clear();
            self.cut = 0;
        }
    }

    /// Bytes held for the current line (never more than `max`).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.current.len()
    }
}

/// Lossy UTF-8, `\r` at the end dropped, control characters escaped (a
/// process cannot forge log lines or move the terminal's cursor).
pub fn clean(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads `reader` until EOF, logging each line with the component's name.
pub async fn pump(component: String, stream: &'static str, mut reader: impl AsyncRead + Unpin, tail: Arc<Tail>) {
    let mut lines = Lines::new(MAX_LINE);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut window = (Instant::now(), 0u32, 0u64);
    let mut emit = |bytes: &[u8], cut: usize| {
        let now = Instant::now();
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            if window.2 > 0 {
                tracing::warn!(component = %component, stream, "{} lines not logged (over {LINES_PER_SECOND}/s)", window.2);
            }
            window = (now, 0, 0);
        }
        let text = clean(bytes);
        tail.push(stream, &text);
        if window.1 >= LINES_PER_SECOND {
            window.2 += 1;
            return;
        }
        window.1 += 1;
        if cut > 0 {
            tracing::info!(component = %component, stream, "{text} [... {cut} more bytes cut]");
        } else {
            tracing::info!(component = %component, stream, "{text}");
        }
    };
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.feed(&buffer[..n], &mut emit),
        }
    }
    lines.finish(&mut emit);
    if window.2 > 0 {
        tracing::warn!(component = %component, stream, "{} lines not logged (over {LINES_PER_SECOND}/s)", window.2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> (Vec<(String, usize)>, usize) {
        let mut lines = Lines::new(max);
        let mut out = Vec::new();
        let mut held = 0;
        for chunk in chunks {
            lines.feed(chunk, |l, cut| out.push((String::from_utf8_lossy(l).into_owned(), cut)));
            held = held.max(lines.held());
        }
        lines.finish(|l, cut| out.push((String::from_utf8_lossy(l).into_owned(), cut)));
        (out, held)
    }

    #[test]
    fn lines_across_chunks() {
        let (out, _) = split(100, &[b"one\ntw", b"o\n", b"\nthree"]);
        assert_eq!(out, [("one".into(), 0), ("two".into(), 0), (String::new(), 0), ("three".into(), 0)]);
    }

    #[test]
    fn a_ten_megabyte_line_is_cut_and_never_held() {
        let chunk = vec![b'x'; 64 * 1024];
        let mut chunks: Vec<&[u8]> = vec![&chunk; 160]; // 10 MiB without a newline
        chunks.push(b"\nafter\n");
        let (out, held) = split(MAX_LINE, &chunks);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.len(), MAX_LINE);
        assert_eq!(out[0].1, 160 * 64 * 1024 - MAX_LINE);
        assert_eq!(out[1], ("after".into(), 0));
        assert!(held <= MAX_LINE, "held {held} bytes");
    }

    #[test]
    fn binary_and_control_characters_are_escaped() {
        assert_eq!(clean(b"ok\x1b[2Jfake\r"), "ok\\u{1b}[2Jfake");
        assert_eq!(clean(&[0xff, b'a', 0]), "\u{fffd}a\\u{0}");
    }

    #[test]
    fn the_tail_keeps_the_last_lines() {
        let tail = Tail::default();
        assert_eq!(tail.render(), "; it printed nothing");
        for i in 0..50 {
            tail.push("stderr", &format!("line {i}"));
        }
        let text = tail.render();
        assert!(text.ends_with("stderr: line 49") && text.contains("line 30") && !text.contains("line 29"), "{text}");
    }
}
