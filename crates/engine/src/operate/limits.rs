//! How long what people type may be. A comment is a few paragraphs, a name a line; a
//! megabyte pasted into a comment would make every alert list a megabyte and every report
//! seconds of work, so it is refused (the API answers 422) before anything is stored.

use crate::engine::EngineError;

/// A line: names, titles, assignees, step and unit ids.
pub const LINE: usize = 200;
/// A comment, an answer, a progress report.
pub const TEXT: usize = 4_000;
/// The body of a directive.
pub const BODY: usize = 10_000;
/// How many alerts one request may name.
pub const ALERTS: usize = 500;

/// Refuses `value` of the field `name` when it has more than `max` characters.
pub fn check(name: &str, value: &str, max: usize) -> Result<(), EngineError> {
    // Cheap first: bytes bound characters from above.
    if value.len() > max && value.chars().count() > max {
        return Err(EngineError::TooLarge(format!(
            "`{name}` has {} characters; at most {max}",
            value.chars().count()
        )));
    }
    Ok(())
}

/// The same for an optional field.
pub fn check_opt(name: &str, value: &Option<String>, max: usize) -> Result<(), EngineError> {
    value.as_deref().map_or(Ok(()), |v| check(name, v, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_characters() {
        assert!(check("comment", &"ệ".repeat(TEXT), TEXT).is_ok());
        assert!(matches!(
            check("comment", &"a".repeat(TEXT + 1), TEXT),
            Err(EngineError::TooLarge(_))
        ));
        assert!(check_opt("to", &None, LINE).is_ok());
    }
}
