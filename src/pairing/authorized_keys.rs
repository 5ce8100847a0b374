//! Edits of a user's authorized_keys file. Each paired key is one line ending in its
//! tag (`credgate-pairing:<id>`); no other line is ever touched, and the rest of the
//! file keeps its bytes. Every edit is read–modify–write under an exclusive `flock` on
//! the file's directory (so it holds against another credgate process on the host, and
//! survives the rename that replaces the file), written to a temporary file in the same
//! directory, fsynced and renamed over the old one: a reader (sshd) sees the old file
//! or the new one, never a half-written one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// The comment that marks a line as this pairing's.
pub fn tag_of(pairing_id: &Uuid) -> String {
    format!("credgate-pairing:{pairing_id}")
}

/// Who owns the file (and its directory when credgate creates them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// One user's authorized_keys file.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub path: PathBuf,
    pub owner: Owner,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0} is not a directory owned by root or the user (a symlink is refused)")]
    UnsafeDirectory(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl KeyFile {
    fn directory(&self) -> Result<&Path, KeyFileError> {
        self.path
            .parent()
            .ok_or_else(|| KeyFileError::UnsafeDirectory(self.path.display().to_string()))
    }

    /// Adds `line` (which must already end with `tag`) unless a line with `tag` is there.
    /// Returns whether the file changed.
    pub fn add(&self, line: &str, tag: &str) -> Result<bool, KeyFileError> {
        self.edit(true, |content| {
            if lines(content).any(|l| has_tag(l, tag)) {
                return None;
            }
            let mut next = content.to_vec();
            if !next.is_empty() && !next.ends_with(b"\n") {
                next.push(b'\n');
            }
            next.extend_from_slice(line.as_bytes());
            next.push(b'\n');
            Some(next)
        })
    }

    /// Removes every line with `tag`. Returns whether the file changed.
    pub fn remove(&self, tag: &str) -> Result<bool, KeyFileError> {
        self.edit(false, |content| {
            if !lines(content).any(|l| has_tag(l, tag)) {
                return None;
            }
            Some(
                lines(content)
                    .filter(|l| !has_tag(l, tag))
                    .flatten()
                    .copied()
                    .collect(),
            )
        })
    }

    /// Whether a line with `tag` is in the file now (a missing file has none).
    pub fn contains(&self, tag: &str) -> Result<bool, KeyFileError> {
        match fs::read(&self.path) {
            Ok(content) => Ok(lines(&content).any(|l| has_tag(l, tag))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(&self.path)(e)),
        }
    }

    /// `create`: a missing directory is created (adding); else there is nothing to edit.
    fn edit(
        &self,
        create: bool,
        change: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<bool, KeyFileError> {
        let dir = self.directory()?;
        if !self.check_directory(dir, create)? {
            return Ok(false);
        }
        let lock = File::open(dir).map_err(io_error(dir))?;
        lock.lock().map_err(io_error(dir))?;
        let (content, existing) = match fs::read(&self.path) {
            Ok(content) => (content, fs::metadata(&self.path).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), None),
            Err(e) => return Err(io_error(&self.path)(e)),
        };
        let Some(next) = change(&content) else {
            return Ok(false);
        };
        // An existing file keeps its mode and owner; a new one is 0600, the user's.
        let (mode, owner) = match &existing {
            Some(meta) => (
                meta.permissions().mode() & 0o7777,
                Owner {
                    uid: meta.uid(),
                    gid: meta.gid(),
                },
            ),
            None => (0o600, self.owner),
        };
        let temp = dir.join(format!(".credgate-{}.tmp", Uuid::new_v4().simple()));
        let written = write_file(&temp, &next, mode, owner).and_then(|()| {
            fs::rename(&temp, &self.path)?;
            File::open(dir)?.sync_all()
        });
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written.map_err(io_error(&self.path))?;
        drop(lock);
        Ok(true)
    }

    /// The directory must be a real directory owned by root or the user: a user who
    /// replaces `~/.ssh` with a symlink must not steer credgate's writes elsewhere.
    /// A missing last component is created (0700, the user's) when `create`. Returns
    /// whether the directory exists now.
    fn check_directory(&self, dir: &Path, create: bool) -> Result<bool, KeyFileError> {
        match fs::symlink_metadata(dir) {
            Ok(meta) => {
                if !meta.is_dir() || (meta.uid() != 0 && meta.uid() != self.owner.uid) {
                    return Err(KeyFileError::UnsafeDirectory(dir.display().to_string()));
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut builder = fs::DirBuilder::new();
                builder.mode(0o700);
                match builder.create(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_error(dir)(e)),
                }
                change_owner(dir, self.owner).map_err(io_error(dir))?;
                Ok(true)
            }
            Err(e) => Err(io_error(dir)(e)),
        }
    }
}

fn write_file(path: &Path, content: &[u8], mode: u32, owner: Owner) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content)?;
    change_owner(path, owner)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

/// Only root can give a file away; a credgate running as the user itself owns it already.
fn change_owner(path: &Path, owner: Owner) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.uid() == owner.uid && meta.gid() == owner.gid {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))
}

/// The file's lines, each with its line end (so joining them gives the bytes back).
fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    content.split_inclusive(|b| *b == b'\n')
}

