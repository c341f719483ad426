//! `appraise serve`: its flags, checked once, and the call into the server crate.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use appraise::error::{Error, Result};
use appraise_serve::{Registry, ServeConfig};

/// The environment variable `--token` falls back to (so the token stays out of `ps`).
pub const TOKEN_ENV: &str = "APPRAISE_TOKEN";

/// Arguments of `appraise serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A model file to serve (repeatable), named after its folder (`runs/best-3/model.appraise`
    /// is served as `best-3`).
    #[arg(long, value_name = "FILE")]
    pub model: Vec<PathBuf>,

    /// Serve every model.appraise under this folder, each named after its own folder.
    #[arg(long, value_name = "DIR")]
    pub models: Option<PathBuf>,

    /// Address to listen on; loopback by default, so nothing outside this machine can reach it.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "HOST:PORT")]
    pub addr: SocketAddr,

    /// Require `Authorization: Bearer TOKEN` on every request but the page and the health
    /// checks [default: $APPRAISE_TOKEN when set].
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Largest request body accepted, in megabytes (larger bodies get a 413).
    #[arg(long, default_value_t = 8.0, value_name = "MB")]
    pub body_limit: f64,

    /// Seconds a client may take to send a request's headers, and its body (else a 408).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,

    /// Most houses one request may price.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_houses: usize,

    /// Do not log each request (one JSON line each on standard error).
    #[arg(long)]
    pub quiet: bool,
}

impl ServeArgs {
    /// The server's settings, checked.
    pub fn config(&self) -> Result<ServeConfig> {
        let positive = |value: f64, flag: &str| {
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(Error::Usage(format!(
                    "{flag} must be a positive number (got {value})"
                )))
            }
        };
        let token = self
            .token
            .clone()
            .or_else(|| std::env::var(TOKEN_ENV).ok())
            .filter(|t| !t.is_empty());
        if token
            .as_ref()
            .is_some_and(|t| t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(Error::Usage(
                "--token must not hold spaces or control characters".into(),
            ));
        }
        if self.max_houses == 0 {
            return Err(Error::Usage("--max-houses must be at least 1".into()));
        }
        Ok(ServeConfig {
            addr: self.addr,
            token,
            body_limit: (positive(self.body_limit, "--body-limit")? * 1024.0 * 1024.0) as usize,
            request_timeout: Duration::from_secs_f64(positive(self.timeout, "--timeout")?),
            max_houses: self.max_houses,
            log_requests: !self.quiet,
            ..ServeConfig::default()
        })
    }

    /// The models to serve, loaded.
    pub fn registry(&self) -> Result<Registry> {
        if self.model.is_empty() && self.models.is_none() {
            return Err(Error::Usage(
                "name the models to serve: --model runs/NAME/model.appraise, or --models runs/"
                    .into(),
            ));
        }
        let mut registry = Registry::new();
        for path in &self.model {
            registry.add_file(path)?;
        }
        if let Some(dir) = &self.models {
            registry.add_folder(dir)?;
        }
        Ok(registry)
    }
}

/// Runs `appraise serve` until Ctrl-C or SIGTERM.
pub fn serve(args: &ServeArgs) -> Result<()> {
    let config = args.config()?;
    let registry = args.registry()?;
    let names: Vec<String> = registry.names().iter().map(|n| n.to_string()).collect();
    let secured = config.token.is_some();
    let log: appraise_serve::LogSink = Arc::new(|line: &str| {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    });
    appraise_serve::run(registry, config, log, |addr| {
        // On standard output, flushed at once: scripts and tests wait for this line.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "appraise serve: listening on http://{addr}");
        let _ = writeln!(out, "  models: {}", names.join(", "));
        let _ = writeln!(
            out,
            "  page: http://{addr}/   JSON: POST http://{addr}/v1/models/{}/predict   v2: POST http://{addr}/v2/models/{}/infer",
            names[0], names[0]
        );
        if secured {
            let _ = writeln!(out, "  a bearer token is required (Authorization: Bearer ...)");
        }
        let _ = out.flush();
    })
    .map_err(|e| {
        Error::Usage(format!(
            "could not serve on {}: {e} (is another server on that port? pick one with --addr)",
            args.addr
        ))
    })
}
