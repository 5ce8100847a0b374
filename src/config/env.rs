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
];
const NOT_SETTINGS_PREFIXES: &[&str] = &["CREDGATE_TEST_"];

pub const PREFIX: &str = "CREDGATE_";

/// Writes every `CREDGATE_*` setting from `vars` into `table`, replacing what the file said.
pub fn overlay(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if NOT_SETTINGS.contains(&name.as_str())
            || NOT_SETTINGS_PREFIXES.iter().any(|p| name.starts_with(p))
        {
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
