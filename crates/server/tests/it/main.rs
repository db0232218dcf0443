//! Hookline's black-box integration tests: one binary that starts the real `hookline` on
//! `127.0.0.1:0` with a temporary database per test and drives it over HTTP and its CLI. The
//! database is SQLite, or PostgreSQL with `HOOKLINE_TEST_DATABASE=postgres` (a throwaway cluster
//! the tests start themselves; see `fixture.rs`).
//!
//! These tests see only what a user sees (command line, stdout, HTTP); handler and store
//! tests live next to their code. Each test starts its own server, so they run in parallel.

mod accounts;
mod applications;
mod auth;
mod bad_inputs;
mod call_log;
mod call_receiver;
mod calls;
mod delivery;
mod delivery_crash;
mod dev_mode;
mod fixture;
mod hostile_clients;
mod lifecycle;
mod limits;
mod lists;
mod nodes;
mod openapi;
mod receiver;
mod routing;
mod secrets;
mod shapes;
mod store_faults;
mod switch;
mod tools;
mod trunks;
mod ui;
mod validation;
