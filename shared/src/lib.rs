//! Mailroom's core: the domain and the use cases, with no AWS SDK, no SQLite and no HTTP client among its
//! dependencies (`scripts/check-architecture` fails CI if one appears).
//!
//! Lowest layer first (a module imports only from its own layer or below; the script checks that too):
//!
//! | layer | modules | what |
//! |---|---|---|
//! | 0 | [`settings`], [`budget`] | reading settings; an invocation's time and memory |
//! | 1 | [`mail`] | parsing, envelope, headers, HTML to text, reply extraction, limits |
//! | 2 | [`format`], [`route`], [`record`] | the POST formats; routes; delivery records |
//! | 3 | [`deliver`], [`feedback`], [`send`] | signing, links, retry policy, target answers; SES notifications and suppression; the send API |
//! | 4 | [`ports`] | one small trait per capability the use cases need |
//! | 5 | [`usecases`] | inbound, feedback, erasure, links: what the functions and `mailroom dev` run |
//!
//! The adapters (`mailroom-aws`, `mailroom-local`, `mailroom-http`) implement the ports; the Lambda edge
//! (`mailroom-lambda`), the functions and the CLI sit on top. `docs/architecture.md` has the whole map.

pub mod budget;
pub mod deliver;
pub mod feedback;
pub mod format;
pub mod mail;
pub mod ports;
pub mod record;
pub mod route;
pub mod send;
pub mod settings;
pub mod usecases;
