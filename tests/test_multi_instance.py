"""Several instances, one registry: two `entrepot serve` processes on the same
storage (a shared filesystem root, or one S3 bucket on a moto server) and the
same Redis behave as one registry.

- An upload started on one instance is continued and committed on the
  other, with its digest verified (a wrong one is refused).
- What one instance pushes the other serves at once.
- A delete or a re-tag on one is seen by the other at once, however warm
  its descriptor cache (the shared Redis) was: no stale answer.

The configuration is the example of `docs/deployment.md` (its first YAML
block, placeholders filled in), so the page cannot drift from what works;
on a filesystem its `s3` section is swapped for the page's `filesystem` one.
Every cluster runs with one and with two worker processes per instance.
Requests go over a fresh connection each, so that with two workers they
spread over both.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import string
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import redis
import yaml

from tests.cli_support import REQUEST_TIMEOUT, Serving, entrepot, free_port, serve, sha256
from tests.storage.driver import s3_server
from tests.storage.test_redis_cache import REDIS_SERVER, RedisServer

DEPLOYMENT_DOC: Final = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"
HTTP_SECRET: Final = "a-secret-shared-by-every-instance"

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
MiB: Final = 1 << 20
# How many times a warm instance is asked again after a change elsewhere:
# with two workers each, every process of it answers at least once in all
# likelihood, and none may answer from a stale cache.
REPEAT: Final = 6


# -- the documented configuration --------------------------------------------------

# What the example leaves to the operator.
PLACEHOLDERS: Final = (
    "BUCKET",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "REDIS_ADDR",
    "HTTP_SECRET",
)


def yaml_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


def documented_config(storage: str, values: dict[str, str], root: Path) -> dict[str, Any]:
    """The example configuration of docs/deployment.md with its placeholders
    filled in (every one of them: a missing value is a KeyError); on
    `filesystem`, with the page's filesystem section instead of `s3`."""
    blocks = yaml_blocks(DEPLOYMENT_DOC.read_text())
    assert blocks, f"no ```yaml block in {DEPLOYMENT_DOC}"
    config: dict[str, Any] = yaml.safe_load(string.Template(blocks[0]).substitute(values))
    assert "s3" in config["storage"], "the first example of the page is the S3 one"
    if storage == "filesystem":
        snippets = [yaml.safe_load(block) for block in blocks[1:]]
        shared = [s for s in snippets if "filesystem" in (s.get("storage") or {})]
        assert shared, "the page shows the filesystem section for a shared file system"
        filesystem = dict(shared[0]["storage"]["filesystem"])
        assert set(filesystem) == {"rootdirectory"}
        filesystem["rootdirectory"] = str(root)
        del config["storage"]["s3"]
        config["storage"]["filesystem"] = filesystem
    return config


def test_the_documented_example_is_what_the_scale_out_needs(tmp_path: Path) -> None:
    """The example sets every piece the page explains: one storage, delete,
    the Redis cache, a shared secret, the debug listener with health and
    metrics, upload purging; `entrepot config check` takes it without a
    warning, secrets masked."""
    values = {name: f"x-{name}" for name in PLACEHOLDERS}
    values["S3_ENDPOINT"] = "http://s3.example:9000"
    config = documented_config("s3", values, Path("/unused"))
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    checked = entrepot("config", "check", path)
    assert checked.returncode == 0, checked.describe()
    assert checked.stderr == "", checked.describe()
    assert "x-HTTP_SECRET" not in checked.stdout
    assert "x-S3_SECRET_KEY" not in checked.stdout
    assert str(config["version"]) == "0.1"
    assert config["storage"]["cache"]["blobdescriptor"] == "redis"
    assert config["storage"]["delete"]["enabled"] is True
    assert config["redis"]["addr"] == "x-REDIS_ADDR"
    assert config["http"]["secret"] == "x-HTTP_SECRET"
    assert config["http"]["debug"]["prometheus"]["enabled"] is True
    assert config["storage"]["maintenance"]["uploadpurging"]["enabled"] is True


