//! A real OpenSSH `sshd` per test: absolute path, its own config, host keys and
//! authorized_keys in a temp dir, loopback only, a free port; stopped on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ssh_tools::ssh_keygen;

pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// Host key types and sizes (`None`: ssh-keygen's default size).
    host_keys: Vec<(&'static str, Option<&'static str>)>,
    /// sshd_config lines added after the standard ones.
    extra_config: String,
}

/// The user tests log in as: whoever runs the tests (root in CI).
pub fn login_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Sshd {
    /// Starts sshd with fresh ed25519, ecdsa and rsa host keys.
    pub fn start() -> Sshd {
        Self::start_with_host_keys(&[
            ("ed25519", None),
            ("ecdsa", Some("256")),
            ("rsa", Some("3072")),
        ])
    }

    /// Starts sshd with only these host keys, e.g. `[("rsa", Some("1024"))]`.
    pub fn start_with_host_keys(host_keys: &[(&'static str, Option<&'static str>)]) -> Sshd {
        Self::start_with(host_keys, "")
    }

    /// Starts sshd with these host keys and these extra sshd_config lines (e.g.
    /// `HostKeyAlgorithms ssh-rsa`).
    pub fn start_with(host_keys: &[(&'static str, Option<&'static str>)], extra: &str) -> Sshd {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sshd = Sshd {
            dir,
            port: super::free_port(),
            child: None,
            host_keys: host_keys.to_vec(),
            extra_config: extra.to_owned(),
        };
        sshd.new_host_keys();
        std::fs::write(sshd.path("authorized_keys"), "").unwrap();
        sshd.run();
        sshd
    }

    /// The file sshd reads authorized keys from.
    pub fn authorized_keys(&self) -> PathBuf {
        self.path("authorized_keys")
    }

    /// A `pairing.host_key_files` pattern matching this server's public host keys.
    pub fn host_key_pattern(&self) -> String {
        format!("{}/host_*.pub", self.dir.path().display())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn new_host_keys(&self) {
        for &(kind, bits) in &self.host_keys {
            let file = self.path(&format!("host_{kind}"));
            let _ = std::fs::remove_file(&file);
            let _ = std::fs::remove_file(file.with_extension("pub"));
            let mut args = vec!["-q", "-N", "", "-t", kind, "-f", file.to_str().unwrap()];
            if let Some(bits) = bits {
                args.extend(["-b", bits]);
            }
            ssh_keygen(&args);
        }
    }

    fn run(&mut self) {
        std::fs::create_dir_all("/run/sshd").ok();
        let d = self.dir.path().display();
        let host_key_lines: String = self
            .host_keys
            .iter()
            .map(|(kind, _)| format!("HostKey {d}/host_{kind}\n"))
            .collect();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\n{host_key_lines}\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
             UsePAM no\nStrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nLogLevel VERBOSE\n\
             PubkeyAcceptedAlgorithms -ssh-rsa,ssh-rsa-cert-v01@openssh.com\n{extra}",
            port = self.port,
            extra = self.extra_config,
        );
        std::fs::write(self.path("sshd_config"), config).unwrap();
        let check = Command::new(SSHD)
            .args(["-t", "-f"])
            .arg(self.path("sshd_config"))
            .output()
            .expect("sshd -t");
        assert!(
            check.status.success(),
            "sshd config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(SSHD)
            .args(["-D", "-f"])
            .arg(self.path("sshd_config"))
            .arg("-E")
            .arg(self.path("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("sshd starts (scripts/test installs openssh-server)");
        self.child = Some(child);
        let logged = self.connections_logged();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The probe's connection is in the log before the server counts as started, so
        // a test counting connections counts only its own.
        while self.connections_logged() == logged {
            assert!(
                Instant::now() < deadline,
                "sshd did not log the probe: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many connections sshd has logged (`Connection from …`).
    pub fn connections_logged(&self) -> usize {
        self.log().matches("Connection from").count()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Restarts on the same port with new host keys (a different server, or a MITM).
    pub fn restart_with_new_host_keys(&mut self) {
        self.stop();
        self.new_host_keys();
        self.run();
    }

    pub fn authorize(&self, public_key_line: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.path("authorized_keys"))
            .unwrap();
        writeln!(file, "{public_key_line}").unwrap();
    }

    pub fn revoke_all(&self) {
        std::fs::write(self.path("authorized_keys"), "").unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    /// `type base64` → `SHA256:…` of every host key, as `ssh-keygen -l` prints them
    /// from the key files.
    pub fn host_key_fingerprints(&self) -> Vec<(String, String)> {
        self.host_keys
            .iter()
            .map(|(kind, _)| {
                let public = self.path(&format!("host_{kind}.pub"));
                let line = std::fs::read_to_string(&public).expect("host key .pub");
                (
                    crate::support::ssh_tools::key_part(&line),
                    crate::support::ssh_tools::fingerprint_of(&public),
                )
            })
            .collect()
    }

    /// What the stock `ssh-keyscan` prints for this server, as `type base64` lines.
    pub fn keyscan(&self) -> Vec<String> {
        let out = Command::new("ssh-keyscan")
            .args(["-p", &self.port.to_string(), "127.0.0.1"])
            .output()
            .expect("ssh-keyscan");
        let mut keys: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let parts: Vec<&str> = l.split_whitespace().collect();
                (parts.len() >= 3).then(|| format!("{} {}", parts[1], parts[2]))
            })
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}
