//! The frame every page shares (navigation, the source it shows, a notice after an action) and small pieces
//! of HTML the pages have in common. Styles and the one script are files of their own under `/static/`, so
//! the pages' Content-Security-Policy allows no inline code at all.

use mailroom::record::Status;

use super::web::escape;

/// The sections, as the navigation lists them: path and label.
const SECTIONS: [(&str, &str); 6] = [
    ("/messages", "Messages"),
    ("/sent", "Sent"),
    ("/overview", "Overview"),
    ("/routes", "Routes"),
    ("/suppressions", "Suppressions"),
    ("/data", "Data requests"),
];

/// What every page is framed with.
pub struct Frame<'a> {
    /// The page's title.
    pub title: &'a str,
    /// The section's path, to mark it in the navigation.
    pub section: &'a str,
    /// What the console shows: the dev store or a stack's table.
    pub source: &'a str,
    /// The CSRF token the page's forms carry.
    pub csrf: &'a str,
}

impl Frame<'_> {
    /// The whole page around `body`; `notice` (after an action) above it.
    pub fn page(&self, notice: Option<&str>, body: &str) -> String {
        let mut nav = String::new();
        for (path, label) in SECTIONS {
            let current = if path == self.section {
                " aria-current=\"page\""
            } else {
                ""
            };
            nav.push_str(&format!("<a href=\"{path}\"{current}>{label}</a>"));
        }
        let notice = notice
            .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n)))
            .unwrap_or_default();
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <meta name=\"csrf\" content=\"{csrf}\">\
             <title>{title} · Mailroom</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/console.css\">\
             <script src=\"/static/console.js\" defer></script></head><body>\
             <header><strong class=\"brand\">Mailroom</strong><nav>{nav}</nav>\
             <span class=\"source\">{source}</span></header><main>{notice}<h1>{title}</h1>{body}</main>\
             </body></html>",
            csrf = escape(self.csrf),
            title = escape(self.title),
            source = escape(self.source),
        )
    }

    /// A form that POSTs to `action` with the CSRF token, around `fields` and a submit button.
    pub fn form(&self, action: &str, fields: &str, button: &str, class: &str) -> String {
        format!(
            "<form method=\"post\" action=\"{}\" class=\"{class}\"><input type=\"hidden\" name=\"csrf\" \
             value=\"{}\">{fields}<button type=\"submit\">{}</button></form>",
            escape(action),
            escape(self.csrf),
            escape(button),
        )
    }
}

/// A status as a coloured word.
pub fn status_badge(status: Status) -> String {
    format!(
        "<span class=\"status s-{0}\">{0}</span>",
        escape(status.as_str())
    )
}

/// A time as the pages show it (UTC, to the second), in a `<time>` element.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        at.format("%Y-%m-%d %H:%M:%S")
    )
}

/// `text`, or a dash when there is none.
pub fn or_dash(text: Option<&str>) -> String {
    text.filter(|t| !t.is_empty())
        .map_or_else(|| "–".to_owned(), escape)
}

/// A text input of a form.
pub fn input(name: &str, label: &str, value: &str, kind: &str) -> String {
    format!(
        "<label>{label} <input type=\"{kind}\" name=\"{name}\" value=\"{}\"></label>",
        escape(value)
    )
}

/// A select of `options` (value, label) with `selected` chosen.
pub fn select(name: &str, label: &str, options: &[(String, String)], selected: &str) -> String {
    let mut html = format!("<label>{label} <select name=\"{name}\">");
    for (value, text) in options {
        let chosen = if value == selected { " selected" } else { "" };
        html.push_str(&format!(
            "<option value=\"{}\"{chosen}>{}</option>",
            escape(value),
            escape(text)
        ));
    }
    html.push_str("</select></label>");
    html
}

/// The stylesheet.
pub const CSS: &str = include_str!("static/console.css");

/// The script: polls for new rows, confirms destructive actions, toggles remote content. Reading works
/// without it.
pub const SCRIPT: &str = include_str!("static/console.js");
