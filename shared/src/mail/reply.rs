//! The new text of an email reply, without the quoted history or the signature
//! (the `reply_plain` field of CloudMailin's inbound format).
//!
//! Quoted history and signatures always follow the new text, so the answer is a
//! prefix of the plain body: one forward pass over the lines finds the earliest
//! line where quoted material starts, and the body is cut there.

use std::sync::LazyLock;

use regex::Regex;

/// Longest line (or pair of joined lines) considered as an attribution line;
/// real ones are well under this, and the cap bounds the work on huge lines.
const MAX_ATTRIBUTION_LEN: usize = 500;

/// Longest header label ("Enviado el", "Envoyé\u{a0}") searched for a colon.
const MAX_LABEL_LEN: usize = 16;

/// What is trimmed from the end of the kept prefix.
const TRAILING_WHITESPACE: [char; 4] = [' ', '\t', '\r', '\n'];

/// Attribution lines: "On <date>, <name> wrote:" and its translations. A digit
/// is required before the verb because every client puts a date there, and it
/// keeps prose such as "On the other hand, as Peter wrote:" intact.
/// German and Dutch put the verb before the name, so they only need a final colon.
static ATTRIBUTION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:on\s.*?\d.*\s(?:wrote|writes)|le\s.*?\d.*\sa\s+écrit|el\s.*?\d.*\sescribió|em\s.*?\d.*\sescreveu|il\s.*?\d.*\sha\s+scritto|am\s.*?\d.*\sschrieb\s.+|op\s.*?\d.*\sschreef\s.+)\s*:\s*$",
    )
    .ok()
});

/// Two-letter words that open an attribution line (en, fr, es, pt, it, de, nl).
const ATTRIBUTION_OPENERS: [&[u8; 2]; 7] = [b"on", b"le", b"el", b"em", b"il", b"am", b"op"];

/// Verbs ending a looser "<name> wrote:" line, recognised only right above a
/// trailing quote block (where cutting it cannot lose new text).
const LOOSE_ATTRIBUTION_VERBS: [&str; 7] = [
    "wrote",
    "writes",
    "a écrit",
    "escribió",
    "escreveu",
    "ha scritto",
    "skrev",
];

/// Phrases between dashes: "-----Original Message-----", Gmail's
/// "---------- Forwarded message ---------" and their translations (lowercase).
const DASHED_SEPARATORS: [&str; 20] = [
    "original message",
    "forwarded message",
    "ursprüngliche nachricht",
    "originalnachricht",
    "original-nachricht",
    "weitergeleitete nachricht",
    "message d'origine",
    "message original",
    "message transféré",
    "mensaje original",
    "mensaje reenviado",
    "oorspronkelijk bericht",
    "origineel bericht",
    "doorgestuurd bericht",
    "mensagem original",
    "mensagem encaminhada",
    "mensagem reencaminhada",
    "messaggio originale",
    "messaggio inoltrato",
    "original email",
];

/// Apple Mail's "Begin forwarded message:" and its translations (lowercase,
/// without the colon).
const FORWARD_INTROS: [&str; 8] = [
    "begin forwarded message",
    "anfang der weitergeleiteten nachricht",
    "début du message réexpédié",
    "inicio del mensaje reenviado",
    "begin doorgestuurd bericht",
    "início da mensagem reencaminhada",
    "início da mensagem encaminhada",
    "inizio messaggio inoltrato",
];

/// First label of Outlook's quoted header block (en, de, fr/es/pt, nl, it).
const FROM_LABELS: [&str; 5] = ["From", "Von", "De", "Van", "Da"];

/// Second label of Outlook's header block, expected 1–4 lines below the first.
const SENT_LABELS: [&str; 14] = [
    "Sent",
    "Date",
    "Gesendet",
    "Datum",
    "Envoyé",
    "Enviado",
    "Enviado el",
    "Enviado em",
    "Enviada",
    "Fecha",
    "Verzonden",
    "Inviato",
    "Data",
    "Sendt",
];

/// Most lines a bare `--` may have below it and still be taken for a signature delimiter.
const MAX_BARE_SIGNATURE_LINES: usize = 8;

