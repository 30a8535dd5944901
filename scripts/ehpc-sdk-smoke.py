#!/usr/bin/env python3
"""Alibaba Cloud's official Python E-HPC Instant SDK, unchanged, against `imgport sim`.

Proves the emulated AddImage speaks the real protocol: the SDK signs with V3, "shrinks"
VMImageSpec / ContainerImageSpec to JSON strings in the query and parses the answers with its
own models.

Install (the integration test does this into its cached venv):
    target/cache/sdk-venv/bin/python -m pip install alibabacloud_ehpcinstant20230701

Environment: SIM_ENDPOINT (host:port), SIM_ACCESS_KEY_ID, SIM_ACCESS_KEY_SECRET,
SIM_IMAGE_ID (an Available image of the emulated ECS).
Prints one line per check; exits non-zero on the first failure.
"""

import os
import sys

from alibabacloud_ehpcinstant20230701 import models as ehpc
from alibabacloud_ehpcinstant20230701.client import Client
from sim_sdk import client, code_of


def main():
    sdk = client(Client, os.environ["SIM_ACCESS_KEY_SECRET"])
    image_id = os.environ["SIM_IMAGE_ID"]
    vm = ehpc.AddImageRequest(
        name="sdk-vm",
        image_type="VM",
        image_version="V1.0",
        vmimage_spec=ehpc.AddImageRequestVMImageSpec(image_id=image_id),
    )
    body = sdk.add_image(vm).body
    if not body.success or body.image_id != image_id:
        sys.exit(f"AddImage VM answered {body}")
    print(f"vm {body.image_id} success {body.success}")
    print(f"again {code_of(lambda: sdk.add_image(vm))}")
    container = ehpc.AddImageRequest(
        name="sdk-container",
        image_type="Container",
        container_image_spec=ehpc.AddImageRequestContainerImageSpec(
            registry_url="registry-vpc.cn-hangzhou.aliyuncs.com/ehpc_open/nginx:latest",
            is_acrregistry=True,
            registry_credential=ehpc.AddImageRequestContainerImageSpecRegistryCredential(
                server="registry-vpc.cn-hangzhou.aliyuncs.com",
                user_name="username",
                password="userpassword",
            ),
        ),
    )
    body = sdk.add_image(container).body
    print(f"container {body.image_id} success {body.success}")
    missing = ehpc.AddImageRequest(
        name="sdk-missing",
        image_type="VM",
        vmimage_spec=ehpc.AddImageRequestVMImageSpec(image_id="m-doesnotexist"),
    )
    print(f"missing {code_of(lambda: sdk.add_image(missing))}")
    bad = client(Client, "not-the-secret")
    print(f"bad secret {code_of(lambda: bad.add_image(missing))}")


if __name__ == "__main__":
    main()
