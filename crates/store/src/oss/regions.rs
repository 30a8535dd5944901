//! OSS's hosts per region, as the OSS documentation "Regions and endpoints" lists them
//! (docs/CLOUD-API.md §Endpoints): most regions follow the rule the official SDKs apply
//! (`oss-<region>.aliyuncs.com`, internal `oss-<region>-internal.aliyuncs.com`); the finance
//! cloud names its hosts otherwise, and the region-less bucket has no internal host.

/// One OSS region and its hosts (no scheme, no bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OssRegion {
    /// Region id, e.g. `cn-hangzhou`.
    pub region: &'static str,
    /// Public (internet) host.
    pub public: &'static str,
    /// Internal (VPC/classic network) host for ECS instances in the region; `None` where
    /// the documentation lists none.
    pub internal: Option<&'static str>,
}

const fn rule(region: &'static str, public: &'static str, internal: &'static str) -> OssRegion {
    OssRegion {
        region,
        public,
        internal: Some(internal),
    }
}

/// Every region the documentation lists, in its order. Finance-cloud rows are those of the
/// buckets open to the internet (their "公网"/public rows); a finance bucket without public
/// access is reached only through the hosts of the finance VPC, given with `--oss-endpoint`.
pub const OSS_REGIONS: &[OssRegion] = &[
    // Asia Pacific: Chinese mainland and Hong Kong.
    rule(
        "cn-hangzhou",
        "oss-cn-hangzhou.aliyuncs.com",
        "oss-cn-hangzhou-internal.aliyuncs.com",
    ),
    rule(
        "cn-shanghai",
        "oss-cn-shanghai.aliyuncs.com",
        "oss-cn-shanghai-internal.aliyuncs.com",
    ),
    rule(
        "cn-nanjing",
        "oss-cn-nanjing.aliyuncs.com",
        "oss-cn-nanjing-internal.aliyuncs.com",
    ),
    rule(
        "cn-fuzhou",
        "oss-cn-fuzhou.aliyuncs.com",
        "oss-cn-fuzhou-internal.aliyuncs.com",
    ),
    rule(
        "cn-wuhan-lr",
        "oss-cn-wuhan-lr.aliyuncs.com",
        "oss-cn-wuhan-lr-internal.aliyuncs.com",
    ),
    rule(
        "cn-qingdao",
        "oss-cn-qingdao.aliyuncs.com",
        "oss-cn-qingdao-internal.aliyuncs.com",
    ),
    rule(
        "cn-beijing",
        "oss-cn-beijing.aliyuncs.com",
        "oss-cn-beijing-internal.aliyuncs.com",
    ),
    rule(
        "cn-zhangjiakou",
        "oss-cn-zhangjiakou.aliyuncs.com",
        "oss-cn-zhangjiakou-internal.aliyuncs.com",
    ),
    rule(
        "cn-huhehaote",
        "oss-cn-huhehaote.aliyuncs.com",
        "oss-cn-huhehaote-internal.aliyuncs.com",
    ),
    rule(
        "cn-wulanchabu",
        "oss-cn-wulanchabu.aliyuncs.com",
        "oss-cn-wulanchabu-internal.aliyuncs.com",
    ),
    rule(
        "cn-shenzhen",
        "oss-cn-shenzhen.aliyuncs.com",
        "oss-cn-shenzhen-internal.aliyuncs.com",
    ),
    rule(
        "cn-heyuan",
        "oss-cn-heyuan.aliyuncs.com",
        "oss-cn-heyuan-internal.aliyuncs.com",
    ),
    rule(
        "cn-guangzhou",
        "oss-cn-guangzhou.aliyuncs.com",
        "oss-cn-guangzhou-internal.aliyuncs.com",
    ),
    rule(
        "cn-chengdu",
        "oss-cn-chengdu.aliyuncs.com",
        "oss-cn-chengdu-internal.aliyuncs.com",
    ),
    rule(
        "cn-hongkong",
        "oss-cn-hongkong.aliyuncs.com",
        "oss-cn-hongkong-internal.aliyuncs.com",
    ),
    // Buckets without a region attribute: public access only.
    OssRegion {
        region: "rg-china-mainland",
        public: "oss-rg-china-mainland.aliyuncs.com",
        internal: None,
    },
    // Asia Pacific: others.
    rule(
        "ap-northeast-1",
        "oss-ap-northeast-1.aliyuncs.com",
        "oss-ap-northeast-1-internal.aliyuncs.com",
    ),
    rule(
        "ap-northeast-2",
        "oss-ap-northeast-2.aliyuncs.com",
        "oss-ap-northeast-2-internal.aliyuncs.com",
    ),
    rule(
        "ap-southeast-1",
        "oss-ap-southeast-1.aliyuncs.com",
        "oss-ap-southeast-1-internal.aliyuncs.com",
    ),
    rule(
        "ap-southeast-3",
        "oss-ap-southeast-3.aliyuncs.com",
        "oss-ap-southeast-3-internal.aliyuncs.com",
    ),
    rule(
        "ap-southeast-5",
        "oss-ap-southeast-5.aliyuncs.com",
        "oss-ap-southeast-5-internal.aliyuncs.com",
    ),
    rule(
        "ap-southeast-6",
        "oss-ap-southeast-6.aliyuncs.com",
        "oss-ap-southeast-6-internal.aliyuncs.com",
    ),
    rule(
        "ap-southeast-7",
        "oss-ap-southeast-7.aliyuncs.com",
        "oss-ap-southeast-7-internal.aliyuncs.com",
    ),
    // Europe and the Americas.
    rule(
        "eu-central-1",
        "oss-eu-central-1.aliyuncs.com",
        "oss-eu-central-1-internal.aliyuncs.com",
    ),
    rule(
        "eu-west-1",
        "oss-eu-west-1.aliyuncs.com",
        "oss-eu-west-1-internal.aliyuncs.com",
    ),
    rule(
        "us-west-1",
        "oss-us-west-1.aliyuncs.com",
        "oss-us-west-1-internal.aliyuncs.com",
    ),
    rule(
        "us-east-1",
        "oss-us-east-1.aliyuncs.com",
        "oss-us-east-1-internal.aliyuncs.com",
    ),
    rule(
        "na-south-1",
        "oss-na-south-1.aliyuncs.com",
        "oss-na-south-1-internal.aliyuncs.com",
    ),
    // Middle East.
    rule(
        "me-east-1",
        "oss-me-east-1.aliyuncs.com",
        "oss-me-east-1-internal.aliyuncs.com",
    ),
    // Finance cloud: its own host names.
    rule(
        "cn-hangzhou-finance",
        "oss-cn-hzfinance.aliyuncs.com",
        "oss-cn-hzfinance-internal.aliyuncs.com",
    ),
    rule(
        "cn-shanghai-finance-1",
        "oss-cn-shanghai-finance-1-pub.aliyuncs.com",
        "oss-cn-shanghai-finance-1-pub-internal.aliyuncs.com",
    ),
    rule(
        "cn-shenzhen-finance-1",
        "oss-cn-szfinance.aliyuncs.com",
        "oss-cn-szfinance-internal.aliyuncs.com",
    ),
    rule(
        "cn-beijing-finance-1",
        "oss-cn-beijing-finance-1-pub.aliyuncs.com",
        "oss-cn-beijing-finance-1-pub-internal.aliyuncs.com",
    ),
    // Government cloud.
    rule(
        "cn-north-2-gov-1",
        "oss-cn-north-2-gov-1.aliyuncs.com",
        "oss-cn-north-2-gov-1-internal.aliyuncs.com",
    ),
];

/// The hosts of `region`, when the documentation lists it.
pub fn oss_region(region: &str) -> Option<&'static OssRegion> {
    OSS_REGIONS.iter().find(|r| r.region == region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_unique_and_hosts_are_oss_hosts() {
        let mut seen = std::collections::BTreeSet::new();
        for r in OSS_REGIONS {
            assert!(seen.insert(r.region), "{} twice", r.region);
            assert!(r.public.starts_with("oss-") && r.public.ends_with(".aliyuncs.com"));
            if let Some(i) = r.internal {
                assert!(i.ends_with("-internal.aliyuncs.com"), "{i}");
            }
        }
        assert_eq!(
            oss_region("cn-shanghai-finance-1").unwrap().public,
            "oss-cn-shanghai-finance-1-pub.aliyuncs.com"
        );
        assert!(oss_region("cn-atlantis-1").is_none());
    }
}
