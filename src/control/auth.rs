//! Credentials of the control plane: bearer tokens read from files and compared in constant time,
//! or a client certificate verified by mTLS; one interceptor per service, so the Registry's and
//! the Admin API's credentials stay separate.

use std::path::Path;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::{Request, Status};

use crate::config::read_tokens;

/// What a caller of one service must present.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    tokens: Arc<Vec<String>>,
    /// A client certificate verified by the TLS layer is enough.
    accept_client_cert: bool,
}

impl Credentials {
    /// Credentials from token files; `mtls` accepts verified client certificates as well.
    pub fn load(files: &[impl AsRef<Path>], mtls: bool) -> Result<Self, String> {
        let mut tokens = Vec::new();
        for f in files {
            tokens.extend(read_tokens(f.as_ref())?);
        }
        Ok(Self {
            tokens: Arc::new(tokens),
            accept_client_cert: mtls,
        })
    }

    /// True when anything at all is required (no tokens and no mTLS: loopback-only, open).
    pub fn required(&self) -> bool {
        !self.tokens.is_empty() || self.accept_client_cert
    }

    /// Checks a request's credentials.
    pub fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if !self.required() {
            return Ok(());
        }
        if self.accept_client_cert && req.peer_certs().is_some_and(|c| !c.is_empty()) {
            return Ok(());
        }
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("missing credentials: send `authorization: Bearer <token>`")
            })?;
        // Compare against every token, always, so timing tells nothing about which (if any) matched.
        let ok = self.tokens.iter().fold(0u8, |acc, t| {
            acc | u8::from(bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
        });
        if ok == 1 {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid token"))
        }
    }

    /// A tonic interceptor enforcing these credentials; `on_refused` is called for each call
    /// refused.
    pub fn interceptor(
        self,
        on_refused: fn(),
    ) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
        move |req| {
            self.check(&req).inspect_err(|_| on_refused())?;
            Ok(req)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "\n  0123456789abcdef0123  \nfedcba9876543210fedc\n").unwrap();
        let c = Credentials::load(&[&f], false).unwrap();
        let with = |v: &str| {
            let mut r = Request::new(());
            r.metadata_mut().insert("authorization", v.parse().unwrap());
            r
        };
        assert!(c.check(&with("Bearer 0123456789abcdef0123")).is_ok());
        assert!(
            c.check(&with("Bearer fedcba9876543210fedc")).is_ok(),
            "rotation: any listed token"
        );
        assert!(c.check(&with("Bearer 0123456789abcdef012")).is_err());
        assert!(c.check(&with("0123456789abcdef0123")).is_err());
        assert!(c.check(&Request::new(())).is_err());
        assert!(
            Credentials::default().check(&Request::new(())).is_ok(),
            "nothing configured: open"
        );
    }
}
