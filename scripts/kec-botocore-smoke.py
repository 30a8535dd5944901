#!/usr/bin/env python3
"""KEC ModifyInstanceImage signed by botocore's SigV4 signer against `imgport sim`.

Kingsoft's Python SDK is built on botocore's signer; this signs exactly as it does (service
`kec`, a region, `AWS4-HMAC-SHA256`) with a third SigV4 implementation, independent of the
`aws-sigv4` crate imgport signs with and of the emulator's own verifier.

Install (the integration test does this into its cached venv):
    target/cache/sdk-venv/bin/python -m pip install botocore

Environment: SIM_ENDPOINT (http://host:port), SIM_ACCESS_KEY_ID, SIM_SECRET_KEY,
SIM_INSTANCE (a Stopped instance), SIM_IMAGE (a custom image).
Prints one line per check; exits non-zero on the first failure.
"""

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def call(secret, params):
    url = os.environ["SIM_ENDPOINT"] + "/?Action=ModifyInstanceImage&Version=2016-03-04"
    body = urllib.parse.urlencode(params)
    req = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    SigV4Auth(Credentials(os.environ["SIM_ACCESS_KEY_ID"], secret), "kec", "cn-beijing-6").add_auth(req)
    prepared = urllib.request.Request(
        url, data=body.encode(), headers=dict(req.headers.items()), method="POST"
    )
    try:
        with urllib.request.urlopen(prepared) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def main():
    params = {
        "InstanceId": os.environ["SIM_INSTANCE"],
        "ImageId": os.environ["SIM_IMAGE"],
        "KeepImageLogin": "true",
    }
    bad = call("not-the-secret", params)
    print(f"bad secret {bad.get('Error', {}).get('Code')}")
    good = call(os.environ["SIM_SECRET_KEY"], params)
    if good.get("Return") is not True:
        sys.exit(f"ModifyInstanceImage answered {good}")
    print(f"reinstalled return {good['Return']}")
    again = call(os.environ["SIM_SECRET_KEY"], params)
    print(f"again {again.get('Error', {}).get('Code')}")


if __name__ == "__main__":
    main()
