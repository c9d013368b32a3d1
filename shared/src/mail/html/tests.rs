//! What [`html_to_text`] makes of real and hostile markup.

use super::output::MAX_QUOTE_DEPTH;
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
        html_to_text("<div>Hi,</div><div><br></div><div>text</div><div>&nbsp;</div><div>Ana</div>"),
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
