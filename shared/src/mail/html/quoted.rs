//! An HTML reply without its quoted history (Mailgun's `stripped-html`).

use std::borrow::Cow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::sync::LazyLock;

/// Markup that starts quoted history: the quote element, and the containers mail clients put the quoted
/// message in (Gmail, Outlook, Thunderbird, Yahoo, Apple Mail's reply header).
const QUOTE_MARKERS: [&str; 8] = [
    "<blockquote",
    "class=\"gmail_quote",
    "id=\"divRplyFwdMsg\"",
    "id=\"appendonsend\"",
    "class=\"moz-cite-prefix\"",
    "class=\"yahoo_quoted\"",
    "id=\"mail-editor-reference-message-container\"",
    "class=\"AppleOriginalContents\"",
];

static MARKERS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(QUOTE_MARKERS)
        .ok()
});

/// `html` cut where its quoted history starts (at the tag that opens it), with the document's closing
/// `</body>…` kept; `html` unchanged when nothing is recognised as quoted.
///
/// The cut leaves the elements around the quote unclosed, which browsers and HTML parsers close
/// themselves. Runs in time linear in the input and never panics.
#[must_use]
pub fn strip_quoted_html(html: &str) -> Cow<'_, str> {
    let Some(found) = MARKERS.as_ref().and_then(|m| m.find(html)) else {
        return Cow::Borrowed(html);
    };
    // An attribute marker cuts at the `<` of the tag that carries it.
    let cut = if found.pattern().as_usize() == 0 {
        found.start()
    } else {
        html.get(..found.start())
            .and_then(|before| before.rfind('<'))
            .unwrap_or(found.start())
    };
    let kept = html.get(..cut).unwrap_or(html).trim_end();
    let lower_tail = html.get(cut..).unwrap_or("").to_ascii_lowercase();
    match lower_tail.rfind("</body") {
        Some(at) => Cow::Owned(format!("{kept}{}", html.get(cut + at..).unwrap_or(""))),
        None => Cow::Owned(kept.to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cuts_gmail_and_blockquote_history_and_keeps_the_closing_tags() {
        let gmail = "<html><body><div dir=\"ltr\">Thanks!</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon, 1 Jan 2024 Ana wrote:<br></div><blockquote>old</blockquote></div></body></html>";
        assert_eq!(
            strip_quoted_html(gmail),
            "<html><body><div dir=\"ltr\">Thanks!</div><br></body></html>"
        );
        let apple = "<div>Sure.</div><div><br><blockquote type=\"cite\">before</blockquote></div>";
        assert_eq!(strip_quoted_html(apple), "<div>Sure.</div><div><br>");
        let plain = "<p>No history here; blockquote is only a word.</p>";
        assert!(matches!(strip_quoted_html(plain), Cow::Borrowed(_)));
        assert_eq!(strip_quoted_html(""), "");
        // Multi-byte text before and after a marker cuts on character boundaries.
        assert_eq!(strip_quoted_html("ção<BLOCKQUOTE>ção</BODY>"), "ção</BODY>");
    }
}
