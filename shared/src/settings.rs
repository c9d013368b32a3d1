//! Reading a function's settings from its environment once at init, with errors that name the variable.

/// A setting that is missing or not understood.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {problem}")]
pub struct SettingError {
    /// The environment variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// The environment, or a map in tests, seen through a lookup function.
pub struct Settings<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Reads settings through `lookup`.
    pub fn new(lookup: F) -> Self {
        Settings { lookup }
    }

    /// A text setting, trimmed; absent when unset or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A text setting that must be there; `why` says what it names.
    pub fn required(&self, name: &'static str, why: &str) -> Result<String, SettingError> {
        self.text(name).ok_or_else(|| SettingError {
            name,
            problem: format!("not set: {why}"),
        })
    }

    /// A whole number from 1 to `max`, `default` when unset.
    pub fn number(&self, name: &'static str, default: u64, max: u64) -> Result<u64, SettingError> {
        match self.text(name) {
            None => Ok(default),
            Some(text) => match text.parse::<u64>() {
                Ok(value) if (1..=max).contains(&value) => Ok(value),
                _ => Err(SettingError {
                    name,
                    problem: format!("`{text}` is not a whole number from 1 to {max}"),
                }),
            },
        }
    }

    /// `true`/`1`/`yes` or `false`/`0`/`no` (any case); false when unset.
    pub fn flag(&self, name: &'static str) -> Result<bool, SettingError> {
        match self.text(name).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false") | Some("0") | Some("no") => Ok(false),
            Some("true") | Some("1") | Some("yes") => Ok(true),
            Some(other) => Err(SettingError {
                name,
                problem: format!("`{other}` is neither true nor false"),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn text_numbers_and_flags() {
        let settings = Settings::new(|name| match name {
            "T" => Some(" t ".to_owned()),
            "BLANK" => Some("  ".to_owned()),
            "N" => Some("5".to_owned()),
            "ZERO" => Some("0".to_owned()),
            "YES" => Some("Yes".to_owned()),
            "MAYBE" => Some("maybe".to_owned()),
            _ => None,
        });
        assert_eq!(settings.text("T").as_deref(), Some("t"));
        assert_eq!(settings.text("BLANK"), None);
        assert!(
            settings
                .required("BLANK", "x")
                .unwrap_err()
                .to_string()
                .starts_with("BLANK: not set")
        );
        assert_eq!(settings.number("N", 1, 10).unwrap(), 5);
        assert_eq!(settings.number("UNSET", 7, 10).unwrap(), 7);
        assert!(settings.number("ZERO", 1, 10).is_err());
        assert!(settings.number("N", 1, 4).is_err());
        assert!(settings.flag("YES").unwrap());
        assert!(!settings.flag("UNSET").unwrap());
        assert!(settings.flag("MAYBE").is_err());
    }
}
