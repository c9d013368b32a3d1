//! The overview: messages per day by outcome for 60 days, the delivery success rate, time from receipt to
//! delivery (p50/p95), failing targets, bounce and complaint rates of forwarded copies. Charts are SVG
//! drawn here, so the page needs no script and no front-end build.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use hyper::StatusCode;
use mailroom::ports::{MailSender, Webhooks};
use mailroom::record::Status;
use serde_json::json;

use super::stats::{self, Day, Snapshot, percentile};
use super::web::{self, Reply, escape};
use super::{Console, ConsoleMail, ConsoleStore};

/// The outcomes a bar is split into: label, colour, the statuses it sums.
const OUTCOMES: [(&str, &str, &[Status]); 4] = [
    (
        "delivered",
        "#12805c",
        &[Status::Delivered, Status::Sent, Status::NoticeSent],
    ),
    (
        "in progress",
        "#e9a23b",
        &[Status::Pending, Status::Retrying],
    ),
    (
        "failed or rejected",
        "#c0262d",
        &[
            Status::Failed,
            Status::Rejected,
            Status::Unsupported,
            Status::Suppressed,
        ],
    ),
    (
        "not delivered by choice",
        "#98a2b3",
        &[Status::NoRoute, Status::Dropped, Status::Erased],
    ),
];

/// The figures of the period.
pub struct Figures {
    delivered: u64,
    failed: u64,
    p50: Option<i64>,
    p95: Option<i64>,
    forwards: u64,
    bounced: u64,
    complained: u64,
    failing: Vec<(String, u64)>,
}

impl Figures {
    fn of(snapshot: &Snapshot) -> Figures {
        let mut latencies: Vec<i64> = snapshot
            .days
            .values()
            .flat_map(|d| d.delivery_ms.iter().copied())
            .collect();
        let mut failing: HashMap<String, u64> = HashMap::new();
        for day in snapshot.days.values() {
            for (target, n) in &day.failing {
                *failing.entry(target.clone()).or_default() += n;
            }
        }
        let mut failing: Vec<(String, u64)> = failing.into_iter().collect();
        failing.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        failing.truncate(10);
        let sum = |f: &dyn Fn(&Day) -> u64| snapshot.days.values().map(f).sum::<u64>();
        Figures {
            delivered: sum(&|d| d.count(Status::Delivered)),
            failed: sum(&|d| d.count(Status::Failed) + d.count(Status::Rejected)),
            p50: percentile(&mut latencies, 50),
            p95: percentile(&mut latencies, 95),
            forwards: sum(&|d| d.forwards),
            bounced: sum(&|d| d.bounced),
            complained: sum(&|d| d.complained),
            failing,
        }
    }

    fn success_rate(&self) -> Option<f64> {
        let settled = self.delivered + self.failed;
        (settled > 0).then(|| self.delivered as f64 * 100.0 / settled as f64)
    }
}

fn rate(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        format!("{:.2} %", part as f64 * 100.0 / whole as f64)
    }
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "–".to_owned(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{:.1} min", ms as f64 / 60_000.0),
    }
}

