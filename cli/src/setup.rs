//! `mailroom setup`: resources for emulators (and, for a deployed stack, domains and rule sets).

use std::process::ExitCode;

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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
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
            let runtime = backend::runtime()?;
            let resources = runtime.block_on(async {
                let sdk = backend::sdk_config().await;
                create_all(&sdk, &prefix).await
            });
            let resources = resources.map_err(exit::from_store)?;
            print!("{}", resources.exports());
            Ok(ExitCode::SUCCESS)
        }
    }
}
