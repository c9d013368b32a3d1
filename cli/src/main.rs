//! `mailroom`: render and post messages as Mailroom delivers them, and operate a stack.

mod backend;
mod data;
mod dev;
mod exit;
mod links;
mod messages;
mod post;
mod redrive;
mod render;
mod routes;
mod setup;
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
    /// Write the POST body your app receives for a message (json, multipart or raw).
    Render(render::Args),
    /// Send one message to a URL exactly as the inbound function does: same body, headers and signature.
    Post(post::Args),
    /// Run the whole pipeline on this machine: SMTP in, signed POSTs out, an inspector, no AWS account.
    Dev(dev::Args),
    /// What happened to mail: list deliveries, show one message with every attempt.
    Messages(messages::Args),
    /// Manage routes: which recipients go to which webhook or forward address.
    Routes(routes::Args),
    /// The addresses Mailroom sends nothing to: list, add, remove.
    Suppressions(suppressions::Args),
    /// Everything held about an address: export it as JSON, or erase it.
    Data(data::Args),
    /// The links to stored attachments and originals: rotate their signing key.
    Links(links::Args),
    /// Move dead-lettered messages back to the inbound queue (AWS), or re-queue failed deliveries (dev store).
    Redrive(redrive::Args),
    /// Create what the functions need in an emulator (moto, LocalStack).
    Setup(setup::Args),
}

fn main() -> ExitCode {
    quiet_panics();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Post(args) => post::run(args),
        Command::Dev(args) => dev::run(args),
        Command::Messages(args) => messages::run(args),
        Command::Routes(args) => routes::run(args),
        Command::Redrive(args) => redrive::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Suppressions(args) => suppressions::run(args),
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
