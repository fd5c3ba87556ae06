//! CPU cost of signing one Route53 request with SigV4 (`aws-sigv4`): paid on every Route53 call
//! (reads, flips, GetChange polls). Compare the numbers as ratios between commits, not
//! absolutes.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use fspbx_ha::dns::route53::sign::signed_headers;
use fspbx_ha::secret::Secret;

fn sigv4(c: &mut Criterion) {
    let secret = Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    let body = br#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>fspbx-ha flip</Comment><Changes><Change><Action>DELETE</Action><ResourceRecordSet><Name>pbx.example.com.</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.10</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change><Change><Action>CREATE</Action><ResourceRecordSet><Name>pbx.example.com.</Name><Type>A</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>192.0.2.20</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;
    let now = SystemTime::now();
    c.bench_function("sigv4/sign_change_batch_post", |b| {
        b.iter(|| {
            signed_headers(
                "POST",
                "https://route53.amazonaws.com/2013-04-01/hostedzone/Z0123456789/rrset/",
                std::hint::black_box(body),
                "AKIDEXAMPLE",
                &secret,
                "us-east-1",
                now,
            )
            .unwrap()
        })
    });
    c.bench_function("sigv4/sign_get_change", |b| {
        b.iter(|| {
            signed_headers(
                "GET",
                "https://route53.amazonaws.com/2013-04-01/change/C0123456789",
                b"",
                "AKIDEXAMPLE",
                &secret,
                "us-east-1",
                now,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, sigv4);
criterion_main!(benches);
