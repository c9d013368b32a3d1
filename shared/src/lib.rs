//! Mailroom's library: everything but the entry points.
//!
//! The domain modules (`mail`, `format`, `deliver`) hold no AWS code; adapters convert at the edge.

pub mod deliver;
pub mod format;
pub mod http;
pub mod mail;
