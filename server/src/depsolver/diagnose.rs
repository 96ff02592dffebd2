//! What a run list that cannot be solved is told, in the shape of Chef's 412 answers: the
//! cookbooks that do not exist, the constraints no version meets, or the first run-list item
//! that makes the problem unsolvable with the cookbook to blame and how the run list reaches
//! it.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde_json::{Value, json};

use super::constraint::{Constraint, Version};
use super::solve::{Budget, Live, Outcome, Problem};

/// Cookbooks tried as the one to blame before the diagnosis settles for the run-list item
/// (each try works out the live versions again).
const BLAME_TRIES: usize = 20;
/// Paths shown from the run list to the blamed cookbook, and steps along one.
const MAX_PATHS: usize = 20;
const MAX_PATH_STEPS: usize = 32;

/// Why a run list has no solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Run-list cookbooks the org has no version of, in run-list order.
    NoSuchCookbooks(Vec<String>),
    /// Run-list constraints that no version allowed by the environment meets, printed.
    NoVersions(Vec<String>),
    /// Every item is satisfiable alone but not together with the ones before it.
    Unsatisfiable(Box<Unsatisfiable>),
    /// The budget ran out.
    Timeout,
}

/// The pieces of Chef's "Unable to satisfy constraints" answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsatisfiable {
    /// The first run-list item (printed) that cannot be added.
    pub item: String,
    /// The cookbook to blame, and whether the environment leaves it any version.
    pub culprit: String,
    pub culprit_missing: bool,
    pub non_existent: Vec<String>,
    pub most_constrained: Vec<String>,
    /// `[(a = 1.0.0) -> (b = 2.0.0) -> (culprit > 3.0.0)]` for each way the run list reaches
    /// the culprit.
    pub paths: Vec<String>,
}

impl Failure {
    /// The object Chef puts inside `{"error": [...]}`.
    pub fn body(&self) -> Value {
        match self {
            Failure::NoSuchCookbooks(names) => {
                let noun = if names.len() == 1 {
                    "cookbook"
                } else {
                    "cookbooks"
                };
                json!({
                    "message": format!("Run list contains invalid items: no such {noun} {}.", names.join(", ")),
                    "non_existent_cookbooks": names,
                    "cookbooks_with_no_versions": [],
                })
            }
            Failure::NoVersions(constraints) => {
                let noun = if constraints.len() == 1 {
                    "cookbook"
                } else {
                    "cookbooks"
                };
                json!({
                    "message": format!(
                        "Run list contains invalid items: no versions match the constraints on {noun} {}.",
                        constraints.join(", ")
                    ),
                    "non_existent_cookbooks": [],
                    "cookbooks_with_no_versions": constraints,
                })
            }
            Failure::Unsatisfiable(u) => {
                let missing = if u.culprit_missing {
                    ", which does not exist,"
                } else {
                    ""
                };
                json!({
                    "message": format!(
                        "Unable to satisfy constraints on package {}{missing} due to solution constraint {}. Solution constraints that may result in a constraint on {}: {}",
                        u.culprit, u.item, u.culprit, u.paths.join(", ")
                    ),
                    "unsatisfiable_run_list_item": u.item,
                    "non_existent_cookbooks": u.non_existent,
                    "most_constrained_cookbooks": u.most_constrained,
                })
            }
            Failure::Timeout => json!({
                // Chef's own spelling.
                "message": "unable to solve dependencies in alotted time",
                "non_existent_cookbooks": [],
                "most_constrained_cookbooks": [],
            }),
        }
    }
}

fn printed(cookbook: &str, constraint: &Constraint) -> String {
    format!("({cookbook} {constraint})")
}

/// Solves `problem`, or says why it cannot be solved.
pub fn solve(
    problem: Problem<'_>,
    budget: &mut Budget,
) -> Result<BTreeMap<String, Version>, Failure> {
    let missing: Vec<String> = problem
        .run_list
        .iter()
        .filter(|(cookbook, _)| !problem.universe.contains(cookbook))
        .map(|(cookbook, _)| cookbook.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Failure::NoSuchCookbooks(missing));
    }
    let no_versions: Vec<String> = problem
        .run_list
        .iter()
        .filter(|(cookbook, k)| !problem.allowed(cookbook).any(|c| k.matches(c.version)))
        .map(|(cookbook, k)| printed(cookbook, k))
        .collect();
    if !no_versions.is_empty() {
        return Err(Failure::NoVersions(no_versions));
    }
    let Some(live) = problem.live(None, budget) else {
        return Err(Failure::Timeout);
    };
    match problem.solve_live(problem.run_list.len(), None, &live, budget) {
        Outcome::Solved(solution) => Ok(solution),
        Outcome::OutOfTime => Err(Failure::Timeout),
        Outcome::Unsolvable => Err(explain(problem, &live, budget)),
    }
}

