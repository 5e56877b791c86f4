//! CSRF token formats.

use crate::error::Result;
use crate::id;

/// How `token()` values are generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenFormat {
    /// Laravel-style: 40 random `[A-Za-z0-9]`.
    #[default]
    Random,
}

impl TokenFormat {
    /// A fresh token.
    pub fn generate(&self) -> Result<String> {
        match self {
            Self::Random => id::random_alnum(id::ID_LENGTH),
        }
    }
}