# -- the cluster --------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    serving: Serving
    debug_url: str

    @property
    def url(self) -> str:
        return self.serving.url

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request on a connection of its own (so that the kernel may
        hand it to any worker), following redirects (a blob GET on S3 is a
        307 to a presigned URL)."""
        with httpx.Client(
            base_url=self.url, timeout=REQUEST_TIMEOUT, follow_redirects=True
        ) as http:
            return http.request(method, url, **kwargs)


@dataclass(frozen=True)
class Cluster:
    storage: str
    workers: int
    a: Instance
    b: Instance
    redis_addr: str

    def check_logs(self) -> None:
        """No traceback and no error in the (JSON) logs of either instance."""
        for instance in (self.a, self.b):
            log = instance.serving.log()
            assert "Traceback" not in log, log[-8000:]
            errors = [line for line in log.splitlines() if '"level": "error"' in line]
            assert not errors, "\n".join(errors)

    def redis_keys(self) -> list[str]:
        host, _, port = self.redis_addr.rpartition(":")
        client = redis.Redis(host=host, port=int(port), socket_timeout=5, decode_responses=True)
        try:
            return [str(key) for key in client.keys("*")]
        finally:
            client.close()


CLUSTERS: Final = [("filesystem", 1), ("filesystem", 2), ("s3", 1), ("s3", 2)]


@pytest.fixture(
    scope="module", params=CLUSTERS, ids=[f"{storage}-workers{n}" for storage, n in CLUSTERS]
)
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    storage, workers = request.param
    if REDIS_SERVER is None:
        pytest.fail("redis-server is not installed (Debian package redis-server)")
    base = tmp_path_factory.mktemp(f"cluster-{storage}-{workers}")
    (base / "redis").mkdir()
    redis_server = RedisServer(base / "redis")
    redis_server.start()
    with contextlib.ExitStack() as stack:
        stack.callback(redis_server.stop)
        values = {
            "REDIS_ADDR": redis_server.addr,
            "HTTP_SECRET": HTTP_SECRET,
            "S3_ACCESS_KEY": s3_server.ACCESS_KEY,
            "S3_SECRET_KEY": s3_server.SECRET_KEY,
        }
        if storage == "s3":
            values["S3_ENDPOINT"] = s3_server.moto_server().endpoint
            values["BUCKET"] = s3_server.new_bucket()
        else:
            values["S3_ENDPOINT"] = "http://unused.invalid"
            values["BUCKET"] = "unused"
        config = documented_config(storage, values, base / "root")
        path = base / "config.yml"
        path.write_text(yaml.safe_dump(config))
        instances = []
        for _ in range(2):
            port, debug_port = free_port(), free_port()
            env = {
                "REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}",
                "REGISTRY_HTTP_DEBUG_ADDR": f"127.0.0.1:{debug_port}",
            }
            serving = stack.enter_context(
                serve(path, f"http://127.0.0.1:{port}", "--workers", str(workers), env=env)
            )
            instances.append(Instance(serving, f"http://127.0.0.1:{debug_port}"))
        yield Cluster(storage, workers, instances[0], instances[1], redis_server.addr)


@pytest.fixture
def two(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster, its logs checked for tracebacks after each test."""
    yield cluster
    cluster.check_logs()


def unique_name(prefix: str) -> str:
    return f"multi/{prefix}-{uuid.uuid4().hex[:8]}"


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# -- helpers on the HTTP API ---------------------------------------------------------


