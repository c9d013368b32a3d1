//! `mailroom setup` against moto's server: emulator resources, domain records, rule-set activation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use integration_tests::{REGION, on_emulator, sdk, stack_with_outputs, unique};

fn mailroom(args: &[&str]) -> Output {
    on_emulator(&mut Command::new(env!("CARGO_BIN_EXE_mailroom")))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn setup_emulator_creates_everything_and_can_run_twice() {
    let prefix = unique("setup");
    let first = mailroom(&["setup", "emulator", "--prefix", &prefix]);
    assert!(first.status.success(), "{}", stderr(&first));
    let exports = stdout(&first);
    for name in [
        "MAILROOM_BUCKET",
        "MAILROOM_TABLE",
        "MAILROOM_QUEUE_URL",
        "MAILROOM_DLQ_URL",
        "MAILROOM_TOPIC_ARN",
        "MAILROOM_FEEDBACK_QUEUE_URL",
        "MAILROOM_FEEDBACK_DLQ_URL",
        "MAILROOM_CONFIGURATION_SET",
        "MAILROOM_LINK_KEY_ARN",
    ] {
        assert!(
            exports.contains(&format!("export {name}=")),
            "{name} in {exports}"
        );
    }
    let second = mailroom(&["setup", "emulator", "--prefix", &prefix]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(stdout(&second), exports);

    let sdk = sdk().await;
    let table = aws_sdk_dynamodb::Client::new(&sdk)
        .describe_table()
        .table_name(format!("{prefix}-table"))
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = table
        .table()
        .unwrap()
        .key_schema()
        .iter()
        .map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, ["pk:HASH", "sk:RANGE"]);
    let ttl = aws_sdk_dynamodb::Client::new(&sdk)
        .describe_time_to_live()
        .table_name(format!("{prefix}-table"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ttl.time_to_live_description().unwrap().attribute_name(),
        Some("expires_at")
    );
}

#[tokio::test]
async fn setup_domain_creates_the_identity_and_prints_the_records() {
    let domain = format!("{}.example.com", unique("mail"));
    let output = mailroom(&["setup", "domain", "--domain", &domain, "--region", REGION]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let mx = text
        .lines()
        .find(|l| l.starts_with(&format!("{domain}.")) && l.contains(" MX "))
        .unwrap_or_else(|| panic!("an MX line in {text}"));
    assert!(
        mx.ends_with(&format!("10 inbound-smtp.{REGION}.amazonaws.com")),
        "{mx}"
    );
    assert!(text.contains(&format!("_dmarc.{domain}.")));
    assert!(text.contains("verified: not yet"), "{text}");
    // SPF: one record only; without the domain's current one, the record to publish when it has none.
    assert!(
        text.contains("\"v=spf1 include:amazonses.com ~all\"  (only if it has no SPF record"),
        "{text}"
    );
    let identity = aws_sdk_sesv2::Client::new(&sdk().await)
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await;
    assert!(identity.is_ok(), "the identity exists");
    let again = mailroom(&["setup", "domain", "--domain", &domain, "--region", REGION]);
    assert!(stdout(&again).contains("exists"), "a second run finds it");

    let merged = mailroom(&[
        "setup",
        "domain",
        "--domain",
        &domain,
        "--spf",
        "v=spf1 include:_spf.google.com ~all",
    ]);
    assert!(merged.status.success(), "{}", stderr(&merged));
    let text = stdout(&merged);
    assert!(
        text.contains(&format!(
            "{domain}.  TXT  \"v=spf1 include:_spf.google.com include:amazonses.com ~all\"  (replaces"
        )),
        "{text}"
    );
    assert!(
        !text.contains("\"v=spf1 include:amazonses.com ~all\""),
        "no second SPF record is proposed: {text}"
    );

    let bad = mailroom(&[
        "setup",
        "domain",
        "--domain",
        "not a domain",
        "--region",
        REGION,
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let not_spf = mailroom(&["setup", "domain", "--domain", &domain, "--spf", "v=DMARC1"]);
    assert_eq!(not_spf.status.code(), Some(2));
    let nothing = mailroom(&["setup", "domain", "--region", REGION]);
    assert_eq!(
        nothing.status.code(),
        Some(2),
        "neither --domain nor --stack"
    );
}

/// A stack in the emulator with the outputs `sam deploy` gives Mailroom's, on tables `setup emulator` made.
async fn mailroom_stack(recipients: &str, rule_set: &str) -> (String, String) {
    let prefix = unique("stk");
    let setup = mailroom(&["setup", "emulator", "--prefix", &prefix]);
    assert!(setup.status.success(), "{}", stderr(&setup));
    let stack = format!("{prefix}-stack");
    let table = format!("{prefix}-table");
    stack_with_outputs(
        &sdk().await,
        &stack,
        &[
            ("Table", &table),
            ("ReceivingDomains", recipients),
            ("ReceiptRuleSet", rule_set),
            ("ReceiptRule", &format!("{stack}-inbound")),
        ],
    )
    .await;
    (stack, table)
}

#[tokio::test]
async fn setup_domain_with_a_stack_does_its_domains_and_says_what_is_left() {
    let first = format!("{}.example.com", unique("first"));
    let second = format!("{}.example.org", unique("second"));
    let (stack, table) = mailroom_stack(
        &format!("{first},support@{second},billing@{second}"),
        &unique("rules"),
    )
    .await;

    let output = mailroom(&["setup", "domain", "--stack", &stack]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let ses = aws_sdk_sesv2::Client::new(&sdk().await);
    for domain in [&first, &second] {
        assert!(
            text.contains(&format!(
                "created the SES identity {domain} (Easy DKIM) in {REGION}"
            )),
            "{text}"
        );
        assert!(
            ses.get_email_identity()
                .email_identity(domain)
                .send()
                .await
                .is_ok()
        );
        assert!(
            text.contains(&format!(
                "[?] {domain}. MX 10 inbound-smtp.{REGION}.amazonaws.com"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("[ ] SES has not verified {domain} yet")),
            "{text}"
        );
    }
    assert!(
        text.contains(&format!("What is left for stack {stack} in {REGION}:")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "[ ] no route takes test@{first}: `mailroom routes add '*@{first}' --webhook https://… --generate-secret --stack {stack}`"
        )),
        "{text}"
    );
    assert!(text.contains("[?] SES production access"), "{text}");
    assert!(
        text.contains(&format!(
            "Then write to test@{first} and watch it arrive: `mailroom messages list --stack {stack}`"
        )),
        "{text}"
    );

    let route = mailroom(&[
        "routes",
        "add",
        &format!("*@{first}"),
        "--webhook",
        "https://app.example.com/mail",
        "--table",
        &table,
    ]);
    assert!(route.status.success(), "{}", stderr(&route));
    let again = stdout(&mailroom(&["setup", "domain", "--stack", &stack]));
    assert!(
        again.contains(&format!("the SES identity {first} exists")),
        "{again}"
    );
    assert!(
        again.contains(&format!("[x] a route takes test@{first}: *@{first}")),
        "{again}"
    );

    let missing = mailroom(&["setup", "domain", "--stack", "no-such-stack"]);
    assert_eq!(missing.status.code(), Some(4));
}

#[tokio::test]
async fn setup_activate_keeps_another_active_set_unless_told_to_replace() {
    let sdk = sdk().await;
    let ours = unique("ours-rules");
    let domain = format!("{}.example.com", unique("act"));
    let (stack, _) = mailroom_stack(&domain, &ours).await;
    let ses = aws_sdk_ses::Client::new(&sdk);
    ses.create_receipt_rule_set()
        .rule_set_name(&ours)
        .send()
        .await
        .unwrap();
    let other = unique("other-rules");
    ses.create_receipt_rule_set()
        .rule_set_name(&other)
        .send()
        .await
        .unwrap();
    ses.set_active_receipt_rule_set()
        .rule_set_name(&other)
        .send()
        .await
        .unwrap();

    let refused = mailroom(&["setup", "activate", "--region", REGION, "--stack", &stack]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains(&other), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains(&format!("ExistingRuleSet={other}")),
        "{}",
        stderr(&refused)
    );
    let active = ses.describe_active_receipt_rule_set().send().await.unwrap();
    assert_eq!(
        active.metadata().and_then(|m| m.name()),
        Some(other.as_str()),
        "nothing changed"
    );

    let replaced = mailroom(&["setup", "activate", "--stack", &stack, "--replace"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    let text = stdout(&replaced);
    assert!(
        text.contains(&format!(
            "{ours} is now the active receipt rule set in {REGION} (was {other})"
        )),
        "{text}"
    );
    // What is left: the domain (no identity yet), its MX, and a route; the rule set line depends on what
    // other tests activate meanwhile, SES holding one active set per region.
    assert!(
        text.contains(&format!(
            "[ ] no SES identity for {domain}: `mailroom setup domain --stack {stack}`"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("[?] {domain}. MX 10 inbound-smtp.{REGION}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("no route takes test@{domain}")),
        "{text}"
    );
    let active = ses.describe_active_receipt_rule_set().send().await.unwrap();
    assert_eq!(
        active.metadata().and_then(|m| m.name()),
        Some(ours.as_str())
    );
    let again = mailroom(&["setup", "activate", "--region", REGION, "--stack", &stack]);
    assert!(
        stdout(&again).contains("already the active"),
        "{}",
        stdout(&again)
    );

    let missing = mailroom(&[
        "setup",
        "activate",
        "--region",
        REGION,
        "--stack",
        "no-such-stack",
    ]);
    assert_eq!(missing.status.code(), Some(4));
}

/// `mailroom suppressions` on the stack's table, and on the dev store when no table is given.
#[tokio::test]
async fn suppressions_add_list_remove_on_both_backends() {
    let prefix = unique("supp");
    let setup = mailroom(&["setup", "emulator", "--prefix", &prefix]);
    assert!(setup.status.success(), "{}", stderr(&setup));
    let table = format!("{prefix}-table");
    let data = std::env::temp_dir().join(unique("supp-data"));
    let data = data.to_str().unwrap();
    for backend in [vec!["--table", table.as_str()], vec!["--data", data]] {
        let run = |args: &[&str]| {
            let mut all = vec!["suppressions"];
            all.extend_from_slice(args);
            all.extend_from_slice(&backend);
            mailroom(&all)
        };
        let added = run(&["add", "Someone@Example.NET", "--note", "asked us"]);
        assert!(added.status.success(), "{}", stderr(&added));
        assert!(stdout(&added).contains("suppressed someone@example.net"));
        let again = run(&["add", "someone@example.net"]);
        assert!(stdout(&again).contains("was suppressed already"));
        let listed = run(&["list", "--json"]);
        assert!(listed.status.success(), "{}", stderr(&listed));
        let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["address"], "someone@example.net");
        assert_eq!(list[0]["reason"], "manual");
        assert_eq!(list[0]["detail"], "asked us");
        assert!(
            chrono::DateTime::parse_from_rfc3339(list[0]["created_at"].as_str().unwrap()).is_ok()
        );
        let removed = run(&["remove", "someone@example.net"]);
        assert!(removed.status.success(), "{}", stderr(&removed));
        let missing = run(&["remove", "someone@example.net"]);
        assert_eq!(missing.status.code(), Some(5), "nothing matched");
        let bad = run(&["add", "not-an-address"]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(stdout(&run(&["list"])).contains("no suppressed addresses"));
    }
}
