//! A plain-text rendering of an HTML body, for `reply_plain` when a message has no text/plain part.
//!
//! [`html_to_text`] keeps the line structure a reader sees: block elements start and end lines, `<br>` breaks
//! them, paragraphs are separated by a blank line, and `<blockquote>` lines are prefixed with `> ` the way
//! a plain-text reply quotes, so [`super::reply::strip_reply`] can find attribution lines and quoted history.

use std::fmt::Write as _;

/// Deepest `<blockquote>` nesting shown by its own prefix; deeper levels get this many `> `. It bounds
/// the output to a small multiple of the input whatever the nesting.
const MAX_QUOTE_DEPTH: usize = 8;

/// Deepest list nesting shown by indentation (two spaces a level), for the same reason.
const MAX_LIST_INDENT: usize = 4;

/// Longest entity name looked up; the longest one we know is shorter.
const MAX_ENTITY_NAME: usize = 8;

/// Longest tag name that can be one we act on (`blockquote`, `figcaption`).
const MAX_TAG_NAME: usize = 10;

/// Names of U+00A0 to U+00FF, in order (HTML's Latin-1 entities).
const LATIN1_ENTITIES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// What browsers show for `&#128;` to `&#159;`: the windows-1252 characters (0 where it has none).
const WINDOWS_1252_C1: [u16; 32] = [
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC,
    0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
];

/// Renders `html` as plain text with `\n` line endings, trimmed.
///
/// Skips `<head>`, `<script>`, `<style>`, `<title>`, `<template>`, comments and markup; decodes character
/// references (the common named ones, `&nbsp;` as a space, and numeric ones, invalid code points as
/// U+FFFD); collapses whitespace as HTML does except in `<pre>`; puts block elements on lines of their
/// own, with a blank line around paragraphs, headings, `<pre>`, `<blockquote>` and top-level lists (never
/// more than one blank line in a row); turns `<br>` into a line break; prefixes list items with `- ` or
/// their number; prefixes lines inside `<blockquote>` with `> ` per level.
///
/// Malformed markup is read the way browsers read it: an unterminated tag or comment hides the rest, and
/// a `<` that cannot start a tag is text. Runs in time linear in the input and never panics.
#[must_use]
pub fn html_to_text(html: &str) -> String {
    let mut converter = Converter {
        html,
        bytes: html.as_bytes(),
        pos: 0,
        out: Output::with_capacity(html.len() / 2),
        in_head: false,
        skip_pre_newline: false,
        office_paragraph: false,
    };
    converter.run();
    converter.out.finish()
}

/// The space an element puts around itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    /// Starts on a new line.
    Line,
    /// Separated by a blank line.
    Blank,
}

/// What an element does to the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Its content is never shown: skipped up to the matching end tag.
    Hidden,
    Head,
    Body,
    /// Belongs in `<head>`: does not end it.
    HeadContent,
    Br,
    Block(Gap),
    Paragraph,
    Blockquote,
    Pre,
    List {
        ordered: bool,
    },
    ListItem,
    /// A table cell: separated from its neighbours by a space.
    Cell,
    /// Inline or unknown.
    Other,
}

fn kind_of(lower: &[u8]) -> Kind {
    match lower {
        b"script" | b"style" | b"title" | b"template" | b"xml" | b"iframe" | b"noembed"
        | b"noframes" => Kind::Hidden,
        b"head" => Kind::Head,
        b"body" => Kind::Body,
        b"html" | b"meta" | b"link" | b"base" | b"basefont" | b"bgsound" | b"noscript" => {
            Kind::HeadContent
        }
        b"br" => Kind::Br,
        b"p" => Kind::Paragraph,
        b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"hr" => Kind::Block(Gap::Blank),
        b"div" | b"tr" | b"table" | b"caption" | b"section" | b"article" | b"header"
        | b"footer" | b"nav" | b"aside" | b"main" | b"address" | b"dl" | b"dt" | b"dd"
        | b"form" | b"fieldset" | b"legend" | b"center" | b"figure" | b"figcaption"
        | b"details" | b"summary" => Kind::Block(Gap::Line),
        b"blockquote" => Kind::Blockquote,
        b"pre" | b"listing" | b"xmp" => Kind::Pre,
        b"ul" | b"menu" | b"dir" => Kind::List { ordered: false },
        b"ol" => Kind::List { ordered: true },
        b"li" => Kind::ListItem,
        b"td" | b"th" => Kind::Cell,
        _ => Kind::Other,
    }
}

