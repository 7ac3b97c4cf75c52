//! The HTTP/1.1 front end: keep-alive connections from nginx's `proxy_pass` or any load
//! balancer, each request turned into the uwsgi packet nginx's `uwsgi_params` would make and
//! served by the same session core as the uwsgi listener.

mod chunked;
mod client;
mod relay;
mod server;
pub(crate) mod vars;

pub(super) use server::serve_connection;
pub(super) use vars::ConnInfo;
