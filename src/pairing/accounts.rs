//! The local account a key is paired for: it must be allowed by configuration, exist,
//! have a home directory and be able to log in. Checked in that order, each with its
//! own problem code, before anything is written.

use std::path::{Path, PathBuf};

use crate::ssh::Username;

/// A local user, as the system's user database (NSS) knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAccount {
    pub name: Username,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRefusal {
    #[error("pairing keys for `{0}` is not allowed on this host (pairing.allowed_users)")]
    NotAllowed(String),
    #[error("there is no user `{0}` on this host")]
    NotFound(String),
    #[error("the home directory {0} of this user does not exist")]
    HomeMissing(String),
    #[error("this user cannot log in (login shell {0})")]
    CannotLogIn(String),
    #[error("the user database could not be read: {0}")]
    Lookup(String),
}

/// Shells that refuse every login.
const NO_LOGIN_SHELLS: &[&str] = &["nologin", "false"];

/// Finds `name` and checks it may receive a paired key.
pub fn pairable_account(
    name: &Username,
    allowed: &[String],
) -> Result<LocalAccount, AccountRefusal> {
    if !allowed.iter().any(|a| a == name.as_str()) {
        return Err(AccountRefusal::NotAllowed(name.as_str().to_owned()));
    }
    let user = nix::unistd::User::from_name(name.as_str())
        .map_err(|e| AccountRefusal::Lookup(e.to_string()))?
        .ok_or_else(|| AccountRefusal::NotFound(name.as_str().to_owned()))?;
    if !user.dir.is_absolute() || !user.dir.is_dir() {
        return Err(AccountRefusal::HomeMissing(user.dir.display().to_string()));
    }
    if !can_log_in(&user.shell) {
        return Err(AccountRefusal::CannotLogIn(
            user.shell.display().to_string(),
        ));
    }
    Ok(LocalAccount {
        name: name.clone(),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        home: user.dir,
    })
}

/// An empty shell means `/bin/sh` to login(1) and sshd; `nologin`/`false` refuse, and
/// a shell that is not there cannot run.
fn can_log_in(shell: &Path) -> bool {
    if shell.as_os_str().is_empty() {
        return true;
    }
    let refuses = shell
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| NO_LOGIN_SHELLS.contains(&n));
    !refuses && shell.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    fn everyone() -> Vec<String> {
        ["root", "daemon", "nobody", "no-such-user-here"]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn root_is_pairable_when_allowed() {
        let account = pairable_account(&user("root"), &everyone()).unwrap();
        assert_eq!(account.uid, 0);
        assert!(account.home.is_dir());
    }

    #[test]
    fn each_refusal_has_its_reason() {
        assert_eq!(
            pairable_account(&user("root"), &["backup".to_owned()]),
            Err(AccountRefusal::NotAllowed("root".into()))
        );
        assert_eq!(
            pairable_account(&user("no-such-user-here"), &everyone()),
            Err(AccountRefusal::NotFound("no-such-user-here".into()))
        );
        // Debian's `nobody` has /nonexistent as its home; `daemon` has /usr/sbin/nologin.
        assert!(matches!(
            pairable_account(&user("nobody"), &everyone()),
            Err(AccountRefusal::HomeMissing(_))
        ));
        assert!(matches!(
            pairable_account(&user("daemon"), &everyone()),
            Err(AccountRefusal::CannotLogIn(_))
        ));
    }

    #[test]
    fn login_shells() {
        assert!(can_log_in(Path::new("")));
        assert!(can_log_in(Path::new("/bin/sh")));
        assert!(!can_log_in(Path::new("/usr/sbin/nologin")));
        assert!(!can_log_in(Path::new("/bin/false")));
        assert!(!can_log_in(Path::new("/no/such/shell")));
    }
}
