//! moto's server as the lab's Route53 API, optionally with SigV4 signatures enforced.
//!
//! - Plain: any key works; used for the parts of the Route53 suite that need GETs (moto wrongly
//!   rejects correctly signed bodiless GETs when enforcing, see LAB.md).
//! - Enforcing: started with `INITIAL_NO_AUTH_ACTION_COUNT=3`; the lab spends those three calls
//!   on IAM `CreateUser`, `PutUserPolicy` (`Action: *`) and `CreateAccessKey`, so afterwards only
//!   that key is accepted and a wrong secret gets 403 — proof that a client signs correctly.
//! - Strict Route53 (`strict_route53`): moto checks a DELETE only against its change journal
//!   (any value ever created passes) and never refuses CREATE of an existing record, so a
//!   compare-and-swap batch cannot fail there. With this option moto runs through a small launcher
//!   that makes `ChangeResourceRecordSets` follow the documented Route53 contract: one batch at a
//!   time, validated in order against the current state and then applied in order; DELETE must
//!   match the current TTL and values exactly, CREATE of an existing record set fails, both with
//!   `InvalidChangeBatch`. (moto as shipped also refuses DELETE(x)+CREATE(y) when an identical
//!   CREATE(y) is in its journal, because it checks CREATE before applying the batch's DELETE —
//!   flipping back to a previous value fails.) Everything else is moto as shipped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Error;
use crate::paths;
use crate::ports::free_port;
use crate::process::{self, Guard};

/// Environment variable pointing at the virtualenv holding moto and boto3.
pub const VENV_ENV: &str = "FSPBX_HA_LAB_VENV";

/// The virtualenv: `$FSPBX_HA_LAB_VENV`, else `.cache/venv` in the workspace root.
pub fn venv_dir() -> PathBuf {
    std::env::var_os(VENV_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(".cache")
                .join("venv")
        })
}

/// How to start moto.
#[derive(Debug, Clone)]
pub struct MotoOptions {
    /// Address to listen on (default 127.0.0.1).
    pub ip: IpAddr,
    /// Enforce SigV4 signatures after bootstrapping one IAM access key.
    pub enforce_auth: bool,
    /// Make `ChangeResourceRecordSets` check DELETE/CREATE against current state (see module
    /// docs).
    pub strict_route53: bool,
}

impl Default for MotoOptions {
    fn default() -> Self {
        MotoOptions {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            enforce_auth: false,
            strict_route53: false,
        }
    }
}

/// An AWS access key created in moto's IAM.
#[derive(Clone)]
pub struct AwsKey {
    /// Access key id (`AKIA…`).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for AwsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKey")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    guard: Guard,
    addr: SocketAddr,
    key: AwsKey,
    secret_file: PathBuf,
    python: PathBuf,
    dir: PathBuf,
    _temp: tempfile::TempDir,
}

const STRICT_LAUNCHER: &str = r#"
import copy, sys, threading
from moto.route53 import models
from moto.route53.exceptions import DnsNameInvalidForZone, Route53ClientError

_lock = threading.Lock()

def _fq(name):
    return name if name.endswith(".") else name + "."

def _strict(self, zoneid, change_list):
    with _lock:
        zone = self.get_hosted_zone(zoneid)
        # Validate the whole batch against the current state, in order, before touching it.
        state = {}
        for r in zone.rrsets:
            state[(r.name, r.type)] = (str(r.ttl), sorted(r.records or []))
        for change in change_list:
            rr = change["ResourceRecordSet"]
            name = _fq(rr["Name"]).lower()
            if not (name == zone.name or name.endswith("." + zone.name)):
                raise DnsNameInvalidForZone(name=rr["Name"], zone_name=zone.name)
            key = (name, rr["Type"])
            values = sorted(v["Value"] for v in rr.get("ResourceRecords", []))
            if change["Action"] == "DELETE":
                if state.get(key) != (str(rr.get("TTL")), values):
                    raise Route53ClientError("InvalidChangeBatch",
                        "[Tried to delete resource record set [name='%s', type='%s'] but the values provided do not match the current values]" % key)
                del state[key]
            elif change["Action"] == "CREATE":
                if key in state:
                    raise Route53ClientError("InvalidChangeBatch",
                        "[Tried to create resource record set [name='%s', type='%s'] but it already exists]" % key)
                state[key] = (str(rr.get("TTL")), values)
            elif change["Action"] == "UPSERT":
                state[key] = (str(rr.get("TTL")), values)
            else:
                raise Route53ClientError("InvalidInput", "Invalid action %s" % change["Action"])
        # Apply it in order (moto's own code checks CREATE before applying the batch's DELETE).
        for change in change_list:
            original = copy.deepcopy(change)
            rr = change["ResourceRecordSet"]
            rr["Name"] = _fq(rr["Name"]).lower()
            if change["Action"] == "DELETE":
                zone.delete_rrset(rr)
            else:
                if "ResourceRecords" in rr:
                    rr["ResourceRecords"] = [x["Value"] for x in rr["ResourceRecords"]]
                if change["Action"] == "CREATE":
                    zone.add_rrset(rr)
                else:
                    zone.upsert_rrset(rr)
            zone.rr_changes.append(original)

