//! Minibatch SGD with heavy-ball momentum, weight decay, warm-up and learning-rate schedules.
//!
//! The optimiser sees only flat `f32` slices: the synchronised gradient and the parameters.
//! Its state (the momentum buffer) is plain data so checkpoints can save and restore it.
//! All ranks apply the same deterministic update to bit-identical inputs, which keeps the
//! parameters bit-identical across ranks.

use crate::config::{OptimConfig, Schedule};

/// SGD with momentum: `v = mu v + (g + wd w)`, `w -= lr v`.
#[derive(Clone, Debug)]
pub struct Sgd {
    cfg: OptimConfig,
    velocity: Vec<f32>,
    total_steps: u64,
    steps_per_epoch: u64,
}

impl Sgd {
    /// An optimiser for `dim` parameters; `total_steps` and `steps_per_epoch` drive schedules.
    pub fn new(cfg: &OptimConfig, dim: usize, total_steps: u64, steps_per_epoch: u64) -> Self {
        Self {
            cfg: cfg.clone(),
            velocity: if cfg.momentum > 0.0 {
                vec![0.0; dim]
            } else {
                Vec::new()
            },
            total_steps: total_steps.max(1),
            steps_per_epoch: steps_per_epoch.max(1),
        }
    }

    /// The learning rate at `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f64 {
        let c = &self.cfg;
        let warm = if c.warmup_steps > 0 && step < c.warmup_steps as u64 {
            (step + 1) as f64 / c.warmup_steps as f64
        } else {
            1.0
        };
        let sched = match c.schedule {
            Schedule::Constant => 1.0,
            Schedule::Step => {
                let epoch = step / self.steps_per_epoch;
                c.lr_decay.powi((epoch / c.lr_step_epochs as u64) as i32)
            }
            Schedule::Cosine => {
                let t = (step as f64 / self.total_steps as f64).min(1.0);
                0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        c.lr * warm * sched
    }

    /// Apply one update with the synchronised gradient `grad` at `step`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32], step: u64) {
        let lr = self.lr_at(step) as f32;
        let wd = self.cfg.weight_decay as f32;
        let mu = self.cfg.momentum as f32;
        if mu > 0.0 {
            for ((w, &g), v) in params.iter_mut().zip(grad).zip(self.velocity.iter_mut()) {
                *v = mu * *v + (g + wd * *w);
                *w -= lr * *v;
            }
        } else {
            for (w, &g) in params.iter_mut().zip(grad) {
                *w -= lr * (g + wd * *w);
            }
        }
    }

    /// The momentum buffer (empty without momentum), for checkpoints.
    pub fn velocity(&self) -> &[f32] {
        &self.velocity
    }

    /// Restore the momentum buffer; returns false when the length does not match.
    pub fn set_velocity(&mut self, v: &[f32]) -> bool {
        if v.len() != self.velocity.len() {
            return false;
        }
        self.velocity.copy_from_slice(v);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sgd_step() {
        let cfg = OptimConfig {
            lr: 0.5,
            momentum: 0.0,
            ..Default::default()
        };
        let mut o = Sgd::new(&cfg, 2, 10, 5);
        let mut w = vec![1.0, 2.0];
        o.step(&mut w, &[2.0, -2.0], 0);
        assert_eq!(w, vec![0.0, 3.0]);
    }

    #[test]
    fn momentum_accumulates() {
        let cfg = OptimConfig {
            lr: 1.0,
            momentum: 0.5,
            ..Default::default()
        };
        let mut o = Sgd::new(&cfg, 1, 10, 5);
        let mut w = vec![0.0];
        o.step(&mut w, &[1.0], 0);
        o.step(&mut w, &[1.0], 1);
        assert_eq!(w, vec![-2.5]);
    }

    #[test]
    fn schedules() {
        let cfg = OptimConfig {
            lr: 1.0,
            schedule: Schedule::Step,
            lr_decay: 0.1,
            lr_step_epochs: 2,
            warmup_steps: 4,
            ..Default::default()
        };
        let o = Sgd::new(&cfg, 1, 100, 10);
        assert!((o.lr_at(0) - 0.25).abs() < 1e-12);
        assert!((o.lr_at(19) - 1.0).abs() < 1e-12);
        assert!((o.lr_at(20) - 0.1).abs() < 1e-12);
        let cfg = OptimConfig {
            lr: 1.0,
            schedule: Schedule::Cosine,
            ..Default::default()
        };
        let o = Sgd::new(&cfg, 1, 100, 10);
        assert!((o.lr_at(50) - 0.5).abs() < 1e-12);
        assert!(o.lr_at(100).abs() < 1e-12);
    }
}
