//! OpenSSH-format files for a connection: known_hosts lines and an ssh_config block.

use super::aggregate::ConnectionSettings;

/// An ssh_config `Host` alias from a free-text name: lowercase letters, digits and
/// hyphens only, so a name can never inject configuration.
pub fn slug(name: &str, id: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_matches('-').chars().take(63).collect();
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        format!("connection-{}", id.chars().take(8).collect::<String>())
    } else {
        slug
    }
}

pub fn known_hosts(settings: &ConnectionSettings) -> String {
    let pattern = settings.host.known_hosts_pattern(settings.port);
    settings
        .host_keys
        .iter()
        .map(|k| format!("{pattern} {}\n", k.key))
        .collect()
}

/// A `Host` block; the identity and known_hosts paths are placeholders under
/// `~/.ssh/credgate/` for the job to write the files to.
pub fn ssh_config(settings: &ConnectionSettings, id: &str) -> String {
    let alias = slug(settings.name.as_str(), id);
    format!(
        "Host {alias}\n    HostName {host}\n    Port {port}\n    User {user}\n    IdentityFile ~/.ssh/credgate/{alias}\n    IdentitiesOnly yes\n    UserKnownHostsFile ~/.ssh/credgate/{alias}.known_hosts\n    StrictHostKeyChecking yes\n    ConnectTimeout {timeout}\n",
        host = settings.host,
        port = settings.port,
        user = settings.username,
        timeout = settings.connect_timeout_secs,
    )
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_safe_aliases() {
        assert_eq!(slug("Offsite NAS (Zürich)", "abc"), "offsite-nas-z-rich");
        assert_eq!(slug("x\nProxyCommand evil", "abc"), "x-proxycommand-evil");
        assert_eq!(slug("***", "abcdef123"), "connection-abcdef12");
    }
}
