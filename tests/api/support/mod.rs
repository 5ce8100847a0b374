//! Test support: fresh stores, the app on port 0, a throwaway PostgreSQL cluster.

pub mod app;
pub mod certs;
pub mod clock;
pub mod db;
pub mod pg_cluster;
pub mod served;
pub mod ssh_tools;
pub mod sshd;

pub use app::{TestApp, eventually, problem};
pub use db::{Backend, TestDb};

/// Runs an async test body whose subject does not depend on the store (parsing,
/// validation, key material) once, on SQLite. The test names end in `::sqlite`.
#[macro_export]
macro_rules! once_on_sqlite {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::support::Backend;

                #[tokio::test]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await;
                }
            }
        )*
    };
}

/// Runs one async test body once per store: a fresh SQLite file and a fresh PostgreSQL
/// database. The test names end in `::sqlite` and `::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::support::Backend;

                #[tokio::test]
                async fn sqlite() {
                    super::$name(Backend::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(Backend::Postgres).await;
                }
            }
        )*
    };
}
