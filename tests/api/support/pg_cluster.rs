//! A throwaway PostgreSQL cluster owned by one test, which the test may stop and start
//! (to prove credgate survives an outage). Built from the local PostgreSQL binaries
//! (`CREDGATE_TEST_PG_BIN`, else the newest /usr/lib/postgresql/*/bin); when running as
//! root the server runs as the `postgres` user, as PostgreSQL requires.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    owner: Option<(u32, u32)>,
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("CREDGATE_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL binaries: install postgresql or set CREDGATE_TEST_PG_BIN")
}

/// uid/gid of the `postgres` user when we are root, since PostgreSQL refuses to run as root.
fn owner() -> Option<(u32, u32)> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .flatten()
    })
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        let owner = owner();
        if let Some((uid, gid)) = owner {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{uid}:{gid}"))
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let cluster = PgCluster {
            bin,
            dir,
            port: super::free_port(),
            owner,
        };
        let data = cluster.data_dir();
        let status = cluster
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            status.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        cluster.start_server();
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        command
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections (`pg_ctl -w`).
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -h 127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-t", "60", "-o", &options, "-l"])
            .arg(self.dir.path().join("server.log"))
            .arg("start")
            .output()
            .expect("pg_ctl start");
        assert!(
            output.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            self.log()
        );
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop_server(&self) {
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", "fast", "stop"])
            .output()
            .expect("pg_ctl stop");
        assert!(
            output.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}
