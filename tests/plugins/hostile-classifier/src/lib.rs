//! A classifier that misbehaves on demand: a failure body of `loop`,
//! `bomb` or `panic` makes it hang, eat memory or panic; `disable-me` makes
//! it answer disable (to check a crash never disables). Config
//! `{"reject": true}` is refused.

use grantpool_plugin_sdk::classifier::{Classifier, Failure, Verdict};

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Config {
    reject: bool,
}

struct Hostile;

impl Classifier for Hostile {
    fn configure(config: &str) -> Result<Self, String> {
        let c: Config = grantpool_plugin_sdk::config::parse(config)?;
        if c.reject {
            return Err("this config is rejected on purpose".into());
        }
        Ok(Hostile)
    }

    fn classify(&mut self, f: &Failure) -> Option<Verdict> {
        match f.body.as_str() {
            "loop" => loop {
                std::hint::black_box(());
            },
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile classifier panics on purpose"),
            "disable-me" => Some(Verdict::Disable("hostile says so".into())),
            _ => Some(Verdict::PassToClient),
        }
    }
}

grantpool_plugin_sdk::export_classifier!(Hostile);
