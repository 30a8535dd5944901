#!/usr/bin/env python3
"""Alibaba Cloud's official Python ECS SDK, unchanged, against `imgport sim`.

Proves the emulator speaks the real protocol: the SDK signs with V3 (ACS3-HMAC-SHA256),
flattens DiskDeviceMapping itself and parses the answers with its own models.

Install (the integration test does this into a cached venv):
    python3 -m venv target/cache/sdk-venv
    target/cache/sdk-venv/bin/python -m pip install alibabacloud_ecs20140526

Environment: SIM_ENDPOINT (host:port), SIM_ACCESS_KEY_ID, SIM_ACCESS_KEY_SECRET,
SIM_BUCKET, SIM_OBJECT (an object already in the emulator's store).
Prints one line per check; exits non-zero on the first failure.
"""

import os
import sys
import time

from alibabacloud_ecs20140526 import models as ecs
from alibabacloud_ecs20140526.client import Client
from sim_sdk import REGION, client, code_of


def main():
    sdk = client(Client, os.environ["SIM_ACCESS_KEY_SECRET"])
    disk = ecs.ImportImageRequestDiskDeviceMapping(
        ossbucket=os.environ["SIM_BUCKET"],
        ossobject=os.environ["SIM_OBJECT"],
        format="RAW",
        disk_image_size=1,
    )
    req = ecs.ImportImageRequest(
        region_id=REGION,
        image_name="sdk-smoke-image",
        platform="Others Linux",
        architecture="x86_64",
        disk_device_mapping=[disk],
        tag=[ecs.ImportImageRequestTag(key="origin", value="sdk")],
    )
    resp = sdk.import_image(req).body
    print(f"imported {resp.image_id} task {resp.task_id}")

    status = ""
    for _ in range(100):
        found = sdk.describe_images(
            ecs.DescribeImagesRequest(
                region_id=REGION,
                image_id=resp.image_id,
                status="Creating,Waiting,Available,UnAvailable,CreateFailed",
            )
        ).body
        images = found.images.image
        if not images:
            print("image not listed")
            return 1
        status = images[0].status
        if status == "Available":
            break
        time.sleep(0.1)
    print(f"status {status} progress {images[0].progress}")

    default = sdk.describe_images(
        ecs.DescribeImagesRequest(region_id=REGION, image_id=resp.image_id)
    ).body
    print(f"default listing {default.total_count}")

    task = sdk.describe_task_attribute(
        ecs.DescribeTaskAttributeRequest(region_id=REGION, task_id=resp.task_id)
    ).body
    print(f"task {task.task_status} {task.task_process}")

    bad_name = ecs.ImportImageRequest(
        region_id=REGION, image_name="1-bad", disk_device_mapping=[disk]
    )
    print(f"error {code_of(lambda: sdk.import_image(bad_name))}")

    wrong = client(Client, "not-the-secret")
    print(
        "bad secret "
        + str(code_of(lambda: wrong.describe_images(ecs.DescribeImagesRequest(region_id=REGION))))
    )
    return 0 if status == "Available" else 1


if __name__ == "__main__":
    sys.exit(main())