impl<S, M, W, X> Console<S, M, W, X>
where
    S: ConsoleStore,
    M: ConsoleMail,
    W: Webhooks + 'static,
    X: MailSender + 'static,
{
    pub(super) async fn overview_page(self: &Arc<Self>) -> Reply {
        let csrf = self.guard.csrf();
        let frame = self.frame("Overview", "/overview", &csrf);
        let error = self
            .stats
            .error()
            .map(|e| {
                format!(
                    "<p class=\"error\">The last count failed: {}</p>",
                    escape(&e)
                )
            })
            .unwrap_or_default();
        let Some(snapshot) = self.statistics().await else {
            let body = format!(
                "{error}<p class=\"muted\" id=\"counting\">Counting the last {} days of records… reload in a moment.</p>",
                stats::DAYS
            );
            return web::html(StatusCode::OK, frame.page(None, &body));
        };
        let figures = Figures::of(&snapshot);
        let mut body = error;
        body.push_str(&cards(&snapshot, &figures));
        body.push_str(&format!(
            "<h2>Messages per day, by outcome</h2><div class=\"chart\" id=\"per-day\">{}{}</div>",
            per_day_chart(&snapshot),
            legend()
        ));
        body.push_str(&format!(
            "<h2>Time from receipt to delivery</h2><div class=\"chart\" id=\"latency\">{}</div>",
            latency_chart(&snapshot)
        ));
        body.push_str(&failing_targets(&figures));
        body.push_str(&format!(
            "<p class=\"muted\">Counted from {} records at {} (full pass at {}); refreshed in the background.</p>",
            snapshot.read,
            snapshot.at.format("%Y-%m-%d %H:%M:%S UTC"),
            snapshot.full_at.format("%H:%M:%S")
        ));
        web::html(StatusCode::OK, frame.page(None, &body))
    }

    /// `/api/stats`: the figures as JSON (`counting: true` until the first pass ends).
    pub(super) async fn stats_api(self: &Arc<Self>) -> Reply {
        let Some(snapshot) = self.statistics().await else {
            return web::json(StatusCode::OK, &json!({ "counting": true }));
        };
        let figures = Figures::of(&snapshot);
        let by_status: serde_json::Map<String, serde_json::Value> = snapshot
            .by_status()
            .into_iter()
            .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
            .collect();
        web::json(
            StatusCode::OK,
            &json!({
                "counting": false,
                "at": snapshot.at,
                "records": snapshot.total(),
                "by_status": by_status,
                "success_rate_percent": figures.success_rate(),
                "delivery_ms_p50": figures.p50,
                "delivery_ms_p95": figures.p95,
                "forwards": figures.forwards,
                "bounced": figures.bounced,
                "complained": figures.complained,
                "failing_targets": figures.failing,
            }),
        )
    }
}

fn cards(snapshot: &Snapshot, figures: &Figures) -> String {
    let card = |id: &str, label: &str, value: String, note: String| {
        format!(
            "<div class=\"card\" id=\"{id}\"><div class=\"muted\">{label}</div><div class=\"big\">{}</div>\
             <div class=\"muted\">{}</div></div>",
            escape(&value),
            escape(&note)
        )
    };
    format!(
        "<div class=\"cards\">{}{}{}{}{}</div>",
        card(
            "card-records",
            "Deliveries, 60 days",
            snapshot.total().to_string(),
            format!("{} delivered", figures.delivered)
        ),
        card(
            "card-success",
            "Delivery success",
            figures
                .success_rate()
                .map_or("–".to_owned(), |r| format!("{r:.1} %")),
            format!("{} failed or rejected", figures.failed)
        ),
        card(
            "card-latency",
            "Receipt to delivery",
            duration(figures.p50),
            format!("p95 {}", duration(figures.p95))
        ),
        card(
            "card-bounces",
            "Bounce rate (forwards)",
            rate(figures.bounced, figures.forwards),
            format!("{} of {} copies", figures.bounced, figures.forwards)
        ),
        card(
            "card-complaints",
            "Complaint rate",
            rate(figures.complained, figures.forwards),
            format!("{} complaints", figures.complained)
        ),
    )
}

/// The 60 days, oldest first, ending today.
fn period(snapshot: &Snapshot) -> Vec<NaiveDate> {
    let today = snapshot.at.date_naive();
    (0..stats::DAYS)
        .rev()
        .map(|back| today - Duration::days(back))
        .collect()
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;

/// The scale's top: `max` rounded up so that its quarters (the gridlines) are round numbers.
fn axis(max: f64) -> f64 {
    if max <= 0.0 {
        return 4.0;
    }
    let unit = 10f64.powf((max / 4.0).log10().floor().max(0.0));
    (max / (4.0 * unit)).ceil() * 4.0 * unit
}

fn grid(max: f64, unit: &dyn Fn(f64) -> String) -> String {
    let plot = HEIGHT - BOTTOM - TOP;
    (0..=4)
        .map(|i| {
            let value = max * f64::from(i) / 4.0;
            let y = TOP + plot - plot * f64::from(i) / 4.0;
            format!(
                "<line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e7ec\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#667085\">{}</text>",
                LEFT - 6.0,
                y + 4.0,
                escape(&unit(value))
            )
        })
        .collect()
}

fn date_labels(days: &[NaiveDate], step: f64) -> String {
    days.iter()
        .enumerate()
        .filter(|(i, _)| i % 10 == 0 || *i == days.len() - 1)
        .map(|(i, day)| {
            let anchor = if i == days.len() - 1 { "end" } else { "middle" };
            format!(
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\" fill=\"#667085\">{}</text>",
                (LEFT + step * (i as f64 + 0.5)).min(WIDTH),
                HEIGHT - 6.0,
                day.format("%b %d")
            )
        })
        .collect()
}

fn per_day_chart(snapshot: &Snapshot) -> String {
    let days = period(snapshot);
    let empty = Day::default();
    let totals: Vec<u64> = days
        .iter()
        .map(|d| snapshot.days.get(d).unwrap_or(&empty).total())
        .collect();
    let max = axis(totals.iter().copied().max().unwrap_or(0) as f64);
    let plot = HEIGHT - BOTTOM - TOP;
    let step = (WIDTH - LEFT) / days.len() as f64;
    let mut bars = String::new();
    for (i, day) in days.iter().enumerate() {
        let counts = snapshot.days.get(day).unwrap_or(&empty);
        let mut y = TOP + plot;
        for (label, colour, statuses) in OUTCOMES {
            let n: u64 = statuses.iter().map(|s| counts.count(*s)).sum();
            if n == 0 {
                continue;
            }
            let h = plot * n as f64 / max;
            y -= h;
            bars.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{day}: {n} {label}</title></rect>",
                LEFT + step * i as f64 + 1.0,
                (step - 2.0).max(1.0),
            ));
        }
    }
    format!(
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"Messages per day by outcome\">{}{bars}{}</svg>",
        grid(max, &|v| format!("{v:.0}")),
        date_labels(&days, step)
    )
}

