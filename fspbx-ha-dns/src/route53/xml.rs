//! Route53 API documents (2013-04-01), as serde types for quick-xml.
#![allow(non_snake_case)]

use serde::{Deserialize, Serialize};

pub(crate) const XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// `ChangeResourceRecordSetsRequest`.
#[derive(Debug, Serialize)]
#[serde(rename = "ChangeResourceRecordSetsRequest")]
pub(crate) struct ChangeRequest {
    #[serde(rename = "@xmlns")]
    pub(crate) xmlns: &'static str,
    pub(crate) ChangeBatch: ChangeBatch,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangeBatch {
    pub(crate) Comment: String,
    pub(crate) Changes: Changes,
}

#[derive(Debug, Serialize)]
pub(crate) struct Changes {
    pub(crate) Change: Vec<ChangeItem>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangeItem {
    pub(crate) Action: &'static str,
    pub(crate) ResourceRecordSet: RrSet,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub(crate) struct RrSet {
    pub(crate) Name: String,
    pub(crate) Type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) TTL: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ResourceRecords: Option<Records>,
    #[serde(default, skip_serializing)]
    pub(crate) AliasTarget: Option<AliasTarget>,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub(crate) struct Records {
    #[serde(default)]
    pub(crate) ResourceRecord: Vec<Record>,
}

#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) Value: String,
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
pub(crate) struct AliasTarget {
    #[serde(default)]
    pub(crate) DNSName: String,
}

/// `ListHostedZonesByNameResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListHostedZonesByName {
    #[serde(default)]
    pub(crate) HostedZones: HostedZones,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct HostedZones {
    #[serde(default)]
    pub(crate) HostedZone: Vec<HostedZone>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HostedZone {
    pub(crate) Id: String,
    pub(crate) Name: String,
}

/// `ListResourceRecordSetsResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListResourceRecordSets {
    #[serde(default)]
    pub(crate) ResourceRecordSets: RrSets,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct RrSets {
    #[serde(default)]
    pub(crate) ResourceRecordSet: Vec<RrSet>,
}

/// `ChangeResourceRecordSetsResponse` and `GetChangeResponse`.
#[derive(Debug, Deserialize)]
pub(crate) struct ChangeInfoResponse {
    pub(crate) ChangeInfo: ChangeInfo,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangeInfo {
    pub(crate) Id: String,
    pub(crate) Status: String,
}

/// `ErrorResponse` (most errors).
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorResponse {
    pub(crate) Error: ErrorBody,
}

/// `ErrorResponse` with the errors wrapped in `Errors` (the shape of authentication failures).
#[derive(Debug, Deserialize)]
pub(crate) struct WrappedErrorResponse {
    pub(crate) Errors: WrappedErrors,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WrappedErrors {
    pub(crate) Error: ErrorBody,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) Code: String,
    #[serde(default)]
    pub(crate) Message: String,
}

/// `InvalidChangeBatch` (the batch error shape Route53 uses for ChangeResourceRecordSets).
#[derive(Debug, Deserialize)]
pub(crate) struct InvalidChangeBatch {
    #[serde(default)]
    pub(crate) Messages: Messages,
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct Messages {
    #[serde(default)]
    pub(crate) Message: Vec<String>,
}

/// An error document in any of the shapes Route53 uses: (code, message).
pub(crate) fn parse_error(body: &str) -> Option<(String, String)> {
    if let Ok(e) = quick_xml::de::from_str::<ErrorResponse>(body) {
        return Some((e.Error.Code, e.Error.Message));
    }
    if let Ok(e) = quick_xml::de::from_str::<WrappedErrorResponse>(body) {
        return Some((e.Errors.Error.Code, e.Errors.Error.Message));
    }
    if body.contains("<InvalidChangeBatch")
        && let Ok(e) = quick_xml::de::from_str::<InvalidChangeBatch>(body)
    {
        return Some(("InvalidChangeBatch".into(), e.Messages.Message.join("; ")));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_request_serializes_to_the_documented_shape() {
        let req = ChangeRequest {
            xmlns: XMLNS,
            ChangeBatch: ChangeBatch {
                Comment: "c".into(),
                Changes: Changes {
                    Change: vec![ChangeItem {
                        Action: "DELETE",
                        ResourceRecordSet: RrSet {
                            Name: "pbx.example.com.".into(),
                            Type: "A".into(),
                            TTL: Some(60),
                            ResourceRecords: Some(Records {
                                ResourceRecord: vec![Record {
                                    Value: "192.0.2.1".into(),
                                }],
                            }),
                            AliasTarget: None,
                        },
                    }],
                },
            },
        };
        let xml = quick_xml::se::to_string(&req).unwrap();
        assert_eq!(
            xml,
            "<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
             <ChangeBatch><Comment>c</Comment><Changes><Change><Action>DELETE</Action>\
             <ResourceRecordSet><Name>pbx.example.com.</Name><Type>A</Type><TTL>60</TTL>\
             <ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord>\
             </ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch>\
             </ChangeResourceRecordSetsRequest>"
        );
    }

    #[test]
    fn parses_record_sets_and_both_error_shapes() {
        let body = r#"<?xml version="1.0"?>
<ListResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
 <ResourceRecordSets>
  <ResourceRecordSet><Name>pbx.example.com.</Name><Type>A</Type><TTL>60</TTL>
   <ResourceRecords><ResourceRecord><Value>192.0.2.1</Value></ResourceRecord>
   <ResourceRecord><Value>192.0.2.2</Value></ResourceRecord></ResourceRecords></ResourceRecordSet>
  <ResourceRecordSet><Name>www.example.com.</Name><Type>A</Type>
   <AliasTarget><HostedZoneId>Z</HostedZoneId><DNSName>lb.example.net.</DNSName>
   <EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget></ResourceRecordSet>
 </ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>100</MaxItems>
</ListResourceRecordSetsResponse>"#;
        let l: ListResourceRecordSets = quick_xml::de::from_str(body).unwrap();
        let sets = l.ResourceRecordSets.ResourceRecordSet;
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[0].TTL, Some(60));
        assert_eq!(
            sets[0]
                .ResourceRecords
                .as_ref()
                .unwrap()
                .ResourceRecord
                .len(),
            2
        );
        assert!(sets[1].AliasTarget.is_some());

        let e = r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>
            <Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        assert_eq!(
            parse_error(e),
            Some(("Throttling".into(), "Rate exceeded".into()))
        );
        let e = r#"<InvalidChangeBatch xmlns="https://route53.amazonaws.com/doc/2013-04-01/">
            <Messages><Message>Tried to delete resource record set [name='a.', type='A'] but the values provided do not match the current values</Message></Messages>
            <RequestId>x</RequestId></InvalidChangeBatch>"#;
        let (code, msg) = parse_error(e).unwrap();
        assert_eq!(code, "InvalidChangeBatch");
        assert!(msg.contains("do not match"));
        let e = r#"<?xml version="1.0" encoding="utf-8"?>
<ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></Errors><RequestId>x</RequestId></ErrorResponse>"#;
        assert_eq!(parse_error(e).unwrap().0, "SignatureDoesNotMatch");
        assert_eq!(parse_error("not xml"), None);
    }
}
