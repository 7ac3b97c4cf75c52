//! Round robin: each usable node in turn, ignoring weights.

use std::sync::atomic::AtomicUsize;

use super::{rotate, Balance, PickContext};

/// Round robin over the snapshot's nodes.
#[derive(Debug, Default)]
pub(super) struct RoundRobin {
    next: AtomicUsize,
}

impl Balance for RoundRobin {
    fn pick(&self, cx: &PickContext<'_>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = cx.nodes.len();
        if n == 0 {
            return None;
        }
        rotate(&self.next, n, usable)
    }
}
