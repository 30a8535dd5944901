"""What the SDK smoke scripts share: an official SDK client aimed at `imgport sim`, and the
error code a call ends in.

Imported by scripts/sdk-smoke.py and scripts/ehpc-sdk-smoke.py (Python puts a script's own
folder first on its path).
"""

import os

from alibabacloud_tea_openapi import utils_models as openapi

REGION = "cn-hangzhou"


def client(client_class, secret):
    """An SDK `client_class` for the emulator at SIM_ENDPOINT (host:port, plain HTTP), signing
    with SIM_ACCESS_KEY_ID and `secret`."""
    config = openapi.Config(
        access_key_id=os.environ["SIM_ACCESS_KEY_ID"],
        access_key_secret=secret,
        endpoint=os.environ["SIM_ENDPOINT"],
        protocol="http",
        region_id=REGION,
    )
    return client_class(config)


def code_of(call):
    """The error code `call()` raises, its exception's type name when it has no code, or None
    when it succeeds."""
    try:
        call()
    except Exception as e:  # the SDK raises ClientException / ServerException
        return getattr(e, "code", None) or type(e).__name__
    return None
