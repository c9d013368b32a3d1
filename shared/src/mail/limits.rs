//! What reaches the MIME parser, bounded so that hostile mail costs time and memory in proportion to the
//! limits, not to how many tiny parts, header fields or nesting levels fit in 40 MB.
//!
//! One pass over the lines follows the MIME structure the way the parser will see it (header blocks,
//! boundary delimiters, attached messages) and decides:
//! - where to cut, after the last part within [`MAX_PARTS`] (attached messages count as parts);
//! - which header fields to leave out, beyond [`MAX_HEADERS`] in one block or [`MAX_HEADER_FIELDS_TOTAL`]
//!   in all;
//! - which attached messages sent base64 or quoted-printable (which RFC 2046 forbids) to hide from the
//!   parser, which would otherwise parse their decoded bytes with none of these bounds. Their subtype gets
//!   a same-length marker ([`OPAQUE_RFC822`], [`OPAQUE_GLOBAL`]) so they arrive as one decoded attachment.
//!
//! Ordinary mail passes through untouched and uncopied.

use std::ops::Range;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use bytes::Bytes;
use regex::bytes::Regex;

use super::{MAX_HEADERS, MAX_PARTS, Warning};

/// Most header fields kept across every header block of a message.
pub const MAX_HEADER_FIELDS_TOTAL: usize = 20_000;
/// Longest header field name accepted; RFC 5322 lines are at most 998 characters.
pub const MAX_HEADER_NAME_BYTES: usize = 998;
/// The subtype written over `rfc822` of an encoded attached message.
pub(crate) const OPAQUE_RFC822: &str = "rfc82_";
/// The subtype written over `global` of an encoded attached message.
pub(crate) const OPAQUE_GLOBAL: &str = "globa_";

/// Bodies at least this long, with nothing in them a parser could take for a delimiter, are left out of the
/// parser's input: it only needs to find the parts, and scanning a 30 MB base64 body byte by byte for the
/// next boundary was most of the time spent on large mail (on small mail, converting bodies to text it never
/// uses). Their place is kept, to be read from the original.
pub(crate) const SKIP_BODY_BYTES: usize = 512;

/// Bytes left out of the parser's input.
#[derive(Debug, Clone)]
struct Removal {
    /// What was left out, in the original.
    range: Range<usize>,
    /// For a skipped body: the part's content in the original (the range without the line break that
    /// belongs to the next delimiter).
    body: Option<Range<usize>>,
}

/// A removal as the parser's input sees it.
#[derive(Debug, Clone)]
struct Edit {
    /// Where the removed bytes were, in the parser's input.
    at: usize,
    /// Bytes removed up to and including this edit.
    removed_so_far: usize,
    /// The skipped body's content range in the original, if this edit is one.
    body: Option<Range<usize>>,
}

/// The input for the MIME parser, and what was changed on the way.
pub(crate) struct Bounded {
    /// What the parser reads.
    pub source: Bytes,
    /// Removals, in order, to map the parser's offsets back to the original.
    edits: Vec<Edit>,
    /// Where the original was cut, if it was.
    end: usize,
    pub warnings: Vec<Warning>,
    /// Lines in header blocks with no field name, which the parser skips.
    pub malformed_lines: usize,
    /// The fields of the message's own header block (within the limits), as ranges of the original.
    pub top_fields: Vec<Range<usize>>,
}

impl Bounded {
    /// The original range of a part body the parser found at `start..end` in its input. Content is always
    /// read from the original, so a marker written for the parser never reaches an attachment.
    pub fn original_range(&self, start: usize, end: usize) -> Range<usize> {
        let index = self.edits.partition_point(|e| e.at < start);
        if start == end
            && let Some(edit) = self.edits.get(index)
            && edit.at == start
            && let Some(body) = &edit.body
        {
            return body.clone();
        }
        let shift = |position: usize| {
            let before = self.edits.partition_point(|e| e.at < position);
            before
                .checked_sub(1)
                .and_then(|i| self.edits.get(i))
                .map_or(0, |e| e.removed_so_far)
        };
        let map = |position: usize| (position + shift(position)).min(self.end);
        let (start, end) = (map(start), map(end.max(start)));
        start..end
    }
}