/// Reads the markup and drives [`Output`].
struct Converter<'a> {
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
    fn run(&mut self) {
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

/// HTML's whitespace, plus the other C0 controls.
fn is_space(c: u8) -> bool {
    c <= b' '
}

/// `name` in ASCII lower case, if it is short enough to be a name we act on.
fn lowercase<'b>(name: &[u8], buf: &'b mut [u8; MAX_TAG_NAME]) -> Option<&'b [u8]> {
    let dest = buf.get_mut(..name.len())?;
    for (d, s) in dest.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(dest)
}

/// Reads the attributes from `from` to the `>` closing the tag, calling `on_attr(name, value)` for each;
/// returns the position after the `>`, or `None` when the input ends first.
fn scan_attributes(
    bytes: &[u8],
    from: usize,
    mut on_attr: impl FnMut(&[u8], &[u8]),
) -> Option<usize> {
    let mut i = from;
    loop {
        while bytes.get(i).is_some_and(|&c| is_space(c) || c == b'/') {
            i += 1;
        }
        if *bytes.get(i)? == b'>' {
            return Some(i + 1);
        }
        // The first character belongs to the name even when it is `=` or a quote.
        let name_start = i;
        i += 1;
        while bytes
            .get(i)
            .is_some_and(|&c| !is_space(c) && c != b'/' && c != b'>' && c != b'=')
        {
            i += 1;
        }
        let name = bytes.get(name_start..i).unwrap_or_default();
        while bytes.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            on_attr(name, b"");
            continue;
        }
        i += 1;
        while bytes.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        let value = match *bytes.get(i)? {
            quote @ (b'"' | b'\'') => {
                let start = i + 1;
                let len = memchr::memchr(quote, bytes.get(start..)?)?;
                i = start + len + 1;
                bytes.get(start..start + len).unwrap_or_default()
            }
            _ => {
                let start = i;
                while bytes.get(i).is_some_and(|&c| !is_space(c) && c != b'>') {
                    i += 1;
                }
                bytes.get(start..i).unwrap_or_default()
            }
        };
        on_attr(name, value);
    }
}

/// Where the text resumes after the end tag `</name…>` that closes an element whose content is skipped:
/// after that tag, or at the end of the input when there is none.
fn find_end_tag(bytes: &[u8], from: usize, name: &[u8]) -> usize {
    let mut at = from;
    while let Some(i) = bytes.get(at..).and_then(|rest| memchr::memchr(b'<', rest)) {
        let lt = at + i;
        let after = lt + 2 + name.len();
        if bytes.get(lt + 1) == Some(&b'/')
            && bytes
                .get(lt + 2..after)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && bytes
                .get(after)
                .is_none_or(|&c| is_space(c) || c == b'/' || c == b'>')
        {
            let rest = bytes.get(after..).unwrap_or_default();
            return memchr::memchr(b'>', rest).map_or(bytes.len(), |g| after + g + 1);
        }
        at = lt + 1;
    }
    bytes.len()
}

/// Decodes the character reference at the start of `text` (which starts with `&`): the character, if
/// it is one, and the bytes it takes (1 when it is not, so the `&` is text).
fn entity(text: &[u8]) -> (Option<char>, usize) {
    match text.get(1) {
        Some(b'#') => numeric_entity(text),
        Some(c) if c.is_ascii_alphanumeric() => {
            let len = text
                .iter()
                .skip(1)
                .take(MAX_ENTITY_NAME + 1)
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            let name = text.get(1..1 + len).unwrap_or_default();
            if text.get(1 + len) == Some(&b';') {
                return named_entity(name).map_or((None, 1), |ch| (Some(ch), len + 2));
            }
            // The few that browsers also accept without `;` and that mail really uses that way.
            match name {
                b"amp" | b"lt" | b"gt" | b"quot" | b"nbsp" | b"AMP" | b"LT" | b"GT" | b"QUOT" => {
                    (named_entity(name), len + 1)
                }
                _ => (None, 1),
            }
        }
        _ => (None, 1),
    }
}

