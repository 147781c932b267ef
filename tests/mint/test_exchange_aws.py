"""AWS IAM exchange against a real local STS (moto in server mode, checking SigV4 signatures), with
requests presigned by botocore exactly as an agent would."""

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import boto3
import grpc
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from mint_server.identity import aws
from mint_server.identity.base import BadRequest, IdentityError
from satgate_api.mint.v1 import mint_pb2, mint_pb2_grpc
from satgate_dev.devstack import free_port

SERVER_ID = "satgate.test.example"
HEADER = "X-Satgate-Server-ID"
SETUP_ACTIONS = 5  # moto authenticates every call after this many (the IAM setup below)
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def sts():
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SETUP_ACTIONS))
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "moto-api/", timeout=1)
            break
        except OSError:
            assert time.monotonic() < deadline, "moto did not start"
            time.sleep(0.1)
    setup = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "setup",
        "aws_secret_access_key": "setup",
    }
    iam = boto3.client("iam", **setup)
    iam.create_user(UserName="agent")  # 1
    user_key = iam.create_access_key(UserName="agent")["AccessKey"]  # 2
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            # moto matches the caller's exact ARN (it does not expand an account's :root)
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/agent"}}
        ],
    }
    iam.create_role(RoleName="batch-worker", AssumeRolePolicyDocument=json.dumps(trust))  # 3
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
    iam.put_user_policy(UserName="agent", PolicyName="assume", PolicyDocument=json.dumps(allow))  # 4
    iam.list_users()  # 5: the last unauthenticated call
    user = Credentials(user_key["AccessKeyId"], user_key["SecretAccessKey"])
    assumed = boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=user.access_key,
        aws_secret_access_key=user.secret_key,
    ).assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/batch-worker", RoleSessionName="nightly-7")["Credentials"]
    role = Credentials(assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"])
    yield {"url": url, "user": user, "role": role}
    server.terminate()
    server.wait(timeout=10)


def presign(
    url: str,
    creds: Credentials,
    *,
    server_id: str | None = SERVER_ID,
    body: str | None = None,
    sign_server_id: bool = True,
) -> dict:
    body = body or aws.GET_CALLER_IDENTITY_BODY.decode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    if server_id is not None and sign_server_id:
        headers[HEADER] = server_id
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(creds, "sts", "us-east-1").add_auth(request)
    signed = dict(request.headers.items())
    if server_id is not None and not sign_server_id:
        signed[HEADER] = server_id  # present, but added after signing
    return {"method": "POST", "url": url, "body": base64.b64encode(body.encode()).decode(), "headers": signed}


AWS_POLICIES = f"""
policies:
  - name: aws-batch
    provider: aws
    tenant: acme
    trust_rules:
      - match: {{account: "{ACCOUNT}", arn: "arn:aws:iam::{ACCOUNT}:role/batch-*"}}
        issue: {{budget_credits: 7, label_template: "aws {{{{ .Claims.role }}}} {{{{ .Claims.session }}}}"}}
      - match: {{arn: "arn:aws:iam::{ACCOUNT}:user/agent"}}
        issue: {{budget_credits: 3}}
"""


@pytest.fixture
async def aws_mint(sts, start_mint):
    return await start_mint(AWS_POLICIES, aws={"sts_endpoint": sts["url"], "server_id": SERVER_ID})


async def exchange(mint, iam_request):
    response = await mint.client.post("/api/mint/exchange", json={"provider": "aws", "iam_request": iam_request})
    return response.status, await response.json()


async def test_iam_user_exchanges(sts, aws_mint):
    status, body = await exchange(aws_mint, presign(sts["url"], sts["user"]))
    assert status == 200, body
    assert (body["tenant"], body["budget_credits"]) == ("acme", 3)
    assert (await aws_mint.audit())[-1]["actor"] == f"arn:aws:iam::{ACCOUNT}:user/agent"


async def test_a_presigned_request_is_exchangeable_once(sts, aws_mint):
    signed = presign(sts["url"], sts["user"])
    assert (await exchange(aws_mint, signed))[0] == 200
    status, body = await exchange(aws_mint, signed)  # replayed within its freshness window
    assert (status, body["error"]) == (401, "replayed")
    await asyncio.sleep(1.1)  # SigV4 signs to the second: within it a fresh presign is the very same request
    assert (await exchange(aws_mint, presign(sts["url"], sts["user"])))[0] == 200  # a new signature is fine


async def test_concurrent_copies_of_one_signature_issue_one_token(sts, aws_mint):
    signed = presign(sts["url"], sts["user"])
    statuses = sorted([s for s, _ in await asyncio.gather(*(exchange(aws_mint, signed) for _ in range(5)))])
    assert statuses == [200, 401, 401, 401, 401]


async def test_assumed_role_is_matched_by_its_role_arn(sts, aws_mint):
    status, body = await exchange(aws_mint, presign(sts["url"], sts["role"]))
    assert status == 200, body
    assert body["budget_credits"] == 7
    assert "label = aws batch-worker nightly-7" in body["caveats"]


async def test_wrong_secret_is_refused_by_sts(sts, aws_mint):
    forged = Credentials(sts["user"].access_key, "not-the-secret")
    status, body = await exchange(aws_mint, presign(sts["url"], forged))
    assert (status, body["error"]) == (401, "invalid_identity")


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"server_id": None}, 401),
        ({"server_id": "another-mint"}, 401),
        ({"sign_server_id": False}, 401),
        ({"body": "Action=AssumeRole&Version=2011-06-15"}, 400),
    ],
)
async def test_request_binding(sts, aws_mint, kwargs, status):
    response_status, body = await exchange(aws_mint, presign(sts["url"], sts["user"], **kwargs))
    assert response_status == status, body


