//! `CREDGATE_*` environment variables as a TOML overlay.
//!
//! `CREDGATE_TLS__CERT_FILE=/x` becomes `tls.cert_file = "/x"`: a double underscore
//! separates nesting levels and names are lower-cased. Values stay strings; list
//! settings split them on commas when they are parsed.

use toml::{Table, Value};

use super::ConfigError;

/// Variables with the prefix that are not settings: secrets read directly by the code
/// that needs them (never stored in the settings tree, so never printed with it) and
/// variables of the test tooling.
const NOT_SETTINGS: &[&str] = &[
    "CREDGATE_CONFIG",
    "CREDGATE_MASTER_KEY",
    "CREDGATE_BOOTSTRAP_ADMIN_KEY",
    "CREDGATE_BOOTSTRAP_ADMIN_KEY_FILE",
];
const NOT_SETTINGS_PREFIXES: &[&str] = &["CREDGATE_TEST_"];

/// Settings that may come from a file named by `<VARIABLE>_FILE` (a compose or
/// Kubernetes secret), so their value need not sit in the environment where
/// `docker inspect` or `/proc/<pid>/environ` show it.
const FROM_FILE: &[(&str, &str)] = &[("CREDGATE_DATABASE_URL_FILE", "database_url")];

/// The value of a secret given as `name` or, when that is unset, read from the file
/// `<name>_FILE` names (its last line break dropped). Both set is a mistake, refused.
pub fn secret(
    name: &str,
    vars: &impl Fn(&str) -> Option<String>,
) -> Result<Option<zeroize::Zeroizing<String>>, ConfigError> {
    let file_var = format!("{name}_FILE");
    match (vars(name), vars(&file_var)) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            name,
            &format!("is set and so is {file_var}: set only one"),
        )),
        (Some(value), None) => Ok(Some(zeroize::Zeroizing::new(value))),
        (None, Some(path)) => read_secret_file(&file_var, &path).map(Some),
        (None, None) => Ok(None),
    }
}

fn read_secret_file(var: &str, path: &str) -> Result<zeroize::Zeroizing<String>, ConfigError> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(var, &format!("cannot read `{path}`: {e}")))?,
    );
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.is_empty() {
        return Err(ConfigError::new(var, &format!("`{path}` is empty")));
    }
    Ok(zeroize::Zeroizing::new(value.to_owned()))
}

pub const PREFIX: &str = "CREDGATE_";

/// Writes every `CREDGATE_*` setting from `vars` into `table`, replacing what the file said.
pub fn overlay(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let names: Vec<String> = vars.iter().map(|(name, _)| name.clone()).collect();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if NOT_SETTINGS.contains(&name.as_str())
            || NOT_SETTINGS_PREFIXES.iter().any(|p| name.starts_with(p))
        {
            continue;
        }
        if let Some((_, setting)) = FROM_FILE.iter().find(|(var, _)| *var == name) {
            let direct = name.trim_end_matches("_FILE");
            if names.iter().any(|n| n == direct) {
                return Err(ConfigError::new(
                    direct,
                    &format!("is set and so is {name}: set only one"),
                ));
            }
            let value = read_secret_file(&name, &value)?;
            insert(
                table,
                &[(*setting).to_owned()],
                Value::String(value.to_string()),
                &name,
            )?;
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                &name,
                "is not a valid setting name (empty part between `__`)",
            ));
        }
        insert(table, &path, Value::String(value), &name)?;
    }
    Ok(())
}

