//! The benchmark report: one row per measurement, written as JSON and as a Markdown table.

use serde::Serialize;

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which benchmark (`read`, `feed`, `bootstrap`, …).
    pub bench: String,
    /// What was measured (`ours/sqlite GET role`, …).
    pub subject: String,
    /// The figures, name → value.
    pub figures: serde_json::Map<String, serde_json::Value>,
    /// The target and whether it was met, when the issue sets one.
    pub target: Option<String>,
    /// Whether the target was met.
    pub met: Option<bool>,
}

/// All rows of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// When the run started (RFC 3339).
    pub started: String,
    /// The machine (`uname -a`, CPU count).
    pub machine: String,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Report {
    /// Adds a row.
    pub fn add(
        &mut self,
        bench: &str,
        subject: &str,
        figures: serde_json::Value,
        target: Option<(&str, bool)>,
    ) {
        let figures = figures.as_object().cloned().unwrap_or_default();
        self.rows.push(Row {
            bench: bench.into(),
            subject: subject.into(),
            figures,
            target: target.map(|(t, _)| t.into()),
            met: target.map(|(_, m)| m),
        });
    }

    /// The Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!("Run {} on {}\n\n", self.started, self.machine);
        out.push_str(
            "| bench | subject | figures | target | met |\n| --- | --- | --- | --- | --- |\n",
        );
        for r in &self.rows {
            let figures: Vec<String> = r
                .figures
                .iter()
                .map(|(k, v)| match v.as_f64() {
                    Some(f) if v.is_f64() => format!("{k} {f:.2}"),
                    _ => format!("{k} {v}"),
                })
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.bench,
                r.subject,
                figures.join(", "),
                r.target.clone().unwrap_or_default(),
                match r.met {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "",
                }
            ));
        }
        out
    }
}
