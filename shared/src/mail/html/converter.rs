//! Walking the markup: text, tags and comments, each handed to [`Output`] as what it means.

use super::entities::entity;
use super::output::{Gap, Marker, Output};
use super::tags::{
    Kind, MAX_TAG_NAME, find_end_tag, is_space, kind_of, lowercase, scan_attributes,
};

/// Deepest list nesting shown by indentation (two spaces a level), so that deep nesting cannot make the
/// output many times the input.
const MAX_LIST_INDENT: usize = 4;

/// Reads the markup and drives [`Output`].
pub(super) struct Converter<'a> {
    html: &'a str,
    bytes: &'a [u8],
    pos: usize,
    out: Output,
    /// Inside `<head>`, whose text is not shown.
    in_head: bool,
    /// Right after `<pre>`, where a first newline is not part of the content.
    skip_pre_newline: bool,
    /// The open `<p>` is Word's or Outlook's (`class="MsoNormal"` and kin), styled without margins.
    office_paragraph: bool,
}

impl Converter<'_> {
    /// Ready to read `html` from its start.
    pub(super) fn new(html: &str) -> Converter<'_> {
        Converter {
            html,
            bytes: html.as_bytes(),
            pos: 0,
            out: Output::with_capacity(html.len() / 2),
            in_head: false,
            skip_pre_newline: false,
            office_paragraph: false,
        }
    }

    /// Reads the whole input.
    pub(super) fn run(&mut self) {
        while self.pos < self.bytes.len() {
            let rest = self.bytes.get(self.pos..).unwrap_or_default();
            let lt = memchr::memchr(b'<', rest).map_or(self.bytes.len(), |i| self.pos + i);
            if lt > self.pos {
                let text = self.html.get(self.pos..lt).unwrap_or_default();
                self.text(text);
            }
            if lt >= self.bytes.len() {
                break;
            }
            self.pos = self.markup(lt);
        }
    }

    /// The text written so far, trimmed.
    pub(super) fn finish(self) -> String {
        self.out.finish()
    }

    /// Handles the markup starting with the `<` at `lt`; returns where the text resumes.
    fn markup(&mut self, lt: usize) -> usize {
        let bytes = self.bytes;
        let at = |i: usize| bytes.get(i).copied();
        match at(lt + 1) {
            Some(b'!') if self.bytes.get(lt..lt + 4) == Some(b"<!--") => self.comment_end(lt + 4),
            Some(b'!' | b'?') => self.bogus_comment_end(lt + 2),
            Some(b'/') => match at(lt + 2) {
                Some(c) if c.is_ascii_alphabetic() => self.end_tag(lt + 2),
                Some(b'>') => lt + 3,
                Some(_) => self.bogus_comment_end(lt + 2),
                None => {
                    self.text("</");
                    self.bytes.len()
                }
            },
            Some(c) if c.is_ascii_alphabetic() => self.start_tag(lt + 1),
            _ => {
                self.text("<");
                lt + 1
            }
        }
    }

    /// After `<!--`: ends at `-->`, or at once for `<!-->` and `<!--->`, or at the end of the input.
    fn comment_end(&self, body: usize) -> usize {
        let rest = self.bytes.get(body..).unwrap_or_default();
        if rest.starts_with(b">") {
            return body + 1;
        }
        if rest.starts_with(b"->") {
            return body + 2;
        }
        memchr::memmem::find(rest, b"-->").map_or(self.bytes.len(), |i| body + i + 3)
    }

    /// `<!DOCTYPE …>`, `<![if …]>`, `<?xml …?>`, `</ …>`: everything up to the next `>`.
    fn bogus_comment_end(&self, from: usize) -> usize {
        let rest = self.bytes.get(from..).unwrap_or_default();
        memchr::memchr(b'>', rest).map_or(self.bytes.len(), |i| from + i + 1)
    }

    /// The tag name starting at `from`, and where it ends.
    fn tag_name(&self, from: usize) -> (&[u8], usize) {
        let rest = self.bytes.get(from..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&c| is_space(c) || c == b'/' || c == b'>')
            .unwrap_or(rest.len());
        (rest.get(..len).unwrap_or_default(), from + len)
    }

    fn start_tag(&mut self, from: usize) -> usize {
        let (name, after_name) = self.tag_name(from);
        let mut buf = [0u8; MAX_TAG_NAME];
        let lower = lowercase(name, &mut buf);
        let kind = lower.map_or(Kind::Other, kind_of);
        let namespaced = name.contains(&b':');
        let mut office = false;
        let end = scan_attributes(self.bytes, after_name, |attr, value| {
            if kind == Kind::Paragraph && attr.eq_ignore_ascii_case(b"class") {
                office |= value.split(|c| is_space(*c)).any(|class| {
                    class
                        .get(..3)
                        .is_some_and(|p| p.eq_ignore_ascii_case(b"mso"))
                });
            }
        });
        let Some(end) = end else {
            // A tag cut off by the end of the input is dropped, as browsers do.
            return self.bytes.len();
        };
        match kind {
            Kind::Head => self.in_head = true,
            Kind::Body => self.in_head = false,
            Kind::HeadContent | Kind::Hidden => {}
            // Office's `<o:p>` and the like appear in its `<head>` too.
            _ if namespaced => {}
            _ => self.in_head = false,
        }
        let out = &mut self.out;
        match kind {
            Kind::Hidden => {
                if let Some(lower) = lower {
                    return find_end_tag(self.bytes, end, lower);
                }
            }
            Kind::Br => out.line_break(),
            Kind::Block(gap) => out.request(gap),
            Kind::Paragraph => {
                self.office_paragraph = office;
                out.request(if office { Gap::Line } else { Gap::Blank });
            }
            Kind::Blockquote => {
                out.request(Gap::Blank);
                out.quote_depth = out.quote_depth.saturating_add(1);
            }
            Kind::Pre => {
                out.request(Gap::Blank);
                out.pre_depth = out.pre_depth.saturating_add(1);
                self.skip_pre_newline = true;
            }
            Kind::List { ordered } => {
                out.request(if out.lists.is_empty() {
                    Gap::Blank
                } else {
                    Gap::Line
                });
                out.lists.push(ordered.then_some(0));
            }
            Kind::ListItem => {
                out.request(Gap::Line);
                let number = match out.lists.last_mut() {
                    Some(Some(n)) => {
                        *n = n.saturating_add(1);
                        Some(*n)
                    }
                    _ => None,
                };
                let indent = out.lists.len().saturating_sub(1).min(MAX_LIST_INDENT);
                out.marker = Some(Marker { indent, number });
            }
            Kind::Cell => out.pending_space = true,
            Kind::Head | Kind::Body | Kind::HeadContent | Kind::Other => {}
        }
        end
    }

    fn end_tag(&mut self, from: usize) -> usize {
        let (name, after_name) = self.tag_name(from);
        let mut buf = [0u8; MAX_TAG_NAME];
        let kind = lowercase(name, &mut buf).map_or(Kind::Other, kind_of);
        let Some(end) = scan_attributes(self.bytes, after_name, |_, _| {}) else {
            return self.bytes.len();
        };
        let out = &mut self.out;
        match kind {
            Kind::Head => self.in_head = false,
            // Browsers read `</br>` as `<br>`.
            Kind::Br => out.line_break(),
            Kind::Block(gap) => out.request(gap),
            Kind::Paragraph => {
                out.request(if self.office_paragraph {
                    Gap::Line
                } else {
                    Gap::Blank
                });
                self.office_paragraph = false;
            }
            Kind::Blockquote => {
                out.quote_depth = out.quote_depth.saturating_sub(1);
                out.request(Gap::Blank);
            }
            Kind::Pre => {
                out.pre_depth = out.pre_depth.saturating_sub(1);
                out.request(Gap::Blank);
            }
            Kind::List { .. } => {
                out.lists.pop();
                out.marker = None;
                out.request(if out.lists.is_empty() {
                    Gap::Blank
                } else {
                    Gap::Line
                });
            }
            Kind::ListItem => {
                out.marker = None;
                out.request(Gap::Line);
            }
            Kind::Hidden | Kind::Body | Kind::HeadContent | Kind::Cell | Kind::Other => {}
        }
        end
    }

    /// Text between tags: character references decoded, whitespace collapsed (outside `<pre>`).
    fn text(&mut self, text: &str) {
        if self.in_head {
            return;
        }
        let mut text = text;
        if std::mem::take(&mut self.skip_pre_newline) {
            text = text
                .strip_prefix("\r\n")
                .or_else(|| text.strip_prefix(['\n', '\r']))
                .unwrap_or(text);
        }
        let bytes = text.as_bytes();
        let mut run = 0;
        let mut i = 0;
        while let Some(&c) = bytes.get(i) {
            let (special, len) = match c {
                b'&' => {
                    let (decoded, len) = entity(bytes.get(i..).unwrap_or_default());
                    (decoded.map_or(Special::Literal("&"), Special::Char), len)
                }
                b'\r' if self.out.pre_depth > 0 && bytes.get(i + 1) == Some(&b'\n') => {
                    (Special::Char('\n'), 2)
                }
                0..=0x20 => (Special::Char(char::from(c)), 1),
                // Lead bytes of the invisible characters and of U+00A0.
                0xC2 | 0xCD | 0xE2 | 0xEF => {
                    let ch = text
                        .get(i..)
                        .and_then(|t| t.chars().next())
                        .unwrap_or('\u{FFFD}');
                    if ch == '\u{a0}' || is_invisible(ch) {
                        (Special::Char(ch), ch.len_utf8())
                    } else {
                        i += ch.len_utf8();
                        continue;
                    }
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            if i > run {
                self.out.content(text.get(run..i).unwrap_or_default());
            }
            match special {
                Special::Char(ch) => self.char(ch),
                Special::Literal(s) => self.out.content(s),
            }
            i += len;
            run = i;
        }
        if bytes.len() > run {
            self.out.content(text.get(run..).unwrap_or_default());
        }
    }

    /// One character that needs more than copying.
    fn char(&mut self, ch: char) {
        let out = &mut self.out;
        match ch {
            '\u{a0}' => out.hard_space(' '),
            '\n' | '\r' if out.pre_depth > 0 => out.line_break(),
            ' ' | '\t' if out.pre_depth > 0 => out.hard_space(ch),
            // Other controls are as invisible as whitespace.
            _ if ch <= ' ' => {
                if out.pre_depth == 0 {
                    out.pending_space = true;
                }
            }
            _ if is_invisible(ch) => {}
            _ => out.content(ch.encode_utf8(&mut [0u8; 4])),
        }
    }
}

/// A piece of text that is not copied as it is.
enum Special {
    Char(char),
    Literal(&'static str),
}

/// Characters that take no room (soft hyphen, zero-width spaces and joiners, direction marks, BOM):
/// newsletters pad their preview text with them.
fn is_invisible(ch: char) -> bool {
    matches!(
        ch,
        '\u{ad}' | '\u{34f}' | '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}'
    )
}
