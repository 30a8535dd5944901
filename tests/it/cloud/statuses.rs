//! The DescribeImages statuses beyond Creating/Available (docs/CLOUD-API.md §Polling), over
//! real HTTP: an import queued as `Waiting` before `Creating` keeps the client polling to
//! `Available`; an image that ends `UnAvailable` is a failure with a reason, never a success
//! and never a wait until the timeout.

use super::*;

#[test]
fn waiting_keeps_polling_and_unavailable_fails() {
    let sim = SimProcess::start(&[
        "--queue-seconds",
        "1",
        "--import-seconds",
        "0.5",
        "--unavailable-objects-containing",
        "unusable",
    ]);
    sim.put_raw("queued.raw", 1 << 20);
    sim.put_raw("unusable.raw", 1 << 20);
    let client = sim.client(SignatureVersion::V3);
    let rt = runtime();
    rt.block_on(async {
        let q = client
            .import_image(import_request("queued.raw"))
            .await
            .unwrap();
        // Queued: listed as Waiting when asked for, and not among the default (Available) ones.
        let image = client
            .find_image(&q.image_id)
            .await
            .unwrap()
            .expect("listed");
        assert_eq!(image.status(), Some(ImageStatus::Waiting), "{image:?}");
        let mut only_available = DescribeImagesRequest::new(REGION);
        only_available.status = vec![ImageStatus::Available];
        only_available.image_id = Some(q.image_id.clone());
        let listed = client.describe_images(&only_available).await.unwrap();
        assert_eq!(listed.total_count, 0, "{listed:?}");

        let seen = Recorder::default();
        client
            .wait_available(
                &q.image_id,
                &q.task_id,
                fast_wait(Duration::from_secs(30)),
                &seen,
                std::future::pending(),
            )
            .await
            .expect("a Waiting image goes on to Available");
        let seen = seen.0.lock().unwrap().join("\n");
        let waiting = seen.find("Waiting").unwrap_or_else(|| panic!("{seen}"));
        let available = seen.find("Available").unwrap_or_else(|| panic!("{seen}"));
        assert!(waiting < available, "{seen}");

        let u = client
            .import_image(import_request("unusable.raw"))
            .await
            .unwrap();
        let err = wait_quietly(&client, &u.image_id, &u.task_id, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err:?}");
        match &err {
            WaitError::ImportFailed { status, .. } => {
                assert_eq!(*status, ImageStatus::UnAvailable);
            }
            other => panic!("expected ImportFailed, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("UnAvailable"), "{text}");
        assert!(text.contains("not available for use"), "{text}");
    });
}
