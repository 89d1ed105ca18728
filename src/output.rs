//! The only module that writes to the terminal. stdout carries the result (text or a versioned
//! JSON report); progress, logs and errors go to stderr. Color only on a TTY and never when
//! `NO_COLOR` is set.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::exit::{self, Code};

/// `n` and `noun`, plural unless `n` is 1: "1 problem", "0 objects", "3 releases".
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Version of every JSON report.
pub const REPORT_API_VERSION: &str = "platformctl.dev/v1alpha1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// What a command produced: its exit code and its report.
#[derive(Debug)]
pub struct Outcome {
    pub code: Code,
    pub report: Report,
}

/// A command's result, printable as text or as versioned JSON.
#[derive(Debug)]
pub struct Report {
    /// `kind` of the JSON report, e.g. `RenderReport`.
    pub kind: &'static str,
    /// `status` of the JSON report, e.g. `Rendered`, `Drift`, `Failed`.
    pub status: &'static str,
    /// Further fields of the JSON report.
    pub fields: Value,
    /// The text result, printed as is in text mode.
    pub text: String,
}

impl Report {
    pub fn to_json(&self) -> Value {
        let mut v =
            json!({ "apiVersion": REPORT_API_VERSION, "kind": self.kind, "status": self.status });
        if let (Some(obj), Value::Object(fields)) = (v.as_object_mut(), &self.fields) {
            for (k, val) in fields {
                obj.insert(k.clone(), val.clone());
            }
        }
        v
    }
}

pub struct Printer {
    format: Format,
    quiet: bool,
    /// Set once an event went to stdout: the report that ends the stream is one line too, so
    /// that `-o json` output is JSON lines throughout.
    streamed: AtomicBool,
}

impl Printer {
    pub fn new(format: Format, quiet: bool) -> Self {
        Printer {
            format,
            quiet,
            streamed: AtomicBool::new(false),
        }
    }

    /// An event of a command that follows something live (`rollout watch`, `promote --wait`):
    /// on stdout at once, `text` as a line, or with `-o json` `event` as one JSON line.
    pub fn event(&self, text: &str, event: &Value) {
        self.streamed.store(true, Ordering::Relaxed);
        match self.format {
            Format::Json => stdout(&serde_json::to_string(event).unwrap_or_default()),
            Format::Text => stdout(text),
        }
    }

    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Whether stdout may carry ANSI colors.
    pub fn color_stdout(&self) -> bool {
        std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
    }

    /// Prints the command's result on stdout.
    pub fn report(&self, report: &Report) {
        match self.format {
            Format::Json => {
                let text = if self.streamed.load(Ordering::Relaxed) {
                    serde_json::to_string(&report.to_json())
                } else {
                    serde_json::to_string_pretty(&report.to_json())
                };
                stdout(&text.unwrap_or_default());
            }
            Format::Text if self.quiet || report.text.is_empty() => {}
            Format::Text => stdout(report.text.trim_end_matches('\n')),
        }
    }

    /// Progress and notes for a person, on stderr; silenced by `--quiet`.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            stderr(msg);
        }
    }

    /// Prints an error with its causes and hint on stderr; in JSON mode also an `Error` report
    /// on stdout so that CI always gets a parseable result.
    pub fn error(&self, err: &anyhow::Error) {
        let code = exit::classify(err);
        let hint = exit::hint(err);
        let red = color_enabled_stderr();
        let (open, close) = if red {
            ("\x1b[1;31m", "\x1b[0m")
        } else {
            ("", "")
        };
        let mut text = format!("{open}error{close}: {err}");
        for cause in err.chain().skip(1) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        if let Some(h) = &hint {
            text.push_str(&format!("\nhint: {h}"));
        }
        stderr(&text);
        if self.format == Format::Json {
            let mut report = json!({
                "apiVersion": REPORT_API_VERSION,
                "kind": "Error",
                "status": "Failed",
                "exitCode": code as u8,
                "message": err.to_string(),
                "causes": err.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
            });
            if let Some(crate::config::Error::Invalid(problems)) = err
                .chain()
                .find_map(|c| c.downcast_ref::<crate::config::Error>())
            {
                report["problems"] = problems
                    .iter()
                    .map(|p| {
                        json!({
                            "file": p.file.display().to_string(),
                            "line": p.line,
                            "column": p.column,
                            "path": p.path,
                            "message": p.message,
                        })
                    })
                    .collect();
            }
            if let Some(h) = hint {
                report["hint"] = Value::String(h);
            }
            let text = if self.streamed.load(Ordering::Relaxed) {
                serde_json::to_string(&report)
            } else {
                serde_json::to_string_pretty(&report)
            };
            stdout(&text.unwrap_or_default());
        }
    }
}