fn insert(table: &mut Table, path: &[String], value: Value, var: &str) -> Result<(), ConfigError> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), value);
            Ok(())
        }
        [first, rest @ ..] => {
            let entry = table
                .entry(first.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            match entry {
                Value::Table(inner) => insert(inner, rest, value, var),
                _ => Err(ConfigError::new(
                    var,
                    &format!("sets a field inside `{first}`, which is not a section"),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_names_become_tables_and_secrets_are_skipped() {
        let mut table = Table::new();
        overlay(
            &mut table,
            [
                ("CREDGATE_TLS__CERT_FILE".to_owned(), "/c".to_owned()),
                ("CREDGATE_LISTEN".to_owned(), "0.0.0.0:1".to_owned()),
                ("CREDGATE_MASTER_KEY".to_owned(), "secret".to_owned()),
                ("CREDGATE_TEST_DATABASE_URL".to_owned(), "x".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
            ],
        )
        .unwrap();
        assert_eq!(table["tls"]["cert_file"].as_str(), Some("/c"));
        assert_eq!(table["listen"].as_str(), Some("0.0.0.0:1"));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_secret_setting_can_come_from_a_file_but_not_from_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("database_url");
        std::fs::write(&file, "postgres://app:pw@db/credgate\n").unwrap();
        let path = file.display().to_string();
        let mut table = Table::new();
        overlay(
            &mut table,
            [("CREDGATE_DATABASE_URL_FILE".to_owned(), path.clone())],
        )
        .unwrap();
        assert_eq!(
            table["database_url"].as_str(),
            Some("postgres://app:pw@db/credgate"),
            "the value, without its line break"
        );
        let both = overlay(
            &mut Table::new(),
            [
                ("CREDGATE_DATABASE_URL".to_owned(), "sqlite://x".to_owned()),
                ("CREDGATE_DATABASE_URL_FILE".to_owned(), path),
            ],
        )
        .unwrap_err();
        assert!(both.to_string().contains("set only one"), "{both}");
        let missing = overlay(
            &mut Table::new(),
            [(
                "CREDGATE_DATABASE_URL_FILE".to_owned(),
                "/nonexistent/url".to_owned(),
            )],
        )
        .unwrap_err();
        assert!(
            missing.to_string().contains("`CREDGATE_DATABASE_URL_FILE`"),
            "{missing}"
        );
        assert!(!missing.to_string().contains("pw"));
        // The master key's file is a setting of its own (`master_key_file`), not a
        // secret read here; the bootstrap key's file is read by `serve`, not a setting.
        let mut table = Table::new();
        overlay(
            &mut table,
            [
                (
                    "CREDGATE_MASTER_KEY_FILE".to_owned(),
                    "/run/secrets/mk".to_owned(),
                ),
                (
                    "CREDGATE_BOOTSTRAP_ADMIN_KEY_FILE".to_owned(),
                    "/run/secrets/ak".to_owned(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(table["master_key_file"].as_str(), Some("/run/secrets/mk"));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn bootstrap_secrets_come_from_the_variable_or_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("admin_key");
        std::fs::write(&file, "from-the-file-0123456789abcdef0123\r\n").unwrap();
        let path = file.display().to_string();
        let env = |pairs: Vec<(&'static str, String)>| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.clone())
            }
        };
        let from_file = secret("X_KEY", &env(vec![("X_KEY_FILE", path.clone())])).unwrap();
        assert_eq!(
            from_file.as_deref().map(String::as_str),
            Some("from-the-file-0123456789abcdef0123")
        );
        let direct = secret("X_KEY", &env(vec![("X_KEY", "direct".into())])).unwrap();
        assert_eq!(direct.as_deref().map(String::as_str), Some("direct"));
        assert!(secret("X_KEY", &env(vec![])).unwrap().is_none());
        let both = secret(
            "X_KEY",
            &env(vec![("X_KEY", "direct".into()), ("X_KEY_FILE", path)]),
        )
        .unwrap_err();
        assert!(both.to_string().contains("set only one"));
    }

    #[test]
    fn empty_segments_are_refused() {
        let mut table = Table::new();
        let err = overlay(
            &mut table,
            [("CREDGATE_TLS____X".to_owned(), "1".to_owned())],
        )
        .unwrap_err();
        assert!(err.to_string().contains("CREDGATE_TLS____X"));
    }
}
