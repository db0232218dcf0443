//! Reading JSON answers: comparing one resource read twice, the key set of an object, the
//! message `details` gives for a field. Pure functions over `serde_json::Value`; no HTTP.

use serde_json::Value;

/// A copy of `value` without `api_id`, for comparing one resource read twice.
pub fn without_api_id(value: &Value) -> Value {
    let mut copy = value.clone();
    if let Some(object) = copy.as_object_mut() {
        object.remove("api_id");
    }
    copy
}

/// The sorted keys of a JSON object, without `api_id`.
pub fn object_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|object| object.keys().filter(|k| *k != "api_id").cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

/// `names` sorted and owned, to compare with [`object_keys`].
pub fn sorted_names(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
    names.sort();
    names
}

/// Whether `text` is a UUID in its hyphenated form.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|group| group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The message `details` gives for `field`: under the field itself, or under an element of it
/// (`callback_events[0]`) for a type error inside an array.
pub fn detail_for<'a>(details: &'a Value, field: &str) -> Option<&'a str> {
    let object = details.as_object()?;
    object
        .iter()
        .find(|(key, _)| {
            key.as_str() == field || key.strip_prefix(field).is_some_and(|rest| rest.starts_with('['))
        })
        .and_then(|(_, why)| why.as_str())
}

/// The length of a JSON array; 0 for anything else.
pub fn len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}