/// The parser's input for `raw`: cut after the last part within the limits, with the header fields over
/// them, the bodies the parser does not need and encoded attached messages taken out of its sight.
pub(crate) fn bound(raw: Bytes) -> Bounded {
    let scan = Scan::run(&raw);
    let malformed_lines = scan.malformed_lines;
    let top_fields = scan.top_fields.clone();
    let mut warnings = scan.warnings;
    let mut cut = scan.cut;
    if cut.is_none() && scan.parts <= MAX_PARTS {
        cut = cut_at_inline_delimiters(&raw, &mut warnings);
    }

    let end = cut.as_ref().map_or(raw.len(), |c| c.at).min(raw.len());
    let close = cut.and_then(|c| c.close).unwrap_or_default();
    let removals: Vec<&Removal> = scan
        .removed
        .iter()
        .filter(|r| r.range.start < end)
        .collect();
    if removals.is_empty() && scan.markers.is_empty() && close.is_empty() {
        return Bounded {
            source: raw.slice(..end),
            edits: Vec::new(),
            end,
            warnings,
            malformed_lines,
            top_fields,
        };
    }

    let (mut source, edits) = without_removals(&raw, end, &removals, close.len());
    write_markers(&mut source, &edits, &scan.markers);
    source.extend_from_slice(&close);
    Bounded {
        source: Bytes::from(source),
        edits,
        end,
        warnings,
        malformed_lines,
        top_fields,
    }
}

/// Where to cut a message whose declared boundaries occur more than [`MAX_PARTS`] times anywhere in a
/// line, with its warning; `None` when they do not.
fn cut_at_inline_delimiters(raw: &[u8], warnings: &mut Vec<Warning>) -> Option<Cut> {
    // mail-parser also accepts a delimiter in the middle of a line; a message with far more `--` than
    // line-anchored delimiters may be using that, so count every occurrence of the declared boundaries.
    let dashes = memchr::memmem::find_iter(raw, b"--")
        .take(4 * MAX_PARTS + 1)
        .count();
    if dashes <= 4 * MAX_PARTS {
        return None;
    }
    let delimiters = boundary_delimiters(raw);
    let at = delimiters.get(MAX_PARTS)?;
    warnings.push(Warning {
        code: "max_parts",
        message: format!(
            "the message has {} MIME boundaries; it is read up to the {MAX_PARTS}th and the rest is left out",
            delimiters.len()
        ),
    });
    let mut close = raw.get(at.clone()).unwrap_or_default().to_vec();
    close.extend_from_slice(b"--\r\n");
    Some(Cut {
        at: at.start,
        close: Some(close),
    })
}

/// `raw` up to `end` without the removed ranges (with room for `tail` more bytes), and the edits that map
/// the result back to `raw`.
fn without_removals(
    raw: &[u8],
    end: usize,
    removals: &[&Removal],
    tail: usize,
) -> (Vec<u8>, Vec<Edit>) {
    let kept = end
        - removals
            .iter()
            .map(|r| r.range.end.min(end) - r.range.start)
            .sum::<usize>();
    let mut source = Vec::with_capacity(kept + tail);
    let mut edits = Vec::with_capacity(removals.len());
    let mut pos = 0usize;
    let mut removed_so_far = 0usize;
    for removal in removals {
        source.extend_from_slice(raw.get(pos..removal.range.start).unwrap_or_default());
        let range_end = removal.range.end.min(end);
        removed_so_far += range_end - removal.range.start;
        edits.push(Edit {
            at: source.len(),
            removed_so_far,
            body: removal.body.clone(),
        });
        pos = range_end;
    }
    source.extend_from_slice(raw.get(pos..end).unwrap_or_default());
    (source, edits)
}

/// Overwrites the last byte of each encoded attached message's subtype (at `markers` in the original)
/// with `_`, where `edits` moved it in `source`.
fn write_markers(source: &mut [u8], edits: &[Edit], markers: &[usize]) {
    for &at in markers {
        // Markers sit in header blocks, never in removed ranges; shift them as the edits before them did.
        let before = edits.partition_point(|e| e.at + e.removed_so_far <= at);
        let shift = before
            .checked_sub(1)
            .and_then(|i| edits.get(i))
            .map_or(0, |e| e.removed_so_far);
        if let Some(byte) = at.checked_sub(shift).and_then(|i| source.get_mut(i)) {
            *byte = b'_';
        }
    }
}

/// Where reading stops, and the closing delimiter that ends the multipart cut short there cleanly.
struct Cut {
    at: usize,
    close: Option<Vec<u8>>,
}

