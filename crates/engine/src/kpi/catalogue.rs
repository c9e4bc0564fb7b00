//! The starter catalogue (`catalogue.toml`): what a new installation measures.

/// Each starter KPI as its own text, as the editor shows it: (id, TOML).
pub fn starter() -> Vec<(String, String)> {
    let all = include_str!("catalogue.toml");
    all.split("\n[[kpi]]\n")
        .skip(1)
        .map(|chunk| {
            let text = chunk.replace("[kpi.of]", "[of]").trim().to_string() + "\n";
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("id = "))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default();
            (id, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_domain_has_a_kpi() {
        let ids: Vec<String> = super::starter().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids.len(), 12, "{ids:?}");
        for want in [
            "aq-good-share",
            "river-below-alarm",
            "traffic-speed",
            "camera-availability",
            "directives-on-time",
        ] {
            assert!(ids.iter().any(|i| i == want), "{want}");
        }
    }
}