/// The first run-list item that cannot be added, and the cookbook whose constraints stand in
/// its way: the first one (cookbooks the org lacks first, run-list cookbooks last) without
/// whose constraints the items up to it solve.
fn explain<'a>(problem: Problem<'a>, live: &Live<'a>, budget: &mut Budget) -> Failure {
    // Adding items only adds constraints, so the first prefix that cannot be solved is found
    // by bisection: the whole run list cannot be.
    let (mut solvable, mut unsolvable) = (0, problem.run_list.len());
    while unsolvable - solvable > 1 {
        let mid = solvable + (unsolvable - solvable) / 2;
        match problem.solve_live(mid, None, live, budget) {
            Outcome::Solved(_) => solvable = mid,
            Outcome::Unsolvable => unsolvable = mid,
            Outcome::OutOfTime => return Failure::Timeout,
        }
    }
    let items = unsolvable;
    let Some((item_cookbook, item_constraint)) = problem.run_list.get(items.saturating_sub(1))
    else {
        return Failure::Timeout;
    };
    let mut blamed = None;
    for suspect in suspects(problem, items).into_iter().take(BLAME_TRIES) {
        match problem.solve(items, Some(&suspect), budget) {
            Outcome::Solved(solution) => {
                blamed = Some((suspect, solution));
                break;
            }
            Outcome::Unsolvable => {}
            Outcome::OutOfTime => return Failure::Timeout,
        }
    }
    let (culprit, solution) = blamed.unwrap_or_else(|| (item_cookbook.clone(), BTreeMap::new()));
    let lowest = problem.allowed(&culprit).last();
    let (non_existent, most_constrained) = match lowest {
        _ if !problem.universe.contains(&culprit) => (vec![culprit.clone()], Vec::new()),
        Some(candidate) => {
            let deps: Vec<String> = candidate
                .dependencies
                .iter()
                .flatten()
                .map(|(d, k)| printed(d, k))
                .collect();
            let shown = format!("{culprit} = {} -> [{}]", candidate.version, deps.join(", "));
            (Vec::new(), vec![shown])
        }
        None => (Vec::new(), Vec::new()),
    };
    Failure::Unsatisfiable(Box::new(Unsatisfiable {
        item: printed(item_cookbook, item_constraint),
        culprit_missing: lowest.is_none(),
        paths: paths(problem, items, &solution, &culprit),
        culprit,
        non_existent,
        most_constrained,
    }))
}

/// Cookbooks reachable from the first `items` run-list entries through the versions the
/// environment allows, in the order found: those the org lacks, then the others, then the
/// run-list cookbooks.
fn suspects(problem: Problem<'_>, items: usize) -> Vec<String> {
    let roots: Vec<&str> = problem.run_list[..items]
        .iter()
        .map(|(c, _)| c.as_str())
        .collect();
    let mut seen: HashSet<&str> = roots.iter().copied().collect();
    let mut queue: VecDeque<&str> = roots.iter().copied().collect();
    let mut found: Vec<&str> = Vec::new();
    while let Some(cookbook) = queue.pop_front() {
        for candidate in problem.allowed(cookbook) {
            for (dependency, _) in candidate.dependencies.iter().flatten() {
                if seen.insert(dependency) {
                    found.push(dependency);
                    queue.push_back(dependency);
                }
            }
        }
    }
    let (absent, present): (Vec<&str>, Vec<&str>) = found
        .into_iter()
        .partition(|c| !problem.universe.contains(c));
    absent
        .into_iter()
        .chain(present)
        .chain(roots.iter().copied().filter(|r| {
            // A run-list cookbook is blamed last, once.
            problem.run_list[..items].iter().any(|(c, _)| c == r)
        }))
        .fold(Vec::new(), |mut out: Vec<String>, c| {
            if !out.iter().any(|o| o == c) {
                out.push(c.to_owned());
            }
            out
        })
}

/// Cookbooks visited in all while looking for the paths to the culprit.
const MAX_WALK_VISITS: usize = 10_000;

/// How the run list reaches constraints on `culprit` through the versions of `solution`.
fn paths(
    problem: Problem<'_>,
    items: usize,
    solution: &BTreeMap<String, Version>,
    culprit: &str,
) -> Vec<String> {
    let mut walk = Walk {
        problem,
        solution,
        culprit,
        out: Vec::new(),
        dead_ends: HashSet::new(),
        visits: 0,
    };
    for (root, _) in &problem.run_list[..items] {
        let mut trail = Vec::new();
        walk.from(root, &mut trail);
    }
    let mut seen = HashSet::new();
    walk.out.retain(|p| seen.insert(p.clone()));
    walk.out
}

