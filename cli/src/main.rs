//! `mailroom`: render and post messages as Mailroom delivers them, and operate a stack.

// Built without AWS, `backend::Store` has a single variant, and the commands' `match` on it reads the
// same in both builds.
#![cfg_attr(not(feature = "aws"), allow(clippy::infallible_destructuring_match))]

mod backend;
mod console;
mod data;
mod dev;
mod exit;
mod keys;
mod links;
mod local;
mod messages;
mod post;
mod records;
mod redrive;
mod render;
mod routes;
mod send;
#[cfg(feature = "aws")]
mod setup;
#[cfg(feature = "aws")]
mod stack;
mod suppressions;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Inbound email for your app, in your own AWS account.
#[derive(Parser)]
#[command(name = "mailroom", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the POST body your app receives for a message (json, multipart, raw, or a provider's format).
    Render(render::Args),
    /// Send one message to a URL exactly as the inbound function does: same body, headers and signature.
    Post(post::Args),
    /// Run the whole pipeline on this machine: SMTP in, signed POSTs out, the console, no AWS account.
    Dev(dev::Args),
    /// The dashboard of a deployed stack (or the dev store) in your browser, served on this machine.
    Console(console::Args),
    /// What happened to mail: list deliveries, show one message with every attempt.
    Messages(messages::Args),
    /// Manage routes: which recipients go to which webhook or forward address.
    Routes(routes::Args),
    /// Send one message through the send API (a stack's, or `mailroom dev`'s), as an app would.
    Send(send::Args),
    /// The send API's keys: create (printed once), list, revoke.
    Keys(keys::Args),
    /// The addresses Mailroom sends nothing to: list, add, remove.
    Suppressions(suppressions::Args),
    /// Everything held about an address: export it as JSON, or erase it.
    Data(data::Args),
    /// The links to stored attachments and originals: rotate their signing key.
    Links(links::Args),
    /// Move dead-lettered messages back to the inbound queue (AWS), or re-queue failed deliveries (dev store).
    Redrive(redrive::Args),
    /// Upkeep of a stack's records: move their index keys to the stack's shards (reindex).
    Records(records::Args),
    /// Create what the functions need in an emulator (moto, LocalStack).
    #[cfg(feature = "aws")]
    Setup(setup::Args),
    /// Set up a stack (needs a mailroom built with AWS support, the default).
    #[cfg(not(feature = "aws"))]
    Setup {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
}

fn main() -> ExitCode {
    quiet_panics();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Post(args) => post::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Console(args) => console::run(args),
        Command::Messages(args) => messages::run(args),
        Command::Routes(args) => routes::run(args),
        Command::Redrive(args) => redrive::run(args),
        Command::Records(args) => records::run(args),
        #[cfg(feature = "aws")]
        Command::Setup(args) => setup::run(args),
        #[cfg(not(feature = "aws"))]
        Command::Setup { .. } => Err(exit::CliError::new(
            exit::BAD_ARGUMENTS,
            "`setup` works on AWS, but this mailroom was built without AWS support (--no-default-features)",
        )
        .into()),
        Command::Suppressions(args) => suppressions::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Send(args) => send::run(args),
        Command::Data(args) => data::run(args),
        Command::Links(args) => links::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // `{:#}` prints the chain of causes on one line and never a backtrace.
            eprintln!("error: {error:#}");
            exit::code_of(&error)
        }
    }
}

/// A closed pipe (`mailroom routes list | head`) ends the output quietly, like other command-line tools;
/// any other panic is a bug, reported in one line.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(141);
        }
        eprintln!("error: internal error ({message}); please report it with the command you ran");
    }));
}
