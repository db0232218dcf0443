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
    /// The PostgreSQL server refused a statement.
    #[error("database error")]
    Postgres(#[source] tokio_postgres::Error),
    /// The database could not be reached (its file, its writer thread, its server); the
    /// request may succeed later unchanged.
    #[error("database unavailable: {0}")]
    Io(String),
    /// The database refuses work for a reason outside Hookline that an operator can clear: its
    /// disk is full, it is read-only, another process holds its lock. The request may succeed
    /// unchanged once the fault clears; the text says which fault, for the answer.
    #[error("database unavailable: {0}")]
    Refused(&'static str),
    /// A text value holds a character the database cannot store (PostgreSQL refuses NUL): the
    /// request's fault, nothing was written.
    #[error("a text value contains a character the database cannot store")]
    Unstorable,
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let fault = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
                ErrorCode::DiskFull => Some("the database's disk is full"),
                ErrorCode::ReadOnly => Some("the database file or its directory is read-only"),
                // Only BUSY: LOCKED is a conflict inside this process's own connection (a bug).
                ErrorCode::DatabaseBusy => Some("another process holds the database's lock"),
                ErrorCode::SystemIoFailure => Some("the database's disk failed to read or write"),
                ErrorCode::CannotOpen => Some("the database file cannot be opened"),
                _ => None,
            },
            _ => None,
        };
        match fault {
            Some(why) => StoreError::Refused(why),
            None => StoreError::Backend(error),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        // The database being away, or out of something for now, is `Io` (503: the same request
        // may succeed later); a statement the server refused for what it is, or a row that does
        // not decode, is not.
        let away = match error.code() {
            None => !is_decoding(&error),
            Some(code) => {
                [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                    SqlState::QUERY_CANCELED,
                    SqlState::LOCK_NOT_AVAILABLE,
                    SqlState::READ_ONLY_SQL_TRANSACTION,
                    SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                ]
                .contains(code)
                    || code.code().starts_with("53")
                    || code.code().starts_with("08")
            }
        };
        if matches!(error.code(), Some(c) if *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE
            || *c == SqlState::UNTRANSLATABLE_CHARACTER)
        {
            return StoreError::Unstorable;
        }
        match (away, error.code()) {
            (true, _) => StoreError::Io(error.to_string()),
            (false, Some(_)) => StoreError::Postgres(error),
            (false, None) => StoreError::Corrupt(error.to_string()),
        }
    }
}

/// Whether an error without an SQLSTATE is this process's own: a value that does not encode or
/// decode, a column or a row count that is not what the query expects (tokio-postgres names them
/// so). Every other such error is the connection's (closed, reset, an unexpected message from a
/// server going down): the database is away.
fn is_decoding(error: &tokio_postgres::Error) -> bool {
    let text = error.to_string();
    [
        "error serializing",
        "error deserializing",
        "invalid column",
        "unexpected number of rows",
        "parameters but",
    ]
    .iter()
    .any(|kind| text.contains(kind))
}

impl StoreError {
    /// Whether a UNIQUE constraint refused the write.
    pub(crate) fn is_unique_violation(&self) -> bool {
        self.constraint_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
            || self.constraint_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
            || self.sql_state() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
    }

    /// Whether a FOREIGN KEY constraint refused the write.
    pub(crate) fn is_foreign_key_violation(&self) -> bool {
        self.constraint_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
            || self.sql_state() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
    }

    /// Whether running the transaction again may succeed (PostgreSQL broke a deadlock or a
    /// serialization conflict by aborting this one).
    pub(crate) fn is_retryable(&self) -> bool {
        use tokio_postgres::error::SqlState;
        matches!(self.sql_state(), Some(s) if *s == SqlState::T_R_DEADLOCK_DETECTED
            || *s == SqlState::T_R_SERIALIZATION_FAILURE)
    }

    /// Whether the database is away rather than the request wrong: answered as 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Io(_) | StoreError::Refused(_))
    }

    /// For an unavailable database, what the operator must clear, when it is known.
    pub fn fault(&self) -> Option<&'static str> {
        match self {
            StoreError::Refused(why) => Some(why),
            _ => None,
        }
    }

    fn constraint_code(&self) -> Option<std::os::raw::c_int> {
        match self {
            StoreError::Backend(rusqlite::Error::SqliteFailure(e, _)) => Some(e.extended_code),
            _ => None,
        }
    }

    fn sql_state(&self) -> Option<&tokio_postgres::error::SqlState> {
        match self {
            StoreError::Postgres(e) => e.code(),
            _ => None,
        }
    }
}
