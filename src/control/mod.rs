//! The control plane: a tonic server carrying the node `Registry` (and, later, the operators'
//! `Admin`), each behind its own credentials.

pub mod proto;
