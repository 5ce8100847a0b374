//! The problem codes of the `pairing` plugin (the remote side of semi-automatic setup).

use crate::gateway::problem_codes;

problem_codes! {
    /// Every code the `pairing` plugin answers with (beside the gateway's).
    pub PAIRING_CODES {
        USER_NOT_ALLOWED = "user_not_allowed": "The user is not in `pairing.allowed_users`.",
        USER_NOT_FOUND = "user_not_found": "No local account has this username.",
        HOME_MISSING = "home_missing": "The user's home directory does not exist, so there is no `~/.ssh` to write.",
        USER_CANNOT_LOGIN = "user_cannot_login": "The user's shell does not allow logging in (`nologin`, `false`).",
        HOST_KEYS_UNAVAILABLE = "host_keys_unavailable": "None of `pairing.host_key_files` could be read, so there are no host keys to hand out.",
        AUTHORIZED_KEYS_UNWRITABLE = "authorized_keys_unwritable": "The user's authorized_keys file could not be written; the pairing was recorded as revoked.",
        SUDOERS_REFUSED = "sudoers_refused": "`visudo` refused the sudoers drop-in; no sudo rule was written.",
        SUDOERS_UNWRITABLE = "sudoers_unwritable": "The sudoers drop-in could not be written in `pairing.sudoers_dir`.",
        REVOCATION_TOKEN_REFUSED = "revocation_token_refused": "The revocation token does not revoke this pairing (or no such pairing exists).",
        MISSING_REVOCATION_TOKEN = "missing_revocation_token": "Revoking a pairing needs its revocation token, in `X-Revocation-Token` or the body.",
    }
}
