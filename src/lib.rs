//! credgate keeps SSH keypairs and SSH connections for backup and replication jobs, as an
//! event-sourced, API-first gateway. See ARCHITECTURE.md for the shape; `main.rs` only parses
//! the command line and calls [`cli::run`].

/// What every checked-text type (`Name`, `Host`, `Username`) has besides its rules:
/// `as_str`, `Display`, and, with `stored:`, the serde conversions that check a stored
/// value again with the given function when it is read back.
macro_rules! checked_text {
    ($ty:ident) => {
        impl $ty {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
    ($ty:ident, stored: $parse:path) => {
        checked_text!($ty);

        impl TryFrom<String> for $ty {
            type Error = &'static str;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                $parse(&text)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                value.0
            }
        }
    };
}

pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod decimal;
pub mod files;
pub mod gateway;
pub mod keypairs;
pub mod names;
pub mod pairing;
pub mod plugins;
pub mod remote;
pub mod secrets;
pub mod ssh;
pub mod store;
pub mod telemetry;
