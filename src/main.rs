use std::process::ExitCode;

use clap::Parser;
use ironquill::{
    app::{self, Application},
    cli::{Cli, Command},
    config::Settings,
    db, telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One clear line (with its causes), not a panic trace.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            println!("{}", app::openapi_json(settings));
            Ok(())
        }
        Command::Migrate => {
            telemetry::init(&settings.log)?;
            let conn = db::connect(&settings.database).await?;
            db::migrate(&conn).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            telemetry::init(&settings.log)?;
            let env = settings.env;
            let app = Application::build(settings).await?;
            tracing::info!(
                env = %env,
                addr = %app.addr(),
                store = app.state().store.backend(),
                "listening; docs at http://{}/docs",
                app.addr()
            );
            app.run_until(app::shutdown_signal()).await
        }
    }
}
