//! The command line: `serve` (default), `migrate`, `openapi`, `admin ...`.
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
    /// Operator tasks; each prints its result as JSON.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a tenant with its first owner and an API key for that owner.
    Bootstrap {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Add a user (found or created by email) to a tenant with a role, and issue it an API key.
    AddUser {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// owner, admin, editor, author or viewer.
        #[arg(long)]
        role: String,
    },
    /// Delete audit events past audit.retention_days, and expired sessions, refresh tokens and
    /// invitations (the server also does this hourly); prints how many of each.
    Purge,
}
