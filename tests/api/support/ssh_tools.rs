//! The stock OpenSSH tools, to check credgate's keys against (interoperability) and to
//! make keys in every format for imports.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `ssh-keygen` with `args`; panics with its stderr when it fails.
pub fn ssh_keygen(args: &[&str]) -> String {
    let output = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen runs (scripts/test installs openssh-client)");
    assert!(
        output.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Writes `text` to `dir/name` with mode 0600 (ssh-keygen refuses readable keys).
pub fn write_key(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A fresh key made by ssh-keygen: `(private key text, public key line)`.
pub fn make_key(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let path = dir.join(name);
    let path_text = path.to_str().unwrap();
    let mut full = vec!["-q", "-f", path_text, "-C", "made-by-ssh-keygen"];
    full.extend_from_slice(args);
    ssh_keygen(&full);
    (
        std::fs::read_to_string(&path).unwrap(),
        std::fs::read_to_string(path.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned(),
    )
}

/// `SHA256:…` of a key file, as `ssh-keygen -l` prints it.
pub fn fingerprint_of(path: &Path) -> String {
    let line = ssh_keygen(&["-l", "-E", "sha256", "-f", path.to_str().unwrap()]);
    line.split_whitespace().nth(1).unwrap().to_owned()
}

/// `type base64` of a public key line (drops the comment).
pub fn key_part(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The base64 body lines of a PEM or OpenSSH private key: what must never be stored.
pub fn body_lines(private_key: &str) -> Vec<String> {
    private_key
        .lines()
        .filter(|l| !l.starts_with("-----") && !l.contains(':') && l.len() >= 32)
        .map(str::to_owned)
        .collect()
}

/// An encrypted OpenSSH private key with its bcrypt round count replaced by `rounds`
/// (so a test can present an absurd cost without spending it first).
pub fn with_bcrypt_rounds(private_key: &str, rounds: u32) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let body: String = private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut blob = STANDARD.decode(body).unwrap();
    // "openssh-key-v1\0", string cipher, string kdfname, string kdfoptions(string salt, u32 rounds)
    let mut at = b"openssh-key-v1\0".len();
    let read_len =
        |blob: &[u8], at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap()) as usize;
    for _ in 0..2 {
        at += 4 + read_len(&blob, at);
    }
    at += 4; // kdfoptions length
    at += 4 + read_len(&blob, at); // salt
    blob[at..at + 4].copy_from_slice(&rounds.to_be_bytes());
    let encoded = STANDARD.encode(blob);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(70)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
        lines.join("\n")
    )
}