/// `&#NNN;` or `&#xHH;`, the `;` optional; an invalid code point is U+FFFD.
fn numeric_entity(text: &[u8]) -> (Option<char>, usize) {
    let hex = matches!(text.get(2), Some(b'x' | b'X'));
    let digits_start = if hex { 3 } else { 2 };
    let radix = if hex { 16 } else { 10 };
    let mut value: u32 = 0;
    let mut i = digits_start;
    while let Some(digit) = text.get(i).and_then(|&c| char::from(c).to_digit(radix)) {
        // Saturates far above U+10FFFF, so a long run of digits stays invalid.
        value = value.saturating_mul(radix).saturating_add(digit);
        i += 1;
    }
    if i == digits_start {
        return (None, 1);
    }
    if text.get(i) == Some(&b';') {
        i += 1;
    }
    let value = match value {
        0x80..=0x9F => match WINDOWS_1252_C1.get((value - 0x80) as usize) {
            Some(&mapped) if mapped != 0 => u32::from(mapped),
            _ => value,
        },
        _ => value,
    };
    let ch = match value {
        0 => '\u{FFFD}',
        _ => char::from_u32(value).unwrap_or('\u{FFFD}'),
    };
    (Some(ch), i)
}

fn named_entity(name: &[u8]) -> Option<char> {
    let ch = match name {
        b"amp" | b"AMP" => '&',
        b"lt" | b"LT" => '<',
        b"gt" | b"GT" => '>',
        b"quot" | b"QUOT" => '"',
        b"apos" => '\'',
        b"COPY" => '©',
        b"REG" => '®',
        b"Tab" => '\t',
        b"NewLine" => '\n',
        b"OElig" => 'Œ',
        b"oelig" => 'œ',
        b"Scaron" => 'Š',
        b"scaron" => 'š',
        b"Yuml" => 'Ÿ',
        b"fnof" => 'ƒ',
        b"circ" => 'ˆ',
        b"tilde" => '˜',
        b"ensp" => '\u{2002}',
        b"emsp" => '\u{2003}',
        b"thinsp" => '\u{2009}',
        b"zwnj" => '\u{200c}',
        b"zwj" => '\u{200d}',
        b"lrm" => '\u{200e}',
        b"rlm" => '\u{200f}',
        b"ndash" => '–',
        b"mdash" => '—',
        b"lsquo" => '‘',
        b"rsquo" => '’',
        b"sbquo" => '‚',
        b"ldquo" => '“',
        b"rdquo" => '”',
        b"bdquo" => '„',
        b"dagger" => '†',
        b"Dagger" => '‡',
        b"bull" => '•',
        b"hellip" => '…',
        b"permil" => '‰',
        b"prime" => '′',
        b"Prime" => '″',
        b"lsaquo" => '‹',
        b"rsaquo" => '›',
        b"oline" => '‾',
        b"frasl" => '⁄',
        b"euro" => '€',
        b"trade" => '™',
        b"larr" => '←',
        b"uarr" => '↑',
        b"rarr" => '→',
        b"darr" => '↓',
        b"harr" => '↔',
        b"minus" => '−',
        b"ne" => '≠',
        b"le" => '≤',
        b"ge" => '≥',
        b"asymp" => '≈',
        b"infin" => '∞',
        b"hearts" => '♥',
        b"check" => '✓',
        _ => {
            let index = LATIN1_ENTITIES
                .iter()
                .position(|known| known.as_bytes() == name)?;
            return char::from_u32(0xA0 + u32::try_from(index).ok()?);
        }
    };
    Some(ch)
}

/// A list item's marker, written when its first text arrives.
#[derive(Debug, Clone, Copy)]
struct Marker {
    indent: usize,
    /// The item's number in an ordered list.
    number: Option<u32>,
}

/// The text being written. Line breaks, blank lines and spaces are decided lazily, when the next text
/// arrives, so that nothing is ever taken back and none are left dangling at the end.
struct Output {
    text: String,
    /// Where the current line's own text starts (after the quote prefix and list marker).
    content_start: usize,
    /// Text has been written on the current line.
    line_has_content: bool,
    /// Collapsible whitespace was seen since the last text.
    pending_space: bool,
    /// Spaces that do not collapse (`&nbsp;`, and spaces and tabs in `<pre>`) since the last text.
    hard: String,
    /// The largest gap asked for since the last text.
    pending_gap: Gap,
    /// The smallest quote depth since that gap was asked for: a blank line between two depths has the
    /// prefix of the outer one.
    gap_depth: usize,
    /// A blank line goes before the next text, with the prefix of this depth.
    blank: Option<usize>,
    quote_depth: usize,
    pre_depth: usize,
    /// Open lists, innermost last: the last item's number for ordered ones.
    lists: Vec<Option<u32>>,
    marker: Option<Marker>,
}

