//! `mailroom setup`: what CloudFormation cannot do (verify a domain, activate the receipt rule set), what is
//! left to do before the first mail arrives, and the resources an emulator needs.

use std::collections::HashMap;
use std::process::ExitCode;

use aws_config::Region;
use clap::Subcommand;
use mailroom::ports::RouteStore;
use mailroom_aws::setup::create_all;

use crate::{backend, exit};

/// `mailroom setup …`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the bucket, table, queues, topic and configuration set the functions need in the endpoint
    /// AWS_ENDPOINT_URL names (moto's server, LocalStack), and print `export` lines for eval.
    #[command(
        after_help = "Example:\n  python3 -m moto.server -H 127.0.0.1 -p 5000 &\n  export AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test\n  eval \"$(mailroom setup emulator)\""
    )]
    Emulator {
        /// Names start with this.
        #[arg(long, default_value = "mailroom")]
        prefix: String,
    },
    /// Create the SES domain identities (Easy DKIM) that are missing, print every DNS record to publish and
    /// whether SES sees each domain verified yet; with --stack, for the stack's domains, followed by what is
    /// left to do before mail arrives.
    #[command(after_help = "Example:\n  mailroom setup domain --stack mailroom-eu")]
    Domain {
        /// A domain that receives mail, e.g. mail.example.com (repeat for several). Default: the domains the
        /// stack's receipt rule takes mail for.
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// The deployed stack: its domains, and what is left to do for it.
        #[arg(long, value_name = "NAME")]
        stack: Option<String>,
        /// The region of the stack that receives the mail (default: AWS_REGION, or the profile's).
        #[arg(long, env = "AWS_REGION")]
        region: Option<String>,
        /// The SPF record the domain publishes today, to print it with SES merged in (a domain must have one
        /// SPF record only).
        #[arg(long, value_name = "RECORD")]
        spf: Option<String>,
    },
    /// Make the stack's receipt rule set the active one (CloudFormation cannot), then print what is left to
    /// do. When another set is active, says which and changes nothing unless --replace is given.
    #[command(after_help = "Example:\n  mailroom setup activate --stack mailroom-eu")]
    Activate {
        /// The region of the stack (default: AWS_REGION, or the profile's).
        #[arg(long, env = "AWS_REGION")]
        region: Option<String>,
        /// The stack's name (default: mailroom-eu, mailroom-us or mailroom-ap, after samconfig.toml).
        #[arg(long, value_name = "NAME")]
        stack: Option<String>,
        /// Replace a rule set that is already active (it stops receiving).
        #[arg(long)]
        replace: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = backend::runtime()?;
    match args.command {
        Command::Emulator { prefix } => {
            if std::env::var("AWS_ENDPOINT_URL").map_or(true, |v| v.is_empty()) {
                return Err(exit::CliError::new(
                    exit::BAD_ARGUMENTS,
                    "AWS_ENDPOINT_URL is not set: `setup emulator` is for an emulator such as moto's server \
                     (deploy real stacks with `sam deploy`)",
                )
                .into());
            }
            let resources = runtime.block_on(async {
                let sdk = crate::stack::sdk_config().await;
                create_all(&sdk, &prefix).await
            });
            let resources = resources.map_err(exit::from_store)?;
            print!("{}", resources.exports());
            Ok(ExitCode::SUCCESS)
        }
        Command::Domain {
            domains,
            stack,
            region,
            spf,
        } => runtime.block_on(domain(domains, stack, region, spf)),
        Command::Activate {
            region,
            stack,
            replace,
        } => runtime.block_on(activate(region, stack, replace)),
    }
}

/// The SDK configuration in `region`, or in the standard chain's region; an error when there is none.
async fn sdk_in(region: Option<&str>) -> anyhow::Result<aws_config::SdkConfig> {
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let sdk = match region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(region) => loader.region(Region::new(region.to_owned())).load().await,
        None => loader.load().await,
    };
    if sdk.region().is_none() {
        return Err(exit::CliError::new(
            exit::BAD_ARGUMENTS,
            "no region: give --region (or set AWS_REGION, or a region in the AWS profile)",
        )
        .into());
    }
    Ok(sdk)
}

fn region_of(sdk: &aws_config::SdkConfig) -> String {
    sdk.region().map(ToString::to_string).unwrap_or_default()
}

fn sdk_failure<E>(
    what: &str,
    error: aws_sdk_sesv2::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> anyhow::Error
where
    E: aws_sdk_sesv2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    exit::from_store(mailroom_aws::store_error(what, error))
}