/// The command line did not parse: clap's message (with usage) on stderr as clap words it; with
/// `-o json` on the command line also an `Error` report on stdout, so that CI parses every
/// outcome.
pub fn usage_error(err: &clap::Error, json_requested: bool) {
    let rendered = err.render().to_string();
    stderr(rendered.trim_end());
    if json_requested {
        let message = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        let report = json!({
            "apiVersion": REPORT_API_VERSION,
            "kind": "Error",
            "status": "Failed",
            "exitCode": Code::Usage as u8,
            "message": message,
            "causes": [],
            "hint": "see `platformctl --help` and `platformctl <command> --help`",
        });
        stdout(&serde_json::to_string_pretty(&report).unwrap_or_default());
    }
}

/// After a panic (a bug), in `-o json` mode: an `Error` report on stdout with the panic's
/// message and place; the panic itself is on stderr as Rust prints it. Exit code 101.
pub fn panic_report(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    let place = info
        .location()
        .map(|l| format!(" at {}:{}", l.file(), l.line()))
        .unwrap_or_default();
    let report = json!({
        "apiVersion": REPORT_API_VERSION,
        "kind": "Error",
        "status": "Failed",
        "exitCode": 101,
        "message": format!("platformctl panicked{place}: {payload}"),
        "causes": [],
        "hint": "this is a bug in platformctl: please report it with the command line that caused it",
    });
    stdout(&serde_json::to_string_pretty(&report).unwrap_or_default());
}

pub fn color_enabled_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Set once stdout's reader has gone (`platformctl … | head -1`): nothing more is written there.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes a line to stdout. A closed pipe stops output quietly and nothing else: the command
/// runs to its end and exits with its own code (a drift is still 1 under `| head`).
fn stdout(text: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            stderr(&format!("error: cannot write to stdout: {e}"));
        }
    }
}

/// Writes a line to stderr; a closed stderr is ignored (never a panic, as `eprintln!` would).
fn stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// Progress of `up`'s steps on stderr: a spinner per step on a TTY, plain lines otherwise
/// (CI logs). Silent with `--quiet`; with `--output json` only stdout carries the report, so
/// progress still goes to stderr.
pub struct StepPrinter<'a> {
    printer: &'a Printer,
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
}

impl<'a> StepPrinter<'a> {
    pub fn new(printer: &'a Printer) -> Self {
        StepPrinter {
            printer,
            bar: std::sync::Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, Option<indicatif::ProgressBar>> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl crate::up::Progress for StepPrinter<'_> {
    fn started(&self, step: crate::up::Step, index: usize, total: usize) {
        if self.printer.quiet {
            return;
        }
        if self.tty {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix:.bold} {wide_msg} {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_prefix(format!("[{index}/{total}] {}", step.name()));
            bar.set_message(step.describe());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            *self.bar() = Some(bar);
        } else {
            stderr(&format!(
                "up: [{index}/{total}] {}: {}",
                step.name(),
                step.describe()
            ));
        }
    }

    fn message(&self, step: crate::up::Step, message: &str) {
        if self.printer.quiet {
            return;
        }
        match self.bar().as_ref() {
            Some(bar) => bar.set_message(message.to_string()),
            None => stderr(&format!("up:   {}: {message}", step.name())),
        }
    }

    fn finished(&self, step: crate::up::Step, report: &crate::up::StepReport) {
        if self.printer.quiet {
            return;
        }
        let mark = match report.status {
            crate::up::StepStatus::Changed => "changed",
            crate::up::StepStatus::Unchanged => "ok",
            crate::up::StepStatus::Skipped => "skipped",
        };
        let line = format!(
            "{:<11} {:<8} {:>6.2} s  {}",
            step.name(),
            mark,
            report.seconds,
            report.detail
        );
        if let Some(bar) = self.bar().take() {
            bar.finish_and_clear();
        }
        stderr(&format!("{}{line}", if self.tty { "" } else { "up: " }));
    }
}

/// A live status line on stderr, on a terminal only (`load`'s per-second progress): nothing in
/// CI logs, with `--quiet`, or when stderr is not a TTY.
pub struct Ticker {
    bar: Option<indicatif::ProgressBar>,
}

impl Ticker {
    pub fn new(printer: &Printer) -> Ticker {
        let bar = (!printer.quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Ticker { bar }
    }

    pub fn set(&self, line: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(line);
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
