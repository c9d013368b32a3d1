//! CloudWatch metrics in the embedded metric format: one JSON line on stdout per event, which CloudWatch
//! Logs turns into a metric (no API call, no extra permission). The stack alarms on them.

use std::io::Write;

use mailroom::record::Status;
use mailroom::usecases::inbound::Report;

/// The namespace of Mailroom's metrics.
pub const NAMESPACE: &str = "Mailroom";

/// The metric counting delivery records that ended `failed` (unreadable, oversized or unparseable mail,
/// and deliveries that gave up after 72 hours).
pub const FAILED_RECORDS: &str = "FailedRecords";

/// An observer for the inbound use case: counts every record that ends `failed`.
pub fn count_failed_deliveries(report: &Report<'_>) {
    if report.status == Status::Failed {
        let line = failed_record_line(
            report.at.timestamp_millis(),
            &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        );
        // stdout is the function's log; a line that cannot be written cannot be reported either.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// One EMF line adding 1 to [`FAILED_RECORDS`] for `function`. It names neither mail nor address.
pub fn failed_record_line(timestamp_ms: i64, function: &str) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{"Name": FAILED_RECORDS, "Unit": "Count"}]
            }]
        },
        "FunctionName": function,
        FAILED_RECORDS: 1
    })
    .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_line_follows_the_embedded_metric_format() {
        let line: serde_json::Value = serde_json::from_str(&failed_record_line(
            1_700_000_000_000,
            "mailroom-eu-inbound",
        ))
        .unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Mailroom");
        assert_eq!(directive["Metrics"][0]["Name"], "FailedRecords");
        assert_eq!(directive["Dimensions"][0][0], "FunctionName");
        assert_eq!(line["FunctionName"], "mailroom-eu-inbound");
        assert_eq!(line["FailedRecords"], 1);
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }
}
