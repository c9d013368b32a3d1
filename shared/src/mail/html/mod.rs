//! A plain-text rendering of an HTML body, for `reply_plain` when a message has no text/plain part.
//!
//! [`html_to_text`] keeps the line structure a reader sees: block elements start and end lines, `<br>` breaks
//! them, paragraphs are separated by a blank line, and `<blockquote>` lines are prefixed with `> ` the way
//! a plain-text reply quotes, so [`super::reply::strip_reply`] can find attribution lines and quoted history.

mod converter;
mod entities;
mod output;
mod quoted;
mod tags;

use converter::Converter;
pub use quoted::strip_quoted_html;

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
    let mut converter = Converter::new(html);
    converter.run();
    converter.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