/// A domain as SES and DNS want it: lower case, no trailing dot; an error for anything else.
fn domain_name(text: &str) -> anyhow::Result<String> {
    let domain = text.trim().trim_end_matches('.').to_ascii_lowercase();
    if !domain.contains('.') || domain.contains(['@', ' ', '/']) {
        return Err(exit::CliError::new(
            exit::BAD_ARGUMENTS,
            format!("`{domain}` is not a domain name"),
        )
        .into());
    }
    Ok(domain)
}

/// What a stack's outputs and parameters say.
struct Stack {
    name: String,
    outputs: HashMap<String, String>,
    parameters: HashMap<String, String>,
}

impl Stack {
    async fn describe(sdk: &aws_config::SdkConfig, name: &str) -> anyhow::Result<Stack> {
        let (outputs, parameters) = crate::stack::describe_stack(sdk, name).await?;
        if !outputs.contains_key("Table") {
            return Err(exit::CliError::new(
                exit::NOT_FOUND,
                format!("stack {name} has no Table output: is it a Mailroom stack?"),
            )
            .into());
        }
        Ok(Stack {
            name: name.to_owned(),
            outputs,
            parameters,
        })
    }

    fn output(&self, key: &str) -> anyhow::Result<&str> {
        self.outputs.get(key).map(String::as_str).ok_or_else(|| {
            exit::CliError::new(
                exit::NOT_FOUND,
                format!(
                    "stack {} has no {key} output (deployed before this version of Mailroom? `sam deploy` it again)",
                    self.name
                ),
            )
            .into()
        })
    }

    /// The entries of the receipt rule's Recipients: domains, or single addresses.
    fn recipients(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .output("ReceivingDomains")?
            .split(',')
            .map(|entry| entry.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .collect())
    }
}

/// The domain part of each recipient entry, once each, in order.
fn domains_of(recipients: &[String]) -> Vec<String> {
    let mut domains: Vec<String> = Vec::new();
    for entry in recipients {
        let domain = entry.rsplit_once('@').map_or(entry.as_str(), |(_, d)| d);
        if !domains.iter().any(|d| d == domain) {
            domains.push(domain.to_owned());
        }
    }
    domains
}

