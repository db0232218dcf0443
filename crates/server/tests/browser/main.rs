//! The dashboard's end-to-end tests in a real headless browser: Debian's `chromium` driven
//! over WebDriver (`chromedriver`, started by each test on a free loopback port) with
//! fantoccini, against the real `hookline` binary started by the black-box fixture.
//!
//! They need `/usr/bin/chromium` and `/usr/bin/chromedriver` (`apt-get install chromium
//! chromium-driver`; `.ci/run` installs them): without them they fail and say so, never pass
//! silently. Each main page is saved as a PNG in `target/ui-screenshots/` for review.
//! Synchronisation is by polling with deadlines (the page, the API, the receiver's signals).

#[allow(dead_code)]
#[path = "../it/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "../it/receiver.rs"]
mod receiver;

mod browser;
mod configuration;
mod dashboard;
