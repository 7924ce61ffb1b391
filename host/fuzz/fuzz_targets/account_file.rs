//! Account files: any bytes parse or are refused with a cause that holds
//! no value from the file; a parsed file round-trips.
#![no_main]
use grantpool_fuzz::store::file::{encode, parse_account, AccountFile};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match parse_account(data) {
        Ok(a) => {
            let back: AccountFile = serde_json::from_slice(&encode(&a)).expect("what is written reads back");
            assert_eq!(back, a);
        }
        Err(cause) => {
            // Values in quotes are redacted: a token never reaches a message.
            assert!(!cause.contains("ya29.") && !cause.contains("1//"), "{cause}");
        }
    }
});