/// What one pass over the lines found.
#[derive(Default)]
struct Scan {
    /// Parts seen: delimiters and attached messages the parser will descend into.
    parts: usize,
    /// Where to stop reading, when over [`MAX_PARTS`].
    cut: Option<Cut>,
    /// Header fields left out and bodies skipped, in order.
    removed: Vec<Removal>,
    /// Positions of the last byte of an attached message's subtype to overwrite with `_`.
    markers: Vec<usize>,
    /// Lines in header blocks with no field name, which the parser skips.
    malformed_lines: usize,
    /// The fields of the top header block that are kept, in order.
    top_fields: Vec<Range<usize>>,
    warnings: Vec<Warning>,
}

/// The header block being read.
#[derive(Default)]
struct Block {
    fields: usize,
    /// The current field, from its first line to the end of its continuation lines.
    field: Option<Range<usize>>,
    field_dropped: bool,
    /// Byte of the `rfc822`/`global` subtype's last character, if the block declares an attached message.
    message_subtype_end: Option<usize>,
    has_content_type: bool,
    encoded: bool,
    /// Entered through a `multipart/digest` delimiter: without a Content-Type, the part is a message.
    in_digest: bool,
    /// The header of an attached message: its lines reach the recipient within the attachment, so a
    /// malformed one is not lost.
    attached_message: bool,
    /// Declares a multipart: what follows is its preamble, then its parts.
    multipart: bool,
    /// The message's own header block.
    top: bool,
}

/// The body being passed over.
struct Body {
    /// Where it starts.
    start: usize,
    /// It belongs to a leaf part whose bytes the parser does not need.
    skippable: bool,
}

/// Header fields counted against the limits, and lines the parser would skip.
#[derive(Default)]
struct FieldCounts {
    /// Fields kept, in every header block.
    kept: usize,
    /// Fields left out for being beyond [`MAX_HEADERS`] in their block.
    over_block: usize,
    /// Fields left out for being beyond [`MAX_HEADER_FIELDS_TOTAL`] in the message.
    over_total: usize,
    /// Fields left out for a name longer than [`MAX_HEADER_NAME_BYTES`].
    long_names: usize,
    /// Lines in header blocks with no field name.
    malformed: usize,
}

impl FieldCounts {
    /// Starts the field on `line` (whose bytes are `text`) in `block`, kept or left out.
    fn start_field(&mut self, block: &mut Block, text: &[u8], line: Range<usize>) {
        match text.iter().position(|c| *c == b':') {
            None => {
                // mail-parser skips a line with no field name; say so.
                if !block.attached_message {
                    self.malformed += 1;
                }
            }
            Some(n) if n > MAX_HEADER_NAME_BYTES => {
                self.long_names += 1;
                block.field = Some(line);
                block.field_dropped = true;
            }
            Some(_) => {
                let over_block = block.fields >= MAX_HEADERS;
                let over_total = self.kept >= MAX_HEADER_FIELDS_TOTAL;
                let keep = !(over_block || over_total)
                    || (is_structural(text) && block.fields < MAX_HEADERS + 8);
                if keep {
                    block.fields += 1;
                    self.kept += 1;
                } else if over_block {
                    self.over_block += 1;
                } else {
                    self.over_total += 1;
                }
                block.field = Some(line);
                block.field_dropped = !keep;
            }
        }
    }

    /// One warning for each limit that left fields out.
    fn warnings(&self) -> impl Iterator<Item = Warning> {
        [
            (
                self.over_block,
                "max_headers",
                format!("beyond {MAX_HEADERS} in one header block"),
            ),
            (
                self.over_total,
                "max_header_fields_total",
                format!("beyond {MAX_HEADER_FIELDS_TOTAL} in the whole message"),
            ),
            (
                self.long_names,
                "max_header_name_bytes",
                format!("with a name longer than {MAX_HEADER_NAME_BYTES} bytes"),
            ),
        ]
        .into_iter()
        .filter(|(count, _, _)| *count > 0)
        .map(|(count, code, what)| Warning {
            code,
            message: format!("{count} header field(s) {what} were left out"),
        })
    }
}

