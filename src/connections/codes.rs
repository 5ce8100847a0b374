//! The problem codes of the `connections` plugin, including those of the SSH and
//! pairing-client adapters it calls (the adapters know no HTTP; the mapping to problems
//! is `problems.rs`).

use crate::gateway::problem_codes;

problem_codes! {
    /// Every code the `connections` plugin answers with (beside the gateway's).
    pub CONNECTION_CODES {
        ALIAS_TAKEN = "alias_taken": "Another connection's name gives the same ssh_config `Host` alias (names that differ only in case, spaces or punctuation do); choose a name that differs in letters or digits.",
        KEYPAIR_UNUSABLE = "keypair_unusable": "The connection's keypair is gone or holds no private key; point the connection at another keypair.",
        OUTBOUND_FORBIDDEN = "outbound_forbidden": "The host or URL is, or resolves to, an address the outbound policy forbids (`outbound.allow` / `outbound.deny`; link-local and metadata addresses always); nothing was sent to it.",
        REMOTE_UNREACHABLE = "remote_unreachable": "The host name could not be resolved, or nothing accepted the connection.",
        REMOTE_TIMEOUT = "remote_timeout": "The remote did not answer within `connect_timeout`.",
        NOT_SSH = "not_ssh": "Something answered on the port, but it does not speak SSH.",
        NO_ACCEPTABLE_HOST_KEY = "no_acceptable_host_key": "The server offers no host key of a type credgate accepts (ed25519, ecdsa, rsa-sha2 with at least 2048 bits).",
        SSH_PROTOCOL_ERROR = "ssh_protocol_error": "The SSH handshake failed; `detail` says where.",
        REMOTE_TLS_UNVERIFIED = "remote_tls_unverified": "The remote's TLS certificate is not trusted: give the CA that signed it (`ca_certificate`), or set `verify_tls` to false.",
        REMOTE_AUTH_FAILED = "remote_auth_failed": "The remote refused `remote_api_key`.",
        REMOTE_FORBIDDEN = "remote_forbidden": "`remote_api_key` lacks the `pairing` scope on the remote.",
        REMOTE_REJECTED = "remote_rejected": "The remote refused the pairing or answered something that is not one; `remote_status`, `remote_code` and `remote_detail` say what it said.",
        LOGIN_FAILED = "login_failed": "The remote authorized the key but logging in with it over SSH failed (`login_error`); the remote's pairing was revoked again.",
    }
}
