#!/usr/bin/env python3
"""Last stage of the hand-made chain of scripts/bench-e2e.sh: ImportImage with Alibaba's
official Python ECS SDK (alibabacloud_ecs20140526), then DescribeImages every POLL seconds
until the image is Available.

The request carries what `imgport import` sends for the same disk (its plan for a disk with
nothing recognisable inside): Others Linux, x86_64, BIOS, one VHD system disk.

Environment: SIM_ENDPOINT (host:port), SIM_ACCESS_KEY_ID, SIM_ACCESS_KEY_SECRET.
usage: bench-e2e-chain.py BUCKET OBJECT DISK_GIB POLL_SECONDS TIMEOUT_SECONDS
Prints one JSON object: image_id, status, import_image_s, wait_s. Exits 1 unless Available.
"""

import json
import os
import sys
import time

from alibabacloud_ecs20140526 import models as ecs
from alibabacloud_ecs20140526.client import Client
from alibabacloud_tea_openapi import utils_models as openapi

REGION = "cn-hangzhou"


def main(argv):
    bucket, obj, gib, poll, timeout = argv[1], argv[2], int(argv[3]), float(argv[4]), float(argv[5])
    sdk = Client(
        openapi.Config(
            access_key_id=os.environ["SIM_ACCESS_KEY_ID"],
            access_key_secret=os.environ["SIM_ACCESS_KEY_SECRET"],
            endpoint=os.environ["SIM_ENDPOINT"],
            protocol="http",
            region_id=REGION,
        )
    )
    started = time.monotonic()
    resp = sdk.import_image(
        ecs.ImportImageRequest(
            region_id=REGION,
            image_name="bench-chain-image",
            ostype="linux",
            platform="Others Linux",
            architecture="x86_64",
            boot_mode="BIOS",
            disk_device_mapping=[
                ecs.ImportImageRequestDiskDeviceMapping(
                    ossbucket=bucket, ossobject=obj, format="VHD", disk_image_size=gib
                )
            ],
        )
    ).body
    imported = time.monotonic()

    status = ""
    while True:
        images = sdk.describe_images(
            ecs.DescribeImagesRequest(
                region_id=REGION,
                image_id=resp.image_id,
                status="Creating,Waiting,Available,UnAvailable,CreateFailed",
            )
        ).body.images.image
        status = images[0].status if images else "not listed"
        if status not in ("Creating", "Waiting") or time.monotonic() - imported > timeout:
            break
        time.sleep(poll)
    done = time.monotonic()
    print(
        json.dumps(
            {
                "image_id": resp.image_id,
                "status": status,
                "import_image_s": imported - started,
                "wait_s": done - imported,
            }
        )
    )
    return 0 if status == "Available" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