async fn domain(
    domains: Vec<String>,
    stack: Option<String>,
    region: Option<String>,
    spf: Option<String>,
) -> anyhow::Result<ExitCode> {
    let sdk = sdk_in(region.as_deref()).await?;
    let region = region_of(&sdk);
    let stack = match stack {
        Some(name) => Some(Stack::describe(&sdk, &name).await?),
        None => None,
    };
    let domains: Vec<String> = if !domains.is_empty() {
        domains
            .iter()
            .map(|d| domain_name(d))
            .collect::<anyhow::Result<_>>()?
    } else if let Some(stack) = &stack {
        domains_of(&stack.recipients()?)
    } else {
        return Err(exit::CliError::new(
            exit::BAD_ARGUMENTS,
            "give --domain DOMAIN, or --stack NAME for the stack's domains",
        )
        .into());
    };
    let spf = spf.map(|record| merge_spf(&record)).transpose()?;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    for domain in &domains {
        records(&ses, domain, &region, spf.as_ref()).await?;
    }
    if let Some(stack) = &stack {
        left_to_do(&sdk, stack).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the identity when it is missing, and prints its DNS records and verification state.
async fn records(
    ses: &aws_sdk_sesv2::Client,
    domain: &str,
    region: &str,
    spf: Option<&SpfMerge>,
) -> anyhow::Result<()> {
    let exists = ses
        .get_email_identity()
        .email_identity(domain)
        .send()
        .await
        .is_ok();
    if exists {
        println!("the SES identity {domain} exists in {region}");
    } else {
        ses.create_email_identity()
            .email_identity(domain)
            .send()
            .await
            .map_err(|e| sdk_failure(&format!("cannot create the SES identity {domain}"), e))?;
        println!("created the SES identity {domain} (Easy DKIM) in {region}");
    }
    let identity = ses
        .get_email_identity()
        .email_identity(domain)
        .send()
        .await
        .map_err(|e| sdk_failure(&format!("cannot read the SES identity {domain}"), e))?;
    let tokens = identity
        .dkim_attributes()
        .map(|d| d.tokens().to_vec())
        .unwrap_or_default();

    print_dns_records(domain, region, &tokens)?;
    print_spf(domain, spf);
    println!();
    println!(
        "SES sees {domain}: verified: {}; DKIM: {}",
        if identity.verified_for_sending_status() {
            "yes"
        } else {
            "not yet"
        },
        dkim_status(&identity)
    );
    println!();
    Ok(())
}

/// The MX, DKIM and DMARC records to publish for `domain`.
fn print_dns_records(domain: &str, region: &str, tokens: &[String]) -> anyhow::Result<()> {
    println!();
    println!("Publish these DNS records for {domain}:");
    let mut rows = vec![[
        format!("{domain}."),
        "MX".to_owned(),
        format!("10 inbound-smtp.{region}.amazonaws.com"),
    ]];
    for token in tokens {
        rows.push([
            format!("{token}._domainkey.{domain}."),
            "CNAME".to_owned(),
            format!("{token}.dkim.amazonses.com"),
        ]);
    }
    rows.push([
        format!("_dmarc.{domain}."),
        "TXT".to_owned(),
        format!("\"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{domain}\""),
    ]);
    crate::table::print(
        &mut std::io::stdout().lock(),
        &["NAME", "TYPE", "VALUE"],
        &rows,
    )?;
    if tokens.is_empty() {
        println!(
            "(SES returned no DKIM tokens yet; run this again in a minute for the three DKIM CNAMEs)"
        );
    }
    println!("(a domain has one MX and one DMARC record: if {domain} has others, they must go)");
    println!();
    Ok(())
}

/// What to do about SPF, merged into the domain's own record when `--spf` gave it.
fn print_spf(domain: &str, spf: Option<&SpfMerge>) {
    println!(
        "SPF is optional: SES sends forwards from its own MAIL FROM domain, and DMARC passes through the DKIM \
         records. To name SES in {domain}'s SPF anyway, put include:amazonses.com into its one SPF record \
         (a second v=spf1 record makes SPF fail for the domain):"
    );
    match spf {
        Some(merge) if merge.already => {
            println!(
                "  {domain}.  TXT  \"{}\"  (already names SES: keep it)",
                merge.record
            )
        }
        Some(merge) => println!(
            "  {domain}.  TXT  \"{}\"  (replaces the record you gave)",
            merge.record
        ),
        None => println!(
            "  {domain}.  TXT  \"v=spf1 include:amazonses.com ~all\"  (only if it has no SPF record; otherwise \
             give --spf 'its record' for the merged one)"
        ),
    }
}

fn dkim_status(
    identity: &aws_sdk_sesv2::operation::get_email_identity::GetEmailIdentityOutput,
) -> String {
    identity
        .dkim_attributes()
        .and_then(|d| d.status())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "NOT_STARTED".to_owned())
}

/// An SPF record with SES in it.
#[derive(Debug, PartialEq, Eq)]
struct SpfMerge {
    /// The record to publish.
    record: String,
    /// It named SES already: nothing changes.
    already: bool,
}

/// `record` (an SPF record as published) with `include:amazonses.com` added before its `all` (or its
/// `redirect=`), or as it is when it names SES already.
fn merge_spf(record: &str) -> anyhow::Result<SpfMerge> {
    let record = record.trim().trim_matches('"').trim();
    let mut terms: Vec<&str> = record.split_whitespace().collect();
    if !terms
        .first()
        .is_some_and(|v| v.eq_ignore_ascii_case("v=spf1"))
    {
        return Err(exit::CliError::new(
            exit::BAD_ARGUMENTS,
            format!("`{record}` is not an SPF record (it starts with v=spf1)"),
        )
        .into());
    }
    let names_ses = terms.iter().any(|term| {
        term.trim_start_matches(['+', '-', '~', '?'])
            .eq_ignore_ascii_case("include:amazonses.com")
    });
    if names_ses {
        return Ok(SpfMerge {
            record: terms.join(" "),
            already: true,
        });
    }
    let end = terms
        .iter()
        .position(|term| {
            let lower = term.to_ascii_lowercase();
            lower.trim_start_matches(['+', '-', '~', '?']) == "all"
                || lower.starts_with("redirect=")
        })
        .unwrap_or(terms.len());
    terms.insert(end, "include:amazonses.com");
    Ok(SpfMerge {
        record: terms.join(" "),
        already: false,
    })
}

/// The stack name `sam deploy --config-env` gives a region in samconfig.toml.
fn default_stack(region: &str) -> Option<&'static str> {
    match region {
        "eu-west-1" => Some("mailroom-eu"),
        "us-east-1" => Some("mailroom-us"),
        "ap-southeast-2" => Some("mailroom-ap"),
        _ => None,
    }
}

