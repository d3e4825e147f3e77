//! The init's command line: `container_init [-v] [--grace SECS] [--timeout SECS] [--]
//! COMMAND [ARG...]`. Bad usage is an error that says what was wrong, with the usage line
//! (exit code [`EXIT_USAGE`]).

use std::ffi::OsString;
use std::fmt;
use std::time::Duration;

/// The init's exit code for bad usage, before anything runs.
pub const EXIT_USAGE: i32 = 2;

/// The usage line printed with every usage error.
pub const USAGE: &str =
    "usage: container_init [-v] [--grace SECS] [--timeout SECS] [--] COMMAND [ARG...]";

/// What the init was asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Log forwarded signals, reaped orphans and the shutdown's steps to stderr.
    pub verbose: bool,
    /// How long what is left of the group gets between `SIGTERM` and `SIGKILL` once the
    /// main command has exited.
    pub grace: Duration,
    /// Kill the main command's whole group if it runs longer than this (exit 124, as
    /// `timeout(1)`).
    pub timeout: Option<Duration>,
    /// The main command and its arguments.
    pub program: OsString,
    /// The main command's arguments.
    pub args: Vec<OsString>,
}

/// The default [`Config::grace`], as `docker stop`'s.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// A usage error: what was wrong.
#[derive(Debug, PartialEq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "container_init: {}\n{USAGE}", self.0)
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Config, UsageError> {
    let mut args = args.into_iter();
    let mut verbose = false;
    let mut grace = DEFAULT_GRACE;
    let mut timeout = None;
    let program = loop {
        let Some(arg) = args.next() else {
            return Err(UsageError("no command given".into()));
        };
        match arg.to_str() {
            Some("-v") => verbose = true,
            Some("--grace") => grace = seconds("--grace", args.next())?,
            Some("--timeout") => timeout = Some(seconds("--timeout", args.next())?),
            Some("--") => {
                break args
                    .next()
                    .ok_or_else(|| UsageError("no command given".into()))?
            }
            Some(s) if s.starts_with('-') => {
                return Err(UsageError(format!("unknown option {s:?}")))
            }
            _ => break arg,
        }
    };
    Ok(Config {
        verbose,
        grace,
        timeout,
        program,
        args: args.collect(),
    })
}

/// The value of option `name`: seconds, fractions allowed (`0.5`).
fn seconds(name: &str, value: Option<OsString>) -> Result<Duration, UsageError> {
    let value = value.ok_or_else(|| UsageError(format!("{name} needs a number of seconds")))?;
    let text = value.to_string_lossy();
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| UsageError(format!("{name}: {text:?} is not a number of seconds")))
}
