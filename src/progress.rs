//! Progress display for long runs on rank 0.
//!
//! Attached to a terminal, one status line is redrawn in place at most a few times a second:
//! steps, epoch, running training loss, data sent so far, and the estimated time left. When
//! neither stderr nor stdout is a terminal (batch jobs, CI logs), a plain log line is written
//! every `interval` instead, so job logs stay readable and grep-able.
//!
//! Under `mpirun` a rank's stderr is a pipe but its stdout a pseudo-terminal whose bytes
//! Open MPI forwards as they come, so the status line goes to whichever of stderr and stdout
//! is a terminal.

use std::io::{IsTerminal, Write};

/// Where the redrawn status line goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tty {
    Stderr,
    Stdout,
}

impl Tty {
    /// The terminal among stderr and stdout, stderr first.
    fn detect() -> Option<Self> {
        if std::io::stderr().is_terminal() {
            Some(Tty::Stderr)
        } else if std::io::stdout().is_terminal() {
            Some(Tty::Stdout)
        } else {
            None
        }
    }

    fn write(self, text: &str) {
        let _ = match self {
            Tty::Stderr => {
                let mut e = std::io::stderr().lock();
                e.write_all(text.as_bytes()).and_then(|()| e.flush())
            }
            Tty::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(text.as_bytes()).and_then(|()| o.flush())
            }
        };
    }
}
use std::time::{Duration, Instant};

/// Rank 0's progress reporter (a no-op on other ranks).
pub struct Progress {
    enabled: bool,
    terminal: Option<Tty>,
    started: Instant,
    last: Instant,
    interval: Duration,
    total_steps: u64,
    drawn: bool,
}

/// Human-readable byte count.
pub fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

impl Progress {
    /// A reporter for a run of `total_steps`; only `enabled` (rank 0) prints.
    pub fn new(enabled: bool, total_steps: u64) -> Self {
        let terminal = Tty::detect();
        let now = Instant::now();
        Self {
            enabled,
            terminal,
            started: now,
            last: now,
            interval: if terminal.is_some() {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(30)
            },
            total_steps: total_steps.max(1),
            drawn: false,
        }
    }

    /// Report after `step` steps.
    pub fn update(&mut self, step: u64, epoch: f64, train_loss: f64, bytes_sent: f64) {
        if !self.enabled || self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = elapsed / step.max(1) as f64 * (self.total_steps.saturating_sub(step)) as f64;
        let line = format!(
            "step {step}/{} ({:.0}%) epoch {epoch:.2} loss {train_loss:.4} sent {}/rank, \
             {elapsed:.0}s elapsed, ~{left:.0}s left",
            self.total_steps,
            100.0 * step as f64 / self.total_steps as f64,
            human_bytes(bytes_sent)
        );
        match self.terminal {
            Some(tty) => {
                tty.write(&format!("\r\x1b[2K{line}"));
                self.drawn = true;
            }
            None => log::info!("{line}"),
        }
    }

    /// Clear the status line before other output.
    pub fn clear(&mut self) {
        if let (true, Some(tty)) = (self.drawn, self.terminal) {
            tty.write("\r\x1b[2K");
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(512.0), "512.0 B");
        assert_eq!(human_bytes(2.5e6), "2.5 MB");
        assert_eq!(human_bytes(7e12), "7.0 TB");
    }
}
