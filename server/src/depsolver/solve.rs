//! The search for one version of every cookbook a run list needs: newest versions first,
//! backtracking on conflicts, inside a budget of steps and wall-clock time so a pathological
//! universe ends in a timeout answer instead of holding a thread.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use super::constraint::{Constraint, Version};
use super::universe::{Candidate, Universe};

/// What one request may spend on solving, over every attempt it makes.
#[derive(Debug)]
pub struct Budget {
    deadline: Instant,
    steps: u64,
}

impl Budget {
    /// At most `steps` candidate tries, and nothing after `deadline`.
    pub fn new(deadline: Instant, steps: u64) -> Self {
        Budget { deadline, steps }
    }

    /// Spends one step; false once the budget is gone.
    fn spend(&mut self) -> bool {
        if self.steps == 0 {
            return false;
        }
        self.steps -= 1;
        // Reading the clock every step would cost more than the step.
        !self.steps.is_multiple_of(256) || Instant::now() < self.deadline
    }
}

/// How a search ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The chosen version of every cookbook needed.
    Solved(BTreeMap<String, Version>),
    /// No choice satisfies every constraint.
    Unsolvable,
    /// The budget ran out first.
    OutOfTime,
}

/// One problem: a universe, the environment's constraints, the run list.
#[derive(Debug, Clone, Copy)]
pub struct Problem<'a> {
    pub universe: &'a Universe,
    pub environment: &'a HashMap<String, Constraint>,
    pub run_list: &'a [(String, Constraint)],
}

impl<'a> Problem<'a> {
    /// The versions of `cookbook` the environment allows, newest first.
    pub fn allowed(&self, cookbook: &str) -> impl Iterator<Item = &'a Candidate> + 'a {
        let pinned = self.environment.get(cookbook).copied();
        self.universe
            .versions(cookbook)
            .unwrap_or_default()
            .iter()
            .filter(move |c| pinned.is_none_or(|p| p.matches(c.version)))
    }

    /// Solves the first `items` run-list entries; constraints on `disabled` are taken as met
    /// and its own dependencies ignored (how the diagnosis finds the cookbook to blame).
    pub fn solve(&self, items: usize, disabled: Option<&str>, budget: &mut Budget) -> Outcome {
        match self.live(disabled, budget) {
            Some(live) => self.solve_live(items, disabled, &live, budget),
            None => Outcome::OutOfTime,
        }
    }

    /// [`Problem::solve`] with the live versions worked out already (for the same
    /// `disabled`), so several solves over one problem pay for them once.
    pub fn solve_live(
        &self,
        items: usize,
        disabled: Option<&str>,
        live: &Live<'a>,
        budget: &mut Budget,
    ) -> Outcome {
        Search::new(*self, items, disabled, live.0.clone()).run(budget)
    }

    /// Which versions can take part in a solution at all (see [`live_versions`]); `None`
    /// when the budget runs out first.
    pub fn live(&self, disabled: Option<&str>, budget: &mut Budget) -> Option<Live<'a>> {
        live_versions(*self, disabled, budget).map(Live)
    }
}

/// Per cookbook, per version (newest first): whether it can be part of a solution.
#[derive(Debug, Clone)]
pub struct Live<'a>(HashMap<&'a str, Vec<bool>>);

/// Which versions can take part in a solution at all: allowed by the environment, with
/// readable dependencies, each of which some live version satisfies (or names `disabled`).
/// Repeated until nothing changes, so a version whose dependency chain ends in a missing or
/// impossible cookbook is never tried, however deep the chain: without this the search
/// would retry every combination above the dead end.
/// Each version looked at costs a step of `budget`; `None` once it runs out.
fn live_versions<'a>(
    problem: Problem<'a>,
    disabled: Option<&str>,
    budget: &mut Budget,
) -> Option<HashMap<&'a str, Vec<bool>>> {
    let mut live: HashMap<&'a str, Vec<bool>> = problem
        .universe
        .cookbooks()
        .map(|(name, versions)| {
            let pinned = problem.environment.get(name);
            let flags = versions
                .iter()
                .map(|c| c.dependencies.is_some() && pinned.is_none_or(|p| p.matches(c.version)))
                .collect();
            (name, flags)
        })
        .collect();
    loop {
        let mut dead = Vec::new();
        for (name, versions) in problem.universe.cookbooks() {
            let flags = live.get(name).map(Vec::as_slice).unwrap_or_default();
            for (i, candidate) in versions.iter().enumerate() {
                if !flags.get(i).copied().unwrap_or(false) {
                    continue;
                }
                if !budget.spend() {
                    return None;
                }
                let satisfiable = candidate.dependencies.iter().flatten().all(|(d, k)| {
                    if d == name {
                        // One version per cookbook: a dependency on itself must be met by
                        // this very version.
                        return k.matches(candidate.version);
                    }
                    disabled == Some(d.as_str())
                        || problem
                            .universe
                            .versions(d)
                            .unwrap_or_default()
                            .iter()
                            .zip(live.get(d.as_str()).map(Vec::as_slice).unwrap_or_default())
                            .any(|(c, live)| *live && k.matches(c.version))
                });
                if !satisfiable {
                    dead.push((name, i));
                }
            }
        }
        if dead.is_empty() {
            return Some(live);
        }
        for (name, i) in dead {
            if let Some(flag) = live.get_mut(name).and_then(|f| f.get_mut(i)) {
                *flag = false;
            }
        }
    }
}

