//! The event bus beside the lake: accepted events fanned out to the teams that subscribe to them.
//!
//! - [`subscriptions`]: which team receives which producing team's events, loaded from a
//!   versioned configuration and checked when it loads; an event goes to every team with a
//!   matching rule and to no one else.

pub mod subscriptions;

pub use subscriptions::{Error, Subscriptions};