/// The depth-first walk behind [`paths`]: cookbooks from which the culprit cannot be reached
/// are remembered, so a graph with many shared dependencies is walked in linear time, and
/// every visit counts against [`MAX_WALK_VISITS`].
struct Walk<'p, 'a> {
    problem: Problem<'a>,
    solution: &'p BTreeMap<String, Version>,
    culprit: &'p str,
    out: Vec<String>,
    dead_ends: HashSet<String>,
    visits: usize,
}

impl Walk<'_, '_> {
    /// Walks from `cookbook`; true when some path from it reached the culprit.
    fn from(&mut self, cookbook: &str, trail: &mut Vec<String>) -> bool {
        self.visits += 1;
        if self.dead_ends.contains(cookbook)
            || self.out.len() >= MAX_PATHS
            || trail.len() >= MAX_PATH_STEPS
            || self.visits > MAX_WALK_VISITS
        {
            return false;
        }
        let Some(version) = self.solution.get(cookbook) else {
            return false;
        };
        let step = format!("({cookbook} = {version})");
        if trail.contains(&step) {
            return false;
        }
        let Some(candidate) = self
            .problem
            .universe
            .versions(cookbook)
            .unwrap_or_default()
            .iter()
            .find(|c| c.version == *version)
        else {
            return false;
        };
        trail.push(step);
        let mut reached = false;
        for (dependency, constraint) in candidate.dependencies.iter().flatten() {
            if dependency == self.culprit {
                self.out.push(format!(
                    "[{} -> {}]",
                    trail.join(" -> "),
                    printed(dependency, constraint)
                ));
                reached = true;
            } else if self.from(dependency, trail) {
                reached = true;
            }
        }
        trail.pop();
        if !reached {
            self.dead_ends.insert(cookbook.to_owned());
        }
        reached
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::solve::tests::{Entry, budget, constraints, universe};
    use super::*;

    fn run(
        entries: &[Entry<'_>],
        environment: &[(&str, &str)],
        run_list: &[(&str, &str)],
    ) -> Result<BTreeMap<String, Version>, Failure> {
        let universe = universe(entries);
        let environment: HashMap<String, Constraint> =
            constraints(environment).into_iter().collect();
        let run_list = constraints(run_list);
        let problem = Problem {
            universe: &universe,
            environment: &environment,
            run_list: &run_list,
        };
        solve(problem, &mut budget())
    }

    fn body(result: Result<BTreeMap<String, Version>, Failure>) -> Value {
        match result {
            Ok(solution) => json!({"solved": solution.keys().collect::<Vec<_>>()}),
            Err(failure) => failure.body(),
        }
    }

    #[test]
    fn unknown_cookbooks_are_named_before_anything_is_solved() {
        let one = body(run(&[("foo", "1.0.0", &[])], &[], &[("nope", ">= 0.0")]));
        assert_eq!(
            one,
            json!({"message": "Run list contains invalid items: no such cookbook nope.",
                   "non_existent_cookbooks": ["nope"], "cookbooks_with_no_versions": []})
        );
        let two = body(run(&[], &[], &[("a", ">= 0.0"), ("b", "= 1.0")]));
        assert_eq!(
            two["message"],
            "Run list contains invalid items: no such cookbooks a, b."
        );
    }

    #[test]
    fn constraints_no_version_meets() {
        let pinned = body(run(&[("foo", "1.0.0", &[])], &[], &[("foo", "= 2.0.0")]));
        assert_eq!(
            pinned,
            json!({"message": "Run list contains invalid items: no versions match the constraints on cookbook (foo = 2.0.0).",
                   "non_existent_cookbooks": [], "cookbooks_with_no_versions": ["(foo = 2.0.0)"]})
        );
        let filtered = body(run(
            &[("foo", "1.0.0", &[])],
            &[("foo", "= 400.0.0")],
            &[("foo", ">= 0.0")],
        ));
        assert_eq!(
            filtered["cookbooks_with_no_versions"],
            json!(["(foo >= 0.0.0)"])
        );
    }

    #[test]
    fn a_dependency_the_org_lacks() {
        let out = body(run(
            &[("foo", "1.2.3", &[("this_does_not_exist", ">= 0.0.0")])],
            &[],
            &[("foo", ">= 0.0")],
        ));
        assert_eq!(
            out,
            json!({"message": "Unable to satisfy constraints on package this_does_not_exist, which does not exist, due to solution constraint (foo >= 0.0.0). Solution constraints that may result in a constraint on this_does_not_exist: [(foo = 1.2.3) -> (this_does_not_exist >= 0.0.0)]",
                   "unsatisfiable_run_list_item": "(foo >= 0.0.0)",
                   "non_existent_cookbooks": ["this_does_not_exist"],
                   "most_constrained_cookbooks": []})
        );
    }

    #[test]
    fn a_dependency_not_new_enough_and_a_cycle() {
        let expected = "Unable to satisfy constraints on package bar due to solution constraint (foo >= 0.0.0). Solution constraints that may result in a constraint on bar: [(foo = 1.2.3) -> (bar > 2.0.0)]";
        let old = body(run(
            &[
                ("foo", "1.2.3", &[("bar", "> 2.0.0")]),
                ("bar", "2.0.0", &[]),
            ],
            &[],
            &[("foo", ">= 0.0")],
        ));
        assert_eq!(old["message"], expected);
        assert_eq!(
            old["most_constrained_cookbooks"],
            json!(["bar = 2.0.0 -> []"])
        );
        let cycle = body(run(
            &[
                ("foo", "1.2.3", &[("bar", "> 2.0.0")]),
                ("bar", "2.0.0", &[("foo", "> 3.0.0")]),
            ],
            &[],
            &[("foo", ">= 0.0")],
        ));
        assert_eq!(cycle["message"], expected);
        assert_eq!(
            cycle["most_constrained_cookbooks"],
            json!(["bar = 2.0.0 -> [(foo > 3.0.0)]"])
        );
    }

    #[test]
    fn the_first_item_that_cannot_be_added_is_named() {
        let out = body(run(
            &[
                ("web", "1.0.0", &[("base", "= 1.0.0")]),
                ("db", "1.0.0", &[("base", "= 2.0.0")]),
                ("base", "1.0.0", &[]),
                ("base", "2.0.0", &[]),
            ],
            &[],
            &[("web", ">= 0.0"), ("db", ">= 0.0")],
        ));
        assert_eq!(out["unsatisfiable_run_list_item"], "(db >= 0.0.0)");
        let message = out["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Unable to satisfy constraints on package base due to"),
            "{message}"
        );
        assert!(
            message.contains("[(web = 1.0.0) -> (base = 1.0.0)]"),
            "{message}"
        );
        assert!(
            message.contains("[(db = 1.0.0) -> (base = 2.0.0)]"),
            "{message}"
        );
    }

    #[test]
    fn paths_through_a_deep_diamond_are_found_in_linear_time() {
        // 30 layers of two cookbooks, each depending on both of the next layer (2^30 paths),
        // none reaching the culprit; a second run-list item needs bar > 2.
        type Owned = (String, String, Vec<(String, String)>);
        let mut entries: Vec<Owned> = Vec::new();
        for layer in 0..30 {
            for side in ["a", "b"] {
                let deps = if layer < 29 {
                    vec![
                        (format!("a{}", layer + 1), ">= 0.0".to_owned()),
                        (format!("b{}", layer + 1), ">= 0.0".to_owned()),
                    ]
                } else {
                    vec![]
                };
                entries.push((format!("{side}{layer}"), "1.0.0".into(), deps));
            }
        }
        entries.push((
            "top".into(),
            "1.0.0".into(),
            vec![
                ("a0".into(), ">= 0.0".into()),
                ("b0".into(), ">= 0.0".into()),
            ],
        ));
        entries.push((
            "foo".into(),
            "1.0.0".into(),
            vec![("bar".into(), "> 2.0.0".into())],
        ));
        entries.push(("bar".into(), "2.0.0".into(), vec![]));
        let refs: Vec<Vec<(&str, &str)>> = entries
            .iter()
            .map(|(_, _, d)| d.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
            .collect();
        let table: Vec<Entry<'_>> = entries
            .iter()
            .zip(&refs)
            .map(|((n, v, _), d)| (n.as_str(), v.as_str(), d.as_slice()))
            .collect();
        let started = std::time::Instant::now();
        let out = body(run(&table, &[], &[("top", ">= 0.0"), ("foo", ">= 0.0")]));
        assert_eq!(out["unsatisfiable_run_list_item"], "(foo >= 0.0.0)");
        assert!(
            out["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("[(foo = 1.0.0) -> (bar > 2.0.0)]"),
            "{out}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn a_solution_is_every_cookbook_needed() {
        let out = body(run(
            &[
                ("foo", "1.0.0", &[("bar", ">= 1.0")]),
                ("bar", "1.5.0", &[]),
                ("other", "1.0.0", &[]),
            ],
            &[],
            &[("foo", ">= 0.0"), ("foo", "= 1.0.0")],
        ));
        assert_eq!(out, json!({"solved": ["bar", "foo"]}));
    }
}
