//! The TOML configuration: the file as serde reads it (`raw`, with the embedded defaults), parsed
//! once (`build`) into the typed [`Config`] the rest of routerd reads, refused with every problem
//! named by key.

mod access_log;
mod build;
mod control;
pub mod duration;
mod http;
mod metrics;
mod model;
mod pool;
mod problems;
mod raw;
mod retry;
mod subscription;
mod tokens;
mod traffic;

pub use access_log::{
    AccessLogConfig, AccessLogFormat, AccessLogTarget, RequestIdConfig, DEFAULT_ACCESS_LOG_QUEUE,
};
pub use control::ControlConfig;
pub use http::HttpConfig;
pub use metrics::{MetricsConfig, DEFAULT_METRICS_LISTEN, DEFAULT_METRICS_MAX_CONNECTIONS};
pub use model::{Config, LimitsConfig, ListenConfig, RouteConfig, TimeoutsConfig};
pub use pool::{Algorithm, EjectionConfig, PoolConfig, StaticNode};
pub use problems::{ConfigError, Problems};
pub use retry::{RetryConfig, RetryOn};
pub use subscription::{SignDigest, SubscriptionConfig};
pub use tokens::read_tokens;
pub use traffic::{NodeTimeouts, QueueConfig};

use std::path::Path;

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses config text into the typed config, or every problem in it.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let raw: raw::RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        Self::build(raw)
    }
}

impl Default for Config {
    /// The embedded defaults, what an empty file gives.
    fn default() -> Self {
        Self::build(raw::RawConfig::default()).expect("the embedded defaults are a valid config")
    }
}