models.Route53Backend.change_resource_record_sets = _strict

from moto.server import main
sys.exit(main())
"#;

const BOOTSTRAP: &str = r#"
import json, sys, boto3
endpoint = sys.argv[1]
iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
iam.create_user(UserName="fspbx-lab")
iam.put_user_policy(UserName="fspbx-lab", PolicyName="all",
    PolicyDocument=json.dumps({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
k = iam.create_access_key(UserName="fspbx-lab")["AccessKey"]
print(k["AccessKeyId"])
print(k["SecretAccessKey"])
"#;

const CREATE_ZONE: &str = r#"
import sys, time, boto3
endpoint, akid, name = sys.argv[1], sys.argv[2], sys.argv[3]
secret = sys.stdin.readline().strip()
r53 = boto3.client("route53", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=akid, aws_secret_access_key=secret)
z = r53.create_hosted_zone(Name=name, CallerReference=str(time.time()))
print(z["HostedZone"]["Id"].split("/")[-1])
"#;

impl Moto {
    /// Starts moto and, with `enforce_auth`, creates the one IAM key it will accept.
    pub fn start(opts: MotoOptions) -> Result<Moto, Error> {
        let venv = venv_dir();
        let python = venv.join("bin/python");
        if !python.is_file() {
            return Err(Error::MissingComponent {
                component: "python of the lab venv (moto, boto3)".into(),
                path: python,
                env: VENV_ENV.into(),
            });
        }
        let moto_server = venv.join("bin/moto_server");
        if !moto_server.is_file() {
            return Err(Error::MissingComponent {
                component: "moto_server".into(),
                path: moto_server,
                env: VENV_ENV.into(),
            });
        }
        let temp = tempfile::Builder::new()
            .prefix("fspbx-moto-")
            .tempdir()
            .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
        let dir = temp.path().to_owned();
        let addr = SocketAddr::new(opts.ip, free_port(opts.ip));
        let log = dir.join("moto.log");
        let mut cmd = if opts.strict_route53 {
            let launcher = dir.join("strict_moto.py");
            paths::write_file(&launcher, STRICT_LAUNCHER, None)?;
            let mut c = Command::new(&python);
            c.arg(launcher);
            c
        } else {
            Command::new(&moto_server)
        };
        cmd.args(["-H", &addr.ip().to_string(), "-p", &addr.port().to_string()]);
        if opts.enforce_auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        }
        let guard = Guard::spawn(cmd, "moto", &log)?.with_grace(Duration::from_secs(3));
        // A bare TCP connect: an HTTP request could count against the unauthenticated calls.
        process::wait_until(
            &format!("moto on {addr}"),
            Duration::from_secs(30),
            Some(&log),
            || TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok(),
        )?;
        let endpoint = format!("http://{addr}");
        let key = if opts.enforce_auth {
            let mut c = Command::new(&python);
            c.args(["-c", BOOTSTRAP, &endpoint]);
            let out = process::run(c, "IAM bootstrap in moto")?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let mut lines = text.lines();
            match (lines.next(), lines.next()) {
                (Some(id), Some(secret)) => AwsKey {
                    access_key_id: id.trim().to_owned(),
                    secret_access_key: secret.trim().to_owned(),
                },
                _ => {
                    return Err(Error::Unexpected {
                        what: "IAM bootstrap output".into(),
                        found: format!("{} lines", text.lines().count()),
                    });
                }
            }
        } else {
            // Plain moto accepts any key; use a fixed, obviously fake one.
            AwsKey {
                access_key_id: "AKIDLABPLAINMOTO".into(),
                secret_access_key: "plain-moto-accepts-any-secret".into(),
            }
        };
        let secret_file = dir.join("aws.secret");
        paths::write_secret_file(&secret_file, &key.secret_access_key, None)?;
        Ok(Moto {
            guard,
            addr,
            key,
            secret_file,
            python,
            dir,
            _temp: temp,
        })
    }

    /// `http://ip:port`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The access key to use (the bootstrapped one when enforcing).
    pub fn key(&self) -> &AwsKey {
        &self.key
    }

    /// A file (mode 0600) holding the secret access key, for `file:` secret references.
    pub fn secret_file(&self) -> &Path {
        &self.secret_file
    }

    /// Its log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("moto.log")
    }

    /// Whether it still runs.
    pub fn is_running(&self) -> bool {
        self.guard.is_running()
    }

    /// Creates a public hosted zone (a signed POST, accepted when enforcing too) and returns
    /// its id (without the `/hostedzone/` prefix).
    pub fn create_hosted_zone(&self, name: &str) -> Result<String, Error> {
        let mut c = Command::new(&self.python);
        c.args([
            "-c",
            CREATE_ZONE,
            &self.endpoint(),
            &self.key.access_key_id,
            name,
        ]);
        let input = format!("{}\n", self.key.secret_access_key);
        let out = process::run_with_input(c, "create hosted zone in moto", input.as_bytes())?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if id.is_empty() {
            return Err(Error::Unexpected {
                what: "hosted zone id".into(),
                found: id,
            });
        }
        Ok(id)
    }
}
