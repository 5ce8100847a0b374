//! The host's own public host keys, as a caller should pin them: read from the
//! configured files (`pairing.host_key_files`, `*` in a file name matches any text),
//! keeping only keys credgate's SSH policy accepts.

use std::path::Path;

use russh::keys::ssh_key::PublicKey;

use crate::ssh::client::acceptable_host_key;

/// `type base64` lines (comments dropped), sorted and without duplicates.
pub fn read_host_keys(patterns: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = patterns
        .iter()
        .flat_map(|pattern| matching_files(pattern))
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|text| text.lines().filter_map(accepted_key).collect::<Vec<_>>())
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

fn accepted_key(line: &str) -> Option<String> {
    let key = PublicKey::from_openssh(line.trim()).ok()?;
    if !acceptable_host_key(&key) {
        return None;
    }
    let mut key = key;
    key.set_comment("");
    key.to_openssh().ok().map(|text| text.trim().to_owned())
}

/// The files a pattern names: itself when it has no `*`, else the entries of its
/// directory whose names match (only the file name may hold `*`).
fn matching_files(pattern: &str) -> Vec<std::path::PathBuf> {
    let path = Path::new(pattern);
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    if !name.contains('*') {
        return vec![path.to_path_buf()];
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| glob_match(name, n)))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

/// `*` matches any run of characters; everything else matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return name.is_empty(),
    };
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("ssh_host_*_key.pub", "ssh_host_ed25519_key.pub"));
        assert!(!glob_match("ssh_host_*_key.pub", "ssh_host_ed25519_key"));
        assert!(!glob_match("ssh_host_*_key.pub", "xssh_host_rsa_key.pub"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXcYb"));
        assert!(!glob_match("ab*ba", "aba"), "the two ends must not overlap");
        assert!(glob_match("plain", "plain"));
        assert!(!glob_match("plain", "plainer"));
    }

    #[test]
    fn reads_accepted_keys_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICcRT7VRD2gwxDwiPNxUbetOWgnkZ38ImkHCJ6h+0vm/";
        std::fs::write(
            dir.path().join("ssh_host_ed25519_key.pub"),
            format!("{ed} root@host\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("ssh_host_dsa_key.pub"),
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP== x\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("other.pub"), format!("{ed}\n")).unwrap();
        let pattern = format!("{}/ssh_host_*_key.pub", dir.path().display());
        assert_eq!(read_host_keys(&[pattern]), vec![ed.to_owned()]);
    }
}