async fn active_rule_set(ses: &aws_sdk_ses::Client) -> anyhow::Result<Option<String>> {
    Ok(ses
        .describe_active_receipt_rule_set()
        .send()
        .await
        .map_err(|e| {
            exit::from_store(mailroom_aws::store_error(
                "cannot read the active receipt rule set",
                e,
            ))
        })?
        .metadata
        .and_then(|m| m.name))
}

async fn activate(
    region: Option<String>,
    stack: Option<String>,
    replace: bool,
) -> anyhow::Result<ExitCode> {
    let sdk = sdk_in(region.as_deref()).await?;
    let region = region_of(&sdk);
    let name = match stack.or_else(|| default_stack(&region).map(str::to_owned)) {
        Some(stack) => stack,
        None => {
            return Err(exit::CliError::new(
                exit::BAD_ARGUMENTS,
                format!("no default stack for {region}: give --stack NAME"),
            )
            .into());
        }
    };
    let stack = Stack::describe(&sdk, &name).await?;
    let rule_set = stack.output("ReceiptRuleSet")?.to_owned();
    let ses = aws_sdk_ses::Client::new(&sdk);
    let active = active_rule_set(&ses).await?;
    match active.as_deref() {
        Some(name) if name == rule_set => {
            println!("{rule_set} is already the active receipt rule set in {region}");
        }
        Some(name) if !replace => {
            return Err(exit::CliError::new(
                exit::FAILURE,
                format!(
                    "another receipt rule set is active in {region}: {name}. Nothing was changed. \
                     Give --replace to make {rule_set} active instead ({name} then stops receiving), or \
                     deploy the stack with ExistingRuleSet={name} to add Mailroom's rule to {name}."
                ),
            )
            .into());
        }
        _ => {
            ses.set_active_receipt_rule_set()
                .rule_set_name(&rule_set)
                .send()
                .await
                .map_err(|e| {
                    exit::from_store(mailroom_aws::store_error(
                        format!("cannot activate {rule_set}"),
                        e,
                    ))
                })?;
            match &active {
                Some(previous) => println!(
                    "{rule_set} is now the active receipt rule set in {region} (was {previous})"
                ),
                None => println!("{rule_set} is now the active receipt rule set in {region}"),
            }
        }
    }
    println!();
    left_to_do(&sdk, &stack).await?;
    Ok(ExitCode::SUCCESS)
}

/// Prints, for a deployed stack, what is done and what is left before mail reaches the app: each domain's
/// verification, its MX record, the rule set, a route for a test address, SES's sandbox.
async fn left_to_do(sdk: &aws_config::SdkConfig, stack: &Stack) -> anyhow::Result<()> {
    let region = region_of(sdk);
    let name = &stack.name;
    let recipients = stack.recipients()?;
    println!("What is left for stack {name} in {region}:");
    let ses = aws_sdk_sesv2::Client::new(sdk);
    for domain in domains_of(&recipients) {
        check_domain(&ses, &domain, name, &region).await;
    }
    check_rule_set(sdk, stack).await?;
    let test_address = match recipients.first() {
        Some(entry) if entry.contains('@') => entry.clone(),
        Some(domain) => format!("test@{domain}"),
        None => "test@<your domain>".to_owned(),
    };
    let routes = mailroom_aws::dynamo::DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        stack.output("Table")?,
    )
    .routes()
    .await
    .map_err(exit::from_store)?;
    check_route(stack, &routes, &test_address);
    let forwards = routes.iter().any(|r| !r.forward.is_empty());
    check_production_access(&ses, forwards).await;
    println!();
    println!(
        "Then write to {test_address} and watch it arrive: `mailroom messages list --stack {name}`"
    );
    Ok(())
}

/// One line of the checklist: done, not done, or not known here.
fn step(done: Option<bool>, text: String) {
    let mark = match done {
        Some(true) => "[x]",
        Some(false) => "[ ]",
        None => "[?]",
    };
    println!("  {mark} {text}");
}

/// Whether SES has verified `domain`, and its MX record (not checked).
async fn check_domain(ses: &aws_sdk_sesv2::Client, domain: &str, name: &str, region: &str) {
    match ses.get_email_identity().email_identity(domain).send().await {
        Ok(identity) if identity.verified_for_sending_status() => step(
            Some(true),
            format!(
                "SES has verified {domain} (DKIM {})",
                dkim_status(&identity)
            ),
        ),
        Ok(identity) => step(
            Some(false),
            format!(
                "SES has not verified {domain} yet (DKIM {}): publish its DKIM CNAMEs \
                     (`mailroom setup domain --stack {name}` prints them); SES checks them for up to 72 hours",
                dkim_status(&identity)
            ),
        ),
        Err(_) => step(
            Some(false),
            format!(
                "no SES identity for {domain}: `mailroom setup domain --stack {name}` creates it and prints its DNS records"
            ),
        ),
    }
    step(
        None,
        format!(
            "{domain}. MX 10 inbound-smtp.{region}.amazonaws.com (not checked here: `dig +short MX {domain}`)"
        ),
    );
}

