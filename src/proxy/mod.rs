//! The data plane. A listener accepts clients (a permit first, so excess waits in the kernel
//! backlog); each session reads the request head (`head`), routes it, connects to a node with
//! retries (`connect`), forwards bytes both ways (`forward`) and records the outcome (`outcome`).

mod connect;
mod dispatch;
mod forward;
mod head;
mod listener;
mod outcome;
mod session;

pub use dispatch::{Dispatch, Dispatcher, SharedDispatch};
pub use listener::{BadListenAddr, ListenAddr, Listener};
