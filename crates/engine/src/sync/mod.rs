//! Federation: one province, many consoles. Every change that matters to more than one node
//! (what happens to alerts, incidents, directives and silences) is an operation in a persisted log, written in the same
//! transaction as the change, with its origin node, a sequence per origin and a hybrid
//! logical clock time ([`hlc`]). Nodes exchange the operations the other has not seen, and
//! the state of a shared thing is a fold of its operations in one order every node agrees on
//! ([`fold`]), so all nodes end in the same state whatever order the operations came in.

pub mod config;
pub mod fold;
pub mod hlc;
pub mod op;
pub mod serve;
pub mod upstream;
pub mod wire;

pub use config::{NodeConfig, UpstreamConfig};

/// Who the SOP templates and KPI definitions kept from the province's IOC are by, here:
/// read-only on the node (they are changed at the IOC).
pub const PROVINCE: &str = "province";

/// The source name of what another node sends (`node:oc-nam-dan`): its devices are that
/// node's, evaluated by its own rules.
pub const NODE_SOURCE: &str = "node:";
pub use hlc::{Hlc, HlcClock};
pub use op::{AlertOp, Change, DirectiveOp, Gid, IncidentAct, IncidentOp, OpRecord, SilenceOp};
