//! Cold-start SFT (Vision-R1 §1.3, ReVisual-R1 §2.3 of papers_spec): labels on assistant tokens only
//! ([`labels`]) and the next-token cross-entropy with its gradient-accumulation normalisation ([`loss`]).
pub mod labels;
pub mod loss;
pub mod trainer;
