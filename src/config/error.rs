//! The error a refused config value comes with.

/// A config value the pool refuses, with the field, the problem and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid ringpool config: `{field}` {problem}; {fix}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with its value.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError {
            field,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
