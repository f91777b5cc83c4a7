//! The command line: `serve` (default), `migrate`, `openapi`.
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ironquill",
    version,
    about = "A secure multi-tenant REST service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
}