fn legend() -> String {
    let mut html = String::from("<p class=\"legend\">");
    for (label, colour, _) in OUTCOMES {
        html.push_str(&format!(
            "<span><svg width=\"12\" height=\"12\"><rect width=\"12\" height=\"12\" fill=\"{colour}\"/></svg> {label}</span>"
        ));
    }
    html.push_str("</p>");
    html
}

/// A day's p50 and p95, when it has deliveries.
type Point = (Option<i64>, Option<i64>);

fn latency_chart(snapshot: &Snapshot) -> String {
    let days = period(snapshot);
    let points: Vec<Point> = days
        .iter()
        .map(|d| {
            let mut ms = snapshot
                .days
                .get(d)
                .map(|c| c.delivery_ms.clone())
                .unwrap_or_default();
            (percentile(&mut ms, 50), percentile(&mut ms, 95))
        })
        .collect();
    let max = axis(points.iter().filter_map(|(_, p95)| *p95).max().unwrap_or(0) as f64);
    let plot = HEIGHT - BOTTOM - TOP;
    let step = (WIDTH - LEFT) / days.len() as f64;
    let line = |pick: &dyn Fn(&Point) -> Option<i64>, colour: &str, label: &str| {
        let mut dots = String::new();
        let mut path = Vec::new();
        for (i, point) in points.iter().enumerate() {
            if let Some(ms) = pick(point) {
                let (x, y) = (
                    LEFT + step * (i as f64 + 0.5),
                    TOP + plot - plot * ms as f64 / max,
                );
                path.push(format!("{x:.1},{y:.1}"));
                dots.push_str(&format!(
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{colour}\"><title>{}: {label} {}</title></circle>",
                    days.get(i).map(ToString::to_string).unwrap_or_default(),
                    duration(Some(ms))
                ));
            }
        }
        format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>{dots}",
            path.join(" ")
        )
    };
    format!(
        "<svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"Receipt to delivery, p50 and p95 per day\">{}{}{}{}</svg>\
         <p class=\"legend\"><span><svg width=\"12\" height=\"12\"><rect width=\"12\" height=\"12\" fill=\"#2f5bea\"/></svg> p50</span>\
         <span><svg width=\"12\" height=\"12\"><rect width=\"12\" height=\"12\" fill=\"#e9a23b\"/></svg> p95</span></p>",
        grid(max, &|v| duration(Some(v as i64))),
        line(&|p| p.0, "#2f5bea", "p50"),
        line(&|p| p.1, "#e9a23b", "p95"),
        date_labels(&days, step)
    )
}

fn failing_targets(figures: &Figures) -> String {
    if figures.failing.is_empty() {
        return "<h2>Failing targets</h2><p class=\"muted\" id=\"failing\">None: every target answered.</p>".to_owned();
    }
    let mut html = String::from(
        "<h2>Failing targets</h2><table id=\"failing\"><thead><tr><th>Target</th><th>Failed, rejected or retrying</th></tr></thead><tbody>",
    );
    for (target, n) in &figures.failing {
        html.push_str(&format!(
            "<tr><td><a href=\"/messages?status=failed\">{}</a></td><td>{n}</td></tr>",
            escape(target)
        ));
    }
    html.push_str("</tbody></table>");
    html
}
