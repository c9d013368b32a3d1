//! `mailroom setup`: what CloudFormation cannot do (verify a domain, activate the receipt rule set), and the
//! resources an emulator needs.

use std::process::ExitCode;

use aws_config::Region;
use clap::Subcommand;
use mailroom::aws::setup::create_all;

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
    /// Create the SES domain identity (Easy DKIM) if it is missing, and print every DNS record to publish
    /// and whether SES sees the domain verified yet.
    Domain {
        /// The domain that receives mail, e.g. mail.example.com.
        #[arg(long)]
        domain: String,
        /// The region of the stack that receives its mail.
        #[arg(long, env = "AWS_REGION")]
        region: String,
    },
    /// Make the stack's receipt rule set the active one (CloudFormation cannot). When another set is active,
    /// says which and changes nothing unless --replace is given.
    Activate {
        /// The region of the stack.
        #[arg(long, env = "AWS_REGION")]
        region: String,
        /// The stack's name (default: mailroom-eu, mailroom-us or mailroom-ap, after samconfig.toml).
        #[arg(long)]
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
                let sdk = backend::sdk_config().await;
                create_all(&sdk, &prefix).await
            });
            let resources = resources.map_err(exit::from_store)?;
            print!("{}", resources.exports());
            Ok(ExitCode::SUCCESS)
        }
        Command::Domain { domain, region } => runtime.block_on(domain_records(&domain, &region)),
        Command::Activate {
            region,
            stack,
            replace,
        } => runtime.block_on(activate(&region, stack, replace)),
    }
}

async fn sdk_in(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .load()
        .await
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
    exit::from_store(mailroom::aws::store_error(what, error))
}

async fn domain_records(domain: &str, region: &str) -> anyhow::Result<ExitCode> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if !domain.contains('.') || domain.contains(['@', ' ', '/']) {
        return Err(exit::CliError::new(
            exit::BAD_ARGUMENTS,
            format!("`{domain}` is not a domain name"),
        )
        .into());
    }
    let sdk = sdk_in(region).await;
    let ses = aws_sdk_sesv2::Client::new(&sdk);
    let exists = ses
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .is_ok();
    if exists {
        println!("the SES identity {domain} exists in {region}");
    } else {
        ses.create_email_identity()
            .email_identity(&domain)
            .send()
            .await
            .map_err(|e| sdk_failure(&format!("cannot create the SES identity {domain}"), e))?;
        println!("created the SES identity {domain} (Easy DKIM) in {region}");
    }
    let identity = ses
        .get_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .map_err(|e| sdk_failure(&format!("cannot read the SES identity {domain}"), e))?;
    let tokens = identity
        .dkim_attributes()
        .map(|d| d.tokens().to_vec())
        .unwrap_or_default();
    let dkim_status = identity
        .dkim_attributes()
        .and_then(|d| d.status())
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "NOT_STARTED".to_owned());

    println!();
    println!("Publish these DNS records:");
    let mut rows = vec![[
        format!("{domain}."),
        "MX".to_owned(),
        format!("10 inbound-smtp.{region}.amazonaws.com"),
    ]];
    for token in &tokens {
        rows.push([
            format!("{token}._domainkey.{domain}."),
            "CNAME".to_owned(),
            format!("{token}.dkim.amazonses.com"),
        ]);
    }
    rows.push([
        format!("{domain}."),
        "TXT".to_owned(),
        "\"v=spf1 include:amazonses.com ~all\"".to_owned(),
    ]);
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
    println!();
    println!(
        "SES sees {domain}: verified for sending: {}; DKIM: {dkim_status}",
        if identity.verified_for_sending_status() {
            "yes"
        } else {
            "not yet"
        }
    );
    println!(
        "Receiving needs only the MX record and an active rule set (`mailroom setup activate`)."
    );
    Ok(ExitCode::SUCCESS)
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

async fn activate(region: &str, stack: Option<String>, replace: bool) -> anyhow::Result<ExitCode> {
    let stack = match stack.or_else(|| default_stack(region).map(str::to_owned)) {
        Some(stack) => stack,
        None => {
            return Err(exit::CliError::new(
                exit::BAD_ARGUMENTS,
                format!("no default stack for {region}: give --stack NAME"),
            )
            .into());
        }
    };
    let sdk = sdk_in(region).await;
    let rule_set = stack_output(&sdk, &stack, "ReceiptRuleSet").await?;
    let ses = aws_sdk_ses::Client::new(&sdk);
    let active = ses
        .describe_active_receipt_rule_set()
        .send()
        .await
        .map_err(|e| {
            exit::from_store(mailroom::aws::store_error(
                "cannot read the active receipt rule set",
                e,
            ))
        })?
        .metadata
        .and_then(|m| m.name);
    match active.as_deref() {
        Some(name) if name == rule_set => {
            println!("{rule_set} is already the active receipt rule set in {region}");
            return Ok(ExitCode::SUCCESS);
        }
        Some(name) if !replace => {
            return Err(exit::CliError::new(
                exit::FAILURE,
                format!(
                    "another receipt rule set is active in {region}: {name}. Nothing was changed. \
                     Give --replace to make {rule_set} active instead ({name} then stops receiving)."
                ),
            )
            .into());
        }
        _ => {}
    }
    ses.set_active_receipt_rule_set()
        .rule_set_name(&rule_set)
        .send()
        .await
        .map_err(|e| {
            exit::from_store(mailroom::aws::store_error(
                format!("cannot activate {rule_set}"),
                e,
            ))
        })?;
    match active {
        Some(previous) => {
            println!("{rule_set} is now the active receipt rule set in {region} (was {previous})")
        }
        None => println!("{rule_set} is now the active receipt rule set in {region}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One output of a CloudFormation stack.
pub async fn stack_output(
    sdk: &aws_config::SdkConfig,
    stack: &str,
    key: &str,
) -> anyhow::Result<String> {
    stack_outputs(sdk, stack).await?.remove(key).ok_or_else(|| {
        exit::CliError::new(
            exit::NOT_FOUND,
            format!("stack {stack} has no {key} output: is it a Mailroom stack?"),
        )
        .into()
    })
}

/// Every output of a CloudFormation stack, by key.
pub async fn stack_outputs(
    sdk: &aws_config::SdkConfig,
    stack: &str,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let cloudformation = aws_sdk_cloudformation::Client::new(sdk);
    let output = cloudformation
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            let not_found = e
                .as_service_error()
                .and_then(|s| aws_sdk_cloudformation::error::ProvideErrorMetadata::message(s))
                .is_some_and(|m| m.contains("does not exist"));
            if not_found {
                exit::CliError::new(
                    exit::NOT_FOUND,
                    format!("stack {stack} not found (check --stack and the region)"),
                )
                .into()
            } else {
                exit::from_store(mailroom::aws::store_error(
                    format!("cannot read stack {stack}"),
                    e,
                ))
            }
        })?;
    Ok(output
        .stacks()
        .first()
        .map(|s| {
            s.outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}