/// Returns the new text of a reply: `plain` without the quoted history and the signature.
/// When nothing is recognised as quoted, returns `plain` unchanged (exactly equal).
///
/// The result is always a slice of `plain`. Top-posted replies keep what comes before the quoted history; a
/// bottom-posted reply (an attribution line or `>` quotes first, the new text below) keeps what follows
/// the quotes. When something is cut, trailing spaces, tabs, CRs and LFs are trimmed too; a message that
/// is nothing but quoted material (e.g. a bare forward) yields `""`.
///
/// Recognised, each at the start of a line: attribution lines ("On … wrote:" and its German, French,
/// Spanish, Dutch, Portuguese and Italian forms, also wrapped over two lines), Outlook's
/// "-----Original Message-----" and its header block ("From:" then "Sent:"/"Date:" within 4 lines, also
/// localised, with the underscore rule above it), forwarded-message separators, a trailing block of
/// `>`-quoted lines, the signature delimiter "-- ", and a bare "--" after a blank line with at most
/// [`MAX_BARE_SIGNATURE_LINES`] lines below it. Interleaved quotes, followed by new unquoted text, are kept.
///
/// Runs in time linear in the length of `plain` and never panics.
#[must_use]
pub fn strip_reply(plain: &str) -> &str {
    let body = bottom_posted(plain).unwrap_or(plain);
    let kept = match find_cut(body) {
        Some(cut) => body
            .get(..cut)
            .unwrap_or(body)
            .trim_end_matches(TRAILING_WHITESPACE),
        None => body,
    };
    let kept = cut_bare_signature(kept);
    if kept.len() == plain.len() {
        return plain;
    }
    kept.trim_end_matches(TRAILING_WHITESPACE)
}

/// The signature below the new text of a message: the lines after its signature delimiter ("-- ", or a
/// bare "--" as [`strip_reply`] takes it), up to where quoted history starts, trimmed; `""` when there is
/// none (Mailgun's `stripped-signature`).
#[must_use]
pub fn signature(plain: &str) -> &str {
    let body = bottom_posted(plain).unwrap_or(plain);
    let delimiter_at = match find_cut(body) {
        Some(cut) => {
            let line = Lines::new(body.get(cut..).unwrap_or("")).next();
            line.filter(|l| is_signature_delimiter(l.text)).map(|_| cut)
        }
        None => None,
    };
    let delimiter_at = delimiter_at.or_else(|| {
        let kept = cut_bare_signature(body);
        (kept.len() < body.len()).then_some(kept.len())
    });
    let Some(at) = delimiter_at else {
        return "";
    };
    let below = body.get(at..).unwrap_or("");
    let below = below.split_once('\n').map_or("", |(_, rest)| rest);
    strip_reply(below).trim_matches(TRAILING_WHITESPACE)
}

/// The new text of a bottom-posted reply: what follows a leading attribution line and its quoted lines,
/// when anything does.
fn bottom_posted(plain: &str) -> Option<&str> {
    let mut lines = Lines::new(plain);
    let first = lines.by_ref().find(|l| !is_blank(l.text))?;
    if !is_quote(first.text) && !is_attribution(first.text) {
        let mut ahead = lines.clone();
        let second = ahead.next()?;
        if !is_wrapped_attribution(first.text, second.text) {
            return None;
        }
        lines = ahead;
    }
    for line in lines {
        if is_blank(line.text) || is_quote(line.text) {
            continue;
        }
        let rest = plain.get(line.start..)?;
        // Quotes further down mean an interleaved reply, which is kept whole.
        return Lines::new(rest).all(|l| !is_quote(l.text)).then_some(rest);
    }
    None
}

/// Cuts at a bare `--` line that follows a blank line and is close to the end: mailing lists often strip
/// the space of "-- ".
fn cut_bare_signature(text: &str) -> &str {
    let mut cut = None;
    let mut below = 0usize;
    let mut blank_above = false;
    for line in Lines::new(text) {
        if line.text.trim_end() == "--" && blank_above {
            cut = Some(line.start);
            below = 0;
        } else if cut.is_some() {
            below += 1;
        }
        blank_above = is_blank(line.text);
    }
    match cut {
        Some(at) if below <= MAX_BARE_SIGNATURE_LINES => text.get(..at).unwrap_or(text),
        _ => text,
    }
}

/// One line of the body: its byte offset and its text without "\n" or "\r\n".
#[derive(Clone, Copy)]
struct Line<'a> {
    start: usize,
    text: &'a str,
}

/// Iterator over the lines of a body; cloning it gives a cheap lookahead.
#[derive(Clone)]
struct Lines<'a> {
    rest: &'a str,
    pos: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { rest: text, pos: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.pos;
        let (raw, tail) = self.rest.split_once('\n').unwrap_or((self.rest, ""));
        self.pos += self.rest.len() - tail.len();
        self.rest = tail;
        Some(Line {
            start,
            text: raw.strip_suffix('\r').unwrap_or(raw),
        })
    }
}