/// A line is a pairing's when its last field is the pairing's tag.
fn has_tag(line: &[u8], tag: &str) -> bool {
    line.split(|b| b.is_ascii_whitespace())
        .rfind(|field| !field.is_empty())
        .is_some_and(|last| last == tag.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owner {
        Owner {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }

    const OTHER: &str = "# keep me\r\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyOtherKeyOtherKeyOtherKeyOther someone@else";

    #[test]
    fn adds_and_removes_only_its_line_keeping_the_rest_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile {
            path: dir.path().join(".ssh/authorized_keys"),
            owner: me(),
        };
        fs::create_dir(dir.path().join(".ssh")).unwrap();
        fs::write(&file.path, OTHER).unwrap();
        fs::set_permissions(&file.path, fs::Permissions::from_mode(0o640)).unwrap();
        let tag = tag_of(&Uuid::new_v4());
        let line = format!("restrict ssh-ed25519 AAAA {tag}");

        assert!(file.add(&line, &tag).unwrap());
        assert!(
            !file.add(&line, &tag).unwrap(),
            "a second add changes nothing"
        );
        let content = fs::read_to_string(&file.path).unwrap();
        assert_eq!(content, format!("{OTHER}\n{line}\n"));
        assert!(file.contains(&tag).unwrap());
        assert_eq!(
            fs::metadata(&file.path).unwrap().permissions().mode() & 0o777,
            0o640,
            "the file keeps its mode"
        );

        assert!(file.remove(&tag).unwrap());
        assert!(!file.remove(&tag).unwrap());
        assert!(!file.contains(&tag).unwrap());
        assert_eq!(
            fs::read_to_string(&file.path).unwrap(),
            format!("{OTHER}\n")
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path().join(".ssh")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    /// Only a missing file means "no line"; a file that cannot be read is an error (the
    /// admin list then shows `present` as unknown, not as removed).
    #[test]
    fn an_unreadable_file_is_not_taken_for_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let missing = KeyFile {
            path: dir.path().join("authorized_keys"),
            owner: me(),
        };
        assert!(!missing.contains("credgate-pairing:x").unwrap());
        fs::create_dir(&missing.path).unwrap();
        assert!(missing.contains("credgate-pairing:x").is_err());
    }

    #[test]
    fn a_tag_inside_another_line_does_not_count() {
        let tag = tag_of(&Uuid::nil());
        assert!(has_tag(
            format!("ssh-ed25519 AAAA {tag}\n").as_bytes(),
            &tag
        ));
        assert!(has_tag(
            format!("ssh-ed25519 AAAA {tag}  \r\n").as_bytes(),
            &tag
        ));
        assert!(!has_tag(
            format!("ssh-ed25519 AAAA {tag}x\n").as_bytes(),
            &tag
        ));
        assert!(!has_tag(
            format!("ssh-ed25519 AAAA {tag} other\n").as_bytes(),
            &tag
        ));
    }

    #[test]
    fn creates_a_missing_directory_and_file_privately() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile {
            path: dir.path().join(".ssh/authorized_keys"),
            owner: me(),
        };
        let tag = tag_of(&Uuid::new_v4());
        file.add(&format!("ssh-ed25519 AAAA {tag}"), &tag).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(".ssh")), 0o700);
        assert_eq!(mode(&file.path), 0o600);
    }

    /// `~/.ssh` must belong to root or the user: another user's directory is refused,
    /// the user's own is used. (Runs only as root, which can give directories away.)
    #[test]
    fn only_a_directory_of_root_or_the_user_is_written() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        fs::create_dir(&ssh).unwrap();
        let user = Owner {
            uid: 4242,
            gid: 4242,
        };
        let file = KeyFile {
            path: ssh.join("authorized_keys"),
            owner: user,
        };
        let tag = tag_of(&Uuid::new_v4());
        let line = format!("ssh-ed25519 AAAA {tag}");
        std::os::unix::fs::chown(&ssh, Some(4343), Some(4343)).unwrap();
        assert!(matches!(
            file.add(&line, &tag),
            Err(KeyFileError::UnsafeDirectory(_))
        ));
        assert!(!file.path.exists());
        std::os::unix::fs::chown(&ssh, Some(4242), Some(4242)).unwrap();
        assert!(file.add(&line, &tag).unwrap());
        let meta = fs::metadata(&file.path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (4242, 4242),
            "the new file is the user's"
        );
        std::os::unix::fs::chown(&ssh, Some(0), Some(0)).unwrap();
        assert!(file.remove(&tag).unwrap(), "root's directory is fine too");
    }

    #[test]
    fn removing_from_a_missing_directory_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = KeyFile {
            path: dir.path().join(".ssh/authorized_keys"),
            owner: me(),
        };
        assert!(!file.remove("credgate-pairing:x").unwrap());
        assert!(!dir.path().join(".ssh").exists(), "nothing was created");
    }

    #[test]
    fn a_symlinked_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(".ssh")).unwrap();
        let file = KeyFile {
            path: dir.path().join(".ssh/authorized_keys"),
            owner: me(),
        };
        let tag = tag_of(&Uuid::new_v4());
        assert!(matches!(
            file.add(&format!("ssh-ed25519 AAAA {tag}"), &tag),
            Err(KeyFileError::UnsafeDirectory(_))
        ));
        assert!(!elsewhere.join("authorized_keys").exists());
    }
}
