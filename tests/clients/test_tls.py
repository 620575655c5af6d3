"""entrepot over TLS (`http.tls`), with real clients.

A throwaway CA, a server certificate for 127.0.0.1 and localhost and a
client certificate are made with the `openssl` command. skopeo pushes an
image built offline with umoci and pulls it back with `--dest-cert-dir` /
`--src-cert-dir` (a directory holding `ca.crt`, and `client.cert` with
`client.key` for mutual TLS) and TLS verification on; digests and blobs must
survive the round trip. httpx checks the server against the CA, a plain HTTP
request to the TLS port must fail, and with `clientcas` set a client without
a certificate must be refused. Both servers entrepot runs on are used.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
import pytest

from tests.cli_support import SERVERS, Serving, entrepot, free_port, serve, write_config
from tests.clients.support import (
    Skopeo,
    assert_same_image,
    build_image,
    layout_descriptor,
    layout_manifest,
    run,
)

CONFIG: Final = """\
version: 0.1
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
  tls:
    certificate: {certificate}
    key: {key}
"""

FILES: Final = {
    "etc/hello.txt": b"hello over TLS\n",
    "usr/share/data/numbers.bin": bytes(range(256)) * 512,
}


@dataclass(frozen=True)
class PKI:
    """The files of a throwaway CA: `trust` is a client certificate
    directory with the CA only, `mutual` one with a client certificate too."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    trust: Path
    mutual: Path

    def context(self, *, client: bool = False) -> ssl.SSLContext:
        """A client's TLS context trusting the CA (and presenting the client
        certificate, when `client`)."""
        context = ssl.create_default_context(cafile=self.ca)
        if client:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _issue(directory: Path, name: str, subject: str, extensions: str, ca: Path) -> None:
    """A P-256 key `name.key` and a certificate `name.crt` signed by the CA."""
    key, request, certificate = (directory / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    run(
        [
            *("openssl", "req", "-new", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", key, "-out", request, "-subj", subject),
        ]
    )
    extfile = directory / f"{name}.ext"
    extfile.write_text(extensions)
    run(
        [
            *("openssl", "x509", "-req", "-in", request),
            *("-CA", ca, "-CAkey", directory / "ca.key", "-CAcreateserial"),
            *("-days", "2", "-sha256", "-extfile", extfile, "-out", certificate),
        ]
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    directory = tmp_path_factory.mktemp("pki")
    ca = directory / "ca.crt"
    run(
        [
            *("openssl", "req", "-x509", "-new", "-newkey", "ec"),
            *("-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-sha256"),
            *("-keyout", directory / "ca.key", "-out", ca, "-subj", "/CN=entrepot test CA"),
            *("-addext", "basicConstraints=critical,CA:TRUE"),
            *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        ]
    )
    _issue(
        directory,
        "server",
        "/CN=localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        ca,
    )
    _issue(
        directory,
        "client",
        "/CN=entrepot test client",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=clientAuth\n",
        ca,
    )
    # containers/image reads *.crt as CAs and *.cert with *.key as a client pair.
    trust = directory / "trust"
    trust.mkdir()
    (trust / "ca.crt").write_bytes(ca.read_bytes())
    mutual = directory / "mutual"
    mutual.mkdir()
    (mutual / "ca.crt").write_bytes(ca.read_bytes())
    (mutual / "client.cert").write_bytes((directory / "client.crt").read_bytes())
    (mutual / "client.key").write_bytes((directory / "client.key").read_bytes())
    return PKI(
        ca=ca,
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
        trust=trust,
        mutual=mutual,
    )


def _config(directory: Path, pki: PKI, *, extra: str = "") -> tuple[Path, str]:
    port = free_port()
    text = CONFIG.format(
        root=directory / "root", port=port, certificate=pki.server_cert, key=pki.server_key
    )
    return write_config(directory / "config.yml", text + extra), f"127.0.0.1:{port}"


@dataclass(frozen=True)
class TLSRegistry:
    serving: Serving
    host: str  # 127.0.0.1:PORT, as clients name it


@pytest.fixture(scope="module", params=SERVERS)
def tls_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pki: PKI
) -> Iterator[TLSRegistry]:
    """entrepot serving HTTPS with the test CA's server certificate."""
    config, host = _config(tmp_path_factory.mktemp("tls"), pki)
    with serve(config, f"https://{host}", server=request.param, verify=pki.context()) as running:
        yield TLSRegistry(running, host)


def test_skopeo_round_trip_with_verified_tls(
    tls_registry: TLSRegistry, pki: PKI, skopeo: Skopeo, tmp_path: Path
) -> None:
    source, back = tmp_path / "source", tmp_path / "back"
    build_image(source, "v1", FILES)
    digest, _ = layout_manifest(source, "v1")
    ref = f"docker://{tls_registry.host}/tls/round-trip:v1"
    digest_file = tmp_path / "pushed-digest"

    skopeo(
        "copy",
        "--dest-tls-verify=true",
        "--dest-cert-dir",
        pki.trust,
        "--digestfile",
        digest_file,
        f"oci:{source}:v1",
        ref,
    )
    skopeo("copy", "--src-tls-verify=true", "--src-cert-dir", pki.trust, ref, f"oci:{back}:v1")

    assert digest_file.read_text().strip() == digest
    assert layout_descriptor(back, "v1")["digest"] == digest
    assert_same_image(source, back, digest)
    # Verification is real: without the CA, skopeo refuses the server.
    refused = skopeo.run("inspect", "--raw", "--tls-verify=true", ref)
    assert refused.returncode != 0
    assert "certificate" in refused.stderr, refused.stderr


def test_httpx_verifies_with_the_ca_and_plain_http_fails(
    tls_registry: TLSRegistry, pki: PKI
) -> None:
    with httpx.Client(verify=pki.context(), timeout=10.0) as http:
        response = http.get(f"https://{tls_registry.host}/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response.http_version in ("HTTP/1.1", "HTTP/2")

    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://{tls_registry.host}/v2/", timeout=10.0)  # the system's CAs only
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{tls_registry.host}/v2/", timeout=10.0)


def _curl_http_version(url: str, *options: str | Path) -> str:
    """The HTTP version curl ends up speaking to `url` (`GET /v2/`), asking
    for HTTP/2; or curl's failure."""
    finished = run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", *options, url],
        check=False,
    )
    return finished.stdout.decode() if finished.returncode == 0 else f"failed: {finished.stderr}"


@pytest.mark.parametrize(
    ("http2", "expected"), [("", "200 2"), ("  http2:\n    disabled: true\n", "200 1.1")]
)
def test_http2_over_tls_unless_disabled(
    tmp_path: Path, pki: PKI, http2: str, expected: str
) -> None:
    """As Distribution: HTTP/2 is negotiated over TLS (ALPN) unless
    `http.http2.disabled`. granian speaks it; uvicorn does not."""
    config, host = _config(tmp_path, pki, extra=http2)
    with serve(config, f"https://{host}", verify=pki.context()):
        version = _curl_http_version(f"https://{host}/v2/", "--http2", "--cacert", pki.ca)
    assert version == expected


@pytest.mark.parametrize(
    ("h2c", "speaks_h2c"), [("", False), ("  h2c:\n    enabled: true\n", True)]
)
def test_h2c_only_when_enabled(tmp_path: Path, h2c: str, speaks_h2c: bool) -> None:
    """In clear text, HTTP/2 (prior knowledge) only with `http.h2c.enabled`;
    HTTP/1.1 is served either way."""
    port = free_port()
    text = f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'root'}\n"
    text += f"http:\n  addr: 127.0.0.1:{port}\n{h2c}"
    config = write_config(tmp_path / "config.yml", text)
    url = f"http://127.0.0.1:{port}/v2/"
    with serve(config, url.removesuffix("/v2/")):
        plain = _curl_http_version(url)
        prior = _curl_http_version(url, "--http2-prior-knowledge")
    assert plain == "200 1.1"
    if speaks_h2c:
        assert prior == "200 2"
    else:
        assert prior != "200 2", prior


@pytest.mark.parametrize("server", SERVERS)
def test_mutual_tls_requires_a_client_certificate(
    server: str, pki: PKI, skopeo: Skopeo, tmp_path: Path
) -> None:
    config, host = _config(tmp_path, pki, extra=f"    clientcas:\n      - {pki.ca}\n")
    source = tmp_path / "source"
    build_image(source, "v1", FILES)
    digest, _ = layout_manifest(source, "v1")
    ref = f"docker://{host}/tls/mutual:v1"
    url = f"https://{host}"

    with serve(config, url, server=server, verify=pki.context(client=True)):
        with (
            httpx.Client(verify=pki.context(), timeout=10.0) as anonymous,
            pytest.raises(httpx.TransportError),
        ):
            anonymous.get(f"{url}/v2/")
        with httpx.Client(verify=pki.context(client=True), timeout=10.0) as known:
            assert known.get(f"{url}/v2/").status_code == 200

        refused = skopeo.run(
            "copy", "--dest-tls-verify=true", "--dest-cert-dir", pki.trust, f"oci:{source}:v1", ref
        )
        assert refused.returncode != 0
        pushed = skopeo.run(
            "copy",
            "--dest-tls-verify=true",
            "--dest-cert-dir",
            pki.mutual,
            f"oci:{source}:v1",
            ref,
            check=True,
        )
        assert pushed.returncode == 0
        raw = skopeo("inspect", "--raw", "--tls-verify=true", "--cert-dir", pki.mutual, ref).stdout
    assert raw == layout_manifest(source, "v1")[1]
    assert digest == layout_descriptor(source, "v1")["digest"]


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(
    ("key", "extra"),
    [
        ("http.tls.certificate", ""),
        ("http.tls.clientcas[0]", "    clientcas:\n      - {missing}\n"),
    ],
    ids=["certificate", "clientcas"],
)
def test_a_missing_tls_file_is_one_clear_line(
    server: str, key: str, extra: str, pki: PKI, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "missing.pem"
    config, _ = _config(tmp_path, pki, extra=extra.format(missing=missing))
    if key == "http.tls.certificate":
        config.write_text(config.read_text().replace(str(pki.server_cert), str(missing)))

    finished = entrepot("serve", config, "--server", server, timeout=10.0)

    assert finished.returncode == 2, finished.describe()
    assert "Traceback" not in finished.stderr, finished.describe()
    lines = [line for line in finished.stderr.splitlines() if "invalid configuration" in line]
    assert len(lines) == 1, finished.describe()
    assert key in lines[0]
    assert str(missing) in lines[0]
