//! How a config is refused: every problem collected, each naming its key and what to write
//! instead, reported together.

use std::fmt;

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML, or a key of the wrong type or unknown.
    #[error("invalid config: {0}")]
    Syntax(String),
    /// Valid TOML whose values do not make sense together.
    #[error("invalid config:\n{0}")]
    Invalid(Problems),
}

/// Every semantic problem found, one per line as `key: what is wrong`.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl Problems {
    /// Records that `key` is wrong, and how.
    pub fn add(&mut self, key: impl fmt::Display, what: impl fmt::Display) {
        self.0.push(format!("{key}: {what}"));
    }

    /// The problems, each as `key: what is wrong`.
    pub fn lines(&self) -> &[String] {
        &self.0
    }

    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `r`'s value, or `None` with its error recorded against `key`.
    pub(crate) fn check<T, E: fmt::Display>(
        &mut self,
        key: impl fmt::Display,
        r: Result<T, E>,
    ) -> Option<T> {
        r.map_err(|e| self.add(key, e)).ok()
    }

    /// `r`'s value, or `placeholder` with the error recorded against `key`. A config with any
    /// problem is refused whole, so the placeholder is never used: it only lets the rest of the
    /// config be checked too.
    pub(crate) fn check_or<T, E: fmt::Display>(
        &mut self,
        key: impl fmt::Display,
        r: Result<T, E>,
        placeholder: T,
    ) -> T {
        match r {
            Ok(value) => value,
            Err(e) => {
                self.add(key, e);
                placeholder
            }
        }
    }

    /// `value` when nothing is wrong, else every problem.
    pub(crate) fn result<T>(self, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError::Invalid(self))
        }
    }
}
