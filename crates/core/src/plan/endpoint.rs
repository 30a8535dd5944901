//! Whether the upload goes through OSS's internal (VPC) endpoint, and why: from the user's
//! flags, or from what the ECS instance metadata service said about this machine (asked
//! before planning, by the binary). Pure, so the plan and the run decide alike.

use serde::Serialize;

use imgport_store::StoreConfig;

/// What decides the kind of OSS endpoint, as the binary found it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum InternalChoice {
    /// `--internal`: the internal endpoint whatever the machine.
    Forced,
    /// `--no-internal`: the public endpoint whatever the machine.
    Refused,
    /// The endpoint is given (`what`: `--oss-endpoint`, the sandbox): nothing to choose, and
    /// no probe.
    Given { what: String },
    /// The metadata service answered: this machine is an ECS instance in `region`.
    Instance { region: String },
    /// No metadata service answered as ECS's does (`why`): not on ECS, or told not to ask
    /// (`ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`).
    NotOnEcs { why: String },
    /// Nothing was asked (library callers): the public endpoint.
    #[default]
    NotAsked,
}

/// The plan's OSS endpoint: internal or public, why, and the URL when imgport picks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OssEndpoint {
    /// The upload goes through the region's internal (VPC) endpoint.
    pub internal: bool,
    /// Why, e.g. `instance in cn-hangzhou`, `forced by --internal`, `not on ECS (...)`.
    pub why: String,
    /// The endpoint URL, from the documented hosts of the bucket's region; `None` when the
    /// endpoint is given or nothing was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl OssEndpoint {
    /// One line for reports: `yes (instance in cn-hangzhou)`.
    pub fn summary(&self) -> String {
        let yes = if self.internal { "yes" } else { "no" };
        format!("{yes} ({})", self.why)
    }
}

impl InternalChoice {
    /// The endpoint of a bucket in `region`; an error when imgport picks the host and OSS
    /// documents none for the region (or no internal one when it is wanted).
    pub fn decide(&self, region: &str) -> Result<OssEndpoint, imgport_store::StoreError> {
        let (internal, why) = match self {
            InternalChoice::Forced => (true, "forced by --internal".to_string()),
            InternalChoice::Refused => (false, "--no-internal".to_string()),
            InternalChoice::Given { what } => {
                return Ok(OssEndpoint {
                    internal: false,
                    why: format!("the endpoint is given ({what})"),
                    url: None,
                });
            }
            InternalChoice::Instance { region: r } if r == region => {
                (true, format!("instance in {r}"))
            }
            InternalChoice::Instance { region: r } => {
                (false, format!("instance in {r}, bucket in {region}"))
            }
            InternalChoice::NotOnEcs { why } => (false, format!("not on ECS: {why}")),
            InternalChoice::NotAsked => {
                return Ok(OssEndpoint {
                    internal: false,
                    why: "public endpoint by default".to_string(),
                    url: None,
                });
            }
        };
        let url = StoreConfig::oss(region, internal)?.endpoint;
        Ok(OssEndpoint {
            internal,
            why,
            url: Some(url),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_region_instance_goes_internal_others_do_not() {
        let on = |r: &str| InternalChoice::Instance { region: r.into() };
        let e = on("cn-hangzhou").decide("cn-hangzhou").unwrap();
        assert!(e.internal);
        assert_eq!(e.summary(), "yes (instance in cn-hangzhou)");
        assert_eq!(
            e.url.as_deref(),
            Some("https://oss-cn-hangzhou-internal.aliyuncs.com")
        );
        let e = on("cn-beijing").decide("cn-hangzhou").unwrap();
        assert!(!e.internal);
        assert_eq!(
            e.url.as_deref(),
            Some("https://oss-cn-hangzhou.aliyuncs.com")
        );
        let off = InternalChoice::NotOnEcs {
            why: "no answer".into(),
        };
        assert_eq!(
            off.decide("cn-hangzhou").unwrap().summary(),
            "no (not on ECS: no answer)"
        );
        assert_eq!(
            InternalChoice::Forced
                .decide("cn-beijing")
                .unwrap()
                .summary(),
            "yes (forced by --internal)"
        );
        assert!(
            !InternalChoice::Refused
                .decide("cn-beijing")
                .unwrap()
                .internal
        );
        let given = InternalChoice::Given {
            what: "--oss-endpoint".into(),
        };
        assert_eq!(given.decide("anywhere").unwrap().url, None);
        // A region OSS does not document: refused where imgport would pick the host.
        assert!(InternalChoice::Forced.decide("cn-atlantis-1").is_err());
        assert!(InternalChoice::Forced.decide("rg-china-mainland").is_err());
    }
}
