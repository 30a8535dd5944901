//! One vocabulary: the help text and value checks of every flag that several commands take,
//! so that a flag means the same everywhere (`tests/it/cli_help.rs` walks every command's
//! help and holds them to it). A command may add a sentence after the shared one.

use imgport_cloud::aliyun::validate;

/// `--region` of the commands that call Alibaba Cloud.
pub const REGION: &str = "Region id, e.g. cn-hangzhou or us-east-1; required, there is no \
                          default (checked before any call)";
/// `--bucket` of the commands that upload to OSS.
pub const BUCKET: &str = "OSS bucket, in --region (3-63 lower-case letters, digits and `-`)";
/// `--request-timeout`: one HTTP exchange, not the whole command.
pub const REQUEST_TIMEOUT: &str = "Seconds one HTTP request may take";
/// `--wait-timeout`: the wait for an image the cloud is making.
pub const WAIT_TIMEOUT: &str = "Seconds to wait for the image to become Available before giving up";
/// `--poll-interval`.
pub const POLL_INTERVAL: &str = "Seconds between two looks at an image the cloud is making";
/// Default of `--request-timeout`, seconds.
pub const REQUEST_TIMEOUT_DEFAULT: u64 = 30;
/// Default of `--wait-timeout`, seconds.
pub const WAIT_TIMEOUT_DEFAULT: f64 = 7200.0;
/// Default of `--poll-interval`, seconds.
pub const POLL_INTERVAL_DEFAULT: f64 = 15.0;
/// `--json`.
pub const JSON: &str = "Print the result as JSON on stdout instead of text";
/// `--html FILE`.
pub const HTML: &str = "Also write the report as one self-contained HTML file";
/// `--markdown FILE`.
pub const MARKDOWN: &str = "Also write the report as Markdown to this file";
/// `--concurrency` (64 is `imgport_core::plan::DEFAULT_PARTS_IN_FLIGHT`).
pub const CONCURRENCY: &str = "Most parts of one image in flight at once, 1 to 256 (default: 64); \
                                fewer are used when more do not raise the measured rate";
/// `--part-memory`.
pub const PART_MEMORY: &str = "Memory the part buffers of one upload may take, e.g. 256M \
                               (default: 64M, for a peak RSS under 96 MiB): the parts being \
                               filled and written; a part waiting for its answer holds none";
/// `--journal`.
pub const JOURNAL: &str = "Directory of resume journals (default: ~/.cache/imgport/uploads)";
/// `--part-size`.
pub const PART_SIZE: &str = "Part size, e.g. 64M (default: 2 MiB for an import, 5 MiB \
                             for an upload, or larger to stay within 10000 parts; OSS accepts \
                             100 KiB to 5 GiB)";
/// `--oss-endpoint`.
pub const OSS_ENDPOINT: &str = "OSS/S3 endpoint URL instead of https://oss-REGION.aliyuncs.com: \
                                a custom domain, or any S3-compatible server";

/// Parses `--region`: a usage error (exit 2, naming the flag) when it cannot be a region id.
pub(crate) fn region(s: &str) -> Result<String, String> {
    validate::region_name(s).map_err(|e| e.rule)?;
    Ok(s.to_string())
}

/// Parses `--bucket` by OSS's bucket naming rules.
pub(crate) fn bucket(s: &str) -> Result<String, String> {
    validate::oss_bucket(1, s).map_err(|e| e.rule)?;
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn region_and_bucket_are_checked() {
        assert!(super::region("cn-hangzhou").is_ok());
        assert!(
            super::region("hangzhou")
                .unwrap_err()
                .contains("cn-hangzhou")
        );
        assert!(super::bucket("my-bucket").is_ok());
        assert!(super::bucket("My_Bucket").is_err());
    }
}