def push_blob(instance: Instance, name: str, data: bytes) -> str:
    digest = sha256(data)
    response = instance.request(
        "POST",
        f"/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return digest


def push_image(instance: Instance, name: str, tag: str | None, nonce: str) -> tuple[str, bytes]:
    """Config, one layer and an OCI manifest pushed on `instance` (tagged
    `tag`, else by digest); (digest, bytes) of the manifest."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": nonce}).encode()
    layer = random_bytes(2048, seed=len(nonce)) + nonce.encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        }
    ).encode()
    push_blob(instance, name, config)
    push_blob(instance, name, layer)
    digest = sha256(manifest)
    response = instance.request(
        "PUT",
        f"/v2/{name}/manifests/{tag or digest}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    return digest, manifest


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def assert_always(
    instance: Instance, method: str, url: str, status: int, digest: str | None = None
) -> None:
    """`REPEAT` requests, each on a new connection: every one answers
    `status` (and `digest` in Docker-Content-Digest, when given)."""
    for attempt in range(REPEAT):
        response = instance.request(method, url, headers={"Accept": OCI_MANIFEST})
        assert response.status_code == status, (attempt, method, url, response.text)
        if digest is not None:
            assert response.headers["Docker-Content-Digest"] == digest, (attempt, url)


# -- the tests -------------------------------------------------------------------------


def test_both_instances_are_healthy_and_serve(two: Cluster) -> None:
    for instance in (two.a, two.b):
        assert instance.request("GET", "/v2/").status_code == 200
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            health = http.get(f"{instance.debug_url}/debug/health")
            assert health.status_code == 200, health.text
            metrics = http.get(f"{instance.debug_url}/metrics")
            assert metrics.status_code == 200
            assert "entrepot_http_requests_total" in metrics.text


@pytest.mark.parametrize("committer", ["a", "b"])
def test_an_upload_moves_between_instances_and_commits_verified(
    two: Cluster, committer: str
) -> None:
    """POST and the first chunk on A, the next chunk on B, status on both,
    a last chunk with the commit on either: the blob is served by both.
    Chunks of 1 MiB and more, below S3's 5 MiB part minimum, so that on S3
    each instance must go on from the other's short last part."""
    name = unique_name("upload")
    sizes = [MiB + 7, 2 * MiB + 11, 4099]
    data = random_bytes(sum(sizes), seed=len(committer))
    digest = sha256(data)
    a, b = two.a, two.b
    started = a.request("POST", f"/v2/{name}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    upload_id = started.headers["Docker-Upload-UUID"]
    # No state in the URL (no `_state` as Distribution's): the id is all.
    assert location == f"/v2/{name}/blobs/uploads/{upload_id}"

    offset = 0
    for instance, size in ((a, sizes[0]), (b, sizes[1])):
        chunk = data[offset : offset + size]
        patched = instance.request(
            "PATCH",
            location,
            content=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + size - 1}",
            },
        )
        assert patched.status_code == 202, patched.text
        offset += size
        assert patched.headers["Range"] == f"0-{offset - 1}"
        assert patched.headers["Docker-Upload-UUID"] == upload_id
        location = patched.headers["Location"]
        # Either instance tells where the upload stands.
        for other in (a, b):
            status = other.request("GET", location)
            assert status.status_code == 204, status.text
            assert status.headers["Range"] == f"0-{offset - 1}"

    # The commit and the last chunk in one PUT, on the chosen instance.
    last, other = (a, b) if committer == "a" else (b, a)
    done = last.request(
        "PUT",
        location,
        params={"digest": digest},
        content=data[offset:],
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{len(data) - 1}",
        },
    )
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    assert done.headers["Location"] == f"/v2/{name}/blobs/{digest}"

    for instance in (other, last):
        head = instance.request("HEAD", f"/v2/{name}/blobs/{digest}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))
        got = instance.request("GET", f"/v2/{name}/blobs/{digest}")
        assert got.status_code == 200
        assert got.content == data
        # The session is over everywhere.
        gone = instance.request("GET", location)
        assert gone.status_code == 404
        assert error_code(gone) == "BLOB_UPLOAD_UNKNOWN"


def test_a_wrong_digest_is_refused_whichever_instance_commits(two: Cluster) -> None:
    name = unique_name("wrong")
    data = random_bytes(MiB + 100, seed=3)
    a, b = two.a, two.b
    started = a.request("POST", f"/v2/{name}/blobs/uploads/")
    location = started.headers["Location"]
    patched = a.request(
        "PATCH", location, content=data[:MiB], headers={"Content-Range": f"0-{MiB - 1}"}
    )
    assert patched.status_code == 202, patched.text
    wrong = sha256(b"not the content")
    refused = b.request(
        "PUT", patched.headers["Location"], params={"digest": wrong}, content=data[MiB:]
    )
    assert refused.status_code == 400, refused.text
    assert error_code(refused) == "DIGEST_INVALID"
    for instance in (a, b):
        for digest in (wrong, sha256(data)):
            assert instance.request("HEAD", f"/v2/{name}/blobs/{digest}").status_code == 404
        gone = instance.request("GET", location)
        assert gone.status_code == 404
        assert error_code(gone) == "BLOB_UPLOAD_UNKNOWN"


def test_what_one_pushes_the_other_serves_at_once(two: Cluster) -> None:
    name = unique_name("push")
    digest, manifest = push_image(two.a, name, "v1", "push")
    config_digest = json.loads(manifest)["config"]["digest"]
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    b = two.b
    # The very next requests, on the other instance.
    for reference in ("v1", digest):
        head = b.request(
            "HEAD", f"/v2/{name}/manifests/{reference}", headers={"Accept": OCI_MANIFEST}
        )
        assert head.status_code == 200, reference
        assert head.headers["Docker-Content-Digest"] == digest
        got = b.request(
            "GET", f"/v2/{name}/manifests/{reference}", headers={"Accept": OCI_MANIFEST}
        )
        assert got.status_code == 200
        assert got.content == manifest
        assert got.headers["Content-Type"] == OCI_MANIFEST
    for blob in (config_digest, layer_digest):
        assert b.request("HEAD", f"/v2/{name}/blobs/{blob}").status_code == 200
        got = b.request("GET", f"/v2/{name}/blobs/{blob}")
        assert got.status_code == 200
        assert sha256(got.content) == blob
    tags = b.request("GET", f"/v2/{name}/tags/list")
    assert tags.json() == {"name": name, "tags": ["v1"]}
    catalog = b.request("GET", "/v2/_catalog")
    assert name in catalog.json()["repositories"]


def test_a_manifest_deleted_on_one_is_gone_on_the_other_at_once(two: Cluster) -> None:
    name = unique_name("delete-manifest")
    a, b = two.a, two.b
    digest, _ = push_image(a, name, None, "delete-manifest")
    kept, _ = push_image(a, name, "kept", "kept")
    url = f"/v2/{name}/manifests/{digest}"
    # Warm B: every process of it has answered from the cache by now.
    assert_always(b, "HEAD", url, 200, digest)
    assert_always(b, "GET", url, 200, digest)
    assert any(key.startswith("repository::") for key in two.redis_keys()), "Redis unused"

    deleted = a.request("DELETE", url)
    assert deleted.status_code == 202, deleted.text
    assert_always(b, "HEAD", url, 404)
    assert_always(b, "GET", url, 404)
    assert error_code(b.request("GET", url)) == "MANIFEST_UNKNOWN"
    assert_always(a, "GET", url, 404)
    # The rest of the repository is untouched.
    assert_always(b, "GET", f"/v2/{name}/manifests/kept", 200, kept)

    # Deleted on B this time, after A was warmed.
    url = f"/v2/{name}/manifests/{kept}"
    assert_always(a, "GET", url, 200, kept)
    assert b.request("DELETE", url).status_code == 202
    assert_always(a, "GET", url, 404)
    assert_always(a, "GET", f"/v2/{name}/manifests/kept", 404)


def test_a_retag_on_one_is_served_by_the_other_at_once(two: Cluster) -> None:
    name = unique_name("retag")
    a, b = two.a, two.b
    first, _ = push_image(a, name, "latest", "first")
    url = f"/v2/{name}/manifests/latest"
    assert_always(b, "GET", url, 200, first)
    assert_always(b, "HEAD", url, 200, first)

    second, manifest = push_image(a, name, "latest", "second")
    assert second != first
    assert_always(b, "HEAD", url, 200, second)
    assert_always(b, "GET", url, 200, second)
    assert b.request("GET", url, headers={"Accept": OCI_MANIFEST}).content == manifest
    # And back, from B.
    response = b.request(
        "PUT",
        f"/v2/{name}/manifests/latest",
        content=b.request(
            "GET", f"/v2/{name}/manifests/{first}", headers={"Accept": OCI_MANIFEST}
        ).content,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201
    assert_always(a, "GET", url, 200, first)
    # Both revisions are still there by digest.
    assert_always(b, "HEAD", f"/v2/{name}/manifests/{second}", 200, second)


def test_a_blob_deleted_on_one_is_gone_on_the_other_at_once(two: Cluster) -> None:
    name = unique_name("delete-blob")
    a, b = two.a, two.b
    data = random_bytes(300_000, seed=11)
    digest = push_blob(a, name, data)
    url = f"/v2/{name}/blobs/{digest}"
    assert_always(b, "HEAD", url, 200)
    assert_always(a, "HEAD", url, 200)
    assert any(key == f"blobs::{digest}" for key in two.redis_keys()), "Redis unused"

    assert a.request("DELETE", url).status_code == 202
    assert_always(b, "HEAD", url, 404)
    assert_always(b, "GET", url, 404)
    assert_always(a, "HEAD", url, 404)
    assert error_code(b.request("GET", url)) == "BLOB_UNKNOWN"

    # Pushed again on B: A serves it at once (no stale "unknown" either).
    assert push_blob(b, name, data) == digest
    assert_always(a, "HEAD", url, 200)
    assert a.request("GET", url).content == data
