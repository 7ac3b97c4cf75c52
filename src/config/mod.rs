//! The TOML configuration: its model with embedded defaults, loading, and validation that names keys.

mod model;
mod validate;

pub use model::{
    Algorithm, Config, EjectionConfig, LimitsConfig, ListenConfig, NodeEntry, PoolConfig,
    RouteConfig, TimeoutsConfig,
};
pub use validate::ConfigError;

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
