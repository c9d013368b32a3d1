//! Which store a command works on: a deployed stack when `--stack`, `--table` or `MAILROOM_TABLE` names
//! one (in a `mailroom` built with the `aws` feature), otherwise the dev store under `--data`.

use anyhow::Context;

/// A current-thread runtime for one command.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The dev store's database under `data` (the folder `mailroom dev` uses), created when missing: the
/// folder 0700, the database 0600.
pub fn dev_store(data: &std::path::Path) -> anyhow::Result<mailroom_local::sqlite::SqliteStore> {
    mailroom_local::private::create_dir_all(data)
        .with_context(|| format!("cannot create the dev store folder {}", data.display()))?;
    mailroom_local::sqlite::SqliteStore::open(&data.join(DEV_DATABASE))
        .map_err(crate::exit::from_store)
}

/// The dev store under `data` when `mailroom dev` has made one; reading commands do not create it.
pub fn existing_dev_store(
    data: &std::path::Path,
) -> anyhow::Result<mailroom_local::sqlite::SqliteStore> {
    let db = data.join(DEV_DATABASE);
    if !db.exists() {
        let stack_hint = if cfg!(feature = "aws") {
            "; for a stack give --stack NAME or set MAILROOM_TABLE"
        } else {
            ""
        };
        return Err(crate::exit::CliError::new(
            crate::exit::NOT_FOUND,
            format!(
                "no dev store at {} (run `mailroom dev`, or give --data DIR{stack_hint})",
                data.display()
            ),
        )
        .into());
    }
    mailroom_local::sqlite::SqliteStore::open(&db).map_err(crate::exit::from_store)
}

/// The dev store's database file, inside `--data`.
pub const DEV_DATABASE: &str = "mailroom.db";

/// Which store an operator command works on: the same three options on every such command.
#[derive(clap::Args, Debug, Clone)]
pub struct Target {
    /// A deployed stack: its table, bucket and queues are read from its outputs (otherwise from
    /// MAILROOM_TABLE, MAILROOM_BUCKET, MAILROOM_QUEUE_URL, MAILROOM_DLQ_URL).
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// The stack's DynamoDB table, instead of MAILROOM_TABLE.
    #[arg(long, global = true, value_name = "TABLE")]
    pub table: Option<String>,
    /// The stack's bucket of stored mail, instead of MAILROOM_BUCKET.
    #[arg(long, global = true, value_name = "BUCKET")]
    pub bucket: Option<String>,
    /// The dev store, used when neither a stack nor a table is given.
    #[arg(long, global = true, value_name = "DIR", default_value = ".mailroom")]
    pub data: std::path::PathBuf,
}

/// Where an operator command works.
#[derive(Debug, Clone)]
pub enum Store {
    /// The dev store under `--data`.
    Dev(std::path::PathBuf),
    /// A deployed stack's table, and the stack's other names that are known.
    #[cfg(feature = "aws")]
    Stack {
        /// The table of routes and records.
        table: String,
        /// The bucket and the queues, when known.
        names: crate::stack::StackNames,
    },
}

impl Target {
    /// The stack when one is named (`--stack`, `--table` or `MAILROOM_TABLE`), otherwise the dev store.
    pub fn store(&self) -> anyhow::Result<Store> {
        #[cfg(feature = "aws")]
        {
            let names = self.names()?;
            if let Some(table) = names.table.clone() {
                return Ok(Store::Stack { table, names });
            }
        }
        #[cfg(not(feature = "aws"))]
        if let Some(asked) = self.stack_asked() {
            return Err(crate::exit::CliError::new(
                crate::exit::BAD_ARGUMENTS,
                format!(
                    "{asked} names a deployed stack, but this mailroom was built without AWS support \
                     (--no-default-features); build it with `cargo build --release -p mailroom-cli`"
                ),
            )
            .into());
        }
        Ok(Store::Dev(self.data.clone()))
    }

    /// The stack's names (`--stack` wins over `--table`, which wins over the environment); all `None`
    /// for the dev store.
    #[cfg(feature = "aws")]
    pub fn names(&self) -> anyhow::Result<crate::stack::StackNames> {
        let mut names =
            runtime()?.block_on(crate::stack::StackNames::resolve(self.stack.as_deref()))?;
        if self.stack.is_none()
            && let Some(table) = self.table.as_ref().filter(|t| !t.trim().is_empty())
        {
            names.table = Some(table.clone());
        }
        if let Some(bucket) = self.bucket.as_ref().filter(|b| !b.trim().is_empty()) {
            names.bucket = Some(bucket.clone());
        }
        Ok(names)
    }

    /// Which option or variable asks for a stack, if any.
    #[cfg(not(feature = "aws"))]
    fn stack_asked(&self) -> Option<&'static str> {
        let given = |value: Option<&str>| value.is_some_and(|v| !v.trim().is_empty());
        if given(self.stack.as_deref()) {
            Some("--stack")
        } else if given(self.table.as_deref()) {
            Some("--table")
        } else if given(self.bucket.as_deref()) {
            Some("--bucket")
        } else if given(std::env::var("MAILROOM_TABLE").ok().as_deref()) {
            Some("MAILROOM_TABLE")
        } else {
            None
        }
    }
}
