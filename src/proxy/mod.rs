//! The data plane. A listener accepts clients (a permit first, so excess waits in the kernel
//! backlog); each session reads the request head (`head`), routes it, connects to a node with
//! retries (`connect`), forwards bytes both ways (`forward`) and ends in one place (`end`): the
//! router's reply if any, the outcome recorded, the log line. `dispatch` holds the snapshot
//! sessions read, and its one writer.

mod connect;
mod counted;
mod dispatch;
mod duplex;
mod end;
mod failure;
mod forward;
mod head;
mod http;
mod listener;
mod replay;
mod session;

pub use dispatch::{Dispatch, Dispatcher, SharedDispatch};
pub use listener::{Front, Listener};