/// Where the forward pass stands.
#[derive(Clone, Copy)]
enum State {
    /// In new text.
    Text,
    /// Right after an attribution line starting at the offset: whatever comes
    /// next is the quoted message.
    Attribution(usize),
    /// In a block of `>` lines; the offset is where the block (or the
    /// attribution introducing it) starts. It is cut only if no new text follows.
    Quote(usize),
}

/// A line that starts quoted material.
enum Marker {
    /// Cut at this offset, whatever follows.
    Cut(usize),
    /// An attribution line (the offset is the line's own).
    Attribution,
}

/// The byte offset where quoted material or the signature starts, if any.
fn find_cut(plain: &str) -> Option<usize> {
    let mut lines = Lines::new(plain);
    let mut state = State::Text;
    // Start of the previous non-blank line when it is Outlook's underscore rule.
    let mut rule_above: Option<usize> = None;
    // Start of the previous non-blank line when it reads like "<name> wrote:".
    let mut intro_above: Option<usize> = None;

    while let Some(line) = lines.next() {
        let text = line.text;
        if is_blank(text) {
            continue;
        }
        if is_quote(text) {
            state = match state {
                State::Text => State::Quote(intro_above.unwrap_or(line.start)),
                State::Attribution(cut) | State::Quote(cut) => State::Quote(cut),
            };
            rule_above = None;
            intro_above = None;
            continue;
        }
        if let State::Attribution(cut) = state {
            // Some clients do not prefix the quoted message with `>`.
            return Some(cut);
        }
        match (classify(line, &mut lines, rule_above), state) {
            (Some(_), State::Quote(cut) | State::Attribution(cut)) => return Some(cut),
            (Some(Marker::Cut(cut)), State::Text) => return Some(cut),
            (Some(Marker::Attribution), State::Text) => state = State::Attribution(line.start),
            (None, _) => {
                // New text after a quote block: the quotes were interleaved.
                state = State::Text;
                rule_above = is_underscore_rule(text).then_some(line.start);
                intro_above = is_loose_attribution(text).then_some(line.start);
            }
        }
    }

    match state {
        State::Text => None,
        State::Attribution(cut) | State::Quote(cut) => Some(cut),
    }
}

