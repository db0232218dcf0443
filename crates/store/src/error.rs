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
    Backend(#[source] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Backend(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(error)
    }
}
