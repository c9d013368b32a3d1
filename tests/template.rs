//! template.yaml keeps the promises of the security posture, and its table matches what
//! `mailroom setup emulator` creates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use integration_tests::repo;
use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(repo("template.yaml")).unwrap();
    serde_yaml::from_str(&text).expect("template.yaml is YAML")
}

fn resource<'a>(template: &'a Value, name: &str) -> &'a Value {
    &template["Resources"][name]
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(name, r)| (name.as_str().unwrap(), &r["Properties"]))
        .collect()
}

/// A CloudFormation short-form tag (`!Ref X`, `!GetAtt X.Y`) as (tag, value).
fn tagged(value: &Value) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => Some((tagged.tag.to_string(), &tagged.value)),
        _ => None,
    }
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

#[test]
fn the_bucket_is_encrypted_private_and_tls_only() {
    let t = template();
    let bucket = &resource(&t, "MailBucket")["Properties"];
    let rule = &bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
    assert_eq!(
        rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "aws:kms"
    );
    assert!(tagged(&rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]).is_some());
    assert_eq!(rule["BucketKeyEnabled"], true);
    let block = &bucket["PublicAccessBlockConfiguration"];
    for key in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[key], true, "{key}");
    }
    let lifecycle: Vec<(&str, &Value)> = bucket["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|r| Some((r["Prefix"].as_str()?, &r["ExpirationInDays"])))
        .collect();
    let expiry = |prefix: &str| {
        lifecycle
            .iter()
            .find(|(p, _)| *p == prefix)
            .map(|(_, days)| tagged(days).unwrap().1.as_str().unwrap().to_owned())
    };
    assert_eq!(expiry("inbound/").as_deref(), Some("RawRetentionDays"));
    assert_eq!(expiry("outbound/").as_deref(), Some("RawRetentionDays"));
    assert_eq!(expiry("attachments/").as_deref(), Some("AttachmentUrlDays"));

    let statements = resource(&t, "MailBucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
        .as_sequence()
        .unwrap();
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("a deny statement");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");

    let ses = statements
        .iter()
        .find(|s| s["Principal"]["Service"] == "ses.amazonaws.com")
        .expect("SES may write");
    assert_eq!(ses["Effect"], "Allow");
    assert_eq!(ses["Action"], "s3:PutObject");
    let (_, resource) = tagged(&ses["Resource"]).unwrap();
    assert!(
        resource.as_str().unwrap().ends_with("/inbound/*"),
        "only under inbound/"
    );
    assert!(
        tagged(&ses["Condition"]["StringEquals"]["aws:SourceAccount"]).is_some(),
        "scoped to this account"
    );
    // Only the stack's own rule, in its own rule set or in the one ExistingRuleSet names.
    let (_, rule_arn) = tagged(&ses["Condition"]["ArnEquals"]["aws:SourceArn"]).unwrap();
    assert!(
        rule_arn[0]
            .as_str()
            .unwrap()
            .ends_with(":receipt-rule-set/${RuleSet}:receipt-rule/${AWS::StackName}-inbound")
    );
    let (tag, choice) = tagged(&rule_arn[1]["RuleSet"]).unwrap();
    assert_eq!(tag, "!If");
    assert_eq!(choice[0], "UseExistingRuleSet");
    assert_eq!(tagged(&choice[1]).unwrap().1, "ExistingRuleSet");
    assert_eq!(tagged(&choice[2]).unwrap().1, "${AWS::StackName}-rules");
}

#[test]
fn the_kms_key_lets_ses_generate_data_keys_for_this_account_only() {
    let t = template();
    let statements = resource(&t, "Key")["Properties"]["KeyPolicy"]["Statement"]
        .as_sequence()
        .unwrap();
    let ses = statements
        .iter()
        .find(|s| {
            as_list(&s["Principal"]["Service"])
                .iter()
                .any(|p| *p == "ses.amazonaws.com")
        })
        .unwrap();
    assert!(
        as_list(&ses["Action"])
            .iter()
            .any(|a| *a == "kms:GenerateDataKey*")
    );
    assert!(tagged(&ses["Condition"]["StringEquals"]["aws:SourceAccount"]).is_some());
}

#[test]
fn the_table_keeps_records_by_ttl_with_recovery_and_encryption() {
    let t = template();
    let table = &resource(&t, "Table")["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["TimeToLiveSpecification"]["AttributeName"],
        mailroom_aws::dynamo::TTL_ATTRIBUTE
    );
    assert_eq!(table["TimeToLiveSpecification"]["Enabled"], true);
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
    assert_eq!(table["SSESpecification"]["SSEType"], "KMS");
}

/// An index as (name, key schema, projection type, projected attributes).
type IndexShape = (String, Vec<(String, String)>, String, Vec<String>);

/// A `KeySchema` of the template as (attribute, key type) pairs.
fn yaml_key_schema(schema: &Value) -> Vec<(String, String)> {
    schema
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().unwrap().to_owned(),
                k["KeyType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Whether the template's condition `expression` holds when `parameter` is `value` (the short forms the
/// template uses: `!Equals` on a `!Ref`, `!Not`, `!Or`, `!And`, `!Condition`).
fn holds(t: &Value, expression: &Value, parameter: &str, value: &str) -> bool {
    let (tag, args) = tagged(expression).unwrap_or_else(|| panic!("{expression:?}"));
    let operand = |v: &Value| match tagged(v) {
        Some((tag, name)) if tag == "!Ref" && name.as_str() == Some(parameter) => value.to_owned(),
        _ => v.as_str().unwrap().to_owned(),
    };
    let list = || as_list(args);
    match tag.as_str() {
        "!Equals" => operand(list()[0]) == operand(list()[1]),
        "!Not" => !holds(t, list()[0], parameter, value),
        "!Or" => list().iter().any(|c| holds(t, c, parameter, value)),
        "!And" => list().iter().all(|c| holds(t, c, parameter, value)),
        "!Condition" => holds(
            t,
            &t["Conditions"][args.as_str().unwrap()],
            parameter,
            value,
        ),
        other => panic!("condition {other} is not understood here"),
    }
}

/// The table's indexes when `IndexUpgradeStep` is `step`, sorted by name.
fn indexes_at(t: &Value, step: &str) -> Vec<IndexShape> {
    let table = &resource(t, "Table")["Properties"];
    let mut indexes: Vec<IndexShape> = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|entry| match tagged(entry) {
            Some((tag, args)) if tag == "!If" => {
                let args = as_list(args);
                let condition = &t["Conditions"][args[0].as_str().unwrap()];
                holds(t, condition, "IndexUpgradeStep", step).then_some(args[1])
            }
            _ => Some(entry),
        })
        .map(|index| {
            (
                index["IndexName"].as_str().unwrap().to_owned(),
                yaml_key_schema(&index["KeySchema"]),
                index["Projection"]["ProjectionType"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                as_list(&index["Projection"]["NonKeyAttributes"])
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    indexes.sort();
    indexes
}

/// Indexes as `mailroom setup emulator` makes them, sorted by name.
fn shapes_of(indexes: &[mailroom_aws::dynamo::Index]) -> Vec<IndexShape> {
    let mut shapes: Vec<IndexShape> = mailroom_aws::setup::indexes_of(indexes)
        .iter()
        .map(|index| {
            (
                index.index_name().to_owned(),
                index
                    .key_schema()
                    .iter()
                    .map(|k| {
                        (
                            k.attribute_name().to_owned(),
                            k.key_type().as_str().to_owned(),
                        )
                    })
                    .collect(),
                index
                    .projection()
                    .and_then(|p| p.projection_type())
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                index
                    .projection()
                    .map(|p| p.non_key_attributes().to_vec())
                    .unwrap_or_default(),
            )
        })
        .collect();
    shapes.sort();
    shapes
}

#[test]
fn the_table_schema_matches_setup_emulator() {
    let t = template();
    let table = &resource(&t, "Table")["Properties"];
    let key_schema = yaml_key_schema(&table["KeySchema"]);
    let emulator: Vec<(String, String)> = mailroom_aws::setup::table_key_schema()
        .into_iter()
        .map(|(name, kind)| (name, kind.as_str().to_owned()))
        .collect();
    assert_eq!(key_schema, emulator);
    // The same indexes: names, keys and projection, in the finished layout (the default step).
    let default_step = t["Parameters"]["IndexUpgradeStep"]["Default"]
        .as_str()
        .unwrap();
    let indexes = indexes_at(&t, default_step);
    assert_eq!(indexes.len(), 6);
    assert_eq!(indexes, shapes_of(&mailroom_aws::dynamo::INDEXES));
    let defined: Vec<&str> = table["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|d| d["AttributeName"].as_str().unwrap())
        .collect();
    assert_eq!(defined, mailroom_aws::setup::key_attributes());
}

#[test]
fn a_stack_with_the_unsharded_indexes_upgrades_one_index_per_deploy() {
    let t = template();
    // What stacks deployed before the sharded indexes have: the four unsharded ones copying every
    // attribute, and the two keys-only ones, which keep their names.
    let mut before = mailroom_aws::dynamo::LEGACY_INDEXES.to_vec();
    before.extend(
        mailroom_aws::dynamo::INDEXES
            .iter()
            .filter(|i| i.projection == mailroom_aws::dynamo::Projection::KeysOnly)
            .filter(|i| i.name == "by_from" || i.name == "by_reply_to"),
    );
    let mut layout = shapes_of(&before);
    let steps = as_list(&t["Parameters"]["IndexUpgradeStep"]["AllowedValues"]);
    assert_eq!(steps.len(), 8);
    for step in steps {
        let step = step.as_str().unwrap();
        let next = indexes_at(&t, step);
        let added = next.iter().filter(|i| !layout.contains(i)).count();
        let removed = layout.iter().filter(|i| !next.contains(i)).count();
        assert_eq!(
            added + removed,
            1,
            "step {step}: DynamoDB takes one index creation or deletion per update"
        );
        layout = next;
    }
    assert_eq!(layout, shapes_of(&mailroom_aws::dynamo::INDEXES));
    // Every function that writes records spreads them as the parameter says, and the CLI can read it.
    for function in ["Inbound", "Feedback"] {
        let variables = &resource(&t, function)["Properties"]["Environment"]["Variables"];
        let (tag, value) = tagged(&variables["MAILROOM_INDEX_SHARDS"]).unwrap();
        assert_eq!(
            (tag.as_str(), value.as_str()),
            ("!Ref", Some("IndexShards"))
        );
    }
    assert!(t["Outputs"]["IndexShards"].get("Value").is_some());
    assert_eq!(
        t["Parameters"]["IndexShards"]["Default"].as_u64(),
        Some(u64::from(mailroom::record::DEFAULT_INDEX_SHARDS))
    );
    assert_eq!(
        t["Parameters"]["IndexShards"]["MaxValue"].as_u64(),
        Some(u64::from(mailroom::record::MAX_INDEX_SHARDS))
    );
}

#[test]
fn queues_and_topics_are_encrypted_and_the_queue_dead_letters() {
    let t = template();
    for (name, queue) in resources_of_type(&t, "AWS::SQS::Queue") {
        assert!(
            tagged(&queue["KmsMasterKeyId"]).is_some(),
            "{name} is encrypted"
        );
        assert_eq!(
            queue["MessageRetentionPeriod"], 1_209_600,
            "{name} keeps messages 14 days"
        );
    }
    for (name, topic) in resources_of_type(&t, "AWS::SNS::Topic") {
        assert!(
            tagged(&topic["KmsMasterKeyId"]).is_some(),
            "{name} is encrypted"
        );
    }
    let inbound = &resource(&t, "InboundQueue")["Properties"];
    let timeout = resource(&t, "Inbound")["Properties"]["Timeout"]
        .as_u64()
        .unwrap();
    assert!(inbound["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout);
    assert!(
        inbound["RedrivePolicy"]["maxReceiveCount"]
            .as_u64()
            .unwrap()
            >= 20
    );
}

#[test]
fn sending_requires_tls_and_receiving_scans_and_follows_the_tls_parameter() {
    let t = template();
    let set = &resource(&t, "SendingConfigurationSet")["Properties"];
    assert_eq!(set["DeliveryOptions"]["TlsPolicy"], "REQUIRE");
    let rule = &resource(&t, "ReceiptRule")["Properties"]["Rule"];
    assert_eq!(rule["ScanEnabled"], true);
    let (tag, _) = tagged(&rule["TlsPolicy"]).expect("TlsPolicy follows the parameter");
    assert_eq!(tag, "!If");
    assert_eq!(t["Parameters"]["TlsPolicy"]["Default"], "Require");
    let action = &rule["Actions"][0]["S3Action"];
    assert_eq!(action["ObjectKeyPrefix"], "inbound/");
    assert!(
        action.get("KmsKeyArn").is_none(),
        "no client-side encryption"
    );
}

#[test]
fn no_iam_statement_grants_every_action() {
    let t = template();
    let mut statements = Vec::new();
    collect_statements(&t["Resources"], &mut statements);
    assert!(statements.len() > 10);
    for statement in statements {
        if statement["Effect"] != "Allow" {
            continue;
        }
        let root_admin = statement["Sid"] == "AccountAdministration";
        for action in as_list(&statement["Action"]) {
            let action = action.as_str().unwrap_or("");
            assert!(action != "*", "an Allow of every action: {statement:?}");
            assert!(
                root_admin || !action.ends_with(":*"),
                "an Allow of a whole service: {statement:?}"
            );
        }
    }
}

fn collect_statements<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Mapping(map) => {
            if let Some(Value::Sequence(statements)) = map.get("Statement") {
                out.extend(statements.iter().filter(|s| s.is_mapping()));
            }
            for (_, v) in map {
                collect_statements(v, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| collect_statements(v, out)),
        Value::Tagged(tagged) => collect_statements(&tagged.value, out),
        _ => {}
    }
}

#[test]
fn feedback_flows_from_the_topic_through_a_dead_lettering_queue_to_the_function() {
    let t = template();
    let subscription = &resource(&t, "FeedbackSubscription")["Properties"];
    assert_eq!(subscription["Protocol"], "sqs");
    assert!(
        subscription.get("RawMessageDelivery").is_none(),
        "SNS's envelope (and its message id) reaches the function"
    );
    let queue = &resource(&t, "FeedbackQueue")["Properties"];
    let function = &resource(&t, "Feedback")["Properties"];
    let timeout = function["Timeout"].as_u64().unwrap();
    assert!(queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout);
    assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().unwrap() >= 20);
    let event = &function["Events"]["Notifications"];
    assert_eq!(event["Type"], "SQS");
    assert_eq!(
        as_list(&event["Properties"]["FunctionResponseTypes"])[0],
        "ReportBatchItemFailures"
    );
    let variables = &function["Environment"]["Variables"];
    for name in [
        "MAILROOM_TABLE",
        "MAILROOM_FEEDBACK_QUEUE_URL",
        "MAILROOM_SOFT_BOUNCE_LIMIT",
        "MAILROOM_MIRROR_SES_SUPPRESSION",
    ] {
        assert!(variables.get(name).is_some(), "{name}");
    }
    // Least privilege: the table, its own queue, the key; nothing of S3 or of the inbound queue.
    let mut statements = Vec::new();
    collect_statements(&function["Policies"], &mut statements);
    let actions: Vec<&str> = statements
        .iter()
        .flat_map(|s| as_list(&s["Action"]))
        .filter_map(|a| a.as_str())
        .collect();
    assert!(actions.contains(&"dynamodb:PutItem"));
    assert!(actions.contains(&"sqs:ChangeMessageVisibility"));
    assert!(actions.iter().all(|a| !a.starts_with("s3:")), "{actions:?}");
    assert!(!actions.contains(&"dynamodb:Scan"), "{actions:?}");
}

#[test]
fn the_link_endpoint_reads_only_linkable_objects_and_its_key() {
    let t = template();
    let function = &resource(&t, "Links")["Properties"];
    assert_eq!(function["FunctionUrlConfig"]["AuthType"], "NONE");
    let mut statements = Vec::new();
    collect_statements(&function["Policies"], &mut statements);
    let mut s3_resources = Vec::new();
    for statement in &statements {
        for action in as_list(&statement["Action"]) {
            let action = action.as_str().unwrap();
            assert!(
                [
                    "s3:GetObject",
                    "s3:ListBucket",
                    "secretsmanager:GetSecretValue",
                    "kms:Decrypt"
                ]
                .contains(&action),
                "{action}"
            );
            if action == "s3:GetObject" {
                s3_resources.extend(as_list(&statement["Resource"]));
            }
            if action == "s3:ListBucket" {
                // Only so a gone object is a 404: limited to the linkable prefixes.
                let prefixes: Vec<&str> =
                    as_list(&statement["Condition"]["StringLike"]["s3:prefix"])
                        .iter()
                        .filter_map(|p| p.as_str())
                        .collect();
                assert_eq!(prefixes, ["attachments/*", "inbound/*"]);
            }
        }
    }
    let prefixes: Vec<String> = s3_resources
        .iter()
        .map(|r| tagged(r).unwrap().1.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        prefixes,
        [
            "${MailBucket.Arn}/attachments/*",
            "${MailBucket.Arn}/inbound/*"
        ]
    );
    let inbound = &resource(&t, "Inbound")["Properties"]["Environment"]["Variables"];
    assert!(inbound.get("MAILROOM_LINK_BASE_URL").is_some());
    assert!(t["Outputs"].get("LinksUrl").is_some());
}

#[test]
fn forwards_are_sent_only_from_the_stacks_domains_with_its_configuration_set() {
    let t = template();
    let function = &resource(&t, "Inbound")["Properties"];
    let variables = &function["Environment"]["Variables"];
    for name in [
        "MAILROOM_CONFIGURATION_SET",
        "MAILROOM_FORWARD_FROM",
        "MAILROOM_FORWARD_MAX_BYTES",
    ] {
        assert!(variables.get(name).is_some(), "{name}");
    }
    let max = &t["Parameters"]["ForwardMaxBytes"];
    assert_eq!(max["Default"].as_u64(), Some(40_000_000));
    assert_eq!(max["MaxValue"].as_u64(), Some(40_000_000));

    let mut statements = Vec::new();
    collect_statements(&function["Policies"], &mut statements);
    let sending: Vec<&&Value> = statements
        .iter()
        .filter(|s| {
            as_list(&s["Action"])
                .iter()
                .any(|a| a.as_str().unwrap_or("").starts_with("ses:"))
        })
        .collect();
    assert_eq!(sending.len(), 2, "{sending:?}");
    let mut scoped = (false, false);
    for statement in sending {
        assert_eq!(
            as_list(&statement["Action"]),
            [&Value::from("ses:SendRawEmail")]
        );
        let resource = tagged(&statement["Resource"]).unwrap().1.as_str().unwrap();
        if resource.ends_with(":identity/*") {
            // Any identity of the account, but only for From addresses in the stack's domains.
            let condition = &statement["Condition"]["StringLike"]["ses:FromAddress"];
            assert_eq!(tagged(condition).unwrap().0, "!Split");
            scoped.0 = true;
        } else {
            assert!(
                resource.ends_with(":configuration-set/${SendingConfigurationSet}"),
                "{resource}"
            );
            scoped.1 = true;
        }
    }
    assert_eq!(scoped, (true, true));

    // The sent copies go to outbound/, nothing else is written outside attachments/.
    let written: Vec<String> = statements
        .iter()
        .filter(|s| {
            as_list(&s["Action"])
                .iter()
                .any(|a| a.as_str() == Some("s3:PutObject"))
        })
        .flat_map(|s| as_list(&s["Resource"]))
        .map(|r| tagged(r).unwrap().1.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        written,
        [
            "${MailBucket.Arn}/attachments/*",
            "${MailBucket.Arn}/outbound/*"
        ]
    );
}

#[test]
fn the_key_the_bucket_and_the_table_outlive_the_stack() {
    let t = template();
    for name in ["Key", "MailBucket", "Table"] {
        let r = resource(&t, name);
        assert_eq!(r["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(r["UpdateReplacePolicy"], "Retain", "{name}");
    }
}

#[test]
fn every_arn_names_the_partition() {
    let text = std::fs::read_to_string(repo("template.yaml")).unwrap();
    assert!(!text.contains("arn:aws:"), "a literal arn:aws: ARN");
    let arns = text.matches("arn:").count();
    assert!(arns >= 5);
    assert_eq!(
        text.matches("arn:${AWS::Partition}:").count(),
        arns,
        "every ARN the template writes is in the stack's partition"
    );
}

#[test]
fn the_webhook_secret_is_hidden_and_must_be_a_secret_or_nothing() {
    use mailroom::route::WebhookSecret;
    use std::fmt::Write as _;

    let t = template();
    let parameter = &t["Parameters"]["WebhookSecret"];
    assert_eq!(parameter["NoEcho"], true);
    assert_eq!(parameter["Default"], "");
    let pattern = regex::Regex::new(parameter["AllowedPattern"].as_str().unwrap()).unwrap();
    let whsec = |bytes: usize| {
        let mut text = "whsec_".to_owned();
        let encoded =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![7u8; bytes]);
        let _ = write!(text, "{encoded}");
        text
    };
    // Empty, `none` (what --guided's hidden prompt takes for "no secret"), and every secret the function
    // can use, from 24 to 64 bytes, padded or not.
    let generated = WebhookSecret::generate().unwrap().to_string();
    for good in [
        String::new(),
        "none".to_owned(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        generated,
        whsec(24),
        whsec(25),
        whsec(64),
        whsec(64).trim_end_matches('=').to_owned(),
    ] {
        assert!(pattern.is_match(&good), "refused {good:?}");
        if good.starts_with("whsec_") {
            assert!(WebhookSecret::parse(&good).is_ok(), "{good}");
        }
    }
    for bad in [
        "changeme".to_owned(),
        "whsec_".to_owned(),
        "whsec_short".to_owned(),
        " ".to_owned(),
        "None".to_owned(),
        whsec(23),
        whsec(65),
        format!("{} ", whsec(32)),
    ] {
        assert!(!pattern.is_match(&bad), "took {bad:?}");
    }
    // `none` and empty both mean no secret resource and no ARN for the function.
    let condition = &t["Conditions"]["HasWebhookSecret"];
    let rendered = format!("{condition:?}");
    assert!(
        rendered.contains("none") && rendered.contains("WebhookSecret"),
        "{rendered}"
    );
    assert_eq!(
        resource(&t, "DefaultWebhookSecret")["Condition"],
        "HasWebhookSecret"
    );
}

#[test]
fn the_rule_goes_into_an_existing_rule_set_when_one_is_named() {
    let t = template();
    assert_eq!(t["Parameters"]["ExistingRuleSet"]["Default"], "");
    assert_eq!(resource(&t, "ReceiptRuleSet")["Condition"], "CreateRuleSet");
    let (tag, choice) = tagged(&resource(&t, "ReceiptRule")["Properties"]["RuleSetName"]).unwrap();
    assert_eq!(tag, "!If");
    assert_eq!(choice[0], "UseExistingRuleSet");
    assert_eq!(tagged(&choice[1]).unwrap().1, "ExistingRuleSet");
    assert_eq!(tagged(&choice[2]).unwrap().1, "ReceiptRuleSet");
    let (tag, _) = tagged(&t["Outputs"]["ReceiptRuleSet"]["Value"]).unwrap();
    assert_eq!(tag, "!If", "the output names whichever set holds the rule");
    assert!(
        t["Outputs"]["ReceivingDomains"].is_mapping(),
        "setup domain --stack reads it"
    );
}

/// The functions: their logical ids with their environment variables.
fn functions(t: &Value) -> Vec<(&str, &serde_yaml::Mapping)> {
    resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, properties)| {
            (
                name,
                properties["Environment"]["Variables"].as_mapping().unwrap(),
            )
        })
        .collect()
}

#[test]
fn env_json_sets_only_declared_variables_and_every_one_sam_cannot_resolve() {
    let t = template();
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("events/env.json")).unwrap()).unwrap();
    let parameters = t["Parameters"].as_mapping().unwrap();
    let fns = functions(&t);
    assert_eq!(fns.len(), 4);
    assert_eq!(
        env.as_object().unwrap().len(),
        fns.len(),
        "a block per function"
    );
    for (name, variables) in fns {
        let block = env[name]
            .as_object()
            .unwrap_or_else(|| panic!("events/env.json has no {name} block"));
        // SAM passes a function only what its template declares: anything else in env.json is dropped.
        for key in block.keys() {
            assert!(
                variables.contains_key(key.as_str()),
                "{name}: env.json sets {key}, which template.yaml does not declare"
            );
        }
        for (key, value) in variables {
            let key = key.as_str().unwrap();
            // SAM resolves a parameter with a default; a resource's Ref becomes its logical id, and
            // !GetAtt, !If and the like become "": env.json must give those a value.
            let resolvable = match tagged(value) {
                None => value.as_str() != Some(""),
                Some((tag, target)) => {
                    tag == "!Ref"
                        && target
                            .as_str()
                            .and_then(|p| parameters.get(p))
                            .is_some_and(|p| p.get("Default").is_some())
                }
            };
            if !resolvable {
                assert!(
                    block.contains_key(key),
                    "{name}: {key} is {value:?} in template.yaml; events/env.json must set it"
                );
            }
            // A variable declared empty is one for local runs only: blank means unset to the functions.
            if value.as_str() == Some("") {
                assert!(
                    key == mailroom_aws::ENDPOINT_URL
                        || [
                            "MAILROOM_ALLOW_PRIVATE_TARGETS",
                            "MAILROOM_ALLOW_HTTP_TARGETS",
                            "MAILROOM_DEFAULT_WEBHOOK_SECRET",
                            "MAILROOM_LINK_KEY"
                        ]
                        .contains(&key),
                    "{name}: {key} is declared empty"
                );
            }
        }
        assert_eq!(
            variables[mailroom_aws::ENDPOINT_URL],
            "",
            "{name} can be pointed at an emulator, and is not in AWS"
        );
    }
}

#[test]
fn sam_build_uses_the_makefile_and_the_lambda_profile() {
    let t = template();
    let makefile = std::fs::read_to_string(repo("Makefile")).unwrap();
    for (name, _) in functions(&t) {
        assert_eq!(resource(&t, name)["Metadata"]["BuildMethod"], "makefile");
        let target = format!("build-{name}:");
        let recipe = makefile
            .split(&target)
            .nth(1)
            .unwrap_or_else(|| panic!("no {target} in the Makefile"));
        let recipe = recipe.split("\n\n").next().unwrap();
        assert!(recipe.contains("--profile lambda"), "{recipe}");
        assert!(recipe.contains("$(ARTIFACTS_DIR)"), "{recipe}");
    }
    assert_eq!(t["Globals"]["Function"]["Architectures"][0], "arm64");
    let cargo = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    let profile = cargo
        .split("[profile.lambda]")
        .nth(1)
        .expect("a lambda profile");
    // Unwinding, or mail::parse's catch_unwind around mail-parser is dead code in Lambda.
    for line in [
        "inherits = \"release\"",
        "strip = \"symbols\"",
        "debug = false",
        "panic = \"unwind\"",
    ] {
        assert!(profile.contains(line), "[profile.lambda] has {line}");
    }
}

#[test]
fn delivery_limits_agree_with_the_code() {
    use mailroom_aws::sqs::MAX_RECEIVE_COUNT;
    let t = template();
    // Both queues dead-letter by count only past what the 72-hour schedule needs (adapters/aws/src/sqs.rs).
    for queue in ["InboundQueue", "FeedbackQueue"] {
        let redrive = &resource(&t, queue)["Properties"]["RedrivePolicy"];
        assert_eq!(
            redrive["maxReceiveCount"].as_u64(),
            Some(u64::from(MAX_RECEIVE_COUNT)),
            "{queue}"
        );
    }
    // Both event sources are capped by the MaximumConcurrency parameter.
    let parameter = &t["Parameters"]["MaximumConcurrency"];
    assert_eq!(parameter["Type"], "Number");
    assert!(
        parameter["Default"]
            .as_u64()
            .is_some_and(|d| (2..=1000).contains(&d))
    );
    for (function, event) in [("Inbound", "Mail"), ("Feedback", "Notifications")] {
        let source = &resource(&t, function)["Properties"]["Events"][event]["Properties"];
        let (tag, value) = tagged(&source["ScalingConfig"]["MaximumConcurrency"]).unwrap();
        assert_eq!(
            (tag.as_str(), value.as_str()),
            ("!Ref", Some("MaximumConcurrency")),
            "{function}"
        );
        assert_eq!(
            source["FunctionResponseTypes"][0],
            "ReportBatchItemFailures"
        );
    }
    // Failed records are counted (EMF) and alarmed on.
    let alarm = &resource(&t, "FailedRecordsAlarm")["Properties"];
    assert_eq!(alarm["Namespace"], mailroom_aws::metrics::NAMESPACE);
    assert_eq!(alarm["MetricName"], mailroom_aws::metrics::FAILED_RECORDS);
    assert!(tagged(&alarm["AlarmActions"][0]).is_some());
    // The feedback function dead-letters what it cannot read, and may send there.
    let feedback = &resource(&t, "Feedback")["Properties"];
    assert!(tagged(&feedback["Environment"]["Variables"]["MAILROOM_FEEDBACK_DLQ_URL"]).is_some());
    // IAM compares ses:FromAddress case-sensitively: Domains and ForwardFrom are lower-case only.
    let lower = |name: &str| {
        regex::Regex::new(t["Parameters"][name]["AllowedPattern"].as_str().unwrap()).unwrap()
    };
    let domains = lower("Domains");
    assert!(domains.is_match("mail.example.com") && domains.is_match("support@example.com"));
    assert!(!domains.is_match("Mail.Example.com") && !domains.is_match(" mail.example.com"));
    let from = lower("ForwardFrom");
    assert!(from.is_match("") && from.is_match("forward@mail.example.com"));
    assert!(!from.is_match("Forward@mail.example.com"));
}