/// Whether the stack's receipt rule set is the active one.
async fn check_rule_set(sdk: &aws_config::SdkConfig, stack: &Stack) -> anyhow::Result<()> {
    let name = &stack.name;
    let rule_set = stack.output("ReceiptRuleSet")?;
    let active = active_rule_set(&aws_sdk_ses::Client::new(sdk)).await?;
    match active.as_deref() {
        Some(active) if active == rule_set => step(
            Some(true),
            format!("the receipt rule set {rule_set} (Mailroom's rule in it) is active"),
        ),
        Some(other) => step(
            Some(false),
            format!(
                "{other} is the active rule set, not {rule_set}: `mailroom setup activate --stack {name} --replace` \
                 (then {other} stops receiving), or deploy with ExistingRuleSet={other} to add Mailroom's rule to it"
            ),
        ),
        None => step(
            Some(false),
            format!("no rule set is active: `mailroom setup activate --stack {name}`"),
        ),
    }

    Ok(())
}

/// Whether a route (or the stack's default webhook) takes the test address.
fn check_route(stack: &Stack, routes: &[mailroom::route::Route], test_address: &str) {
    let name = &stack.name;
    let default_webhook = stack
        .parameters
        .get("WebhookUrl")
        .filter(|url| !url.trim().is_empty());
    match mailroom::route::resolve(routes, test_address) {
        Some(found) => step(
            Some(true),
            format!(
                "a route takes {test_address}: {}{}",
                found.route.pattern,
                if found.route.enabled {
                    ""
                } else {
                    " (disabled: `mailroom routes enable`)"
                }
            ),
        ),
        None if default_webhook.is_some() => step(
            Some(true),
            format!("no route takes {test_address}: the stack's WebhookUrl gets it"),
        ),
        None => step(
            Some(false),
            format!(
                "no route takes {test_address}: `mailroom routes add '*@{}' --webhook https://… --generate-secret --stack {name}`",
                test_address.rsplit_once('@').map_or("", |(_, d)| d)
            ),
        ),
    }
}

/// Whether SES may forward to any address (production access), which matters only when a route forwards.
async fn check_production_access(ses: &aws_sdk_sesv2::Client, forwards: bool) {
    match ses.get_account().send().await {
        Ok(account) if account.production_access_enabled() => step(
            Some(true),
            "SES production access: forwards may go to any address".to_owned(),
        ),
        Ok(_) => step(
            Some(!forwards),
            format!(
                "SES is in the sandbox here: forwards reach only verified addresses{} (request production access in \
                 the SES console; webhooks do not need it)",
                if forwards {
                    ", and a route forwards"
                } else {
                    ""
                }
            ),
        ),
        Err(_) => step(
            None,
            "SES production access: not readable here (forwards to any address need it; webhooks do not)"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spf_gets_ses_before_its_all_or_redirect_and_once_only() {
        let merged = merge_spf("\"v=spf1 include:_spf.google.com ~all\"").unwrap();
        assert_eq!(
            merged.record,
            "v=spf1 include:_spf.google.com include:amazonses.com ~all"
        );
        assert!(!merged.already);
        assert_eq!(
            merge_spf("v=spf1 mx redirect=_spf.example.net")
                .unwrap()
                .record,
            "v=spf1 mx include:amazonses.com redirect=_spf.example.net"
        );
        assert_eq!(
            merge_spf("v=spf1 ip4:192.0.2.1").unwrap().record,
            "v=spf1 ip4:192.0.2.1 include:amazonses.com"
        );
        let already = merge_spf("v=spf1 include:amazonses.com -all").unwrap();
        assert!(already.already);
        assert_eq!(already.record, "v=spf1 include:amazonses.com -all");
        assert!(merge_spf("v=DMARC1; p=none").is_err());
    }

    #[test]
    fn recipients_give_their_domains_once() {
        let entries = [
            "mail.example.com".to_owned(),
            "support@example.net".to_owned(),
            "billing@example.net".to_owned(),
        ];
        assert_eq!(domains_of(&entries), ["mail.example.com", "example.net"]);
    }
}
