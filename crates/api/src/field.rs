//! Request fields as JSON says them (absent, `null`, or a value) and the checks that turn them
//! into domain values, collecting every invalid field into one 400 answer.

use domain::{CallbackUrl, EventFilter, HttpMethod, Patch, Target, UrlPolicy};
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, Details};

/// One field of a request body. Use with `#[serde(default)]` so an omitted field is `Absent`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Field<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| match value {
            None => Field::Null,
            Some(value) => Field::Value(value),
        })
    }
}

/// Longest accepted name.
const MAX_NAME_LEN: usize = 255;

/// Turns fields into domain values, remembering why each bad one was refused.
pub struct Checker {
    policy: UrlPolicy,
    details: Details,
}

impl Checker {
    pub fn new(policy: UrlPolicy) -> Checker {
        Checker {
            policy,
            details: Details::new(),
        }
    }

    fn refuse(&mut self, field: &str, why: impl Into<String>) {
        self.details.entry(field.to_owned()).or_insert_with(|| why.into());
    }

    fn patch<T, U>(
        &mut self,
        field: &str,
        value: Field<T>,
        parse: impl FnOnce(T) -> Result<U, String>,
    ) -> Patch<U> {
        match value {
            Field::Absent => Patch::Keep,
            Field::Null => Patch::Clear,
            Field::Value(value) => match parse(value) {
                Ok(parsed) => Patch::Set(parsed),
                Err(why) => {
                    self.refuse(field, why);
                    Patch::Keep
                }
            },
        }
    }

    pub fn url(&mut self, field: &str, value: Field<String>) -> Patch<CallbackUrl> {
        let policy = self.policy;
        self.patch(field, value, |text| {
            CallbackUrl::parse(&text, policy).map_err(|e| e.to_string())
        })
    }

    pub fn method(&mut self, field: &str, value: Field<String>) -> Patch<HttpMethod> {
        self.patch(field, value, |text| {
            HttpMethod::parse(&text).map_err(|e| e.to_string())
        })
    }

    pub fn events(&mut self, field: &str, value: Field<Vec<String>>) -> Patch<EventFilter> {
        self.patch(field, value, |entries| {
            EventFilter::parse(&entries).map_err(|e| e.to_string())
        })
    }

    pub fn parsed<T, U, E: std::fmt::Display>(
        &mut self,
        field: &str,
        value: Field<T>,
        parse: impl FnOnce(T) -> Result<U, E>,
    ) -> Patch<U> {
        self.patch(field, value, |v| parse(v).map_err(|e| e.to_string()))
    }

    /// A URL field and its `…_method` sibling (`status_url` → `status_method`) as one target;
    /// `None` when the URL is omitted or `null`. The method defaults to `POST`.
    pub fn target(&mut self, url_field: &str, url: Field<String>, method: Field<String>) -> Option<Target> {
        let method_field = format!("{}_method", url_field.trim_end_matches("_url"));
        let url = self.url(url_field, url);
        let method = self.method(&method_field, method);
        match url {
            Patch::Set(url) => Some(Target {
                url,
                method: match method {
                    Patch::Set(method) => method,
                    Patch::Keep | Patch::Clear => HttpMethod::default(),
                },
            }),
            Patch::Keep | Patch::Clear => None,
        }
    }

    /// A name: required on create, never cleared, 1–255 characters after trimming.
    pub fn name(&mut self, field: &str, value: Field<String>, required: bool) -> Option<String> {
        match value {
            Field::Absent if required => self.refuse(field, "is required"),
            Field::Absent => {}
            Field::Null => self.refuse(field, "must not be null"),
            Field::Value(name) if name.trim().is_empty() => self.refuse(field, "must not be empty"),
            Field::Value(name) if name.chars().count() > MAX_NAME_LEN => {
                self.refuse(field, "must be at most 255 characters")
            }
            Field::Value(name) => return Some(name),
        }
        None
    }

    /// Adds a refusal found outside the field parsers.
    pub fn add(&mut self, field: &str, why: impl Into<String>) {
        self.refuse(field, why);
    }

    /// # Errors
    /// `Invalid` naming every refused field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.details.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(self.details))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default)]
    struct Body {
        #[serde(default)]
        url: Field<String>,
    }

    #[test]
    fn absent_null_and_value_are_told_apart() {
        let absent: Body = serde_json::from_str("{}").expect("valid");
        let null: Body = serde_json::from_str(r#"{"url":null}"#).expect("valid");
        let value: Body = serde_json::from_str(r#"{"url":"x"}"#).expect("valid");
        assert_eq!(absent.url, Field::Absent);
        assert_eq!(null.url, Field::Null);
        assert_eq!(value.url, Field::Value("x".into()));
    }

    #[test]
    fn every_refused_field_is_named() {
        let mut checker = Checker::new(UrlPolicy::default());
        checker.url("callback_url", Field::Value("http://example.com".into()));
        checker.method("callback_method", Field::Value("PUT".into()));
        checker.events("callback_events", Field::Value(vec!["Nope".into()]));
        checker.name("name", Field::Absent, true);
        let Err(ApiError::Invalid(details)) = checker.finish() else {
            panic!("expected Invalid");
        };
        let fields: Vec<&str> = details.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            ["callback_events", "callback_method", "callback_url", "name"]
        );
        assert!(details["callback_events"].contains("Nope"));
    }

    #[test]
    fn an_empty_url_is_refused_but_null_clears() {
        let mut checker = Checker::new(UrlPolicy::default());
        assert_eq!(checker.url("u", Field::Null), Patch::Clear);
        checker.url("u", Field::Value(String::new()));
        assert!(checker.finish().is_err());
    }
}
