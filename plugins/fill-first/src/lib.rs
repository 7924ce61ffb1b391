//! `fill-first`: use one account until it cannot serve, then the next.
//!
//! Accounts are kept in a stable order: the `priority` label ascending
//! (a number; accounts without one, or with one that is not a number, come
//! after those with one), then the account id. Every request goes to the
//! first account in that order that may serve it; an account that left the
//! pool (cooling down, disabled, taken off the proxy), was tried already for
//! this request, or is unavailable for the request's model is skipped, and
//! the first account takes over again as soon as it is back.
//!
//! Use it to drain one account's quota before touching the next (e.g. keep
//! spare accounts fresh), or to prefer some accounts with `priority`.
//!
//! No configuration: `config = {}` (any key is refused).
//!
//! Cost: the order is kept sorted as accounts join and leave, so a pick
//! walks only past the accounts that cannot serve this request.

use grantpool_plugin_sdk::pick::FillFirst as Order;
use grantpool_plugin_sdk::selector::{Interests, Pool, PoolEvent, Request, Strategy};

#[derive(serde::Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct Config {}

struct FillFirst {
    order: Order,
}

impl Strategy for FillFirst {
    fn configure(config: &str) -> Result<Self, String> {
        let Config {} = grantpool_plugin_sdk::config::parse(config)?;
        Ok(FillFirst { order: Order::new() })
    }

    /// The order is by account details only.
    fn interests(&self) -> Interests {
        Interests::empty()
    }

    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        self.order.pick(pool, req)
    }

    fn observe(&mut self, event: &PoolEvent, pool: &Pool) {
        self.order.observe(event, pool);
    }
}

grantpool_plugin_sdk::export_selector!(FillFirst);

#[cfg(test)]
mod tests {
    use super::*;
    use grantpool_plugin_sdk::pick::testing::{account, request};

    fn feed(s: &mut FillFirst, pool: &mut Pool, events: Vec<PoolEvent>) {
        for e in &events {
            pool.apply(e);
            s.observe(e, pool);
        }
    }

    #[test]
    fn stays_on_the_first_until_it_cannot_serve() {
        let mut s = FillFirst::configure("{}").unwrap();
        let mut pool = Pool::default();
        feed(
            &mut s,
            &mut pool,
            vec![
                PoolEvent::Reset,
                PoolEvent::Joined(account(0, "c", &[])),
                PoolEvent::Joined(account(1, "a", &[])),
                PoolEvent::Joined(account(2, "b", &[])),
            ],
        );
        let req = request("m");
        for _ in 0..10 {
            assert_eq!(s.select(&pool, &req), Some(1));
        }
        feed(&mut s, &mut pool, vec![PoolEvent::Left(1)]);
        assert_eq!(s.select(&pool, &req), Some(2));
        feed(&mut s, &mut pool, vec![PoolEvent::Joined(account(1, "a", &[]))]);
        assert_eq!(s.select(&pool, &req), Some(1));
        let mut retry = request("m");
        retry.tried = vec![1];
        assert_eq!(s.select(&pool, &retry), Some(2));
    }

    #[test]
    fn refuses_config_keys() {
        let err = FillFirst::configure(r#"{"order":"id"}"#).err().unwrap();
        assert!(err.contains("unknown field `order`"), "{err}");
        assert!(FillFirst::configure("").is_ok());
    }
}
