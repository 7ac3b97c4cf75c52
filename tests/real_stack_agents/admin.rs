//! routerd's Admin API, as routerctl uses it, called from blocking test code.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint};
use uwsgi_router::api::admin_client::AdminClient;
use uwsgi_router::api::{ListNodesRequest, NodeInfo};

/// A client of the Admin service on routerd's control listener.
pub(crate) struct Admin {
    runtime: Runtime,
    endpoint: Endpoint,
    client: Option<AdminClient<Channel>>,
}

impl Admin {
    /// A client for the control listener at `control`; it connects on first use.
    pub(crate) fn new(control: SocketAddr) -> Admin {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let endpoint = Endpoint::from_shared(format!("http://{control}"))
            .expect("control endpoint")
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(2));
        Admin {
            runtime,
            endpoint,
            client: None,
        }
    }

    /// The nodes of pool `default`, or why they could not be listed.
    pub(crate) fn nodes(&mut self) -> Result<Vec<NodeInfo>, String> {
        let endpoint = self.endpoint.clone();
        let client = self.client.take();
        let (client, result) = self.runtime.block_on(async move {
            let mut client = match client {
                Some(client) => client,
                None => match endpoint.connect().await {
                    Ok(channel) => AdminClient::new(channel),
                    Err(e) => return (None, Err(format!("connect: {e}"))),
                },
            };
            let request = ListNodesRequest {
                pool: "default".to_owned(),
            };
            match client.list_nodes(request).await {
                Ok(reply) => (Some(client), Ok(reply.into_inner().nodes)),
                Err(status) => (None, Err(format!("ListNodes: {status}"))),
            }
        });
        self.client = client;
        result
    }

    /// The node with id `id`, if the router has it.
    pub(crate) fn node(&mut self, id: &str) -> Result<Option<NodeInfo>, String> {
        Ok(self.nodes()?.into_iter().find(|n| n.id == id))
    }
}
