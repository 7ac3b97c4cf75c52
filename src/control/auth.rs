//! Credentials of the control plane: bearer tokens read from files and compared in constant time,
//! or a client certificate verified by mTLS; one interceptor per service, so the Registry's and
//! the Admin API's credentials stay separate.

use std::path::Path;
use std::sync::Arc;

use subtle::{ConditionallySelectable, ConstantTimeEq};
use tonic::{Request, Status};

use crate::config::read_tokens;

/// Who called, as the request's extensions carry it to the service: the name of the token it
/// presented (`FILE#N`, the N-th token of that file), `client certificate sha256:...`, or
/// `anonymous` where no credentials are required.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<str>);

/// What a caller of one service must present.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    tokens: Arc<Vec<String>>,
    /// Each token's name, by index.
    names: Arc<Vec<Arc<str>>>,
    /// A client certificate verified by the TLS layer is enough.
    accept_client_cert: bool,
}

impl Credentials {
    /// Credentials from token files; `mtls` accepts verified client certificates as well.
    pub fn load(files: &[impl AsRef<Path>], mtls: bool) -> Result<Self, String> {
        let mut tokens = Vec::new();
        let mut names = Vec::new();
        for f in files {
            let file = f.as_ref();
            let short = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            for (i, t) in read_tokens(file)?.into_iter().enumerate() {
                tokens.push(t);
                names.push(Arc::from(format!("token {short}#{}", i + 1)));
            }
        }
        Ok(Self {
            tokens: Arc::new(tokens),
            names: Arc::new(names),
            accept_client_cert: mtls,
        })
    }

    /// True when anything at all is required (no tokens and no mTLS: loopback-only, open).
    pub fn required(&self) -> bool {
        !self.tokens.is_empty() || self.accept_client_cert
    }

    /// Checks a request's credentials; returns who the caller is.
    pub fn check<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        if !self.required() {
            return Ok(Caller(Arc::from("anonymous")));
        }
        if self.accept_client_cert {
            if let Some(cert) = req.peer_certs().and_then(|c| c.first().cloned()) {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(cert.as_ref());
                let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                return Ok(Caller(Arc::from(format!(
                    "client certificate sha256:{hex}"
                ))));
            }
        }
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("missing credentials: send `authorization: Bearer <token>`")
            })?;
        // Compare against every token, always, so timing tells nothing about which (if any)
        // matched; the match's index is selected in constant time too.
        let mut matched = subtle::Choice::from(0);
        let mut which = 0u64;
        for (i, t) in self.tokens.iter().enumerate() {
            let eq = t.as_bytes().ct_eq(presented.as_bytes());
            which = u64::conditional_select(&which, &(i as u64), eq);
            matched |= eq;
        }
        if bool::from(matched) {
            let name = usize::try_from(which)
                .ok()
                .and_then(|i| self.names.get(i))
                .cloned()
                .unwrap_or_else(|| Arc::from("token"));
            Ok(Caller(name))
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
        move |mut req| {
            let caller = self.check(&req).inspect_err(|_| on_refused())?;
            req.extensions_mut().insert(caller);
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