/// The pass over the lines under way: what it found so far, and where it is in the MIME structure.
struct Pass<'a> {
    raw: &'a [u8],
    scan: Scan,
    /// Every boundary declared so far.
    boundaries: Vec<Boundary>,
    /// The header block being read, if the pass is in one.
    block: Option<Block>,
    /// The body being passed over, if the pass is in one.
    body: Option<Body>,
    counts: FieldCounts,
}

impl<'a> Pass<'a> {
    /// At the start of `raw`, in the message's own header block.
    fn new(raw: &'a [u8]) -> Pass<'a> {
        Pass {
            raw,
            // The root is a part too.
            scan: Scan {
                parts: 1,
                ..Scan::default()
            },
            boundaries: Vec::new(),
            block: Some(Block {
                top: true,
                ..Block::default()
            }),
            body: None,
            counts: FieldCounts::default(),
        }
    }

    /// Reads the lines up to the end of the input, or up to where it is cut.
    fn run(mut self) -> Scan {
        let raw = self.raw;
        let mut pos = 0usize;
        while pos < raw.len() && self.scan.cut.is_none() {
            if self.block.is_none() {
                // In a body only delimiter lines matter: jump from one `--` to the next.
                match next_delimiter_line(raw, pos, &self.boundaries, &mut self.body) {
                    Some(line_start) => pos = line_start,
                    None => break,
                }
            }
            let end = memchr::memchr(b'\n', raw.get(pos..).unwrap_or_default())
                .map_or(raw.len(), |i| pos + i + 1);
            self.read_line(pos..end);
            pos = end;
        }
        self.finish()
    }

    /// One line, with its line break.
    fn read_line(&mut self, line: Range<usize>) {
        let text = self.raw.get(line.clone()).unwrap_or_default();
        if text.starts_with(b"--")
            && let Some((index, closing)) = delimiter(text, &self.boundaries)
        {
            self.delimiter_line(line, index, closing);
        } else {
            self.header_line(line);
        }
    }

    /// A delimiter of the boundary at `index`: ends the header block or body before it, then opens the next
    /// part, or the epilogue when `closing`.
    fn delimiter_line(&mut self, line: Range<usize>, index: usize, closing: bool) {
        let raw = self.raw;
        if let Some(mut block) = self.block.take() {
            self.scan
                .finish_field(raw, &mut block, &mut self.boundaries);
        }
        if let Some(passed) = self.body.take() {
            self.scan.skip_body(raw, passed, line.start);
        }
        if let Some(boundary) = self.boundaries.get_mut(index) {
            if closing {
                boundary.closed = true;
            } else {
                boundary.opened = true;
            }
        }
        if closing {
            self.body = Some(Body {
                start: line.end,
                skippable: false,
            });
            return;
        }
        self.scan.parts += 1;
        if self.scan.parts > MAX_PARTS {
            let mut close = trim_end(raw.get(line.clone()).unwrap_or_default()).to_vec();
            close.extend_from_slice(b"--\r\n");
            self.scan.cut = Some(Cut {
                at: line.start,
                close: Some(close),
            });
            return;
        }
        self.block = Some(Block {
            in_digest: self.boundaries.get(index).is_some_and(|b| b.digest),
            ..Block::default()
        });
    }

    /// A line in a header block: a field, the continuation of one, or the blank line that ends the block.
    fn header_line(&mut self, line: Range<usize>) {
        let raw = self.raw;
        let Some(block) = self.block.as_mut() else {
            return;
        };
        let text = raw.get(line.clone()).unwrap_or_default();
        let blank = text.iter().all(|c| *c == b'\r' || *c == b'\n');
        let continuation = text.first().is_some_and(|c| *c == b' ' || *c == b'\t');
        if continuation && !blank {
            if let Some(field) = block.field.as_mut() {
                field.end = line.end;
            }
            return;
        }
        self.scan.finish_field(raw, block, &mut self.boundaries);
        if blank {
            self.end_block(line.end);
        } else {
            self.counts.start_field(block, text, line);
        }
    }

    /// Ends the header block at the blank line that ends at `end`: what follows is the header block of an
    /// attached message, or a body.
    fn end_block(&mut self, end: usize) {
        let finished = self.block.take().unwrap_or_default();
        self.block = self.scan.next_block_after(&finished, end);
        if self.scan.cut.is_some() || self.block.is_some() {
            return;
        }
        self.body = Some(Body {
            start: end,
            skippable: !finished.multipart && finished.message_subtype_end.is_none(),
        });
    }

    /// Ends the last body and field, and names every limit hit.
    fn finish(mut self) -> Scan {
        let raw = self.raw;
        if self.scan.cut.is_none()
            && let Some(passed) = self.body.take()
        {
            // The last body runs to the end of the input, as the parser reads it.
            self.scan.skip_body(raw, passed, raw.len());
        }
        if let Some(mut block) = self.block.take() {
            self.scan
                .finish_field(raw, &mut block, &mut self.boundaries);
        }
        let mut scan = self.scan;
        let unterminated = self
            .boundaries
            .iter()
            .filter(|b| b.opened && !b.closed)
            .count();
        if unterminated > 0 && scan.cut.is_none() {
            scan.warnings.push(Warning {
                code: "unterminated_multipart",
                message: format!(
                    "{unterminated} multipart part(s) lack their closing delimiter; their parts are read to the end"
                ),
            });
        }
        if scan.cut.is_some() {
            scan.warnings.push(Warning {
                code: "max_parts",
                message: format!(
                    "the message has more than {MAX_PARTS} MIME parts; it is read up to the {MAX_PARTS}th and the rest is left out"
                ),
            });
        }
        scan.warnings.extend(self.counts.warnings());
        scan.malformed_lines = self.counts.malformed;
        scan
    }
}

impl Scan {
    /// One pass over the lines of `raw`.
    fn run(raw: &[u8]) -> Scan {
        Pass::new(raw).run()
    }

