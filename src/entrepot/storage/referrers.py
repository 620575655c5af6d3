"""The referrers index of one repository: for each subject digest, links to
the manifests that name it as `subject`. Distribution keeps no such index;
it lives under `_referrers/`, which Distribution ignores."""

from __future__ import annotations

import contextlib

from entrepot.digest import Digest
from entrepot.errors import DigestInvalid
from entrepot.storage import paths
from entrepot.storage.blobstore import BlobStore
from entrepot.storage.driver.base import PathNotFound
from entrepot.storage.linked import write_link


class ReferrerStore:
    def __init__(self, store: BlobStore, name: str) -> None:
        self._store = store
        self._driver = store.driver
        self.name = name

    async def add(self, subject: Digest, referrer: Digest) -> None:
        await write_link(self._store, paths.referrer_link(self.name, subject, referrer), referrer)

    async def remove(self, subject: Digest, referrer: Digest) -> None:
        path = paths.referrer_link(self.name, subject, referrer)
        with contextlib.suppress(PathNotFound):
            await self._driver.delete(path.rsplit("/", 1)[0])

    async def list(self, subject: Digest) -> list[Digest]:
        """Digests of the manifests referring to `subject`, sorted."""
        found: list[Digest] = []
        base = paths.referrers(self.name, subject)
        try:
            algorithms = await self._driver.list(base)
        except PathNotFound:
            return found
        for algorithm_dir in algorithms:
            algorithm = algorithm_dir.rsplit("/", 1)[1]
            try:
                entries = await self._driver.list(algorithm_dir)
            except PathNotFound:
                continue
            for entry in entries:
                with contextlib.suppress(DigestInvalid):
                    found.append(Digest.parse(f"{algorithm}:{entry.rsplit('/', 1)[1]}"))
        return sorted(found, key=str)
