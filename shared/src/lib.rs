//! Mailroom's library: everything but the entry points.
//!
//! The domain modules (`mail`, `format`, `route`, `record`, `deliver`) hold no AWS code; the use case
//! (`inbound`) works through the traits of `ports`; adapters convert at the edge (`http`, and the AWS and
//! local stores).

pub mod aws;
pub mod budget;
pub mod deliver;
pub mod erasure;
pub mod feedback;
pub mod format;
pub mod http;
pub mod inbound;
pub mod local;
pub mod mail;
pub mod notifications;
pub mod ports;
pub mod record;
pub mod route;
pub mod settings;
