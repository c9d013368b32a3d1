//! Reading tags: what each element does to the text, and where its name, attributes and end tag are.

use super::output::Gap;

/// Longest tag name that can be one we act on (`blockquote`, `figcaption`).
pub(super) const MAX_TAG_NAME: usize = 10;

/// What an element does to the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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

/// What the element named `lower` (ASCII lower case) does to the text.
pub(super) fn kind_of(lower: &[u8]) -> Kind {
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

/// HTML's whitespace, plus the other C0 controls.
pub(super) fn is_space(c: u8) -> bool {
    c <= b' '
}

/// `name` in ASCII lower case, if it is short enough to be a name we act on.
pub(super) fn lowercase<'b>(name: &[u8], buf: &'b mut [u8; MAX_TAG_NAME]) -> Option<&'b [u8]> {
    let dest = buf.get_mut(..name.len())?;
    for (d, s) in dest.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    Some(dest)
}

/// Reads the attributes from `from` to the `>` closing the tag, calling `on_attr(name, value)` for each;
/// returns the position after the `>`, or `None` when the input ends first.
pub(super) fn scan_attributes(
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
pub(super) fn find_end_tag(bytes: &[u8], from: usize, name: &[u8]) -> usize {
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
