"""podman against entrepot: pull an image pushed with skopeo, tag it, push it
to another repository, and check what arrived.

podman runs as root here, with storage of its own so that the machine's
images and configuration do not matter:

    podman --root TMP/root --runroot RUN/run --tmpdir RUN/tmp
           --storage-driver vfs --cgroup-manager cgroupfs
           --events-backend file
           pull|push --tls-verify=false --signature-policy POLICY ...

with `CONTAINERS_REGISTRIES_CONF` set to the test's registries.conf.

- RUN is a short directory directly under /tmp: podman refuses a runroot
  longer than 50 characters ("the specified runroot is longer than 50
  characters"), and pytest's tmp paths are longer.
- `vfs` needs no kernel overlay support; as root no `--storage-opt` was
  needed.
- `cgroupfs` and the `file` events backend keep podman away from systemd
  and journald, which a test machine may not run.
- `--tls-verify=false`: entrepot serves plain HTTP.
- `--signature-policy` (hidden, but in podman 4.3) with an accept-anything
  policy, so that /etc/containers/policy.json does not matter.
- The image is amd64 so that podman on amd64 does not warn about a
  platform mismatch.

podman pushes the layer it pulled as the same compressed blob (it records
the compressed digest of each pulled layer in its blob info cache, as root
/var/lib/containers/cache, which these flags do not move), so the pushed
manifest lists the very layer digests of the pulled one.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.clients.support import (
    Podman,
    Server,
    Skopeo,
    build_image,
    layout_manifest,
    referenced_blobs,
    sha256,
)

FILES = {"etc/motd": b"pushed by podman\n", "opt/app/data.txt": b"x" * 10000}


def test_podman_pull_tag_push(
    entrepot: Server, skopeo: Skopeo, podman: Podman, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    build_image(source, "v1", FILES, architecture="amd64")
    digest, manifest = layout_manifest(source, "v1")
    assert skopeo.copy(f"oci:{source}:v1", f"docker://{entrepot.host}/test/oci:v1") == digest

    pulled_ref = f"{entrepot.host}/test/oci:v1"
    podman("pull", "--tls-verify=false", "--signature-policy", str(podman.policy), pulled_ref)
    images = json.loads(podman("images", "--format", "json").text)
    assert len(images) == 1
    assert images[0]["Digest"] == digest

    pushed_ref = f"{entrepot.host}/test/pushed:v2"
    podman("tag", pulled_ref, pushed_ref)
    digest_file = tmp_path / "pushed.digest"
    podman(
        "push",
        "--tls-verify=false",
        "--signature-policy",
        str(podman.policy),
        "--digestfile",
        str(digest_file),
        pushed_ref,
    )
    pushed_digest = digest_file.read_text().strip()

    raw = skopeo.inspect_raw(f"docker://{pushed_ref}")
    assert sha256(raw) == pushed_digest
    inspected = skopeo.inspect(f"docker://{pushed_ref}")
    assert inspected["Digest"] == pushed_digest
    assert inspected["Architecture"] == "amd64"
    # Same config, same layers: podman pushed back what it pulled.
    assert referenced_blobs(raw) == referenced_blobs(manifest)
    assert inspected["Layers"] == referenced_blobs(manifest)[1:]
    assert skopeo.list_tags(f"docker://{entrepot.host}/test/pushed") == ["v2"]
