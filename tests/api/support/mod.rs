//! Test support: fresh stores, the app on port 0, a throwaway PostgreSQL cluster.

pub mod app;
pub mod certs;
pub mod clock;
pub mod db;
pub mod pg_cluster;
pub mod remote;
pub mod served;
pub mod ssh_tools;
pub mod sshd;

pub use app::{TestApp, documented_problem_codes, eventually, problem};
pub use db::{Backend, TestDb};

/// A free port *below* Linux's ephemeral range (32768–60999). A port the kernel handed
/// out for port 0 can be handed out again — to another test's listener or to an
/// outgoing connection — between this check and the server's bind, or while the
/// outage tests have the server stopped; ports below the range are only ever taken
/// by name.
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64 ^ rand_seed();
    (0..1000u64)
        .map(|i| {
            20_000 + ((seed.wrapping_mul(2_654_435_761).wrapping_add(i * 7919)) % 12_000) as u16
        })
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port between 20000 and 32000")
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

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