/// A decision: which version of `cookbook` is tried, and what to undo before the next try.
struct Frame<'a> {
    cookbook: &'a str,
    options: Vec<&'a Candidate>,
    tried: usize,
    /// Lengths of `required` and `log` before this frame's choice.
    mark: (usize, usize),
    /// Earlier frames whose choices ruled out options of this one: when every option fails,
    /// the search jumps back to the latest of them instead of the frame just above, since
    /// changing the frames in between cannot help (conflict-directed backjumping).
    conflicts: BTreeSet<usize>,
}

/// A constraint and the frame whose choice added it (`None`: the run list).
type Sourced = (Constraint, Option<usize>);

struct Search<'a> {
    problem: Problem<'a>,
    disabled: Option<&'a str>,
    /// Per cookbook, per version (newest first): whether it can be part of any solution at
    /// all (see [`live_versions`]).
    live: HashMap<&'a str, Vec<bool>>,
    /// Cookbooks needed, in the order they were found; frame i decides `required[i]`.
    required: Vec<&'a str>,
    seen: HashSet<&'a str>,
    /// Constraints by cookbook, and the order they were added in (to undo them).
    constraints: HashMap<&'a str, Vec<Sourced>>,
    log: Vec<&'a str>,
    /// The chosen version of each decided cookbook, with the frame that chose it.
    chosen: HashMap<&'a str, (Version, usize)>,
}

impl<'a> Search<'a> {
    fn new(
        problem: Problem<'a>,
        items: usize,
        disabled: Option<&'a str>,
        live: HashMap<&'a str, Vec<bool>>,
    ) -> Self {
        let mut search = Search {
            problem,
            disabled,
            live,
            required: Vec::new(),
            seen: HashSet::new(),
            constraints: HashMap::new(),
            log: Vec::new(),
            chosen: HashMap::new(),
        };
        for (cookbook, constraint) in problem.run_list.iter().take(items) {
            search.constrain(cookbook, (*constraint, None));
        }
        search
    }

    fn constrain(&mut self, cookbook: &'a str, constraint: Sourced) {
        if self.disabled == Some(cookbook) {
            return;
        }
        self.constraints
            .entry(cookbook)
            .or_default()
            .push(constraint);
        self.log.push(cookbook);
        if self.seen.insert(cookbook) {
            self.required.push(cookbook);
        }
    }

    fn undo_to(&mut self, (required, log): (usize, usize)) {
        for cookbook in self.required.drain(required..) {
            self.seen.remove(cookbook);
        }
        for cookbook in self.log.drain(log..) {
            if let Some(list) = self.constraints.get_mut(cookbook) {
                list.pop();
            }
        }
    }

