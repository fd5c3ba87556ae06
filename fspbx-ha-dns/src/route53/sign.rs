//! SigV4 signing of Route53 requests with the maintained `aws-sigv4` crate.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use fspbx_ha_secret::Secret;

use crate::error::{Error, Result};

/// The headers (`authorization`, `x-amz-date`, …) that sign `method url` with `body`, for
/// service `route53` in `region`, at `time`.
///
/// Public so the signing cost can be benchmarked; providers call it for every request.
pub fn signed_headers(
    method: &str,
    url: &str,
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &Secret,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>> {
    let creds = Credentials::new(
        access_key_id,
        secret_access_key.expose(),
        None,
        None,
        "fspbx-ha",
    );
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("route53")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Error::Signing {
            detail: e.to_string(),
        })?
        .into();
    let request = SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(body))
        .map_err(|e| Error::Signing {
            detail: e.to_string(),
        })?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| Error::Signing {
            detail: e.to_string(),
        })?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn signs_with_date_and_scope_and_never_leaks_the_secret() {
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let h = signed_headers(
            "POST",
            "https://route53.amazonaws.com/2013-04-01/hostedzone/Z1/rrset/",
            b"<x/>",
            "AKIDEXAMPLE",
            &secret,
            "us-east-1",
            t,
        )
        .unwrap();
        let get = |n: &str| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("x-amz-date"), "20231114T221320Z");
        let auth = get("authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/route53/aws4_request"
            ),
            "{auth}"
        );
        assert!(!auth.contains(secret.expose()));
        // Deterministic for the same input, different for another body.
        let again = signed_headers(
            "POST",
            "https://route53.amazonaws.com/2013-04-01/hostedzone/Z1/rrset/",
            b"<y/>",
            "AKIDEXAMPLE",
            &secret,
            "us-east-1",
            t,
        )
        .unwrap();
        assert_ne!(again, h);
    }
}
