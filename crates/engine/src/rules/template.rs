//! Alert messages: `{value}`, `{metric}`, `{uom}`, `{entity.name}`, `{entity.id}`, `{unit}`
//! are replaced; anything else in braces is left as written.

use ioc_model::{metric, Entity};

pub fn render_message(template: &str, entity: &Entity, metric_name: &str, value: f64) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = &after[..end];
        match key {
            "value" => out.push_str(&metric::format_value(metric_name, value)),
            "metric" => out.push_str(metric_name),
            "uom" => out.push_str(metric::uom(metric_name)),
            "entity.name" => out.push_str(&entity.name),
            "entity.id" => out.push_str(&entity.id),
            "unit" => out.push_str(entity.unit_name.as_deref().unwrap_or("")),
            _ => {
                out.push('{');
                out.push_str(key);
                out.push('}');
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ioc_model::Domain;

    #[test]
    fn placeholders_are_replaced() {
        let e = Entity::new(
            "aq-1",
            "AirQualityStation",
            "Trạm Vinh",
            Domain::Environment,
        )
        .in_unit("16681", "Thành Vinh");
        assert_eq!(
            render_message(
                "{metric} {value} {uom} at {entity.name} ({unit}) {x} {",
                &e,
                "pm25",
                151.26
            ),
            "pm25 151.3 µg/m³ at Trạm Vinh (Thành Vinh) {x} {"
        );
    }
}
