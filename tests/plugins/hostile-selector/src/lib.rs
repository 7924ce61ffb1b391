//! A selector that misbehaves on demand, to prove the host contains it.
//! The request's model says how: `loop` (never returns), `bomb` (eats
//! memory), `panic`, `oob` (answers a slot that does not exist); any other
//! model gets the first candidate. Config `{"reject": true}` is refused.

use grantpool_plugin_sdk::selector::{Pool, Request, Strategy};

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Config {
    reject: bool,
}

struct Hostile;

impl Strategy for Hostile {
    fn configure(config: &str) -> Result<Self, String> {
        let c: Config = grantpool_plugin_sdk::config::parse(config)?;
        if c.reject {
            return Err("this config is rejected on purpose".into());
        }
        Ok(Hostile)
    }

    fn select(&mut self, pool: &Pool, req: &Request) -> Option<u32> {
        match req.model.as_str() {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile selector panics on purpose"),
            "oob" => Some(999_999),
            _ => {
                grantpool_plugin_sdk::log::info("hostile selector behaving");
                pool.candidates(req).next().map(|a| a.slot)
            }
        }
    }
}

grantpool_plugin_sdk::export_selector!(Hostile);
