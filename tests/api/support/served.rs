//! `credgate` run as a process, the way an operator runs it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Runs `command` to its end without blocking the test's runtime. A service spawned by
/// the test (`TestApp`) runs on that same runtime: blocking it in `Command::output`
/// froze the service wherever it was, on SQLite possibly inside a write transaction
/// (the projection poller's), so a `credgate` verb opening the same file waited for a
/// lock nobody could release and failed with "database is locked".
pub async fn output_beside_the_service(mut command: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the command's thread")
        .expect("run the command")
}

/// The credgate binary, with nothing from the developer's environment.
pub fn credgate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_credgate"));
    // Nothing from the developer's environment leaks into these runs.
    for (name, _) in std::env::vars() {
        if name.starts_with("CREDGATE_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// A `credgate serve` process; its stderr lines arrive on `lines`.
pub struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Served {
    pub fn start(command: Command) -> Served {
        Self::start_listening(command, "127.0.0.1:0")
    }

    /// Like [`Served::start`], on the address `listen`.
    pub fn start_listening(mut command: Command, listen: &str) -> Served {
        let mut child = command
            .args(["serve"])
            .env("CREDGATE_LISTEN", listen)
            .env("CREDGATE_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("credgate starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Served {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the log line that carries `field`, and returns its value.
    pub fn wait_for_field(&mut self, field: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no `{field}` in the log; saw {:?}", self.seen));
            self.seen.push(line.clone());
            if let Ok(json) = serde_json::from_str::<Value>(&line)
                && let Some(value) = json["fields"][field].as_str()
            {
                return value.to_owned();
            }
        }
    }

    /// SIGTERM, then the exit status; the rest of stderr goes to `seen`.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = self.child.wait().expect("wait");
        self.seen.extend(self.lines.try_iter());
        (status, std::mem::take(&mut self.seen))
    }
}

impl Served {
    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