/// Recognises a non-blank, unquoted line that starts quoted material. A wrapped
/// attribution line consumes its second line from `lines`.
fn classify(line: Line<'_>, lines: &mut Lines<'_>, rule_above: Option<usize>) -> Option<Marker> {
    let text = line.text;
    if is_signature_delimiter(text) || is_separator(text) {
        return Some(Marker::Cut(line.start));
    }
    if starts_like_attribution(text) {
        if is_attribution(text) {
            return Some(Marker::Attribution);
        }
        if let Some(next) = lines.clone().next()
            && is_wrapped_attribution(text, next.text)
        {
            lines.next();
            return Some(Marker::Attribution);
        }
    }
    if header_label(text).is_some_and(|label| label_in(label, &FROM_LABELS))
        && lines
            .clone()
            .take(4)
            .any(|next| header_label(next.text).is_some_and(|label| label_in(label, &SENT_LABELS)))
    {
        return Some(Marker::Cut(rule_above.unwrap_or(line.start)));
    }
    None
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

fn is_quote(text: &str) -> bool {
    text.trim_start_matches([' ', '\t']).starts_with('>')
}

/// RFC 3676's "-- " (the CR of CRLF is already gone). Also "--" + no-break
/// space, which is what HTML-to-text conversion makes of "--&nbsp;". A bare
/// "--" is not accepted: it also appears in ordinary text (lists, code, CLI
/// examples) and a wrong cut loses new text, while a missed one only keeps a
/// signature.
fn is_signature_delimiter(text: &str) -> bool {
    text == "-- " || text == "--\u{a0}"
}

/// Outlook, Thunderbird and Gmail dashed separators, and Apple Mail's
/// "Begin forwarded message:".
fn is_separator(text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.starts_with("---") {
        let inner = trimmed.trim_matches('-').trim();
        return !inner.is_empty() && inner.len() <= 40 && phrase_in(inner, &DASHED_SEPARATORS);
    }
    // The shortest intro is 23 bytes; the bounds skip most lines without allocating.
    if (20..=64).contains(&trimmed.len()) && trimmed.ends_with(':') {
        let inner = trimmed.trim_end_matches(':').trim_end();
        return phrase_in(inner, &FORWARD_INTROS);
    }
    false
}

/// Case-insensitive membership, with the typographic apostrophe as "'".
fn phrase_in(text: &str, phrases: &[&str]) -> bool {
    let lower = text.to_lowercase().replace('\u{2019}', "'");
    phrases.contains(&lower.as_str())
}

/// Cheap filter before the regex: a two-letter opener and a space.
fn starts_like_attribution(text: &str) -> bool {
    match text.as_bytes().get(..3) {
        Some(&[a, b, c]) => {
            (c == b' ' || c == b'\t')
                && ATTRIBUTION_OPENERS.contains(&&[a.to_ascii_lowercase(), b.to_ascii_lowercase()])
        }
        _ => false,
    }
}

fn is_attribution(text: &str) -> bool {
    let text = text.trim_end();
    text.len() <= MAX_ATTRIBUTION_LEN
        && text.ends_with(':')
        && ATTRIBUTION.as_ref().is_some_and(|re| re.is_match(text))
}

/// An attribution line that the sender's client wrapped: the first line must
/// not end a sentence (so "On 5 May we shipped.\nAs Ann wrote:" stays) and the
/// second must carry the final colon.
fn is_wrapped_attribution(first: &str, second: &str) -> bool {
    let first = first.trim_end();
    let second = second.trim();
    if first.ends_with(['.', '!', '?', ':'])
        || !second.ends_with(':')
        || is_quote(second)
        || first.len() + second.len() >= MAX_ATTRIBUTION_LEN
    {
        return false;
    }
    let joined = format!("{first} {second}");
    ATTRIBUTION.as_ref().is_some_and(|re| re.is_match(&joined))
}

/// "John Smith <john@example.com> wrote:" without the "On <date>" part.
fn is_loose_attribution(text: &str) -> bool {
    let text = text.trim_end();
    let Some(body) = text.strip_suffix(':') else {
        return false;
    };
    let body = body.trim_end();
    text.len() <= MAX_ATTRIBUTION_LEN
        && LOOSE_ATTRIBUTION_VERBS
            .iter()
            .any(|verb| ends_with_word(body, verb))
}

/// `text` ends with `word` (ASCII case-insensitive) preceded by whitespace.
fn ends_with_word(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(at) = bytes.len().checked_sub(word.len()) else {
        return false;
    };
    let after_space = at
        .checked_sub(1)
        .and_then(|before| bytes.get(before))
        .is_some_and(u8::is_ascii_whitespace);
    after_space
        && bytes
            .get(at..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(word.as_bytes()))
}

/// Outlook's "________________________________" above its header block.
fn is_underscore_rule(text: &str) -> bool {
    let trimmed = text.trim();
    trimmed.len() >= 3 && trimmed.bytes().all(|b| b == b'_')
}

/// The label of a "Label: value" line, also in Outlook's bold "*Label:*" form
/// and the French "Label :" form (with a space or a no-break space).
fn header_label(text: &str) -> Option<&str> {
    let text = text.strip_prefix('*').unwrap_or(text);
    let colon = text
        .bytes()
        .take(MAX_LABEL_LEN + 1)
        .position(|b| b == b':')?;
    let label = text.get(..colon)?.trim_end();
    (!label.is_empty()).then_some(label)
}

fn label_in(label: &str, labels: &[&str]) -> bool {
    labels.iter().any(|known| label.eq_ignore_ascii_case(known))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_what_follows_the_delimiter_up_to_the_quotes() {
        let reply = "Thanks, that works.\r\n\r\n-- \r\nAna Lima\r\nSupport lead\r\n\r\nOn Mon, 4 Nov 2024 at 09:20, Bob <b@x.example> wrote:\r\n> old\r\n";
        assert_eq!(signature(reply), "Ana Lima\r\nSupport lead");
        assert_eq!(strip_reply(reply), "Thanks, that works.");
        let bare = "Short note.\n\n--\nBob\n";
        assert_eq!(signature(bare), "Bob");
        assert_eq!(signature("No signature here.\n> quoted\n"), "");
        assert_eq!(signature(""), "");
        assert_eq!(signature("-- \n"), "");
    }
    use std::time::{Duration, Instant};

    /// Asserts that nothing is recognised: the very same slice comes back.
    fn assert_unchanged(input: &str) {
        let out = strip_reply(input);
        assert_eq!(out, input);
        assert!(std::ptr::eq(out, input), "expected the input itself");
    }

    #[test]
    fn attribution_regex_compiles() {
        assert!(ATTRIBUTION.is_some());
    }

    // --- attribution lines ---

    #[test]
    fn gmail_reply_with_wrapped_attribution_and_quotes() {
        let input = "Thanks, Tuesday works for me.\n\
                     \n\
                     Anna\n\
                     \n\
                     On Tue, Mar 5, 2024 at 10:02 AM John Smith <\n\
                     john@example.com> wrote:\n\
                     \n\
                     > Hi Anna,\n\
                     >\n\
                     > Does Tuesday work for the review?\n\
                     >\n\
                     > John\n";
        assert_eq!(strip_reply(input), "Thanks, Tuesday works for me.\n\nAnna");
    }

    #[test]
    fn gmail_attribution_on_one_line() {
        let input =
            "Sounds good.\n\nOn Tue, Mar 5, 2024 at 10:02 AM John <j@x.com> wrote:\n> Lunch?\n";
        assert_eq!(strip_reply(input), "Sounds good.");
    }

    #[test]
    fn apple_attribution() {
        let input = "Yes, see you there.\n\nSent from my iPhone\n\n\
                     On 5 Mar 2024, at 10:02, John <j@x.com> wrote:\n\n\
                     > Are you coming tonight?\n";
        assert_eq!(
            strip_reply(input),
            "Yes, see you there.\n\nSent from my iPhone"
        );
    }

    #[test]
    fn attribution_wrapped_before_the_address() {
        let input = "Agreed.\n\nOn Tue, 5 Mar 2024, John Smith\n<john@example.com> wrote:\n\n> Proposal attached.\n";
        assert_eq!(strip_reply(input), "Agreed.");
    }

    #[test]
    fn attribution_without_quote_markers_cuts_what_follows() {
        let input = "Done.\n\nOn Tue, Mar 5, 2024 at 10:02 AM John <j@x.com> wrote:\nPlease fix the build.\nJohn\n";
        assert_eq!(strip_reply(input), "Done.");
    }

    #[test]
    fn german_attribution() {
        let input = "Danke, passt.\n\nAm Di., 5. März 2024 um 10:02 Uhr schrieb Hans Müller <hans@example.de>:\n\n> Passt Dienstag?\n";
        assert_eq!(strip_reply(input), "Danke, passt.");
    }

    #[test]
    fn german_thunderbird_attribution() {
        let input = "Erledigt.\n\nAm 05.03.24 um 10:02 schrieb Hans Müller:\n> Bitte prüfen.\n";
        assert_eq!(strip_reply(input), "Erledigt.");
    }

    #[test]
    fn french_attribution_with_space_before_colon() {
        let input = "Merci !\n\nLe mar. 5 mars 2024 à 10:02, Jean Dupont <jean@example.fr> a écrit :\n\n> Bonjour,\n";
        assert_eq!(strip_reply(input), "Merci !");
    }

    #[test]
    fn french_attribution_with_no_break_space() {
        let input = "Merci !\n\nLe 5 mars 2024 à 10:02, Jean Dupont <jean@example.fr> a écrit\u{a0}:\n> Bonjour,\n";
        assert_eq!(strip_reply(input), "Merci !");
    }

    #[test]
    fn spanish_attribution() {
        let input = "Perfecto.\n\nEl mar, 5 mar 2024 a las 10:02, Juan Pérez (<juan@example.es>) escribió:\n> ¿Nos vemos?\n";
        assert_eq!(strip_reply(input), "Perfecto.");
    }

    #[test]
    fn dutch_attribution() {
        let input = "Prima.\n\nOp di 5 mrt 2024 om 10:02 schreef Jan de Vries <jan@example.nl>:\n\n> Komt dinsdag uit?\n";
        assert_eq!(strip_reply(input), "Prima.");
    }

    #[test]
    fn portuguese_attribution() {
        let input = "Combinado.\n\nEm ter., 5 de mar. de 2024 às 10:02, João Silva <joao@example.com.br> escreveu:\n\n> Pode ser terça?\n";
        assert_eq!(strip_reply(input), "Combinado.");
    }

    #[test]
    fn italian_attribution() {
        let input = "Va bene.\n\nIl giorno mar 5 mar 2024 alle ore 10:02 Mario Rossi <mario@example.it> ha scritto:\n> Martedì?\n";
        assert_eq!(strip_reply(input), "Va bene.");
    }

    #[test]
    fn sentence_with_wrote_inside_is_kept() {
        assert_unchanged("Hi,\n\nOn Monday I wrote: the report is late.\nIt is done now.\n");
    }

    #[test]
    fn sentence_without_a_date_is_kept() {
        assert_unchanged("On the other hand, as Peter wrote:\nwe should wait.\n");
    }

    #[test]
    fn sentence_ending_a_line_is_not_joined_with_the_next() {
        assert_unchanged("On 5 May we shipped version 2.\nAs Ann wrote:\nit went well.\n");
    }

    #[test]
    fn loose_attribution_above_trailing_quote() {
        let input = "Fine by me.\n\nJohn Smith <john@example.com> wrote:\n> Shall we merge?\n";
        assert_eq!(strip_reply(input), "Fine by me.");
    }

    // --- Outlook ---

    #[test]
    fn outlook_original_message() {
        let input = "Approved.\r\n\r\n-----Original Message-----\r\nFrom: John Smith\r\nSent: Tuesday\r\n\r\nPlease approve.\r\n";
        assert_eq!(strip_reply(input), "Approved.");
    }

    #[test]
    fn outlook_original_message_spaced_and_localised() {
        for separator in [
            "----- Original Message -----",
            "-----Ursprüngliche Nachricht-----",
            "-----Message d'origine-----",
            "-----Message d\u{2019}origine-----",
            "-----Mensaje original-----",
            "-----Oorspronkelijk bericht-----",
            "-----Mensagem original-----",
            "---ORIGINAL MESSAGE---",
        ] {
            let input = format!("OK.\n\n{separator}\nold text\n");
            assert_eq!(strip_reply(&input), "OK.", "{separator}");
        }
    }

    #[test]
    fn outlook_header_block_with_underscore_rule() {
        let input = "Sounds good, see you then.\n\
                     \n\
                     Best,\n\
                     Anna\n\
                     \n\
                     ________________________________\n\
                     From: John Smith <john@example.com>\n\
                     Sent: Tuesday, March 5, 2024 10:02 AM\n\
                     To: Anna Lee <anna@example.com>\n\
                     Subject: Meeting\n\
                     \n\
                     Hi Anna, can we meet on Tuesday?\n";
        assert_eq!(
            strip_reply(input),
            "Sounds good, see you then.\n\nBest,\nAnna"
        );
    }

    #[test]
    fn outlook_bold_header_block() {
        let input = "See below.\n\n*From:* John Smith <john@example.com>\n*Sent:* Tuesday, March 5, 2024 10:02 AM\n*To:* Anna\n*Subject:* Re: Meeting\n\nHello\n";
        assert_eq!(strip_reply(input), "See below.");
    }

    #[test]
    fn outlook_mac_header_block_with_date() {
        let input = "Thanks!\n\nFrom: John Smith <john@example.com>\nDate: Tuesday, 5 March 2024 at 10:02\nTo: Anna\nSubject: Meeting\n\nHello\n";
        assert_eq!(strip_reply(input), "Thanks!");
    }

    #[test]
    fn german_outlook_reply() {
        let input = "Hallo Hans,\r\n\r\nich bin einverstanden.\r\n\r\nGrüße\r\nAnna\r\n\r\n\
                     ________________________________\r\n\
                     Von: Hans Müller <hans@example.de>\r\n\
                     Gesendet: Dienstag, 5. März 2024 10:02\r\n\
                     An: Anna Lee <anna@example.com>\r\n\
                     Betreff: Termin\r\n\r\nHallo Anna,\r\n";
        assert_eq!(
            strip_reply(input),
            "Hallo Hans,\r\n\r\nich bin einverstanden.\r\n\r\nGrüße\r\nAnna"
        );
    }

    #[test]
    fn french_spanish_dutch_outlook_blocks() {
        for block in [
            "De : Jean Dupont <jean@example.fr>\nEnvoyé : mardi 5 mars 2024 10:02\nÀ : Anna\nObjet : RDV",
            "De\u{a0}: Jean Dupont\nEnvoyé\u{a0}: mardi 5 mars 2024 10:02\nÀ\u{a0}: Anna",
            "De: Juan Pérez <juan@example.es>\nEnviado el: martes, 5 de marzo de 2024 10:02\nPara: Anna\nAsunto: Cita",
            "De: Juan Pérez\nEnviado: martes, 5 de marzo de 2024 10:02\nPara: Anna",
            "Van: Jan de Vries <jan@example.nl>\nVerzonden: dinsdag 5 maart 2024 10:02\nAan: Anna\nOnderwerp: Afspraak",
        ] {
            let input = format!("Reply text.\n\n{block}\n\nOld text.\n");
            assert_eq!(strip_reply(&input), "Reply text.", "{block}");
        }
    }

    #[test]
    fn from_line_without_sent_is_kept() {
        assert_unchanged(
            "From: the whole team\nWe wish you a happy birthday!\nSee you soon.\nBye\nReally\n",
        );
    }

    // --- forwarded messages ---

    #[test]
    fn apple_mail_forwarded_message() {
        let input = "FYI, see below.\n\
                     \n\
                     Begin forwarded message:\n\
                     \n\
                     From: John Smith <john@example.com>\n\
                     Subject: Invoice\n\
                     Date: 5 March 2024 at 10:02:00 GMT\n\
                     To: Anna Lee <anna@example.com>\n\
                     \n\
                     Please find the invoice attached.\n";
        assert_eq!(strip_reply(input), "FYI, see below.");
    }

    #[test]
    fn gmail_forwarded_message() {
        let input = "Can you handle this?\n\n---------- Forwarded message ---------\nFrom: John <j@x.com>\nDate: Tue, Mar 5, 2024 at 10:02 AM\nSubject: Bug\nTo: <a@x.com>\n\nIt crashes.\n";
        assert_eq!(strip_reply(input), "Can you handle this?");
    }

    #[test]
    fn thunderbird_forwarded_message() {
        let input = "Forwarding.\n\n-------- Original Message --------\nSubject: Bug\nDate: Tue, 5 Mar 2024\n";
        assert_eq!(strip_reply(input), "Forwarding.");
    }

    #[test]
    fn message_that_is_only_a_forward_is_empty() {
        let input = "---------- Forwarded message ---------\nFrom: John <j@x.com>\nDate: Tue, Mar 5, 2024\n\nHello\n";
        assert_eq!(strip_reply(input), "");
    }

    // --- `>` quotes ---

    #[test]
    fn trailing_quote_block_is_cut() {
        let input = "My answer.\n\n> the question\n>> older\n> end\n\n";
        assert_eq!(strip_reply(input), "My answer.");
    }

    #[test]
    fn interleaved_quotes_are_kept() {
        assert_unchanged(
            "Hi Bob,\n\n> Can you send the report?\nSure, attached.\n\n> And the invoice?\nWill do tomorrow.\n\nCheers,\nAlice\n",
        );
    }

    #[test]
    fn interleaved_reply_below_attribution_is_kept() {
        assert_unchanged(
            "On Tue, Mar 5, 2024 at 10:02 AM John <j@x.com> wrote:\n> Question one?\nAnswer one.\n> Question two?\nAnswer two.\n",
        );
    }

    #[test]
    fn interleaved_then_trailing_quote_cuts_only_the_tail() {
        let input = "> Question?\nAnswer.\n\n> Trailing old text\n> more\n";
        assert_eq!(strip_reply(input), "> Question?\nAnswer.");
    }

    #[test]
    fn quote_followed_by_signature_is_cut() {
        let input = "Yes.\n\n> Coming?\n\n-- \nAnna Lee\nAcme Inc.\n";
        assert_eq!(strip_reply(input), "Yes.");
    }

    #[test]
    fn input_that_is_only_a_quote_is_empty() {
        assert_eq!(strip_reply("> hello\n> world\n"), "");
        assert_eq!(strip_reply(">"), "");
    }

    // --- signatures ---

    #[test]
    fn signature_is_cut() {
        let input = "See you tomorrow.\n\n-- \nAnna Lee\nAcme Inc. | +1 555 0100\n";
        assert_eq!(strip_reply(input), "See you tomorrow.");
    }

    #[test]
    fn crlf_signature_is_cut() {
        let input = "See you tomorrow.\r\n\r\n-- \r\nAnna Lee\r\n";
        assert_eq!(strip_reply(input), "See you tomorrow.");
    }

    #[test]
    fn no_break_space_signature_is_cut() {
        assert_eq!(strip_reply("Bye\n--\u{a0}\nAnna"), "Bye");
    }

    #[test]
    fn double_dash_inside_text_is_kept() {
        assert_unchanged("Run it with\n--\nthen --verbose -- to see more.\n-- not a delimiter\n");
        assert_unchanged("Options:\r\n--\r\nnone\r\n");
    }

    // --- general ---

    #[test]
    fn plain_message_is_returned_unchanged() {
        assert_unchanged(
            "Hi Anna,\n\nThe report is attached.\nFrom now on we meet on Tuesdays.\n\nBest,\nJohn\n\n\n",
        );
    }

    #[test]
    fn empty_and_blank_input() {
        assert_unchanged("");
        assert_unchanged("\n\n  \r\n");
    }

    #[test]
    fn crlf_gmail_reply() {
        let input = "Works for me.\r\n\r\nOn Tue, Mar 5, 2024 at 10:02 AM John Smith <\r\njohn@example.com> wrote:\r\n\r\n> Tuesday?\r\n";
        assert_eq!(strip_reply(input), "Works for me.");
    }

    #[test]
    fn earliest_marker_wins() {
        let input = "New.\n-- \nsig\n-----Original Message-----\nold\n";
        assert_eq!(strip_reply(input), "New.");
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for input in [
            "\r",
            "\n",
            ">",
            "-- ",
            "On",
            "On ",
            "On 1",
            "From:",
            "*",
            "*From:",
            "---",
            "é\n\u{a0}\n>é",
            "On 5 ü\nü wrote:",
            "From: x\nSent:",
            "Am 5 schrieb",
            "\u{a0}\u{a0}:",
        ] {
            let out = strip_reply(input);
            assert!(input.starts_with(out));
        }
    }

    #[test]
    fn five_megabytes_complete_quickly() {
        let line = "This is an ordinary line of a rather long message, nothing to see.\n";
        let mut big = line.repeat(5 * 1024 * 1024 / line.len());
        let body_len = big.len();
        big.push_str("\nOn Tue, Mar 5, 2024 at 10:02 AM John <j@x.com> wrote:\n");
        big.push_str(&"> quoted history line\n".repeat(1000));
        let started = Instant::now();
        let out = strip_reply(&big);
        assert_eq!(out.len(), body_len - 1);
        // Lines that pass the cheap filters, and one huge line without newline.
        let worst = [
            "On 1 x:\n".repeat(5 * 1024 * 1024 / 8),
            "From: x\n".repeat(5 * 1024 * 1024 / 8),
            "On 5 March a\n".repeat(5 * 1024 * 1024 / 13),
            "x".repeat(5 * 1024 * 1024),
            "> q\nanswer\n".repeat(5 * 1024 * 1024 / 11),
        ];
        for input in &worst {
            let _ = strip_reply(input);
        }
        // Generous: the test profile is unoptimised and the machine is shared.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn bottom_posted_reply_keeps_the_text_below_the_quote() {
        let text = "On Wed, Nov 19, 2014 at 8:00 AM, Levi <l@example.com> wrote:\n> Proposal.\n>\n> --\n> List footer\n>\n+1 from me.\n\n--\nFerenc\n@handle - http://example.com\n";
        assert_eq!(strip_reply(text), "+1 from me.");
    }

    // --- HTML-only messages (`Email::reply_plain` renders the HTML first) ---

    fn html_only_reply(html: &str) -> String {
        let raw = format!(
            "From: Bob <bob@example.com>\r\nTo: ana@example.com\r\nSubject: Re: Hi\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n{html}"
        );
        let email = crate::mail::parse(raw.into_bytes()).unwrap();
        assert!(email.plain.is_none());
        email.reply_plain().unwrap().into_owned()
    }

    #[test]
    fn html_only_gmail_reply() {
        let html = "<div dir=\"ltr\">Thanks!</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On Mon, 4 Nov 2024 at 10:00, Ana &lt;ana@example.com&gt; wrote:<br></div><blockquote class=\"gmail_quote\">old text</blockquote></div>";
        assert_eq!(html_only_reply(html), "Thanks!");
    }

    #[test]
    fn html_only_outlook_reply() {
        let html = "<html><body><div>Approved,<br>John</div><div><br></div>\r\n\
                    <hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\r\n\
                    <div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\">\
                    <b>From:</b> Anna Lee &lt;anna@example.com&gt;<br>\r\n<b>Sent:</b> Tuesday, March 5, 2024 10:02 AM<br>\r\n\
                    <b>To:</b> John Smith<br>\r\n<b>Subject:</b> Budget</font>\r\n<div>&nbsp;</div></div>\r\n\
                    <div>Please approve the budget.</div></body></html>";
        assert_eq!(html_only_reply(html), "Approved,\nJohn");
    }

    #[test]
    fn html_only_quoted_history_after_the_new_text() {
        let html =
            "<p>Works for me.</p><blockquote type=\"cite\"><p>Tuesday at 10?</p></blockquote>";
        assert_eq!(html_only_reply(html), "Works for me.");
    }

    #[test]
    fn html_only_message_without_quotes_keeps_its_structure() {
        let html = "<h1>W&ouml;chentliche Neuigkeiten</h1><p>Drei Dinge sind neu.</p>";
        assert_eq!(
            html_only_reply(html),
            "Wöchentliche Neuigkeiten\n\nDrei Dinge sind neu."
        );
    }

    #[test]
    fn bare_double_dash_after_a_blank_line_near_the_end_is_a_signature() {
        assert_eq!(strip_reply("Thanks!\n\n--\nAna\n"), "Thanks!");
        let long_tail = format!("Thanks!\n\n--\n{}", "line\n".repeat(20));
        assert_eq!(strip_reply(&long_tail), long_tail);
    }
}
