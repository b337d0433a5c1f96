//! API Gateway's routing, read from `template.yaml`: which function serves a path.
//!
//! Each HTTP function owns route families (`ANY /api/v1/tasks` and
//! `ANY /api/v1/tasks/{proxy+}`). Tests send every request to the function the template
//! names, the way API Gateway would, so the template is the one routing table and a
//! route it lacks fails the test that uses it.

use std::{collections::BTreeSet, sync::LazyLock};

/// One HttpApi route of the template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    /// The function's binary (`BuildProperties: Binary`).
    pub function: String,
    /// The method (`ANY` for a family).
    pub method: String,
    /// The path, `{proxy+}` for a greedy rest.
    pub path: String,
}

impl TemplateRoute {
    /// Whether this route serves `path` (exactly, or as a greedy `{proxy+}` prefix with
    /// at least one more segment).
    pub fn matches(&self, path: &str) -> bool {
        match self.path.strip_suffix("{proxy+}") {
            Some(prefix) => path
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty()),
            None => self.path == path,
        }
    }
}

/// Every HttpApi route of `template.yaml`.
pub fn template_routes() -> &'static [TemplateRoute] {
    static ROUTES: LazyLock<Vec<TemplateRoute>> = LazyLock::new(|| {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
                .expect("template.yaml is readable");
        parse(&template)
    });
    &ROUTES
}

/// Reads the HttpApi events of each function resource: the binary comes first (in the
/// resource's `Metadata`), then each event's `Method` and `Path`.
fn parse(template: &str) -> Vec<TemplateRoute> {
    let mut routes = Vec::new();
    let (mut function, mut method) = (None::<String>, None::<String>);
    for line in template.lines().map(str::trim) {
        if let Some(binary) = line.strip_prefix("Binary: ") {
            function = Some(binary.trim_matches('"').to_owned());
        } else if let Some(m) = line.strip_prefix("Method: ") {
            method = Some(m.trim_matches('"').to_uppercase());
        } else if let (Some(path), Some(m)) = (line.strip_prefix("Path: "), method.take()) {
            routes.push(TemplateRoute {
                function: function.clone().expect("a Binary before the first route"),
                method: m,
                path: path.trim_matches('"').to_owned(),
            });
        }
    }
    routes
}

/// The function API Gateway sends `path` to: an exact route wins over a greedy one, a
/// longer greedy prefix over a shorter one. `None` when no route matches (API Gateway
/// answers 404 itself).
pub fn function_for(path: &str) -> Option<&'static str> {
    let routes = template_routes();
    routes
        .iter()
        .find(|r| r.path == path)
        .or_else(|| {
            routes
                .iter()
                .filter(|r| r.matches(path))
                .max_by_key(|r| r.path.len())
        })
        .map(|r| r.function.as_str())
}

/// `(function, path)` of the cargo-lambda router in the workspace `Cargo.toml` (what
/// `scripts/dev` serves), its `{*proxy}` catch-alls written the API Gateway way.
pub fn local_router_routes() -> BTreeSet<(String, String)> {
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .expect("Cargo.toml is readable");
    let section = manifest
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .expect("Cargo.toml has a cargo-lambda router");
    section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .filter_map(|line| line.split_once(" = "))
        .map(|(path, function)| {
            let path = path.trim_matches('"').replace("{*proxy}", "{proxy+}");
            (function.trim().trim_matches('"').to_owned(), path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_routes_need_a_rest_and_exact_routes_win() {
        let greedy = TemplateRoute {
            function: "tasks".into(),
            method: "ANY".into(),
            path: "/api/v1/tasks/{proxy+}".into(),
        };
        assert!(greedy.matches("/api/v1/tasks/1") && greedy.matches("/api/v1/tasks/1/x"));
        assert!(!greedy.matches("/api/v1/tasks/") && !greedy.matches("/api/v1/tasks"));
        assert!(!greedy.matches("/api/v1/tasksx/1"));
        let parsed = parse(
            "  F:\n    Metadata:\n      BuildProperties:\n        Binary: tasks\n    Events:\n      \
             A:\n        Properties:\n          Method: ANY\n          Path: /api/v1/tasks\n",
        );
        assert_eq!(parsed[0].function, "tasks");
        assert_eq!(parsed[0].path, "/api/v1/tasks");
    }
}