    /// A new frame for `cookbook`: its live versions that meet every constraint on it.
    fn frame(&self, cookbook: &'a str) -> Frame<'a> {
        let on_it = self
            .constraints
            .get(cookbook)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let live = self
            .live
            .get(cookbook)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let options = self
            .problem
            .universe
            .versions(cookbook)
            .unwrap_or_default()
            .iter()
            .zip(live)
            .filter(|(c, live)| **live && on_it.iter().all(|(k, _)| k.matches(c.version)))
            .map(|(c, _)| c)
            .collect();
        Frame {
            cookbook,
            options,
            tried: 0,
            mark: (self.required.len(), self.log.len()),
            conflicts: on_it.iter().filter_map(|(_, source)| *source).collect(),
        }
    }

    /// Takes `candidate` for frame `at`; on a conflict with a dependency chosen earlier,
    /// the frame that chose it.
    fn choose(
        &mut self,
        at: usize,
        cookbook: &'a str,
        candidate: &'a Candidate,
    ) -> Result<(), usize> {
        self.chosen.insert(cookbook, (candidate.version, at));
        for (dependency, constraint) in candidate.dependencies.iter().flatten() {
            if self.disabled == Some(dependency.as_str()) {
                continue;
            }
            if let Some((version, by)) = self.chosen.get(dependency.as_str())
                && !constraint.matches(*version)
            {
                return Err(*by);
            }
            self.constrain(dependency, (*constraint, Some(at)));
        }
        Ok(())
    }

    fn run(mut self, budget: &mut Budget) -> Outcome {
        let mut frames: Vec<Frame<'a>> = Vec::new();
        loop {
            let Some(&cookbook) = self.required.get(frames.len()) else {
                let solved = self
                    .chosen
                    .iter()
                    .map(|(name, (version, _))| ((*name).to_owned(), *version))
                    .collect();
                return Outcome::Solved(solved);
            };
            frames.push(self.frame(cookbook));
            // Take the top frame's next option; when it has none left, jump back to the latest
            // frame it conflicts with and move that one on instead.
            loop {
                let at = frames.len().saturating_sub(1);
                let Some(frame) = frames.last_mut() else {
                    return Outcome::Unsolvable;
                };
                let (cookbook, mark) = (frame.cookbook, frame.mark);
                let next = frame.options.get(frame.tried).copied();
                frame.tried += 1;
                self.undo_to(mark);
                self.chosen.remove(cookbook);
                let Some(candidate) = next else {
                    let conflicts = frame.conflicts.clone();
                    // Only an earlier frame can be jumped back to; every jump costs a step.
                    let Some(&back) = conflicts.range(..at).next_back() else {
                        return Outcome::Unsolvable;
                    };
                    if !budget.spend() {
                        return Outcome::OutOfTime;
                    }
                    for skipped in frames.drain(back + 1..) {
                        self.chosen.remove(skipped.cookbook);
                    }
                    if let Some(target) = frames.last_mut() {
                        target.conflicts.extend(conflicts.range(..back));
                    }
                    continue;
                };
                if !budget.spend() {
                    return Outcome::OutOfTime;
                }
                match self.choose(at, cookbook, candidate) {
                    Ok(()) => break,
                    // A version at odds with itself (a dependency on its own cookbook that
                    // it does not meet) fails alone: no earlier choice is to blame.
                    Err(by) if by >= at => {}
                    Err(by) => {
                        if let Some(frame) = frames.last_mut() {
                            frame.conflicts.insert(by);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    pub(crate) fn v(text: &str) -> Version {
        Version::parse(text)
            .map(|(v, _)| v)
            .unwrap_or(Version(999, 9, 9))
    }

    pub(crate) fn c(text: &str) -> Constraint {
        Constraint::parse(text).unwrap_or(Constraint::exactly(Version(999, 9, 9)))
    }

    /// A cookbook version for tests: name, version, dependencies.
    pub(crate) type Entry<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    /// `[("app", "1.0.0", &[("db", ">= 1.0")])]` and the like.
    pub(crate) fn universe(entries: &[Entry<'_>]) -> Universe {
        let mut universe = Universe::default();
        for (name, version, deps) in entries {
            let deps = deps.iter().map(|(d, k)| ((*d).to_owned(), c(k))).collect();
            universe.add(name, v(version), Some(deps));
        }
        universe
    }

    pub(crate) fn budget() -> Budget {
        Budget::new(Instant::now() + Duration::from_secs(10), 10_000_000)
    }

    /// `[("db", "< 2.0")]` as owned constraints (an environment's or a run list's).
    pub(crate) fn constraints(pairs: &[(&str, &str)]) -> Vec<(String, Constraint)> {
        pairs.iter().map(|(n, k)| ((*n).to_owned(), c(k))).collect()
    }

    fn solve(
        universe: &Universe,
        environment: &[(&str, &str)],
        run_list: &[(&str, &str)],
    ) -> Outcome {
        let environment = constraints(environment).into_iter().collect();
        let run_list = constraints(run_list);
        let problem = Problem {
            universe,
            environment: &environment,
            run_list: &run_list,
        };
        problem.solve(run_list.len(), None, &mut budget())
    }

    fn solved(pairs: &[(&str, &str)]) -> Outcome {
        Outcome::Solved(
            pairs
                .iter()
                .map(|(n, ver)| ((*n).to_owned(), v(ver)))
                .collect(),
        )
    }

    #[test]
    fn newest_versions_that_satisfy_everything() {
        let u = universe(&[
            ("app", "1.0.0", &[("db", "= 1.0.0")]),
            ("app", "2.0.0", &[("db", "~> 2.1"), ("base", ">= 0.0.0")]),
            ("db", "1.0.0", &[]),
            ("db", "2.1.0", &[]),
            ("db", "2.9.3", &[]),
            ("db", "3.0.0", &[]),
            ("base", "0.1.0", &[]),
            ("unused", "1.0.0", &[]),
        ]);
        assert_eq!(
            solve(&u, &[], &[("app", ">= 0.0.0")]),
            solved(&[("app", "2.0.0"), ("db", "2.9.3"), ("base", "0.1.0")])
        );
        // The environment's constraint on db forces the older app.
        assert_eq!(
            solve(&u, &[("db", "= 1.0.0")], &[("app", ">= 0.0.0")]),
            solved(&[("app", "1.0.0"), ("db", "1.0.0")])
        );
        // A pin in the run list.
        // A pin in the run list that neither app accepts (db = 1.0.0, db ~> 2.1).
        assert_eq!(
            solve(&u, &[], &[("app", ">= 0.0.0"), ("db", "= 3.0.0")]),
            Outcome::Unsolvable
        );
        assert_eq!(
            solve(&u, &[], &[("app", ">= 0.0.0"), ("db", "= 1.0.0")]),
            solved(&[("app", "1.0.0"), ("db", "1.0.0")])
        );
    }

    #[test]
    fn ranges_and_pessimistic_constraints() {
        let u = universe(&[
            ("app3", "0.1.0", &[]),
            ("app3", "0.1.3", &[]),
            ("app3", "0.1.7", &[]),
            ("x", "2.1.5", &[]),
            ("x", "2.2.0", &[]),
            ("x", "3.0.0", &[]),
        ]);
        assert_eq!(
            solve(&u, &[], &[("app3", ">= 0.1.1"), ("app3", "<= 0.1.5")]),
            solved(&[("app3", "0.1.3")])
        );
        assert_eq!(
            solve(&u, &[], &[("x", "~> 2.1.1")]),
            solved(&[("x", "2.1.5")])
        );
        assert_eq!(
            solve(&u, &[], &[("x", "~> 2.1")]),
            solved(&[("x", "2.2.0")])
        );
    }

    #[test]
    fn a_cookbook_at_odds_with_itself_ends() {
        let u = universe(&[
            ("app", "2.0.0", &[("app", "= 1.0.0")]),
            ("app", "1.0.0", &[("app", "= 2.0.0")]),
        ]);
        assert_eq!(solve(&u, &[], &[("app", ">= 0.0")]), Outcome::Unsolvable);
        let fine = universe(&[("app", "1.0.0", &[("app", ">= 1.0")])]);
        assert_eq!(
            solve(&fine, &[], &[("app", ">= 0.0")]),
            solved(&[("app", "1.0.0")])
        );
        // And when it is only found late, past the pre-pass (a dependency that reaches it).
        let late = universe(&[
            ("web", "1.0.0", &[("app", ">= 0.0")]),
            ("app", "2.0.0", &[("lib", "= 1.0.0")]),
            ("app", "1.0.0", &[("lib", "= 2.0.0")]),
            ("lib", "1.0.0", &[("app", "= 1.0.0")]),
            ("lib", "2.0.0", &[("app", "= 2.0.0")]),
        ]);
        assert_eq!(solve(&late, &[], &[("web", ">= 0.0")]), Outcome::Unsolvable);
    }

    #[test]
    fn cycles_are_allowed_and_conflicts_backtrack() {
        let u = universe(&[
            ("a", "1.0.0", &[("b", ">= 1.0")]),
            ("b", "1.0.0", &[("a", "= 1.0.0")]),
            ("b", "2.0.0", &[("a", "= 9.0.0")]),
        ]);
        assert_eq!(
            solve(&u, &[], &[("a", ">= 0.0")]),
            solved(&[("a", "1.0.0"), ("b", "1.0.0")])
        );
    }

    #[test]
    fn missing_dependencies_and_unreadable_versions_are_not_chosen() {
        let mut u = universe(&[
            ("app", "1.0.0", &[]),
            ("app", "2.0.0", &[("nowhere", ">= 0.0")]),
        ]);
        u.add("app", v("3.0.0"), None);
        assert_eq!(
            solve(&u, &[], &[("app", ">= 0.0")]),
            solved(&[("app", "1.0.0")])
        );
        assert_eq!(solve(&u, &[], &[("app", "= 2.0.0")]), Outcome::Unsolvable);
    }

    #[test]
    fn a_disabled_cookbook_is_left_out() {
        let u = universe(&[
            ("foo", "1.2.3", &[("bar", "> 2.0.0")]),
            ("bar", "2.0.0", &[]),
        ]);
        let run_list = vec![("foo".to_owned(), Constraint::ANY)];
        let environment = HashMap::new();
        let problem = Problem {
            universe: &u,
            environment: &environment,
            run_list: &run_list,
        };
        assert_eq!(problem.solve(1, None, &mut budget()), Outcome::Unsolvable);
        assert_eq!(
            problem.solve(1, Some("bar"), &mut budget()),
            solved(&[("foo", "1.2.3")])
        );
    }

    fn problem_of<'a>(
        universe: &'a Universe,
        environment: &'a HashMap<String, Constraint>,
        run_list: &'a [(String, Constraint)],
    ) -> Problem<'a> {
        Problem {
            universe,
            environment,
            run_list,
        }
    }

    #[test]
    fn dead_ends_deep_in_a_chain_are_found_without_trying_every_combination() {
        // c0 … c11, ten versions each, every version depending on the next cookbook, and c12
        // impossible: tried combination by combination, 10^12 tries.
        let mut u = Universe::default();
        for i in 0..12 {
            for ver in 0..10 {
                let deps = vec![(format!("c{}", i + 1), Constraint::ANY)];
                u.add(&format!("c{i}"), Version(1, ver, 0), Some(deps));
            }
        }
        u.add("c12", v("1.0.0"), Some(vec![("c0".into(), c("= 5.0.0"))]));
        let run_list = vec![("c0".to_owned(), Constraint::ANY)];
        let environment = HashMap::new();
        let mut small = Budget::new(Instant::now() + Duration::from_secs(60), 1_000);
        let problem = problem_of(&u, &environment, &run_list);
        assert_eq!(problem.solve(1, None, &mut small), Outcome::Unsolvable);
    }

    #[test]
    fn a_late_conflict_jumps_back_over_unrelated_choices() {
        // Eleven unrelated cookbooks of ten versions before two that need x at 1.0 and 2.0.
        let mut u = Universe::default();
        let mut run_list = Vec::new();
        for i in 0..11 {
            for ver in 0..10 {
                u.add(&format!("u{i}"), Version(1, ver, 0), Some(vec![]));
            }
            run_list.push((format!("u{i}"), Constraint::ANY));
        }
        u.add("a", v("1.0.0"), Some(vec![("x".into(), c("= 1.0.0"))]));
        u.add("b", v("1.0.0"), Some(vec![("x".into(), c("= 2.0.0"))]));
        u.add("x", v("1.0.0"), Some(vec![]));
        u.add("x", v("2.0.0"), Some(vec![]));
        run_list.push(("a".to_owned(), Constraint::ANY));
        run_list.push(("b".to_owned(), Constraint::ANY));
        let environment = HashMap::new();
        let mut small = Budget::new(Instant::now() + Duration::from_secs(60), 1_000);
        let problem = problem_of(&u, &environment, &run_list);
        assert_eq!(
            problem.solve(run_list.len(), None, &mut small),
            Outcome::Unsolvable
        );
    }

    #[test]
    fn the_budget_ends_a_hopeless_search() {
        // Pigeonhole: 13 cookbooks (pigeons) each need one of 12 holes to themselves (version
        // j of pigeon i needs hole j at version i), which no search proves impossible quickly.
        let mut u = Universe::default();
        for i in 0..13u64 {
            for j in 0..12u64 {
                let deps = vec![(format!("hole{j}"), Constraint::exactly(Version(1, i, 0)))];
                u.add(&format!("pigeon{i}"), Version(1, j, 0), Some(deps));
                u.add(&format!("hole{j}"), Version(1, i, 0), Some(vec![]));
            }
        }
        let run_list: Vec<(String, Constraint)> = (0..13)
            .map(|i| (format!("pigeon{i}"), Constraint::ANY))
            .collect();
        let environment = HashMap::new();
        let problem = problem_of(&u, &environment, &run_list);
        let started = Instant::now();
        let mut small = Budget::new(Instant::now() + Duration::from_secs(60), 50_000);
        assert_eq!(problem.solve(13, None, &mut small), Outcome::OutOfTime);
        let mut short = Budget::new(Instant::now() + Duration::from_millis(50), u64::MAX);
        assert_eq!(problem.solve(13, None, &mut short), Outcome::OutOfTime);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
