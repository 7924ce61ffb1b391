//! Keeping the reported Antigravity version current.
//!
//! Google serves newer models only to clients that report a recent enough
//! Antigravity (404 `Requested entity was not found.` below it: CLIProxyAPI
//! a834917e8; 9router PR #3732 for Gemini 3.8), and Antigravity moves every
//! few weeks. The built-in version is the profile's ([`Profile::version`]);
//! `[upstream] antigravity_version` fixes another. With `[upstream]
//! version_manifest_url` set, the Antigravity updater's manifest (the
//! electron-builder YAML CLIProxyAPI reads in
//! `internal/misc/antigravity_version.go`, with the User-Agent
//! `electron-builder`) is read at start and every `version_check_secs`:
//! a newer version than the one in use is reported from then on; a
//! manifest that cannot be read, or names an older or malformed version,
//! changes nothing.
//!
//! [`Profile::version`]: crate::profiles::Profile::version

use std::cmp::Ordering;
use std::time::Duration;

use super::{RouteUa, Upstream};

/// The `version:` of an electron-builder manifest (`latest-mac.yml`), when
/// it is a plain dotted version.
pub fn manifest_version(yaml: &str) -> Option<String> {
    let line = yaml.lines().find(|l| l.starts_with("version:"))?;
    let v = line["version:".len()..].trim().trim_matches(['\'', '"']);
    valid(v).then(|| v.to_string())
}

/// A version of digits and dots (`2.13.0`).
fn valid(v: &str) -> bool {
    !v.is_empty() && v.len() <= 32 && v.split('.').all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Compares two dotted versions numerically (`2.9.1` < `2.13.0`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let parse = |v: &str| v.split('.').map(|p| p.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    let (a, b) = (parse(a), parse(b));
    for i in 0..a.len().max(b.len()) {
        match a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    Ordering::Equal
}

impl Upstream {
    /// The Antigravity version the User-Agent reports now.
    pub fn antigravity_version(&self) -> String {
        self.reported_version.read().clone()
    }

    /// Report `version` from now on when it is newer than the one in use
    /// (and the version follows the manifest). Returns whether it changed.
    pub fn offer_antigravity_version(&self, version: &str) -> bool {
        if !valid(version) || compare(version, &self.antigravity_version()) != Ordering::Greater {
            return false;
        }
        let mut changed = false;
        for route in self.routes.iter().filter(|r| r.follows_manifest) {
            match RouteUa::new(&route.raw_template, version) {
                Ok(ua) => {
                    *route.ua.write() = ua;
                    changed = true;
                }
                Err(e) => tracing::warn!("the updater's version {version} makes no valid User-Agent: {e}"),
            }
        }
        if changed {
            *self.reported_version.write() = version.to_string();
        }
        changed
    }

    /// Read the updater's manifest once; the version it names, if readable.
    pub async fn read_manifest(&self, url: &str) -> Result<String, String> {
        // Not made for an account: the pool's default way out.
        let way = self.egress.route_url(None, url).map_err(|e| e.to_string())?;
        let http = self.http.get(&way).ok_or("no client for the egress route")?;
        let resp = http
            .get(url)
            .header(reqwest::header::USER_AGENT, "electron-builder")
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .map_err(|e| crate::oauth::describe_reqwest(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| crate::oauth::describe_reqwest(&e))?;
        if !status.is_success() {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        manifest_version(&text).ok_or_else(|| "no `version:` line with a dotted version".to_string())
    }
}

/// Read the manifest at start and every `every`, offering what it names.
pub async fn keep_current(upstream: Upstream, url: String, every: Duration) {
    let mut warned = false;
    loop {
        match upstream.read_manifest(&url).await {
            Ok(v) => {
                warned = false;
                if upstream.offer_antigravity_version(&v) {
                    tracing::info!(version = %v, "Antigravity version from the updater's manifest: {v} (the User-Agent reports it from now on)");
                } else {
                    tracing::debug!(version = %v, in_use = %upstream.antigravity_version(), "the updater's manifest names no newer Antigravity version");
                }
            }
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(url = %url, "cannot read the Antigravity updater's manifest ({e}); the User-Agent keeps reporting {}", upstream.antigravity_version());
            }
            Err(e) => tracing::debug!(url = %url, "cannot read the Antigravity updater's manifest: {e}"),
        }
        tokio::time::sleep(every.max(Duration::from_secs(60))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_version_is_read_and_checked() {
        let yaml = "version: 2.14.1\nfiles:\n  - url: Antigravity-2.14.1-arm64-mac.zip\npath: x\nreleaseDate: '2026-11-30T18:04:11.000Z'\n";
        assert_eq!(manifest_version(yaml).as_deref(), Some("2.14.1"));
        assert_eq!(manifest_version("version: '2.15.0'\n").as_deref(), Some("2.15.0"));
        assert_eq!(manifest_version("version: 2.14.1-beta\n"), None);
        assert_eq!(manifest_version("<html>not found</html>"), None);
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(compare("2.9.1", "2.13.0"), Ordering::Less);
        assert_eq!(compare("2.13", "2.13.0"), Ordering::Equal);
        assert_eq!(compare("3.0.0", "2.99.99"), Ordering::Greater);
    }

    #[test]
    fn only_a_newer_version_is_taken_and_a_fixed_one_never_moves() {
        let up = Upstream::new(&crate::config::UpstreamConfig::default(), 1).unwrap();
        let built_in = crate::profiles::ANTIGRAVITY.version;
        assert_eq!(up.antigravity_version(), built_in);
        assert!(!up.offer_antigravity_version("2.1.0"), "older: kept");
        assert!(!up.offer_antigravity_version("garbage"));
        assert!(up.offer_antigravity_version("9.0.1"));
        assert_eq!(up.antigravity_version(), "9.0.1");
        let ua = Upstream::user_agent(up.route(&crate::profiles::ANTIGRAVITY), "m");
        assert_eq!(ua.to_str().unwrap(), "antigravity/hub/9.0.1 darwin/arm64");
        let fixed = crate::config::UpstreamConfig { antigravity_version: Some("2.12.2".into()), ..Default::default() };
        let up = Upstream::new(&fixed, 1).unwrap();
        assert!(!up.offer_antigravity_version("9.0.1"), "a version set in config stays");
        let ua = Upstream::user_agent(up.route(&crate::profiles::ANTIGRAVITY), "m");
        assert_eq!(ua.to_str().unwrap(), "antigravity/hub/2.12.2 darwin/arm64");
    }
}
