//! The accounts page, served by `grantpool serve` at `/ui`: why an account
//! stopped serving, and recovering it from the browser.
//!
//! - [`assets`]: the page's files, embedded in the binary.
//! - [`router`]: its routes; [`guard`]: what every request passes (the
//!   DNS-rebinding guard, the session, same origin and CSRF for changes).
//! - [`session`]: sign-in with the admin key (HttpOnly, SameSite=Strict
//!   cookie), CSRF tokens, the brake on guessing.
//! - [`api`]: the JSON endpoints (accounts, the verified add, off/on the
//!   proxy, labels, removal, overview, reload, Google sign-in).
//! - [`stream`]: live updates as server-sent events, from the pool's news.
//! - [`rows`]: what a row and the overview hold (never a token);
//!   [`standing`]: the Google refusal an off-the-proxy reason carries.
//! - [`activity`]: traffic sampled once a second for the charts.
//! - [`usage`]: the Usage view (named keys, the usage log); [`served`]: the
//!   tokens each account served in its quota windows.
//! - [`flows`]: Google sign-ins in progress; [`state`]: what handlers share.
//!
//! The page reads the pool on demand and hears of changes from it; a
//! request through the proxy does no work for the page.

pub mod activity;
pub mod api;
pub mod assets;
pub mod flows;
pub mod guard;
pub mod reply;
pub mod router;
pub mod rows;
pub mod served;
pub mod session;
pub mod standing;
pub mod state;
pub mod stream;
pub mod usage;

pub use router::routes;
pub use state::{Access, Ui};
