//! The input format shared by the classifier fuzz targets: one byte of
//! flags (bit 0: upstream rather than token refresh; bit 1: a network
//! error), a big-endian status (0: none), then UTF-8 text split at NULs into
//! the plugin's config, header lines (`name: value`) and the body.

use grantpool_plugin_sdk::classifier::{Failure, Phase};

/// The seed runner that stands in for libFuzzer in `./dev test` (shared
/// with host/fuzz).
#[cfg(all(not(feature = "libfuzzer"), not(test)))]
#[path = "../../../host/fuzz/src/seeds.rs"]
mod seeds;

/// A failure to classify and the config to classify it with.
pub struct Case {
    /// The plugin's config (JSON, as the host passes it).
    pub config: String,
    /// The failure.
    pub failure: Failure,
}

/// The case in `data`, or `None` for input too short or not UTF-8.
pub fn case(data: &[u8]) -> Option<Case> {
    let (&[flags, hi, lo], rest) = data.split_first_chunk::<3>()?;
    let text = std::str::from_utf8(rest).ok()?;
    let mut parts = text.splitn(3, '\0');
    let config = parts.next().unwrap_or_default().to_string();
    let headers = parts
        .next()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = parts.next().unwrap_or_default().to_string();
    let upstream = flags & 1 == 1;
    let network_error = flags & 2 == 2;
    let status = u16::from_be_bytes([hi, lo]);
    let failure = Failure {
        phase: if upstream { Phase::Upstream } else { Phase::TokenRefresh },
        status: (status != 0 && !network_error).then_some(status),
        body,
        headers,
        network_error,
        account_id: "acc0".into(),
        email: "a@example.com".into(),
        model: upstream.then(|| "gemini-2.5-pro".to_string()),
        attempt: 1,
    };
    Some(Case { config, failure })
}