    /// Ends the current field: records it when left out, otherwise reads what the parser needs from it
    /// (boundaries, attached messages, transfer encoding).
    fn finish_field(&mut self, raw: &[u8], b: &mut Block, boundaries: &mut Vec<Boundary>) {
        let Some(field) = b.field.take() else {
            return;
        };
        if std::mem::take(&mut b.field_dropped) {
            self.removed.push(Removal {
                range: field,
                body: None,
            });
            return;
        }
        let text = raw.get(field.clone()).unwrap_or_default();
        if b.top {
            self.top_fields.push(field.clone());
            // The parser needs only the structural fields of the top block; the others are decoded by us,
            // from the original, and leaving them out spares the parser most of its work on small mail.
            if !starts_with_ignore_case(text, b"content-")
                && !starts_with_ignore_case(text, b"mime-version")
            {
                self.removed.push(Removal {
                    range: field,
                    body: None,
                });
                return;
            }
        }
        if starts_with_ignore_case(text, b"content-type:") && !b.has_content_type {
            b.has_content_type = true;
            let value = text.get(13..).unwrap_or_default().to_ascii_lowercase();
            let media: Vec<u8> = value
                .iter()
                .take_while(|c| **c != b';')
                .filter(|c| !c.is_ascii_whitespace())
                .copied()
                .collect();
            if media.starts_with(b"multipart/") {
                b.multipart = true;
                // The boundary's case matters, so it is read from the original text.
                if let Some(boundary) =
                    declared_boundaries(text.get(13..).unwrap_or_default()).next()
                {
                    boundaries.push(Boundary {
                        text: boundary.to_vec(),
                        digest: media == b"multipart/digest",
                        opened: false,
                        closed: false,
                    });
                }
            } else if media == b"message/rfc822" || media == b"message/global" {
                let subtype = if media == b"message/rfc822" {
                    &b"rfc822"[..]
                } else {
                    &b"global"[..]
                };
                if let Some(at) = memchr::memmem::find(&value, subtype) {
                    b.message_subtype_end = Some(field.start + 13 + at + subtype.len() - 1);
                }
            }
        } else if starts_with_ignore_case(text, b"content-transfer-encoding:") {
            let value = trim_end(text.get(26..).unwrap_or_default());
            let value = value
                .iter()
                .position(|c| !c.is_ascii_whitespace())
                .and_then(|i| value.get(i..))
                .unwrap_or_default();
            b.encoded = value.eq_ignore_ascii_case(b"base64")
                || value.eq_ignore_ascii_case(b"quoted-printable");
        }
    }

    /// Leaves a body out of the parser's input when it is long and the parser does not need it.
    /// `next` is where the next delimiter line (or the end of input) begins.
    fn skip_body(&mut self, raw: &[u8], body: Body, next: usize) {
        if !body.skippable || next < body.start + SKIP_BODY_BYTES {
            return;
        }
        // The line break before a delimiter belongs to the delimiter, not to the content.
        let content_end = if next == raw.len() {
            next
        } else if raw.get(..next).is_some_and(|r| r.ends_with(b"\r\n")) {
            next - 2
        } else if raw.get(..next).is_some_and(|r| r.ends_with(b"\n")) {
            next - 1
        } else {
            next
        };
        self.removed.push(Removal {
            range: body.start..next,
            body: Some(body.start..content_end.max(body.start)),
        });
    }

