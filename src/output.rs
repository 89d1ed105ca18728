//! The only module that writes to the terminal. stdout carries the result (text or a versioned
//! JSON report); progress, logs and errors go to stderr. Color only on a TTY and never when
//! `NO_COLOR` is set.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};

use serde_json::{Value, json};

use crate::exit::{self, Code};

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
}

impl Printer {
    pub fn new(format: Format, quiet: bool) -> Self {
        Printer { format, quiet }
    }

    /// Whether stdout may carry ANSI colors.
    pub fn color_stdout(&self) -> bool {
        std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
    }

    /// Prints the command's result on stdout.
    pub fn report(&self, report: &Report) {
        match self.format {
            Format::Json => {
                let text = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
                stdout(&text);
            }
            Format::Text if self.quiet || report.text.is_empty() => {}
            Format::Text => stdout(report.text.trim_end_matches('\n')),
        }
    }

    /// Progress and notes for a person, on stderr; silenced by `--quiet`.
    pub fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
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
        eprintln!("{text}");
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
            stdout(&serde_json::to_string_pretty(&report).unwrap_or_default());
        }
    }
}

pub fn color_enabled_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Writes a line to stdout; a closed pipe (`platformctl ... | head`) ends the process quietly.
fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
    }
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
            eprintln!("up: [{index}/{total}] {}: {}", step.name(), step.describe());
        }
    }

    fn message(&self, step: crate::up::Step, message: &str) {
        if self.printer.quiet {
            return;
        }
        match self.bar().as_ref() {
            Some(bar) => bar.set_message(message.to_string()),
            None => eprintln!("up:   {}: {message}", step.name()),
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
        eprintln!("{}{line}", if self.tty { "" } else { "up: " });
    }
}
