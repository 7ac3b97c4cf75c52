//! The node's operator state on one router's session: sent whenever it changes (an operator's
//! change passed on by any router), so every router applies it.

use tokio::sync::mpsc;

use super::{message, End, RouterLink, Stream};
use crate::api::node_message;

impl RouterLink {
    /// Queues the operator state now kept; a router that stopped taking messages ends the
    /// session (the next announce carries the state).
    pub(super) fn send_admin_state(&mut self, s: &Stream) -> Result<(), End> {
        let state = self.admin_state.borrow_and_update().clone();
        match s.tx.try_send(message(node_message::Msg::Admin(state))) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(End::Failed(
                "the router stopped taking messages (the node's operator state)".to_owned(),
            )),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(End::Failed("the session's stream closed".to_owned()))
            }
        }
    }
}
