//! Logging: human-readable in development, JSON lines in production.
//!
//! Nothing secret reaches a log line: secrets live in [`crate::secret::Secret`], which redacts
//! itself, and request logging records the method and path, never headers or bodies.
use tracing_subscriber::{
    EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::{LogFormat, LogSettings};

pub mod metrics;
mod request;
mod routes;

pub use request::{REQUEST_ID_HEADER, RequestId, RequestSpan};
pub use routes::RouteTemplates;

/// Installs the global subscriber. `RUST_LOG` overrides `log.filter`.
pub fn init(settings: &LogSettings) -> anyhow::Result<()> {
    init_with_writer(settings, std::io::stdout)
}

/// Installs the global subscriber writing to `writer` (tests capture logs this way).
pub fn init_with_writer<W>(settings: &LogSettings, writer: W) -> anyhow::Result<()>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.filter))
        .map_err(|e| anyhow::anyhow!("invalid configuration: log.filter: {e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("could not install the log subscriber: {e}"))
}
