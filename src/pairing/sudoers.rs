//! The optional sudo grant of a pairing: a drop-in in `pairing.sudoers_dir` allowing the
//! paired user passwordless `/usr/sbin/zfs` and nothing else (what replication needs).
//! It is checked with `visudo -cf` before it is put in place; a file that does not pass
//! is never installed.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use uuid::Uuid;

use crate::ssh::Username;

#[derive(Debug, thiserror::Error)]
pub enum SudoersError {
    #[error("the sudoers drop-in could not be written: {0}")]
    Io(#[from] io::Error),
    #[error("visudo refused the sudoers drop-in: {0}")]
    Refused(String),
}

/// The drop-in's path. sudo skips names with a `.`, so the temporary file
/// (`.credgate-….tmp`) is never read by it.
pub fn drop_in_path(dir: &Path, pairing_id: &Uuid) -> PathBuf {
    dir.join(format!("credgate-{}", pairing_id.simple()))
}

pub fn drop_in_text(user: &Username) -> String {
    format!(
        "# Written by credgate for one pairing; removed when the pairing is revoked.\n{} ALL=(root) NOPASSWD: /usr/sbin/zfs\n",
        user.as_str()
    )
}

/// Writes, checks and installs the drop-in (mode 0440).
pub fn grant(dir: &Path, pairing_id: &Uuid, user: &Username) -> Result<(), SudoersError> {
    let target = drop_in_path(dir, pairing_id);
    let temp = dir.join(format!(".credgate-{}.tmp", Uuid::new_v4().simple()));
    let result = write_checked(&temp, &drop_in_text(user)).and_then(|()| {
        fs::rename(&temp, &target)?;
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_checked(temp: &Path, text: &str) -> Result<(), SudoersError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o440)
        .open(temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    match Command::new("visudo").arg("-cf").arg(temp).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(SudoersError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )),
        // No visudo on this host: nothing to check with (the text is fixed and simple).
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the drop-in; a missing one is fine.
pub fn revoke(dir: &Path, pairing_id: &Uuid) -> io::Result<()> {
    match fs::remove_file(drop_in_path(dir, pairing_id)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
