//! The pool's settings: what each one means, its default, the rules a
//! config must satisfy, and the ways to write one (builder, text,
//! environment variables).
//!
//! Owns: [`Config`] (declared once, in `fields.rs`: name, type, default and
//! documentation; the struct, its defaults, the text form, the environment
//! variables and the builder's setters are all generated from that one
//! list), its validation, and the derived [`Settings`] that the hot path
//! reads. May touch: nothing of the pool but the types it builds.
//!
//! A [`Config`] is validated as a whole at build and on every
//! [`Pool::reconfigure`](crate::Pool::reconfigure); a bad one is rejected with
//! a [`ConfigError`] that names the field, says what was wrong and how to fix
//! it, and the config in force stays in force.

mod error;
mod fields;
#[cfg(feature = "serde")]
mod serde;
mod settings;
mod text;
mod validate;
mod value;

pub use error::ConfigError;
pub(crate) use fields::builder_setters;
pub use fields::{Config, SETTINGS};
pub(crate) use settings::{HotLimits, Settings};
pub use value::IdleOrder;
