//! Reinforcement learning for both papers: rewards and the answer grader, GRPO advantages, policy
//! losses, PAD. Each file's header names the equation or reference code it implements
//! (../shared/reference/papers_spec.md) and every deliberate deviation.
pub mod advantage;
pub mod dynamic;
pub mod entropy;
pub mod experience;
pub mod grader;
pub mod kl;
pub mod loss;
pub mod pad;
pub mod reward;
pub mod rollout;
pub mod run;
pub mod schedule;
pub mod trainer;
pub mod update;
