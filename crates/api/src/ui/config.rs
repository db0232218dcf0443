//! Configuration pages (in progress).
use crate::ui::page::PageError;
use crate::ui::Session;
use axum::response::Response;

pub async fn overview(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
pub async fn save_account(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
pub async fn application_page(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
pub async fn save_application(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
pub async fn trunk_page(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
pub async fn save_trunk(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
pub async fn plan_page(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
pub async fn send_test(_s: Session) -> Result<Response, PageError> {
    Err(PageError::not_found())
}
