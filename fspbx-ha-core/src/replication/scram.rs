//! Role passwords as SCRAM-SHA-256 verifiers, so the clear password never reaches the server's
//! SQL text (nor its logs): `ALTER ROLE … PASSWORD 'SCRAM-SHA-256$…'` stores the verifier as it
//! is. [`matches`] tells whether a stored verifier belongs to a password, which makes "the role
//! has the configured password" a checkable postcondition.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};

/// A fresh verifier (random salt, 4096 iterations) for `password`.
pub(crate) fn verifier(password: &str) -> String {
    postgres_protocol::password::scram_sha_256(password.as_bytes())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// PBKDF2-HMAC-SHA256 with one block (RFC 5802's `Hi`).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// Whether `stored` (a `pg_authid.rolpassword` value) is a SCRAM-SHA-256 verifier of
/// `password`. Anything else (md5, clear text, NULL) counts as not matching, so the role gets a
/// fresh SCRAM verifier. Passwords are used as bytes (ASCII passwords need no SASLprep).
pub(crate) fn matches(stored: &str, password: &str) -> bool {
    let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") else {
        return false;
    };
    let Some((iter_salt, keys)) = rest.split_once('$') else {
        return false;
    };
    let (Some((iter, salt)), Some((stored_key, _server_key))) =
        (iter_salt.split_once(':'), keys.split_once(':'))
    else {
        return false;
    };
    let (Ok(iter), Ok(salt), Ok(stored_key)) = (
        iter.parse::<u32>(),
        STANDARD.decode(salt),
        STANDARD.decode(stored_key),
    ) else {
        return false;
    };
    if iter == 0 || iter > 10_000_000 {
        return false;
    }
    let salted = hi(password.as_bytes(), &salt, iter);
    let client_key = hmac(&salted, b"Client Key");
    Sha256::digest(&client_key).as_slice() == stored_key.as_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_verifier_matches_its_password_only() {
        let v = verifier("correct horse");
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!v.contains("correct horse"));
        assert!(matches(&v, "correct horse"));
        assert!(!matches(&v, "correct horsf"));
        assert!(!matches("md5abcdef", "correct horse"));
        assert!(!matches("SCRAM-SHA-256$x", "correct horse"));
    }
}
