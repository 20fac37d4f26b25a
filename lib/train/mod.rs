//! Optimisation shared by SFT and RL: AdamW with frozen parameters and grad-norm clipping that skips
//! non-finite steps ([`optim`]), and learning-rate schedules ([`schedule`]).
pub mod optim;
pub mod schedule;
