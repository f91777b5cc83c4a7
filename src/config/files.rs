//! The configuration files: built into the binary, overridable from a directory.
//!
//! `config/default.toml`, `config/{development,test,production}.toml`, `rbac_model.conf` and
//! `policy.csv` are compiled in, so a release binary copied alone anywhere serves with its
//! defaults. A file of the same name in `APP_CONFIG_DIR` (default `./config`) overrides the
//! built-in one: settings files are merged over it key by key, the Casbin files replace it.
//! An `APP_CONFIG_DIR` that does not exist is an error naming it, never a silent fallback.
use std::{
    borrow::Cow,
    path::{Path, PathBuf},
};

use super::ConfigError;

const BUILT_IN: &[(&str, &str)] = &[
    ("default.toml", include_str!("../../config/default.toml")),
    (
        "development.toml",
        include_str!("../../config/development.toml"),
    ),
    ("test.toml", include_str!("../../config/test.toml")),
    (
        "production.toml",
        include_str!("../../config/production.toml"),
    ),
    (
        "rbac_model.conf",
        include_str!("../../config/rbac_model.conf"),
    ),
    ("policy.csv", include_str!("../../config/policy.csv")),
];

/// The built-in text of a configuration file.
pub fn built_in(name: &str) -> Option<&'static str> {
    BUILT_IN
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
}

/// Where override files are looked for.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    path: PathBuf,
    /// Named by `APP_CONFIG_DIR`: then it must exist.
    configured: bool,
}

impl ConfigDir {
    /// `APP_CONFIG_DIR`, or `./config`.
    pub fn from_env() -> Self {
        match std::env::var_os("APP_CONFIG_DIR") {
            Some(dir) => Self {
                path: PathBuf::from(dir),
                configured: true,
            },
            None => Self {
                path: PathBuf::from("config"),
                configured: false,
            },
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fails when a configured directory is missing.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.configured && !self.path.is_dir() {
            return Err(ConfigError::new(format!(
                "APP_CONFIG_DIR: {} is not a directory",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// The override file `name`, if the directory has one.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let path = self.path.join(name);
        path.is_file().then_some(path)
    }

    /// Every override file that differs from the built-in one, for the start-up log: a
    /// `config/` left in the working directory changes the service, so it must never do so
    /// silently. (The repository's own `config/`, identical to what is built in, says nothing.)
    pub fn overrides(&self) -> Vec<PathBuf> {
        BUILT_IN
            .iter()
            .filter_map(|(name, text)| {
                let path = self.file(name)?;
                let same = std::fs::read_to_string(&path).is_ok_and(|file| file == *text);
                (!same).then_some(path)
            })
            .collect()
    }

    /// The text of `name`: the override file when present, else the built-in one.
    pub fn read(&self, name: &str) -> Result<Cow<'static, str>, ConfigError> {
        self.check()?;
        match self.file(name) {
            Some(path) => std::fs::read_to_string(&path)
                .map(Cow::Owned)
                .map_err(|e| ConfigError::new(format!("could not read {}: {e}", path.display()))),
            None => built_in(name).map(Cow::Borrowed).ok_or_else(|| {
                ConfigError::new(format!(
                    "{} is missing and has no built-in default",
                    self.path.join(name).display()
                ))
            }),
        }
    }
}
