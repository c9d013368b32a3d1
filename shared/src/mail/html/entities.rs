//! HTML's character references: which ones are decoded, and to what.

/// Longest entity name looked up; the longest one we know is shorter.
const MAX_ENTITY_NAME: usize = 8;

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

/// Decodes the character reference at the start of `text` (which starts with `&`): the character, if
/// it is one, and the bytes it takes (1 when it is not, so the `&` is text).
pub(super) fn entity(text: &[u8]) -> (Option<char>, usize) {
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

/// The character a named reference stands for, if it is one we know.
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
