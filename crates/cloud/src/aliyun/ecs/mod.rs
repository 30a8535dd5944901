//! Typed ECS (API 2014-05-26) requests and responses for importing and finishing images:
//! ImportImage, DescribeImages, DescribeTaskAttribute, DescribeTasks, CancelTask,
//! ModifyImageAttribute, DeleteImage, CreateImage.
//!
//! Requests are built with builders whose `build()` checks every documented rule
//! ([`super::validate`]) before anything is sent. The only place that turns a request into
//! wire parameters (`DiskDeviceMapping.1.OSSBucket`, `Tag.1.Key`, `Features.NvmeSupport`) is
//! [`Params`], used by each request's [`Action::params`]. No HTTP in here.

/// The ECS API version all these actions belong to.
pub const ECS_VERSION: &str = "2014-05-26";

/// Wire parameters of one call, in the order they were added; the one place that flattens
/// lists (`Prefix.N.Field`, 1-based) and structs (`Prefix.Field`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Adds `name=value`.
    pub fn put(&mut self, name: &str, value: impl ToString) {
        self.0.push((name.to_string(), value.to_string()));
    }

    /// Adds `name=value` when there is a value.
    pub fn put_opt<T: ToString>(&mut self, name: &str, value: Option<T>) {
        if let Some(v) = value {
            self.put(name, v);
        }
    }

    /// Adds `Prefix.N.Field=value` for a 1-based list index `n`.
    pub fn put_indexed<T: ToString>(&mut self, prefix: &str, n: usize, field: &str, value: T) {
        self.put(&format!("{prefix}.{n}.{field}"), value);
    }

    /// Adds `Prefix.Field=value` for a struct member, when there is a value.
    pub fn put_member<T: ToString>(&mut self, prefix: &str, field: &str, value: Option<T>) {
        if let Some(v) = value {
            self.put(&format!("{prefix}.{field}"), v);
        }
    }

    /// Adds `Prefix.N=value` for each value of a plain list (1-based).
    pub fn put_list(&mut self, prefix: &str, values: &[String]) {
        for (i, v) in values.iter().enumerate() {
            self.put(&format!("{prefix}.{}", i + 1), v);
        }
    }

    /// The flattened pairs.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// The value of `name`, for tests and the client (ClientToken).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One ECS RPC action: its name, its wire parameters and its response type.
pub trait Action {
    /// The JSON body of a success.
    type Response: serde::de::DeserializeOwned;
    /// `Action=` value.
    const NAME: &'static str;
    /// Flattened parameters (RegionId included).
    fn params(&self) -> Params;
}

mod create;
mod images;
mod import;
mod tasks;

pub use create::*;
pub use images::*;
pub use import::*;
pub use tasks::*;

/// Declares a builder method that sets an optional field of the request.
macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        pub fn $name(mut self, v: impl Into<$ty>) -> Self {
            self.0.$name = Some(v.into());
            self
        }
    };
}
pub(crate) use setter;

/// An answer that only carries the request id.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Acknowledged {
    pub request_id: String,
}
