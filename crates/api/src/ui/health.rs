//! Endpoint health (in progress).
use crate::ui::page::PageError;
use crate::ui::Session;
use axum::response::Response;

pub async fn page(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
