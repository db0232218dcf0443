//! `StoreError`: what went wrong in the store, named for the caller's next step.

/// An error from a [`crate::Store`] method.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row addressed does not exist (or belongs to another account).
    #[error("not found")]
    NotFound,
    /// The write conflicts with the stored state; the message says how.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The call's state does not allow the report (duplicate, out of order, inconsistent).
    #[error(transparent)]
    Transition(domain::TransitionError),
    /// A stored row does not decode: the database was altered outside Hookline, or the server
    /// key changed.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error")]
    Backend(#[source] rusqlite::Error),
    /// The database could not be reached (its file, its writer thread).
    #[error("database unavailable: {0}")]
    Io(String),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Backend(error)
    }
}

impl StoreError {
    /// Whether a UNIQUE constraint refused the write.
    pub(crate) fn is_unique_violation(&self) -> bool {
        self.constraint_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
            || self.constraint_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    }

    /// Whether a FOREIGN KEY constraint refused the write.
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        self.constraint_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
    }

    fn constraint_code(&self) -> Option<std::os::raw::c_int> {
        match self {
            StoreError::Backend(rusqlite::Error::SqliteFailure(e, _)) => Some(e.extended_code),
            _ => None,
        }
    }
}
