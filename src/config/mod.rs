//! The TOML configuration: its model with embedded defaults, loading, and validation that names keys.

mod control;
pub mod duration;
mod metrics;
mod model;
mod subscription;
mod tokens;
mod validate;

pub use control::ControlConfig;
pub use metrics::{MetricsConfig, DEFAULT_METRICS_LISTEN, DEFAULT_METRICS_MAX_CONNECTIONS};
pub use model::{
    Algorithm, Config, EjectionConfig, LimitsConfig, ListenConfig, NodeEntry, PoolConfig,
    RouteConfig, TimeoutsConfig,
};
pub use subscription::{SignDigest, SubscriptionConfig};
pub use tokens::read_tokens;
pub use validate::{ConfigError, Problems};

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

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }
}
