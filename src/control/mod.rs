//! The control plane: one tonic server carrying the node `Registry` (and the operators' `Admin`),
//! each behind its own credentials, on the `[control]` listener.

mod admin;
mod admin_view;
mod agent_admin;
mod announce;
pub mod auth;
mod codec;
mod holders;
mod listen;
mod registry;
mod reject;

pub use admin::{AdminService, RouterControl};
pub use admin_view::node_info;
pub use registry::RegistryService;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use self::auth::Credentials;
use self::codec::server::registry_server::RegistryServer;
use crate::api::admin_server::AdminServer;
use crate::cluster::Cluster;
use crate::config::ControlConfig;
use crate::conn_limit::Limiter;

/// Why the control listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Binding the listener failed.
    #[error("cannot listen on control.listen {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A token, certificate or key file could not be used.
    #[error("control plane credentials: {0}")]
    Credentials(String),
}

/// Binds the control listener if `[control] listen` is set; [`Bound::serve`] then starts it.
/// Binding comes first so that the router's status can name the bound address.
pub async fn bind(config: &ControlConfig) -> Result<Option<Bound>, ControlError> {
    let Some(addr) = config.listen else {
        return Ok(None);
    };
    let bind = || {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        // Accepted streams inherit it: gRPC messages are small, and Nagle would hold each for
        // an ACK (tens of milliseconds on every Accepted, Drained, report...).
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    };
    let listener = bind().map_err(|source| ControlError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ControlError::Bind { addr, source })?;
    Ok(Some(Bound {
        listener,
        local,
        max_connections: config.max_connections,
        config: config.clone(),
    }))
}

/// A bound, not yet serving, control listener.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    local: SocketAddr,
    /// `control.max_connections`, or less when the open file limit calls for it.
    max_connections: usize,
    config: ControlConfig,
}

impl Bound {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves at most `max` connections at once instead of `control.max_connections`.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// This router's id in the control plane: `hostname@control address`.
    pub fn router_id(&self) -> String {
        format!("{}@{}", hostname(), self.local)
    }

    /// Serves Registry and Admin, each behind its own credentials, until `shutdown`.
    pub fn serve(
        self,
        cluster: Arc<Cluster>,
        router: Arc<dyn RouterControl>,
        shutdown: CancellationToken,
    ) -> Result<(), ControlError> {
        let config = &self.config;
        let mtls = config.tls_client_ca.is_some();
        let registry_creds = Credentials::load(&config.registry_token_files, mtls)
            .map_err(ControlError::Credentials)?;
        let admin_creds = Credentials::load(&config.admin_token_files, mtls)
            .map_err(ControlError::Credentials)?;
        // Idle authenticated connections are pinged; a peer that stops answering is dropped.
        let mut builder = Server::builder()
            .http2_keepalive_interval(Some(config.keepalive_interval))
            .http2_keepalive_timeout(Some(config.keepalive_timeout));
        if let Some(tls) = tls_config(config)? {
            builder = builder
                .tls_config(tls)
                .map_err(|e| ControlError::Credentials(e.to_string()))?;
        }
        let limiter = Limiter::new("control.max_connections", self.max_connections);
        let registry =
            RegistryService::new(cluster.clone(), config, &self.router_id(), shutdown.clone());
        let admin = AdminService::new(cluster, router, shutdown.clone()).with_agents(&registry);
        let registry =
            RegistryServer::new(registry).max_decoding_message_size(config.max_message_bytes);
        let admin = AdminServer::new(admin).max_decoding_message_size(config.max_message_bytes);
        let router = builder
            .add_service(InterceptedService::new(
                registry,
                proving(registry_creds, limiter.clone(), || {
                    reject::RejectReason::Unauthenticated.count()
                }),
            ))
            .add_service(InterceptedService::new(
                admin,
                proving(admin_creds, limiter.clone(), || {
                    crate::metrics::admin_refused("unauthenticated")
                }),
            ));
        tracing::info!(
            address = %self.local,
            tls = config.tls_cert.is_some(),
            mtls,
            max_connections = self.max_connections,
            "control plane listening"
        );
        let incoming = listen::incoming(self.listener, limiter, config.handshake_timeout);
        tokio::spawn(async move {
            if let Err(e) = router
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "control plane server failed");
            }
        });
        Ok(())
    }
}

/// `creds`' interceptor, which also marks the connection of a call that passes as proven: it
/// then keeps its slot and is no longer subject to `control.handshake_timeout`. A call refused
/// is counted by `on_refused`, as the service counts its refusals.
fn proving(
    creds: Credentials,
    limiter: Limiter,
    on_refused: fn(),
) -> impl FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    let mut check = creds.interceptor(on_refused);
    move |req| {
        let req = check(req)?;
        limiter.prove_peer(req.local_addr(), req.remote_addr());
        Ok(req)
    }
}

fn tls_config(config: &ControlConfig) -> Result<Option<ServerTlsConfig>, ControlError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read(p)
            .map_err(|e| ControlError::Credentials(format!("cannot read {}: {e}", p.display())))
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &config.tls_client_ca {
        // Optional at the TLS layer: a caller without a certificate may still present a token.
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(true);
    }
    Ok(Some(tls))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "routerd".to_owned())
}
