//! `mailroom.toml`: the routes `mailroom dev` seeds its store with at each start.

use std::path::Path;

use anyhow::Context;
use mailroom::format::Format;
use mailroom::route::{
    AttachmentMode, DropOn, Pattern, Redact, Route, WebhookSecret, WebhookTarget,
};
use serde::Deserialize;

/// The file's shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevConfig {
    /// Days records are kept (the Lambda's `MAILROOM_RETENTION_DAYS`).
    pub retention_days: Option<u32>,
    /// The address forwards are sent from when a route names none (`MAILROOM_FORWARD_FROM`).
    pub forward_from: Option<String>,
    /// The largest forward; a larger message is announced by a notice (`MAILROOM_FORWARD_MAX_BYTES`).
    pub forward_max_bytes: Option<usize>,
    /// The routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// One `[[routes]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Which recipients, as `mailroom routes add` takes them.
    pub pattern: String,
    /// `[routes.webhook]`.
    pub webhook: Option<WebhookConfig>,
    /// `[routes.forward]`.
    pub forward: Option<ForwardConfig>,
    /// SES verdicts that drop a message (default: virus).
    pub drop_on: Option<Vec<String>>,
    /// Fields kept out of records.
    #[serde(default)]
    pub redact: Vec<String>,
    /// Where delivery events of forwarded mail are posted.
    pub events: Option<String>,
    /// Turn the route off without removing it.
    pub enabled: Option<bool>,
}

/// `[routes.webhook]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// json | multipart | raw.
    pub format: Option<String>,
    /// One signing secret…
    pub secret: Option<String>,
    /// …or two while rotating.
    pub secrets: Option<Vec<String>>,
    /// inline | s3.
    pub attachments: Option<String>,
}

/// `[routes.forward]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// Addresses to forward to.
    pub to: Vec<String>,
    /// The address forwards are sent from.
    pub from: Option<String>,
}

impl DevConfig {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> anyhow::Result<DevConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let config: DevConfig = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid mailroom.toml", path.display()))?;
        // Convert once here so a mistake is reported at start, with the file's name.
        config
            .routes()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(config)
    }

    /// The routes, as the store keeps them.
    pub fn routes(&self) -> anyhow::Result<Vec<Route>> {
        self.routes.iter().map(RouteConfig::to_route).collect()
    }
}

impl RouteConfig {
    fn to_route(&self) -> anyhow::Result<Route> {
        let pattern: Pattern = self.pattern.parse()?;
        let mut route = Route::new(pattern.clone());
        if let Some(webhook) = &self.webhook {
            url::Url::parse(&webhook.url)
                .with_context(|| format!("route {pattern}: webhook url"))?;
            let format: Format = match &webhook.format {
                Some(text) => text.parse()?,
                None => Format::Json,
            };
            let texts: Vec<&String> = webhook
                .secret
                .iter()
                .chain(webhook.secrets.iter().flatten())
                .collect();
            let secrets = texts
                .iter()
                .map(|t| WebhookSecret::parse(t))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("route {pattern}: webhook secret"))?;
            let attachments: AttachmentMode = match &webhook.attachments {
                Some(text) => text.parse().map_err(anyhow::Error::msg)?,
                None => AttachmentMode::Inline,
            };
            route.webhook = Some(WebhookTarget {
                url: webhook.url.clone(),
                format,
                secrets,
                attachments,
                disabled: None,
            });
        }
        if let Some(forward) = &self.forward {
            route.forward = forward.to.clone();
            route.forward_from = forward.from.clone();
        }
        if route.webhook.is_none() && route.forward.is_empty() {
            anyhow::bail!("route {pattern} needs [routes.webhook] or [routes.forward]");
        }
        if let Some(drop_on) = &self.drop_on {
            route.drop_on = drop_on
                .iter()
                .map(|d| d.parse::<DropOn>())
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?;
        }
        route.redact = self
            .redact
            .iter()
            .map(|r| r.parse::<Redact>())
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        route.events = self.events.clone();
        route.enabled = self.enabled.unwrap_or(true);
        Ok(route)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_reads() {
        let text = r#"
[[routes]]
pattern = "support@example.test"
redact = ["subject"]
events = "http://127.0.0.1:3000/mail-events"
[routes.webhook]
url = "http://127.0.0.1:3000/mail"
format = "json"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
attachments = "inline"

[[routes]]
pattern = "*@example.test"
[routes.forward]
to = ["someone@example.net"]
"#;
        let config: DevConfig = toml::from_str(text).unwrap();
        let routes = config.routes().unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].redact, vec![Redact::Subject]);
        assert_eq!(routes[0].webhook.as_ref().unwrap().secrets.len(), 1);
        assert_eq!(routes[1].forward, vec!["someone@example.net"]);
        assert!(toml::from_str::<DevConfig>("[[routes]]\npattern = \"x\"\nwebhok = 1").is_err());
    }

    #[test]
    fn the_readme_example_reads() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
        let block = &readme[start..];
        let block = &block[..block.find("```").unwrap()];
        // The README shows an elided secret; any valid one stands in for it.
        let text: String = block
            .lines()
            .map(|l| {
                l.trim_start()
                    .replace("whsec_…", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config: DevConfig = toml::from_str(&text).unwrap();
        assert_eq!(config.retention_days, Some(60));
        let routes = config.routes().unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].drop_on, vec![DropOn::Virus]);
    }
}
