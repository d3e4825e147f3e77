//! The build file: its format, its parser, and the checks on the graph it describes (every
//! dependency defined, no cycle), giving the jobs in a topological order.
//!
//! ```text
//! # a comment
//! job link
//!   deps = compile
//!   in = a.o
//!   out = app
//!   timeout_ms = 2000
//!   cmd = cat a.o > app
//! ```

use std::collections::HashMap;
use std::time::Duration;

/// One job as the build file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub name: String,
    pub deps: Vec<String>,
    /// Files (relative to the build dir) whose mtimes decide whether the job is stale.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub timeout: Option<Duration>,
    /// A `sh -c` command line.
    pub cmd: String,
}

/// A parse or graph error, with what a user needs to fix it.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildFileError {
    Syntax { line: usize, msg: String },
    Duplicate { name: String },
    MissingDep { job: String, dep: String },
    Cycle { path: Vec<String> },
}

impl std::fmt::Display for BuildFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildFileError::Syntax { line, msg } => write!(f, "line {line}: {msg}"),
            BuildFileError::Duplicate { name } => write!(f, "job `{name}` defined twice"),
            BuildFileError::MissingDep { job, dep } => {
                write!(f, "job `{job}` depends on `{dep}`, which is not defined")
            }
            BuildFileError::Cycle { path } => {
                write!(f, "dependency cycle: {}", path.join(" -> "))
            }
        }
    }
}

fn words(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_owned).collect()
}

/// Parses a build file. Jobs come back in file order (see [`topo_order`] for run order).
pub fn parse(text: &str) -> Result<Vec<Job>, BuildFileError> {
    let mut jobs: Vec<Job> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let syntax = |msg: String| BuildFileError::Syntax { line, msg };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix("job ") {
            let name = name.trim();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                return Err(syntax(format!("bad job name {name:?}")));
            }
            if jobs.iter().any(|j| j.name == name) {
                return Err(BuildFileError::Duplicate { name: name.into() });
            }
            jobs.push(Job {
                name: name.into(),
                deps: vec![],
                inputs: vec![],
                outputs: vec![],
                timeout: None,
                cmd: String::new(),
            });
            continue;
        }
        if !raw.starts_with([' ', '\t']) {
            return Err(syntax(format!(
                "expected `job NAME` or an indented key, got {trimmed:?}"
            )));
        }
        let Some(job) = jobs.last_mut() else {
            return Err(syntax("a key before any `job`".into()));
        };
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(syntax(format!("expected `key = value`, got {trimmed:?}")));
        };
        let value = value.trim();
        match key.trim() {
            "deps" => job.deps = words(value),
            "in" => job.inputs = words(value),
            "out" => job.outputs = words(value),
            "cmd" => job.cmd = value.into(),
            "timeout_ms" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| syntax(format!("timeout_ms {value:?} is not a number")))?;
                job.timeout = Some(Duration::from_millis(ms));
            }
            other => return Err(syntax(format!("unknown key {other:?}"))),
        }
    }
    if let Some(job) = jobs.iter().find(|j| j.cmd.is_empty()) {
        return Err(BuildFileError::Syntax {
            line: 0,
            msg: format!("job `{}` has no cmd", job.name),
        });
    }
    Ok(jobs)
}

/// The jobs' indexes in an order where every job comes after its dependencies (file order
/// among independent ones); a missing dependency or a cycle is an error naming it.
pub fn topo_order(jobs: &[Job]) -> Result<Vec<usize>, BuildFileError> {
    let index: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect();
    for job in jobs {
        if let Some(dep) = job.deps.iter().find(|d| !index.contains_key(d.as_str())) {
            return Err(BuildFileError::MissingDep {
                job: job.name.clone(),
                dep: dep.clone(),
            });
        }
    }
    // Depth-first, with the path kept to name a cycle exactly.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn visit(
        i: usize,
        jobs: &[Job],
        index: &HashMap<&str, usize>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        order: &mut Vec<usize>,
    ) -> Result<(), BuildFileError> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::OnPath => {
                let start = path.iter().position(|&p| p == i).unwrap();
                let mut names: Vec<String> = path[start..]
                    .iter()
                    .map(|&p| jobs[p].name.clone())
                    .collect();
                names.push(jobs[i].name.clone());
                return Err(BuildFileError::Cycle { path: names });
            }
            Mark::New => {}
        }
        marks[i] = Mark::OnPath;
        path.push(i);
        for dep in &jobs[i].deps {
            visit(index[dep.as_str()], jobs, index, marks, path, order)?;
        }
        path.pop();
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; jobs.len()];
    let mut order = Vec::with_capacity(jobs.len());
    for i in 0..jobs.len() {
        visit(i, jobs, &index, &mut marks, &mut vec![], &mut order)?;
    }
    Ok(order)
}
