//! The problem codes of the `audit` plugin.

use crate::gateway::problem_codes;

problem_codes! {
    /// Every code the `audit` plugin answers with (beside the gateway's).
    pub AUDIT_CODES {
        AUDIT_BUSY = "audit_busy": "Too many followed exports, or a chain check already running, on this instance; wait `Retry-After` seconds.",
    }
}
