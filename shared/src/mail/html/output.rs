//! Writing the text: lines, blank lines, quote prefixes and list markers, decided as the text arrives.

use std::fmt::Write as _;

/// Deepest `<blockquote>` nesting shown by its own prefix; deeper levels get this many `> `. It bounds
/// the output to a small multiple of the input whatever the nesting.
pub(super) const MAX_QUOTE_DEPTH: usize = 8;

/// The space an element puts around itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Gap {
    None,
    /// Starts on a new line.
    Line,
    /// Separated by a blank line.
    Blank,
}

/// A list item's marker, written when its first text arrives.
#[derive(Debug, Clone, Copy)]
pub(super) struct Marker {
    /// List levels above the item's own, shown as two spaces each.
    pub(super) indent: usize,
    /// The item's number in an ordered list.
    pub(super) number: Option<u32>,
}

/// The text being written. Line breaks, blank lines and spaces are decided lazily, when the next text
/// arrives, so that nothing is ever taken back and none are left dangling at the end.
pub(super) struct Output {
    text: String,
    /// Where the current line's own text starts (after the quote prefix and list marker).
    content_start: usize,
    /// Text has been written on the current line.
    line_has_content: bool,
    /// Collapsible whitespace was seen since the last text.
    pub(super) pending_space: bool,
    /// Spaces that do not collapse (`&nbsp;`, and spaces and tabs in `<pre>`) since the last text.
    hard: String,
    /// The largest gap asked for since the last text.
    pending_gap: Gap,
    /// The smallest quote depth since that gap was asked for: a blank line between two depths has the
    /// prefix of the outer one.
    gap_depth: usize,
    /// A blank line goes before the next text, with the prefix of this depth.
    blank: Option<usize>,
    /// Open `<blockquote>` elements.
    pub(super) quote_depth: usize,
    /// Open `<pre>` elements.
    pub(super) pre_depth: usize,
    /// Open lists, innermost last: the last item's number for ordered ones.
    pub(super) lists: Vec<Option<u32>>,
    /// The marker of a list item whose text has not arrived yet.
    pub(super) marker: Option<Marker>,
}

impl Output {
    /// Nothing written yet, with room for `capacity` bytes.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        Output {
            text: String::with_capacity(capacity),
            content_start: 0,
            line_has_content: false,
            pending_space: false,
            hard: String::new(),
            pending_gap: Gap::None,
            gap_depth: 0,
            blank: None,
            quote_depth: 0,
            pre_depth: 0,
            lists: Vec::new(),
            marker: None,
        }
    }

    /// Asks for `gap` before the next text.
    pub(super) fn request(&mut self, gap: Gap) {
        self.gap_depth = if self.pending_gap == Gap::None {
            self.quote_depth
        } else {
            self.gap_depth.min(self.quote_depth)
        };
        self.pending_gap = self.pending_gap.max(gap);
    }

    /// A blank line before the next text (one, however often this is asked for).
    fn want_blank(&mut self, depth: usize) {
        self.blank = Some(self.blank.map_or(depth, |d| d.min(depth)));
    }

    /// Ends the current line for the gap asked for, if any.
    fn resolve_gap(&mut self) {
        let gap = std::mem::replace(&mut self.pending_gap, Gap::None);
        if gap == Gap::None {
            return;
        }
        self.end_line(self.gap_depth);
        if gap == Gap::Blank {
            self.want_blank(self.gap_depth);
        }
    }

    /// Ends the current line; one holding only spaces becomes a blank line quoted to `blank_depth`.
    fn end_line(&mut self, blank_depth: usize) {
        if self.line_has_content {
            // "-- " is the signature delimiter: its space is kept though HTML would collapse it.
            let spaced = self.pending_space || !self.hard.is_empty();
            if spaced && self.text.get(self.content_start..) == Some("--") {
                self.text.push(' ');
            }
            self.text.push('\n');
            self.line_has_content = false;
        } else if !self.hard.is_empty() {
            self.want_blank(blank_depth);
        }
        self.hard.clear();
        self.pending_space = false;
    }

    /// `<br>`, or a newline in `<pre>`.
    pub(super) fn line_break(&mut self) {
        self.resolve_gap();
        let empty = !self.line_has_content;
        self.end_line(self.quote_depth);
        if empty {
            self.want_blank(self.quote_depth);
        }
    }

    /// A space that does not collapse.
    pub(super) fn hard_space(&mut self, ch: char) {
        self.resolve_gap();
        self.hard.push(ch);
    }

    /// Writes text, after the line break, blank line, prefix, marker and spaces due before it.
    pub(super) fn content(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.resolve_gap();
        if self.line_has_content {
            if self.pending_space {
                self.text.push(' ');
            }
        } else {
            if let Some(depth) = self.blank.take()
                && !self.text.is_empty()
            {
                push_quote_prefix(&mut self.text, depth);
                let trimmed = self.text.trim_end_matches(' ').len();
                self.text.truncate(trimmed);
                self.text.push('\n');
            }
            push_quote_prefix(&mut self.text, self.quote_depth);
            if let Some(marker) = self.marker.take() {
                for _ in 0..marker.indent {
                    self.text.push_str("  ");
                }
                match marker.number {
                    Some(n) => {
                        let _ = write!(self.text, "{n}. ");
                    }
                    None => self.text.push_str("- "),
                }
            }
            self.content_start = self.text.len();
            self.line_has_content = true;
        }
        self.pending_space = false;
        self.text.push_str(&self.hard);
        self.hard.clear();
        self.text.push_str(text);
    }

    /// The text written, trimmed.
    pub(super) fn finish(self) -> String {
        let mut text = self.text;
        text.truncate(text.trim_end().len());
        let leading = text.len() - text.trim_start().len();
        text.drain(..leading);
        text
    }
}

/// `> ` once per quote level, up to [`MAX_QUOTE_DEPTH`].
fn push_quote_prefix(text: &mut String, depth: usize) {
    for _ in 0..depth.min(MAX_QUOTE_DEPTH) {
        text.push_str("> ");
    }
}
