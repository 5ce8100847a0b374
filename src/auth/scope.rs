//! What an API key may do. `admin` implies every scope and `X:write` implies `X:read`;
//! `connections:use` and `secrets:export` hand out secrets, so only `admin` implies them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
pub enum Scope {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "keypairs:read")]
    KeypairsRead,
    #[serde(rename = "keypairs:write")]
    KeypairsWrite,
    #[serde(rename = "connections:read")]
    ConnectionsRead,
    #[serde(rename = "connections:write")]
    ConnectionsWrite,
    #[serde(rename = "connections:use")]
    ConnectionsUse,
    #[serde(rename = "secrets:export")]
    SecretsExport,
    #[serde(rename = "pairing")]
    Pairing,
    #[serde(rename = "pairing:admin")]
    PairingAdmin,
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 10] = [
        Scope::Admin,
        Scope::KeypairsRead,
        Scope::KeypairsWrite,
        Scope::ConnectionsRead,
        Scope::ConnectionsWrite,
        Scope::ConnectionsUse,
        Scope::SecretsExport,
        Scope::Pairing,
        Scope::PairingAdmin,
        Scope::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::KeypairsRead => "keypairs:read",
            Scope::KeypairsWrite => "keypairs:write",
            Scope::ConnectionsRead => "connections:read",
            Scope::ConnectionsWrite => "connections:write",
            Scope::ConnectionsUse => "connections:use",
            Scope::SecretsExport => "secrets:export",
            Scope::Pairing => "pairing",
            Scope::PairingAdmin => "pairing:admin",
            Scope::AuditRead => "audit:read",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether holding `self` grants `needed`.
    pub fn implies(self, needed: Scope) -> bool {
        self == needed
            || self == Scope::Admin
            || matches!(
                (self, needed),
                (Scope::KeypairsWrite, Scope::KeypairsRead)
                    | (Scope::ConnectionsWrite, Scope::ConnectionsRead)
            )
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether any of `held` grants `needed`.
pub fn grants(held: &[Scope], needed: Scope) -> bool {
    held.iter().any(|s| s.implies(needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implications_follow_the_policy() {
        assert!(grants(&[Scope::Admin], Scope::SecretsExport));
        assert!(grants(&[Scope::KeypairsWrite], Scope::KeypairsRead));
        assert!(!grants(&[Scope::KeypairsRead], Scope::KeypairsWrite));
        assert!(!grants(&[Scope::ConnectionsWrite], Scope::ConnectionsUse));
        assert!(!grants(&[Scope::KeypairsWrite], Scope::SecretsExport));
        assert!(!grants(&[Scope::AuditRead], Scope::Admin));
        assert!(!grants(&[], Scope::AuditRead));
    }

    /// Every pair of scopes: row = held, column = needed, in `Scope::ALL` order
    /// (admin, keypairs:read, keypairs:write, connections:read, connections:write,
    /// connections:use, secrets:export, pairing, pairing:admin, audit:read). Only admin
    /// grants the two secret-handing scopes; write grants read within its family.
    #[test]
    fn the_scope_lattice_is_exactly_this_table() {
        const TABLE: [[u8; 10]; 10] = [
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], // admin
            [0, 1, 0, 0, 0, 0, 0, 0, 0, 0], // keypairs:read
            [0, 1, 1, 0, 0, 0, 0, 0, 0, 0], // keypairs:write
            [0, 0, 0, 1, 0, 0, 0, 0, 0, 0], // connections:read
            [0, 0, 0, 1, 1, 0, 0, 0, 0, 0], // connections:write
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0], // connections:use
            [0, 0, 0, 0, 0, 0, 1, 0, 0, 0], // secrets:export
            [0, 0, 0, 0, 0, 0, 0, 1, 0, 0], // pairing
            [0, 0, 0, 0, 0, 0, 0, 0, 1, 0], // pairing:admin
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], // audit:read
        ];
        for (row, held) in Scope::ALL.into_iter().enumerate() {
            for (column, needed) in Scope::ALL.into_iter().enumerate() {
                assert_eq!(
                    held.implies(needed),
                    TABLE[row][column] == 1,
                    "{held} grants {needed}?"
                );
                assert_eq!(grants(&[held], needed), TABLE[row][column] == 1);
            }
        }
        for needed in Scope::ALL {
            assert!(!grants(&[], needed), "no scope grants {needed}");
            let all_but_admin: Vec<Scope> = Scope::ALL
                .into_iter()
                .filter(|s| *s != Scope::Admin)
                .collect();
            assert_eq!(
                grants(&all_but_admin, needed),
                needed != Scope::Admin,
                "every scope but admin itself is held without admin"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.to_string(), scope.as_str());
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
        }
        assert_eq!(Scope::parse("root"), None);
    }
}

/// A scope a handler requires, as a type, so the check can be an extractor that runs
/// before the request body is read (see `gateway::Authorized`).
pub trait RequiredScope {
    const SCOPE: Scope;
}

/// Scope requirements usable as `Authorized<require::X>`.
pub mod require {
    use super::{RequiredScope, Scope};

    macro_rules! requirements {
        ($($marker:ident => $scope:ident),* $(,)?) => {
            $(
                pub struct $marker;
                impl RequiredScope for $marker {
                    const SCOPE: Scope = Scope::$scope;
                }
            )*
        };
    }

    requirements!(
        Admin => Admin,
        KeypairsRead => KeypairsRead,
        KeypairsWrite => KeypairsWrite,
        ConnectionsRead => ConnectionsRead,
        ConnectionsWrite => ConnectionsWrite,
        ConnectionsUse => ConnectionsUse,
        SecretsExport => SecretsExport,
        Pairing => Pairing,
        PairingAdmin => PairingAdmin,
        AuditRead => AuditRead,
    );
}