async def test_requests_for_other_endpoints_are_not_forwarded(sts, aws_mint):
    elsewhere = f"http://127.0.0.1:{free_port()}/"
    status, body = await exchange(aws_mint, presign(elsewhere, sts["user"]))
    assert (status, body["error"]) == (401, "invalid_identity")
    assert "STS endpoint" in body["message"]


async def test_malformed_iam_requests(aws_mint):
    for iam_request in (None, "x", {"method": "POST"}, {"method": "POST", "url": "u", "body": "!!", "headers": {}}):
        status, _ = await exchange(aws_mint, iam_request)
        assert status == 400


async def test_unsigned_request(sts, aws_mint):
    request = presign(sts["url"], sts["user"])
    del request["headers"]["Authorization"]
    assert (await exchange(aws_mint, request))[0] == 401


def test_stale_signatures_are_refused_before_forwarding(sts):
    signed = presign(sts["url"], sts["user"])
    request = aws.IamRequest.from_json(signed)
    settings = aws.AwsSettings(sts_endpoint=sts["url"], server_id_header=HEADER, server_id=SERVER_ID)
    aws.check_request(request, settings, datetime.now(UTC))
    with pytest.raises(IdentityError, match="not fresh"):
        aws.check_request(request, settings, datetime.now(UTC) + timedelta(minutes=10))
    with pytest.raises(BadRequest):
        aws.check_request(
            aws.IamRequest("GET", request.url, request.body, request.headers), settings, datetime.now(UTC)
        )


async def test_sts_down_is_503(sts, start_mint):
    dead = f"http://127.0.0.1:{free_port()}/"
    mint = await start_mint(AWS_POLICIES, aws={"sts_endpoint": dead, "server_id": SERVER_ID})
    status, body = await exchange(mint, presign(dead, sts["user"]))
    assert (status, body["error"]) == (503, "unavailable")


async def test_aws_is_off_until_a_server_id_is_configured(sts, start_mint):
    mint = await start_mint(AWS_POLICIES)
    status, body = await exchange(mint, presign(sts["url"], sts["user"]))
    assert (status, body["error"]) == (403, "provider_disabled")


async def test_aws_exchange_over_grpc(sts, aws_mint):
    signed = presign(sts["url"], sts["role"])
    request = mint_pb2.ExchangeRequest(
        aws=mint_pb2.AwsIamRequest(
            method="POST", url=signed["url"], body=base64.b64decode(signed["body"]), headers=signed["headers"]
        )
    )
    async with grpc.aio.insecure_channel(aws_mint.grpc_target) as channel:
        response = await mint_pb2_grpc.MintStub(channel).Exchange(request)
    assert response.budget_credits == 7


def test_arn_canonicalisation():
    assert aws.canonical_arn("arn:aws:sts::123456789012:assumed-role/Role-x/sess@ion") == (
        "arn:aws:iam::123456789012:role/Role-x"
    )
    assert (
        aws.canonical_arn("arn:aws-us-gov:sts::123456789012:assumed-role/R/s")
        == "arn:aws-us-gov:iam::123456789012:role/R"
    )
    assert aws.canonical_arn("arn:aws:iam::123456789012:user/bob") == "arn:aws:iam::123456789012:user/bob"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-amz-date", "20261201T000000Z\r\nx-injected: 1"),
        ("x-amz-security-token", "abc\ndef"),
        ("x-amz-date", "20261201T000000Z\x00"),
        ("bad header", "1"),
        ("x-amz\r\ndate", "1"),
    ],
)
async def test_bad_aws_header_values_are_400_and_audited(sts, start_mint, name, value):
    mint = await start_mint(AWS_POLICIES, aws={"sts_endpoint": sts["url"], "server_id": SERVER_ID})
    request = presign(sts["url"], sts["user"])
    request["headers"][name] = value
    status, body = await exchange(mint, request)
    assert (status, body["error"]) == (400, "bad_request")
    await mint.service.refusals.flush()
    (record,) = await mint.audit()
    assert (record["details"]["provider"], record["details"]["status"]) == ("aws", 400)
