//! [`EcsClient`]: the object the pipeline holds to import and finish images — one typed async
//! method per ECS action, no HTTP details in its signatures.

use super::ecs::{
    Acknowledged, CancelTaskRequest, CreateImageRequest, CreateImageResponse, DeleteImageRequest,
    DescribeImagesRequest, DescribeImagesResponse, DescribeTaskAttributeRequest,
    DescribeTasksRequest, DescribeTasksResponse, Image, ImportImageRequest, ImportImageResponse,
    ModifyImageAttributeRequest, TaskAttribute,
};
use super::rpc::{ClientConfig, RpcClient, RpcError, new_client_token};
use imgport_credentials::Credentials;

/// Typed ECS calls over a signed, retrying [`RpcClient`].
#[derive(Debug, Clone)]
pub struct EcsClient {
    rpc: RpcClient,
}

impl EcsClient {
    /// A client for `config` (region, endpoint, signature version, retries).
    pub fn new(config: ClientConfig, credentials: Credentials) -> Result<Self, RpcError> {
        Ok(Self {
            rpc: RpcClient::new(config, credentials)?,
        })
    }

    /// A client whose credentials `provider` renews before they expire.
    pub fn with_provider(
        config: ClientConfig,
        provider: imgport_credentials::Provider,
    ) -> Result<Self, RpcError> {
        Ok(Self {
            rpc: RpcClient::with_provider(config, provider)?,
        })
    }

    /// A client over an already built [`RpcClient`] (e.g. with another transport).
    pub fn from_rpc(rpc: RpcClient) -> Self {
        Self { rpc }
    }

    /// The underlying RPC client, for actions without a typed request.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// The region the client calls.
    pub fn region(&self) -> &str {
        &self.rpc.config().region
    }

    /// ImportImage. Checks the request first; fills in a ClientToken when absent so that a
    /// retry after a lost answer cannot create a second image.
    pub async fn import_image(
        &self,
        mut request: ImportImageRequest,
    ) -> Result<ImportImageResponse, RpcError> {
        request.client_token.get_or_insert_with(new_client_token);
        request.validate()?;
        self.rpc.call(&request).await
    }

    /// DescribeImages (the request always carries a Status list).
    pub async fn describe_images(
        &self,
        request: &DescribeImagesRequest,
    ) -> Result<DescribeImagesResponse, RpcError> {
        super::validate::region_id(&request.region_id)?;
        self.rpc.call(request).await
    }

    /// The image `image_id` in any state, or `None` when the service does not list it.
    pub async fn find_image(&self, image_id: &str) -> Result<Option<Image>, RpcError> {
        let req = DescribeImagesRequest::new(self.region()).image_id(image_id);
        let resp = self.describe_images(&req).await?;
        Ok(resp
            .images
            .image
            .into_iter()
            .find(|i| i.image_id == image_id))
    }

    /// DescribeTaskAttribute for `task_id`.
    pub async fn describe_task_attribute(&self, task_id: &str) -> Result<TaskAttribute, RpcError> {
        self.rpc
            .call(&DescribeTaskAttributeRequest {
                region_id: self.region().to_string(),
                task_id: task_id.to_string(),
            })
            .await
    }

    /// DescribeTasks.
    pub async fn describe_tasks(
        &self,
        request: &DescribeTasksRequest,
    ) -> Result<DescribeTasksResponse, RpcError> {
        request.validate()?;
        self.rpc.call(request).await
    }

    /// CancelTask for `task_id`.
    pub async fn cancel_task(&self, task_id: &str) -> Result<Acknowledged, RpcError> {
        self.rpc
            .call(&CancelTaskRequest {
                region_id: self.region().to_string(),
                task_id: task_id.to_string(),
            })
            .await
    }

    /// ModifyImageAttribute (checked first).
    pub async fn modify_image_attribute(
        &self,
        request: &ModifyImageAttributeRequest,
    ) -> Result<Acknowledged, RpcError> {
        request.validate()?;
        self.rpc.call(request).await
    }

    /// DeleteImage.
    pub async fn delete_image(
        &self,
        image_id: &str,
        force: bool,
    ) -> Result<Acknowledged, RpcError> {
        self.rpc
            .call(&DeleteImageRequest {
                region_id: self.region().to_string(),
                image_id: image_id.to_string(),
                force,
                dry_run: false,
            })
            .await
    }

    /// CreateImage. Checks the request first; fills in a ClientToken when absent so that a
    /// retry after a lost answer cannot create a second image. The image starts in
    /// `Creating`: wait for it with [`EcsClient::wait_available`] (no task id).
    pub async fn create_image(
        &self,
        mut request: CreateImageRequest,
    ) -> Result<CreateImageResponse, RpcError> {
        request.client_token.get_or_insert_with(new_client_token);
        request.validate()?;
        self.rpc.call(&request).await
    }
}
