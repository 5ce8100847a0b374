//! The problem codes of the `keypairs` plugin.

use crate::gateway::problem_codes;

problem_codes! {
    /// Every code the `keypairs` plugin answers with (beside the gateway's).
    pub KEYPAIR_CODES {
        IN_USE = "in_use": "The keypair is used by the connections listed in `dependants`; delete them first, or delete with `cascade=true`.",
        NO_PRIVATE_KEY = "no_private_key": "The keypair holds only a public key, so there is no private key to export.",
        CASCADE_FAILED = "cascade_failed": "A dependant cannot be deleted by a cascade (`detail` names its kind); nothing was deleted.",
    }
}