    /// What follows the blank line that ends a header block: the header block of an attached message the
    /// parser will read inline, or a body.
    fn next_block_after(&mut self, finished: &Block, end: usize) -> Option<Block> {
        let inline_message = match finished.message_subtype_end {
            Some(_) => !finished.encoded,
            None => finished.in_digest && !finished.has_content_type,
        };
        if let Some(at) = finished.message_subtype_end
            && finished.encoded
        {
            self.markers.push(at);
        }
        if !inline_message {
            return None;
        }
        self.parts += 1;
        if self.parts > MAX_PARTS {
            self.cut = Some(Cut {
                at: end,
                close: None,
            });
            return None;
        }
        Some(Block {
            attached_message: true,
            ..Block::default()
        })
    }
}

/// The start of the next line, from `pos` on, that begins with `--` and a known boundary. A body that holds
/// `--boundary` anywhere else stops being skippable: the parser might end the part there.
fn next_delimiter_line(
    raw: &[u8],
    pos: usize,
    boundaries: &[Boundary],
    body: &mut Option<Body>,
) -> Option<usize> {
    let mut from = pos;
    loop {
        let at = from + memchr::memmem::find(raw.get(from..)?, b"--")?;
        let at_line_start = at == 0 || raw.get(at - 1) == Some(&b'\n');
        let end = memchr::memchr(b'\n', raw.get(at..)?).map_or(raw.len(), |i| at + i + 1);
        if at_line_start && delimiter(raw.get(at..end)?, boundaries).is_some() {
            return Some(at);
        }
        let after = raw.get(at + 2..).unwrap_or_default();
        if boundaries.iter().any(|b| after.starts_with(&b.text))
            && let Some(current) = body.as_mut()
        {
            current.skippable = false;
        }
        from = at + 2;
    }
}

/// A boundary some multipart declared, and what the scan saw of it.
struct Boundary {
    text: Vec<u8>,
    digest: bool,
    opened: bool,
    closed: bool,
}

/// The boundary a delimiter line belongs to, and whether it is the closing one (`--boundary--`).
fn delimiter(line: &[u8], boundaries: &[Boundary]) -> Option<(usize, bool)> {
    let rest = trim_end(line.get(2..)?);
    boundaries
        .iter()
        .enumerate()
        .rev()
        .find_map(|(index, boundary)| {
            let after = trim_end(rest.strip_prefix(boundary.text.as_slice())?);
            match after {
                b"" => Some((index, false)),
                b"--" => Some((index, true)),
                _ => None,
            }
        })
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let keep = bytes
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    bytes.get(..keep).unwrap_or_default()
}

/// Every occurrence of `--boundary` for the boundaries the message declares, in document order.
fn boundary_delimiters(raw: &[u8]) -> Vec<Range<usize>> {
    let mut patterns: Vec<Vec<u8>> = Vec::new();
    for value in declared_boundaries(raw) {
        let mut pattern = b"--".to_vec();
        pattern.extend_from_slice(value);
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
        // Each distinct boundary opens at least one part, so more than this many cannot matter.
        if patterns.len() > MAX_PARTS {
            break;
        }
    }
    if patterns.is_empty() {
        return Vec::new();
    }
    let Ok(searcher) = AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .build(&patterns)
    else {
        return Vec::new();
    };
    searcher.find_iter(raw).map(|m| m.range()).collect()
}

fn declared_boundaries(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    static DECLARED: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r#"(?i)boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))"#).ok()
    });
    DECLARED.as_ref().into_iter().flat_map(move |declared| {
        declared
            .captures_iter(text)
            .filter_map(|c| c.get(1).or_else(|| c.get(2)).map(|m| m.as_bytes()))
    })
}

/// Fields the MIME structure depends on; a few are kept past the per-block limit so the parts still parse.
fn is_structural(line: &[u8]) -> bool {
    starts_with_ignore_case(line, b"content-type:")
        || starts_with_ignore_case(line, b"content-transfer-encoding:")
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}
