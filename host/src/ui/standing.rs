//! The Google refusal an account's off-the-proxy reason carries, in a few
//! words for its row (`banned: Terms of Service`, `no licence`).

/// The Google refusal an off-the-proxy reason carries (the reasons the
/// `default` classifier and onboarding write start with Google's code).
pub fn standing(reason: &str) -> Option<&'static str> {
    const STANDINGS: &[(&str, &str)] = &[
        ("TOS_VIOLATION", "banned: Terms of Service"),
        ("#3501", "no licence"),
        ("UNSUPPORTED_CLIENT", "sign-in client retired"),
        ("VALIDATION_REQUIRED", "verification needed"),
        ("UNSUPPORTED_LOCATION", "region not served"),
        ("INELIGIBLE_ACCOUNT", "not eligible"),
        ("SERVICE_DISABLED", "API disabled"),
    ];
    STANDINGS.iter().find(|(code, _)| reason.contains(code)).map(|(_, words)| *words)
}

#[cfg(test)]
mod standing_tests {
    #[test]
    fn googles_refusals_have_their_own_words() {
        assert_eq!(super::standing("403 TOS_VIOLATION: Google says \"…\" Appeal: https://forms.gle/x"), Some("banned: Terms of Service"));
        assert_eq!(super::standing("403 #3501 licence: …"), Some("no licence"));
        assert_eq!(super::standing("UNSUPPORTED_CLIENT: Google no longer serves…"), Some("sign-in client retired"));
        assert_eq!(super::standing("taken off by hand"), None);
    }
}
