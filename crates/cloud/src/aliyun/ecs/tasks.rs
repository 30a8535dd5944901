//! Import tasks: DescribeTaskAttribute, DescribeTasks, CancelTask.

use serde::Deserialize;

use super::Acknowledged;
use super::{Action, Params};
use crate::aliyun::validate::{self, Invalid};

/// DescribeTaskAttribute: one task's state and, on failure, the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTaskAttributeRequest {
    pub region_id: String,
    pub task_id: String,
}

impl Action for DescribeTaskAttributeRequest {
    type Response = TaskAttribute;
    const NAME: &'static str = "DescribeTaskAttribute";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put("TaskId", &self.task_id);
        p
    }
}

/// DescribeTaskAttribute's answer.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskAttribute {
    pub request_id: String,
    pub region_id: String,
    pub task_id: String,
    pub task_action: String,
    pub task_status: String,
    /// e.g. `"100%"`.
    pub task_process: String,
    /// `"true"` or `"false"` (a string on the wire).
    pub support_cancel: String,
    pub creation_time: String,
    pub finished_time: String,
    pub success_count: u64,
    pub failed_count: u64,
    pub total_count: u64,
    pub operation_progress_set: OperationProgressSet,
}

impl TaskAttribute {
    /// The first error code and message of the task's operations, if any.
    pub fn failure(&self) -> Option<(String, String)> {
        self.operation_progress_set
            .operation_progress
            .iter()
            .find(|o| !o.error_code.is_empty() || !o.error_msg.is_empty())
            .map(|o| (o.error_code.clone(), o.error_msg.clone()))
    }

    /// Whether CancelTask is allowed.
    pub fn cancellable(&self) -> bool {
        self.support_cancel.eq_ignore_ascii_case("true")
    }
}

/// `OperationProgressSet.OperationProgress[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OperationProgressSet {
    pub operation_progress: Vec<OperationProgress>,
}

/// One operation of a task.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OperationProgress {
    pub operation_status: String,
    pub error_code: String,
    pub error_msg: String,
    pub related_item_set: RelatedItemSet,
}

/// `RelatedItemSet.RelatedItem[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RelatedItemSet {
    pub related_item: Vec<RelatedItem>,
}

/// A name/value fact about an operation (OSSBucket, OSSObject, ImageFormat …).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RelatedItem {
    pub name: String,
    pub value: String,
}

/// DescribeTasks: list tasks by id, action or status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTasksRequest {
    pub region_id: String,
    /// At most 100.
    pub task_ids: Vec<String>,
    pub task_action: Option<String>,
    /// `Finished`, `Processing` or `Failed`.
    pub task_status: Option<String>,
    pub resource_ids: Vec<String>,
    pub page_size: Option<u32>,
    pub page_number: Option<u32>,
}

impl DescribeTasksRequest {
    /// Tasks of the region.
    pub fn new(region_id: impl Into<String>) -> Self {
        Self {
            region_id: region_id.into(),
            task_ids: Vec::new(),
            task_action: None,
            task_status: None,
            resource_ids: Vec::new(),
            page_size: None,
            page_number: None,
        }
    }

    /// Checks the list limits (at most 100 task ids).
    pub fn validate(&self) -> Result<(), Invalid> {
        validate::region_id(&self.region_id)?;
        if self.task_ids.len() > 100 {
            return Err(Invalid::new(
                "TaskIds",
                "InvalidParameter",
                "at most 100 task ids",
            ));
        }
        Ok(())
    }
}

impl Action for DescribeTasksRequest {
    type Response = DescribeTasksResponse;
    const NAME: &'static str = "DescribeTasks";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        if !self.task_ids.is_empty() {
            p.put("TaskIds", self.task_ids.join(","));
        }
        p.put_opt("TaskAction", self.task_action.as_ref());
        p.put_opt("TaskStatus", self.task_status.as_ref());
        p.put_list("ResourceIds", &self.resource_ids);
        p.put_opt("PageSize", self.page_size);
        p.put_opt("PageNumber", self.page_number);
        p
    }
}

/// DescribeTasks' answer.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeTasksResponse {
    pub request_id: String,
    pub region_id: String,
    pub total_count: u64,
    pub page_number: u64,
    pub page_size: u64,
    pub task_set: TaskSet,
}

/// `TaskSet.Task[]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskSet {
    pub task: Vec<TaskSummary>,
}

/// One task in a listing.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskSummary {
    pub task_id: String,
    pub task_action: String,
    pub task_status: String,
    pub resource_id: String,
    pub support_cancel: String,
    pub creation_time: String,
    pub finished_time: String,
}

/// CancelTask: stop a running import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelTaskRequest {
    pub region_id: String,
    pub task_id: String,
}

impl Action for CancelTaskRequest {
    type Response = Acknowledged;
    const NAME: &'static str = "CancelTask";

    fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("RegionId", &self.region_id);
        p.put("TaskId", &self.task_id);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_attribute_parses() {
        let t: TaskAttribute = serde_json::from_str(
            r#"{"TaskId":"t-1","SupportCancel":"true","OperationProgressSet":{"OperationProgress":[{"OperationStatus":"Failed","ErrorCode":"ImportImageFailed","ErrorMsg":"no operating system found"}]}}"#,
        )
        .unwrap();
        assert!(t.cancellable());
        assert_eq!(
            t.failure(),
            Some((
                "ImportImageFailed".into(),
                "no operating system found".into()
            ))
        );
    }
}
