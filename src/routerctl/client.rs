//! Connections to the Admin API of one or more routers: the bearer token, TLS for `https://`
//! URLs, and calls made to every router at once, each answer classified into a [`CtlError`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinSet;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use super::error::{cause_of, CtlError};
use crate::api::admin_client::AdminClient;

/// How long connecting to a router may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one unary call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// An Admin API client that presents the token, if any.
pub type Client = AdminClient<InterceptedService<Channel, Bearer>>;

/// Where the routers are and what to show them.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// Control URLs (`http://host:port` or `https://host:port`).
    pub routers: Vec<String>,
    /// File whose first non-empty line is the admin token.
    pub token_file: Option<PathBuf>,
    /// CA (PEM) that the routers' certificates chain to.
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS.
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
}

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// One router: its URL and, if connecting worked, a client.
#[derive(Debug)]
pub struct Router {
    /// The URL as given.
    pub url: String,
    endpoint: Endpoint,
    client: Result<Client, String>,
}

/// Every router of one command, in the order given.
#[derive(Debug)]
pub struct Routers {
    /// The routers.
    pub list: Vec<Router>,
    bearer: Bearer,
}

impl Routers {
    /// Connects to every router at once. A router that cannot be reached is kept, and each call
    /// to it answers [`CtlError::Unreachable`]; bad credential files fail here.
    pub async fn connect(opts: &Connect) -> Result<Self, CtlError> {
        let bearer = Bearer(opts.token_file.as_deref().map(bearer).transpose()?);
        let tls = tls_config(opts)?;
        let mut list = Vec::new();
        for url in &opts.routers {
            list.push(Router {
                url: url.clone(),
                endpoint: endpoint(url, tls.clone())?,
                client: Err("not connected yet".to_owned()),
            });
        }
        let mut routers = Self { list, bearer };
        routers.reconnect().await;
        Ok(routers)
    }

    /// Tries again to connect to the routers that could not be reached (a connected client
    /// reconnects by itself).
    pub async fn reconnect(&mut self) {
        let mut set = JoinSet::new();
        for (i, r) in self.list.iter().enumerate() {
            if r.client.is_err() {
                let endpoint = r.endpoint.clone();
                set.spawn(async move { (i, endpoint.connect().await.map_err(|e| cause_of(&e))) });
            }
        }
        for (i, channel) in set.join_all().await {
            let bearer = self.bearer.clone();
            self.list[i].client = channel.map(|c| AdminClient::with_interceptor(c, bearer));
        }
    }

    /// Calls `f` on every router at once; the answers come back in router order. `action` names
    /// the call in error messages.
    pub async fn all<T, F, Fut>(&self, action: &'static str, f: F) -> Vec<Result<T, CtlError>>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let mut set = JoinSet::new();
        for (i, r) in self.list.iter().enumerate() {
            let url = r.url.clone();
            let call = r.client.clone().map(&f);
            set.spawn(async move {
                let answer = match call {
                    Err(cause) => Err(CtlError::Unreachable { router: url, cause }),
                    Ok(call) => match tokio::time::timeout(CALL_TIMEOUT, call).await {
                        Ok(Ok(t)) => Ok(t),
                        Ok(Err(status)) => Err(CtlError::from_status(action, &url, &status)),
                        Err(_) => Err(CtlError::Unreachable {
                            router: url,
                            cause: format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
                        }),
                    },
                };
                (i, answer)
            });
        }
        let mut answers = set.join_all().await;
        answers.sort_by_key(|(i, _)| *i);
        answers.into_iter().map(|(_, a)| a).collect()
    }

    /// The URLs, in order.
    pub fn urls(&self) -> Vec<String> {
        self.list.iter().map(|r| r.url.clone()).collect()
    }
}

fn endpoint(url: &str, tls: Option<ClientTlsConfig>) -> Result<Endpoint, CtlError> {
    let bad = |e: &dyn std::fmt::Display| CtlError::Failed(format!("router URL {url}: {e}"));
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| bad(&e))?
        .connect_timeout(CONNECT_TIMEOUT);
    if url.starts_with("https://") {
        let tls = tls.ok_or_else(|| {
            CtlError::Failed(format!(
                "router {url} uses TLS: give the CA that signed its certificate with --tls-ca"
            ))
        })?;
        endpoint = endpoint.tls_config(tls).map_err(|e| bad(&e))?;
    }
    Ok(endpoint)
}

/// `Bearer <first non-empty line of path>`.
fn bearer(path: &Path) -> Result<MetadataValue<Ascii>, CtlError> {
    let fail = |why: &str| {
        CtlError::Failed(format!(
            "token file {}: {why} — set --token-file or ROUTERCTL_TOKEN_FILE to a file holding an admin token",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(&e.to_string()))?;
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| fail("holds no token"))?;
    MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| fail("the token holds characters not allowed in a header"))
}

fn tls_config(opts: &Connect) -> Result<Option<ClientTlsConfig>, CtlError> {
    let Some(ca) = &opts.tls_ca else {
        return Ok(None);
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?)),
        (None, None) => {}
        _ => {
            return Err(CtlError::Failed(
                "--tls-cert and --tls-key go together".to_owned(),
            ))
        }
    }
    Ok(Some(tls))
}

fn read(path: &Path) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path)
        .map_err(|e| CtlError::Failed(format!("cannot read {}: {e}", path.display())))
}