impl Output {
    fn with_capacity(capacity: usize) -> Self {
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
    fn request(&mut self, gap: Gap) {
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
    fn line_break(&mut self) {
        self.resolve_gap();
        let empty = !self.line_has_content;
        self.end_line(self.quote_depth);
        if empty {
            self.want_blank(self.quote_depth);
        }
    }

    fn hard_space(&mut self, ch: char) {
        self.resolve_gap();
        self.hard.push(ch);
    }

    /// Writes text, after the line break, blank line, prefix, marker and spaces due before it.
    fn content(&mut self, text: &str) {
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

    fn finish(self) -> String {
        let mut text = self.text;
        text.truncate(text.trim_end().len());
        let leading = text.len() - text.trim_start().len();
        text.drain(..leading);
        text
    }
}

fn push_quote_prefix(text: &mut String, depth: usize) {
    for _ in 0..depth.min(MAX_QUOTE_DEPTH) {
        text.push_str("> ");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use std::time::{Duration, Instant};

    use crate::mail::reply::strip_reply;

    #[test]
    fn heading_and_paragraph_are_separate_lines() {
        assert_eq!(
            html_to_text("<h1>Wöchentliche Neuigkeiten</h1><p>Drei Dinge sind neu.</p>"),
            "Wöchentliche Neuigkeiten\n\nDrei Dinge sind neu."
        );
    }

    #[test]
    fn divs_and_br_break_lines_without_blank_lines() {
        assert_eq!(
            html_to_text("<div>one</div><div>two<br>three</div><div>four<br></div><div>five</div>"),
            "one\ntwo\nthree\nfour\nfive"
        );
    }

    #[test]
    fn empty_lines_made_with_br_or_nbsp_are_kept_once() {
        assert_eq!(
            html_to_text(
                "<div>Hi,</div><div><br></div><div>text</div><div>&nbsp;</div><div>Ana</div>"
            ),
            "Hi,\n\ntext\n\nAna"
        );
        assert_eq!(html_to_text("a<br><br><br><br>b"), "a\n\nb");
        assert_eq!(
            html_to_text("<p>a</p><br><br><p></p><p>&nbsp;</p><div><br></div>b"),
            "a\n\nb"
        );
    }

    #[test]
    fn whitespace_collapses_and_is_trimmed() {
        assert_eq!(
            html_to_text("\n  <p>\n   Hello \t\r\n  <b>big</b>   world  </p>\n\n"),
            "Hello big world"
        );
        assert_eq!(
            html_to_text("<span>a</span><span>b</span> <i> c </i>"),
            "ab c"
        );
        assert_eq!(html_to_text(""), "");
        assert_eq!(html_to_text("   \n\t "), "");
    }

    #[test]
    fn nbsp_is_a_space_that_does_not_collapse() {
        assert_eq!(html_to_text("a&nbsp;&nbsp;b \u{a0}c"), "a  b  c");
        assert_eq!(html_to_text("<p>&nbsp;&nbsp;indented</p>"), "indented");
        assert_eq!(
            html_to_text("<p>x</p><p>&nbsp;&nbsp;indented</p>"),
            "x\n\n  indented"
        );
    }

    #[test]
    fn entities() {
        assert_eq!(
            html_to_text(
                "&amp; &lt;tag&gt; &quot;q&quot; &apos;a&apos; &copy; &euro; &hellip; &mdash; &auml;&Ouml;&szlig;"
            ),
            "& <tag> \"q\" 'a' © € … — äÖß"
        );
        assert_eq!(html_to_text("&#65;&#x42;&#X43;&#0068;&#x1F600;"), "ABCD😀");
        assert_eq!(
            html_to_text("&#0;|&#xD800;|&#x110000;|&#99999999999999999999;"),
            "\u{FFFD}|\u{FFFD}|\u{FFFD}|\u{FFFD}"
        );
        // Browsers read the C1 range as windows-1252.
        assert_eq!(html_to_text("&#150;&#146;&#128;"), "–’€");
        // Without the `;`: the usual ones are read, the rest is text.
        assert_eq!(html_to_text("a &amp b &lt c"), "a & b < c");
        assert_eq!(html_to_text("?x=1&copy=2&y"), "?x=1&copy=2&y");
        assert_eq!(
            html_to_text("&unknown; & &; &# &#x; &#; &&amp;"),
            "&unknown; & &; &# &#x; &#; &&"
        );
        assert_eq!(
            html_to_text(&format!("&{};", "a".repeat(100))),
            format!("&{};", "a".repeat(100))
        );
    }

    #[test]
    fn latin1_entity_table_is_in_code_point_order() {
        assert_eq!(LATIN1_ENTITIES.len(), 96);
        for (name, expected) in [
            ("nbsp", '\u{a0}'),
            ("copy", '©'),
            ("shy", '\u{ad}'),
            ("iquest", '¿'),
            ("Agrave", 'À'),
            ("Auml", 'Ä'),
            ("times", '×'),
            ("szlig", 'ß'),
            ("auml", 'ä'),
            ("divide", '÷'),
            ("yuml", 'ÿ'),
        ] {
            assert_eq!(named_entity(name.as_bytes()), Some(expected), "{name}");
        }
    }

    #[test]
    fn entities_that_decode_to_whitespace_or_nothing() {
        assert_eq!(html_to_text("a&#10;&#13;&#9;b"), "a b");
        assert_eq!(
            html_to_text("pre&shy;view&zwnj;&#8203;&#847; text\u{200b}\u{feff}"),
            "preview text"
        );
    }

    #[test]
    fn head_script_style_template_and_comments_are_skipped() {
        let html = "<!DOCTYPE html><html><head><meta charset=utf-8><title>Title</title>\
                    <style>p { color: red } </p></style><!--[if mso]><xml><o:x>1</o:x></xml><![endif]-->\
                    </head><body><script>if (a < b) { x = \"</div>\"; }</script>\
                    <p>Visible</p><template><p>no</p></template><STYLE>.x{}</STYLE ><!-- hidden -->text<? php ?></body></html>";
        assert_eq!(html_to_text(html), "Visible\n\ntext");
    }

    #[test]
    fn head_without_end_tag_ends_at_the_body_content() {
        assert_eq!(html_to_text("<head><title>t</title><p>Shown</p>"), "Shown");
        assert_eq!(html_to_text("<head><o:p>x</o:p><body>Shown"), "Shown");
    }

    #[test]
    fn outlook_conditional_markup_keeps_its_visible_text() {
        assert_eq!(
            html_to_text("<p class=MsoListParagraph><![if !supportLists]>1.<![endif]>First</p>"),
            "1.First"
        );
    }

    #[test]
    fn pre_keeps_whitespace_and_newlines() {
        assert_eq!(
            html_to_text(
                "<p>Code:</p><pre>\nfn main() {\n    let  x = 1;\r\n\n\n\tx\n}\n</pre><p>after</p>"
            ),
            "Code:\n\nfn main() {\n    let  x = 1;\n\n\tx\n}\n\nafter"
        );
        assert_eq!(html_to_text("<pre>a &lt;b&gt;  <b>c</b></pre>"), "a <b>  c");
    }

    #[test]
    fn lists() {
        assert_eq!(
            html_to_text(
                "<p>Intro</p><ul><li>one</li><li>two<ul><li>inner</li></ul></li><li><p>three</p></li></ul><ol><li>first<li>second</ol>end"
            ),
            // The paragraph in the last item keeps its blank line, as its margin does in a browser.
            "Intro\n\n- one\n- two\n  - inner\n\n- three\n\n1. first\n2. second\n\nend"
        );
    }

    #[test]
    fn tables_separate_cells_and_rows() {
        assert_eq!(
            html_to_text(
                "<table><tr><td>a</td><td>b</td></tr><tr><th>c</th><td>d</td></tr></table>after"
            ),
            "a b\nc d\nafter"
        );
    }

    #[test]
    fn block_elements_start_their_own_lines() {
        for tag in [
            "p",
            "div",
            "h1",
            "h6",
            "li",
            "tr",
            "table",
            "ul",
            "ol",
            "blockquote",
            "section",
            "article",
            "header",
            "footer",
            "hr",
            "address",
            "dl",
            "dt",
            "dd",
            "form",
            "pre",
            "center",
        ] {
            let text = html_to_text(&format!("before<{tag}>inside</{tag}>after"));
            let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            assert_eq!(lines.len(), 3, "{tag}: {text:?}");
            assert!(lines[1].ends_with("inside"), "{tag}: {text:?}");
        }
        assert_eq!(html_to_text("a<hr>b"), "a\n\nb");
    }

    #[test]
    fn outlook_paragraphs_have_no_blank_lines_between_them() {
        let html = "<p class=MsoNormal>Best,<o:p></o:p></p>\n<p class=\"MsoNormal\">Anna<o:p></o:p></p>\
                    <p class=MsoNormal><o:p>&nbsp;</o:p></p><p class='foo MsoPlainText'>PS</p><p>Plain paragraph</p>";
        assert_eq!(html_to_text(html), "Best,\nAnna\n\nPS\n\nPlain paragraph");
    }

    #[test]
    fn blockquote_lines_are_quoted() {
        assert_eq!(
            html_to_text(
                "<div>Answer</div><blockquote><p>old</p><p>older<br>line</p></blockquote><div>after</div>"
            ),
            "Answer\n\n> old\n>\n> older\n> line\n\nafter"
        );
        assert_eq!(
            html_to_text("<blockquote>a<blockquote>b<br>c</blockquote>d</blockquote>"),
            "> a\n>\n> > b\n> > c\n>\n> d"
        );
        assert_eq!(html_to_text("<blockquote>x<br><br></blockquote>"), "> x");
    }

    #[test]
    fn quote_prefix_is_bounded() {
        let deep = format!("{}x", "<blockquote>".repeat(1000));
        assert_eq!(
            html_to_text(&deep),
            format!("{}x", "> ".repeat(MAX_QUOTE_DEPTH))
        );
    }

    #[test]
    fn signature_delimiter_keeps_its_space() {
        assert_eq!(
            html_to_text("<div>Bye</div><div><br></div><div>-- </div><div>Ana</div>"),
            "Bye\n\n-- \nAna"
        );
        assert_eq!(html_to_text("Bye<br>--&nbsp;<br>Ana"), "Bye\n-- \nAna");
        assert_eq!(html_to_text("a -- <br>b"), "a --\nb");
    }

    #[test]
    fn gmail_reply_keeps_only_the_new_text() {
        let html = "<div dir=\"ltr\">Thanks!</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On Mon, 4 Nov 2024 at 10:00, Ana &lt;ana@example.com&gt; wrote:<br></div><blockquote class=\"gmail_quote\">old text</blockquote></div>";
        let text = html_to_text(html);
        assert_eq!(
            text,
            "Thanks!\n\nOn Mon, 4 Nov 2024 at 10:00, Ana <ana@example.com> wrote:\n\n> old text"
        );
        assert_eq!(strip_reply(&text), "Thanks!");
    }

    #[test]
    fn gmail_reply_with_signature() {
        let html = "<div dir=\"ltr\"><div>Sure, Tuesday works.</div><div><br></div><div>Best,</div><div>Ana</div><br clear=\"all\"><div><br></div><span class=\"gmail_signature_prefix\">-- </span><br><div dir=\"ltr\" class=\"gmail_signature\">Ana Lee<br>Acme</div></div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">Am Mo., 4. Nov. 2024 um 10:00&nbsp;Uhr schrieb Bob &lt;<a href=\"mailto:bob@example.com\">bob@example.com</a>&gt;:<br></div><blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\"><div dir=\"ltr\">Tuesday?</div></blockquote></div>";
        assert_eq!(
            strip_reply(&html_to_text(html)),
            "Sure, Tuesday works.\n\nBest,\nAna"
        );
    }

    #[test]
    fn outlook_web_reply_keeps_only_the_new_text() {
        let html = "<html><head><style type=\"text/css\" style=\"display:none;\"> P {margin-top:0;margin-bottom:0;} </style></head>\
            <body dir=\"ltr\"><div style=\"font-family: Calibri\">Approved.</div><div><br></div>\
            <hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\
            <div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\" color=\"#000000\">\
            <b>From:</b> John Smith &lt;john@example.com&gt;<br>\n<b>Sent:</b> Tuesday, March 5, 2024 10:02 AM<br>\n\
            <b>To:</b> Anna Lee &lt;anna@example.com&gt;<br>\n<b>Subject:</b> Budget</font>\n<div>&nbsp;</div></div>\
            <div><div dir=\"ltr\">Please approve the budget.</div></div></body></html>";
        let text = html_to_text(html);
        assert!(
            text.starts_with("Approved.\n\nFrom: John Smith <john@example.com>\nSent: Tuesday, March 5, 2024 10:02 AM\n"),
            "{text:?}"
        );
        assert_eq!(strip_reply(&text), "Approved.");
    }

    #[test]
    fn outlook_desktop_reply_keeps_only_the_new_text() {
        let html = "<html xmlns:o=\"urn:schemas-microsoft-com:office:office\"><head>\
            <meta http-equiv=Content-Type content=\"text/html; charset=utf-8\">\
            <style><!-- p.MsoNormal {margin:0cm;} --></style><!--[if gte mso 9]><xml>\n<o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" />\n</xml><![endif]--></head>\
            <body lang=DE link=\"#0563C1\"><div class=WordSection1>\
            <p class=MsoNormal>Hallo Hans,<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>\
            <p class=MsoNormal>ich bin einverstanden.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>\
            <p class=MsoNormal>Gr&uuml;&szlig;e<o:p></o:p></p><p class=MsoNormal>Anna<o:p></o:p></p>\
            <p class=MsoNormal><o:p>&nbsp;</o:p></p>\
            <div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>\
            <p class=MsoNormal><b>Von:</b> Hans M&uuml;ller &lt;hans@example.de&gt; <br><b>Gesendet:</b> Dienstag, 5. M&auml;rz 2024 10:02<br>\
            <b>An:</b> Anna Lee &lt;anna@example.com&gt;<br><b>Betreff:</b> Termin<o:p></o:p></p></div>\
            <p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Hallo Anna, passt Dienstag?<o:p></o:p></p></div></body></html>";
        let text = html_to_text(html);
        assert_eq!(
            strip_reply(&text),
            "Hallo Hans,\n\nich bin einverstanden.\n\nGrüße\nAnna",
            "{text:?}"
        );
    }

    #[test]
    fn apple_mail_reply_keeps_only_the_new_text() {
        let html = "<html><body style=\"overflow-wrap: break-word;\">Yes, see you there.<br id=\"lineBreakAtBeginningOfMessage\"><div><br><blockquote type=\"cite\"><div>On 5 Mar 2024, at 10:02, John Smith &lt;john@example.com&gt; wrote:</div><br class=\"Apple-interchange-newline\"><div><div>Meeting at 10?</div></div></blockquote></div><br></body></html>";
        assert_eq!(strip_reply(&html_to_text(html)), "Yes, see you there.");
    }

    #[test]
    fn malformed_markup() {
        assert_eq!(html_to_text("a < b and c<d"), "a < b and c");
        assert_eq!(html_to_text("x<3 <> < / ok"), "x<3 <> < / ok");
        // `</` and something other than a letter opens a bogus comment, closed by `>`.
        assert_eq!(html_to_text("a </ 5 b"), "a");
        assert_eq!(html_to_text("a </ 5> b"), "a b");
        assert_eq!(html_to_text("tail<"), "tail<");
        assert_eq!(html_to_text("tail</"), "tail</");
        assert_eq!(html_to_text("Hello <b"), "Hello");
        assert_eq!(
            html_to_text("Hello <a href=\"x>y\">link</a>!"),
            "Hello link!"
        );
        assert_eq!(
            html_to_text("Hello <a href=\"unterminated>rest of text"),
            "Hello"
        );
        assert_eq!(html_to_text("Hello<!-- never closed <p>gone</p>"), "Hello");
        assert_eq!(html_to_text("a<!-->b<!--->c<!---->d"), "abcd");
        assert_eq!(html_to_text("a</>b</ x>c<!x>d<?x"), "abcd");
        assert_eq!(html_to_text("<script>never closed"), "");
        assert_eq!(
            html_to_text("<p>a</p></p></div></blockquote></ul></li></pre>b"),
            "a\n\nb"
        );
        assert_eq!(html_to_text("<div =x \"y\"='z' / a=b c>ok</div>"), "ok");
        assert_eq!(html_to_text("é<é>ü&é;"), "é<é>ü&é;");
        assert_eq!(
            html_to_text("<verylongunknowntagname>x</verylongunknowntagname>"),
            "x"
        );
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for input in [
            "<",
            ">",
            "&",
            "&#",
            "&#x",
            "&#x110000",
            "<!",
            "<!-",
            "<!--",
            "<!---",
            "<?",
            "</",
            "</a",
            "<a",
            "<a b",
            "<a b=",
            "<a b='",
            "<a b=\"c",
            "<pre>",
            "<pre>\r",
            "</pre>\n",
            "<li>",
            "<ol><li>",
            "</ol></ol><li>x",
            "<blockquote>",
            "</blockquote>",
            "<br/>",
            "\u{a0}",
            "\u{c2}<",
            "é&",
            "&é",
            "<head>",
            "<style",
            "<style>",
            "<style></sty",
            "<\u{e9}>",
            "\0\u{1}\u{7f}",
            "<p\u{a0}>x",
        ] {
            let _ = html_to_text(input);
        }
    }

    /// What holds for every output.
    fn check_output(input: &str, text: &str) {
        assert!(!text.contains('\r'), "{input:?} -> {text:?}");
        assert!(!text.contains("\n\n\n"), "{input:?} -> {text:?}");
        assert_eq!(text, text.trim(), "{input:?}");
        for line in text.lines() {
            if line.ends_with([' ', '\t']) {
                // Only the signature delimiter keeps its space.
                assert!(line.ends_with("-- "), "{input:?} -> {text:?}");
            }
        }
    }

    #[test]
    fn random_markup_keeps_the_output_invariants() {
        const TOKENS: [&str; 48] = [
            "<p>",
            "</p>",
            "<div>",
            "</div>",
            "<br>",
            "<br/>",
            "<blockquote>",
            "</blockquote>",
            "<pre>",
            "</pre>",
            "<ul>",
            "<ol>",
            "</ol>",
            "<li>",
            "</li>",
            "<h2>",
            "<td>",
            "<tr>",
            "<script>",
            "</script>",
            "<style>",
            "<head>",
            "<body>",
            "<!--",
            "-->",
            "<!",
            "</",
            "<",
            ">",
            "&",
            "&nbsp;",
            "&amp;",
            "&#",
            "&#x",
            "1",
            ";",
            "\"",
            "'",
            " ",
            "  ",
            "\n",
            "\r",
            "\t",
            "text",
            "é",
            "\u{a0}",
            "--",
            "<a href=",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64: reproducible without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let len = next() % 40;
            let input: String = (0..len)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect();
            check_output(&input, &html_to_text(&input));
        }
    }

    #[test]
    fn every_corpus_message_with_html_converts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
        let mut converted = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let Ok(email) = crate::mail::parse(std::fs::read(&path).unwrap()) else {
                continue;
            };
            let Some(html) = &email.html else {
                continue;
            };
            check_output(&path.display().to_string(), &html_to_text(html));
            let _ = email.reply_plain();
            converted += 1;
        }
        assert!(converted >= 100, "only {converted} messages with HTML");
    }

    #[test]
    fn huge_inputs_complete_quickly() {
        let size = 4 * 1024 * 1024;
        let cases = [
            "<".repeat(size),
            "<a".repeat(size / 2),
            "<!--".repeat(size / 4),
            "<!".repeat(size / 2),
            "&".repeat(size),
            "&#".repeat(size / 2),
            "&amp".repeat(size / 4),
            "<script>".repeat(size / 8),
            "</script".repeat(size / 8),
            "<blockquote>".repeat(size / 12),
            "<blockquote>a<br>".repeat(size / 17),
            "<ul><li>a".repeat(size / 9),
            "<pre>\n".repeat(size / 6),
            "\u{a0}\n".repeat(size / 3),
            "x".repeat(size),
            "<p>Some ordinary paragraph text &amp; more.</p>\n".repeat(size / 48),
        ];
        let started = Instant::now();
        for input in &cases {
            let text = html_to_text(input);
            assert!(text.len() <= 8 * input.len());
        }
        // Generous: the test profile is unoptimised and the machine is shared.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
