//! The HTTP side: the listener (serving threads), the router, admission
//! (keys, host guard, body limits), the client routes, the model routes,
//! the admin API, answers in each client's shape, and the request path
//! through the pool ([`dispatch`]), and what each request used (`ledger`:
//! metrics, a named key's tokens, the usage log). Translation is pure and lives in
//! [`crate::translate`].

pub mod admin;
pub mod admin_keys;
pub mod answer;
pub mod auth;
pub mod dispatch;
pub mod front;
pub mod images;
pub mod lane;
mod ledger;
pub mod listener;
pub mod models;
pub mod router;
pub mod routes;
pub mod state;
