//! What the agent shows the routers: the bearer token from its token file, and TLS settings for
//! `https://` routers (CA, and a client certificate for mTLS).

use std::path::{Path, PathBuf};

use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use super::config::TlsFiles;

/// Why the credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A file could not be read.
    #[error("{key} {}: cannot read: {source}", path.display())]
    Read {
        /// The config key naming the file.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error("token_file {}: no token (the file has no non-empty line)", path.display())]
    EmptyToken {
        /// The file.
        path: PathBuf,
    },
    /// The token cannot travel in a header.
    #[error("token_file {}: the token holds characters not allowed in a header", path.display())]
    BadToken {
        /// The file.
        path: PathBuf,
    },
}

/// The `authorization` header value for the token in `path`: `Bearer <first non-empty line>`.
pub(crate) fn bearer(
    path: &Path,
) -> Result<MetadataValue<tonic::metadata::Ascii>, CredentialsError> {
    let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
        key: "token_file",
        path: path.to_owned(),
        source,
    })?;
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| CredentialsError::EmptyToken {
            path: path.to_owned(),
        })?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialsError::BadToken {
            path: path.to_owned(),
        });
    }
    MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| CredentialsError::BadToken {
        path: path.to_owned(),
    })
}

/// The TLS settings for `https://` routers, or `None` without a CA.
pub(crate) fn tls_config(files: &TlsFiles) -> Result<Option<ClientTlsConfig>, CredentialsError> {
    let Some(ca) = &files.ca else {
        return Ok(None);
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("tls_ca", ca)?));
    if let Some((cert, key)) = &files.identity {
        tls = tls.identity(Identity::from_pem(
            read("tls_cert", cert)?,
            read("tls_key", key)?,
        ));
    }
    Ok(Some(tls))
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, CredentialsError> {
    std::fs::read(path).map_err(|source| CredentialsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_the_first_non_empty_line_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "\n  \n  s3cret \nother\n").unwrap();
        assert_eq!(bearer(&path).unwrap().to_str().unwrap(), "Bearer s3cret");
    }

    #[test]
    fn bad_token_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = bearer(&missing).unwrap_err().to_string();
        assert!(
            err.starts_with("token_file ") && err.contains("cannot read"),
            "{err}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n \n").unwrap();
        let err = bearer(&empty).unwrap_err().to_string();
        assert!(err.contains("no token"), "{err}");
        let spaced = dir.path().join("spaced");
        std::fs::write(&spaced, "two words\n").unwrap();
        assert!(matches!(
            bearer(&spaced),
            Err(CredentialsError::BadToken { .. })
        ));
    }
}
