//! `Patch<T>`: what a partial update says about one optional field.
//!
//! JSON distinguishes an omitted field (keep the stored value) from `null` (clear it); a plain
//! `Option` cannot, so updates carry this three-way value instead.

/// One field of a partial update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// The field was omitted: keep what is stored.
    #[default]
    Keep,
    /// The field was `null`: clear it (optional fields only).
    Clear,
    /// The field was given a value.
    Set(T),
}

impl<T> Patch<T> {
    /// Applies the patch to an optional stored value.
    pub fn apply_to(self, current: &mut Option<T>) {
        match self {
            Patch::Keep => {}
            Patch::Clear => *current = None,
            Patch::Set(value) => *current = Some(value),
        }
    }

    /// Applies the patch to a required stored value; `Clear` restores `default`.
    pub fn apply_or(self, current: &mut T, default: impl FnOnce() -> T) {
        match self {
            Patch::Keep => {}
            Patch::Clear => *current = default(),
            Patch::Set(value) => *current = value,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Keep => Patch::Keep,
            Patch::Clear => Patch::Clear,
            Patch::Set(value) => Patch::Set(f(value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_leaves_clear_empties_and_set_replaces_an_optional_value() {
        let mut value = Some(1);
        Patch::Keep.apply_to(&mut value);
        assert_eq!(value, Some(1));
        Patch::Set(2).apply_to(&mut value);
        assert_eq!(value, Some(2));
        Patch::Clear.apply_to(&mut value);
        assert_eq!(value, None);
    }

    #[test]
    fn clearing_a_required_value_restores_its_default() {
        let mut value = 7;
        Patch::Clear.apply_or(&mut value, || 0);
        assert_eq!(value, 0);
    }
}
