"""Distribution's storage layout, as pure functions from names to driver paths.

```
/docker/registry/v2/
  blobs/<alg>/<hex[0:2]>/<hex>/data
  repositories/<name>/
    _layers/<alg>/<hex>/link
    _manifests/revisions/<alg>/<hex>/link
    _manifests/tags/<tag>/current/link
    _manifests/tags/<tag>/index/<alg>/<hex>/link
    _uploads/<uuid>/data | startedat | hashstates/<alg>/<offset>
    _referrers/<alg>/<hex>/<alg>/<hex>/link       entrepot's referrers index
```

Keeping this byte-for-byte lets entrepot and Distribution serve each other's
storage roots. Callers validate names, tags and digests before asking.
"""

from __future__ import annotations

from typing import Final

from entrepot.digest import Digest

ROOT: Final = "/docker/registry/v2"
BLOBS: Final = f"{ROOT}/blobs"
REPOSITORIES: Final = f"{ROOT}/repositories"


def blob_dir(digest: Digest) -> str:
    return f"{BLOBS}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def blob_data(digest: Digest) -> str:
    return f"{blob_dir(digest)}/data"


def repository(name: str) -> str:
    return f"{REPOSITORIES}/{name}"


def layers(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_layers"


def layer_link(name: str, digest: Digest) -> str:
    return f"{layers(name)}/{digest.algorithm}/{digest.hex}/link"


def manifests(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_manifests"


def revisions(name: str) -> str:
    return f"{manifests(name)}/revisions"


def revision_link(name: str, digest: Digest) -> str:
    return f"{revisions(name)}/{digest.algorithm}/{digest.hex}/link"


def tags(name: str) -> str:
    return f"{manifests(name)}/tags"


def tag_dir(name: str, tag: str) -> str:
    return f"{tags(name)}/{tag}"


def tag_current_link(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/current/link"


def tag_index(name: str, tag: str) -> str:
    return f"{tag_dir(name, tag)}/index"


def tag_index_link(name: str, tag: str, digest: Digest) -> str:
    return f"{tag_index(name, tag)}/{digest.algorithm}/{digest.hex}/link"


def uploads(name: str) -> str:
    return f"{REPOSITORIES}/{name}/_uploads"


def upload_dir(name: str, upload_id: str) -> str:
    return f"{uploads(name)}/{upload_id}"


def upload_data(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/data"


def upload_started_at(name: str, upload_id: str) -> str:
    return f"{upload_dir(name, upload_id)}/startedat"


def upload_hashstates(name: str, upload_id: str, algorithm: str) -> str:
    return f"{upload_dir(name, upload_id)}/hashstates/{algorithm}"


def upload_hashstate(name: str, upload_id: str, algorithm: str, offset: int) -> str:
    return f"{upload_hashstates(name, upload_id, algorithm)}/{offset}"


def referrers(name: str, subject: Digest) -> str:
    """entrepot's own index of the referrers API (Distribution has none):
    a link per manifest whose `subject` is `subject`."""
    return f"{REPOSITORIES}/{name}/_referrers/{subject.algorithm}/{subject.hex}"


def referrer_link(name: str, subject: Digest, referrer: Digest) -> str:
    return f"{referrers(name, subject)}/{referrer.algorithm}/{referrer.hex}/link"
