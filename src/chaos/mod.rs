//! `platformctl chaos`: an experiment of platform.yaml run as a journal of timed phases (steady
//! state before, inject through Chaos Mesh, recovery of the workload, a verdict in SLO terms,
//! clean-up however the run ends). Never prints: progress goes through [`run::Progress`].

pub mod object;
pub mod run;
pub mod verdict;
pub mod workload;
