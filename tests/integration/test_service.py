"""The refinement service for real: a tiny refiner packaged by the package stage, served over HTTP.

A temporary project (the repository's service files and simgan/, a tiny trained checkpoint) is
packaged into a temporary BENTOML_HOME by `python -m simgan.stages.package` with every non-local
network connection refused (an audit hook), then served with `simgan serve` on 127.0.0.1 in its own
process group, killed after. Calls go through `bentoml.SyncHTTPClient` and raw HTTP (urllib):
outputs must equal offline `simgan.inference` within one grey level, every bad input must get a 400
with a message, in one shape {"error": "<one line>"} on every route, logged as one INFO line without a
traceback, and the next good request must still succeed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import tiny_trainer
from PIL import Image

from simgan.inference import RefinerRunner

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
TASK = "gaze"
MAX_BATCH = 8  # package.gaze.max_batch_size of this test's project (set below over params.yaml)
MAX_PIXELS = 100_000  # and max_image_pixels

# Loaded in every Python process of the package stage and the server (via PYTHONPATH): refuses and
# records any connection or name lookup that is not local, so "offline" is checked, not assumed.
OFFLINE_HOOK = """
import os, sys
def _offline(event, args):
    if event == "socket.connect" and len(args) > 1 and isinstance(args[1], tuple):
        host = str(args[1][0])
    elif event == "socket.getaddrinfo":
        host = str(args[0])
    else:
        return
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "None"):
        with open(os.environ["OFFLINE_LOG"], "a") as log:
            log.write(f"{event} {host}\\n")
        raise OSError(f"offline test: no connection to {host}")
sys.addaudithook(_offline)
"""


# --------------------------------------------------------------------------------------------- helpers
def png(pixels: np.ndarray | Image.Image) -> bytes:
    picture = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height grey pixels, followed by a few bytes of garbage data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"\0" * 16) + chunk(b"IEND", b"")


def post(url: str, body: bytes | None, content_type: str, method: str = "POST") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_image(
    url: str, data: bytes, filename: str = "eye.png", content_type: str = "image/png", field: str = "image"
) -> tuple[int, bytes]:
    """multipart/form-data upload of one file, by hand (what curl -F does)."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return post(f"{url}/refine", body, f"multipart/form-data; boundary={boundary}")


def post_json(url: str, route: str, payload) -> tuple[int, bytes]:
    return post(f"{url}/{route}", json.dumps(payload).encode(), "application/json")


def error_of(body: bytes) -> str:
    """The message of an error answer, which must be exactly {"error": "<one line>"}."""
    payload = json.loads(body)
    assert isinstance(payload, dict) and list(payload) == ["error"], payload
    assert isinstance(payload["error"], str) and payload["error"].strip(), payload
    assert "\n" not in payload["error"] and "\r" not in payload["error"], payload
    return payload["error"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The repository's service files and simgan/, the tiny profile's params, a tiny trained refiner."""
    project = tmp_path_factory.mktemp("service")
    for name in ("service.py", "bentofile.yaml", "data.dvc"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "simgan", project / "simgan", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["package"][TASK].update(max_batch_size=MAX_BATCH, max_image_pixels=MAX_PIXELS)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    rng = np.random.default_rng(0)
    synthetic = rng.integers(60, 200, size=(64, 35, 55), dtype=np.uint8)
    real = np.clip(rng.normal(120, 40, size=(64, 35, 55)), 0, 255).astype(np.uint8)
    trained = project / "artifacts/train" / TASK
    trainer = tiny_trainer(
        synthetic, real, refiner_pretrain_steps=1, discriminator_pretrain_steps=1, adversarial_rounds=1
    )
    final = trainer.fit(checkpoint_path=trained / "checkpoint.pt")
    (trained / "dvclive").mkdir(parents=True)  # as the train stage's DVCLive writes it
    metrics = {name.replace("/", "_"): value for name, value in final.items()}
    (trained / "dvclive/metrics.json").write_text(json.dumps({**metrics, "step": trainer.step}))

    hook = project / "offline"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(OFFLINE_HOOK)
    return project


@pytest.fixture(scope="module")
def env(project) -> dict[str, str]:
    return {
        **os.environ,
        "BENTOML_HOME": str(project / "bentoml_home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "PYTHONPATH": str(project / "offline"),
        "OFFLINE_LOG": str(project / "offline.log"),
        "PIP_NO_INDEX": "1",
    }


def package(project: Path, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "simgan.stages.package", "--task", TASK],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads((project / "artifacts/package" / TASK / "bento.json").read_text())


@pytest.fixture(scope="module")
def packaged(project, env) -> dict:
    return package(project, env)


@pytest.fixture(scope="module")
def server(project, env, packaged) -> str:
    """`simgan serve --latest` of the packaged bento (nothing is promoted in this project) on a free port; its whole
    process group is killed after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (project / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "simgan", "serve", "--task", TASK, "--latest", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180  # a guard against hanging, not a timing assertion
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"the server exited with {process.returncode}:\n" + (project / "server.log").read_text()[-3000:]
                )
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    "the server did not become ready:\n" + (project / "server.log").read_text()[-3000:]
                )
            time.sleep(0.25)
        yield url
    finally:
        stop(process)
        log.close()


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, then SIGKILL to whatever is left: the group, and the
    workers, which BentoML's process manager starts in sessions of their own."""
    import psutil

    try:
        workers = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        workers = []
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for worker in workers:
        try:
            worker.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="module")
def offline(project) -> RefinerRunner:
    return RefinerRunner.from_checkpoint(project / "artifacts/train" / TASK / "checkpoint.pt", device="cpu")


@pytest.fixture(scope="module")
def eyes() -> np.ndarray:
    """Varied uint8 35×55 images: gradients, noise and a dark disc (an 'iris')."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[:35, :55]
    images = []
    for index in range(12):
        base = 40 + 150 * (x / 54.0) * (index % 3 + 1) / 3 + rng.normal(0, 20, (35, 55))
        disc = (x - 15 - 2 * index) ** 2 + (y - 17) ** 2 < 64
        base[disc] = 20
        images.append(np.clip(base, 0, 255).astype(np.uint8))
    return np.stack(images)


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


# --------------------------------------------------------------------------------------------- package
def test_package_builds_offline_with_deterministic_tags(project, env, packaged):
    assert packaged["bento"].startswith(f"simgan-{TASK}:") and packaged["model"].startswith(f"simgan-refiner-{TASK}:")
    home = Path(env["BENTOML_HOME"])
    bento_dir = home / "bentos" / packaged["bento"].replace(":", "/")
    model_dir = home / "models" / packaged["model"].replace(":", "/")
    assert {"refiner.pt", "refiner_config.json", "model.yaml"} <= {p.name for p in model_dir.iterdir()}
    metadata = yaml.safe_load((model_dir / "model.yaml").read_text())["metadata"]
    assert metadata["task"] == TASK and metadata["git_commit"] == "unknown"  # the temporary project is no git repo
    assert metadata["data_version"] == yaml.safe_load((ROOT / "data.dvc").read_text())["outs"][0]["md5"]
    metrics = json.loads((project / "artifacts/train/gaze/dvclive/metrics.json").read_text())
    assert metadata["training_metrics"] == metrics
    bento = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    assert bento["args"]["model"] == packaged["model"] and bento["args"]["max_batch_size"] == MAX_BATCH
    sources = {str(p.relative_to(bento_dir / "src")) for p in (bento_dir / "src").rglob("*") if p.is_file()}
    assert {"service.py", "bentofile.yaml"} <= sources  # and nothing from the store inside the project:
    assert {path for path in sources if not path.startswith("simgan/")} == {"service.py", "bentofile.yaml"}
    assert all(path.endswith(".py") and not path.startswith("simgan/stages/") for path in sources - {"bentofile.yaml"})
    # The bento carries every simgan module the service imports (here the installed simgan would hide a gap).
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, simgan.inference; print(' '.join(sorted("
            "m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'simgan')))",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(imported) > 3
    for module in imported:
        assert (bento_dir / "src" / Path(module).relative_to(project)).is_file(), module
    assert "bentoml==" in (bento_dir / "env/python/requirements.txt").read_text()
    assert not (project / "offline.log").exists(), (project / "offline.log").read_text()

    again = package(project, env)  # unchanged model and files: the same tags, no new copies
    assert again == packaged
    assert [p.name for p in (home / "models" / f"simgan-refiner-{TASK}").iterdir() if p.is_dir()] == [model_dir.name]
    assert [p.name for p in (home / "bentos" / f"simgan-{TASK}").iterdir() if p.is_dir()] == [bento_dir.name]


# --------------------------------------------------------------------------------------------- serving
def test_health_and_openapi_list_every_endpoint(server):
    for route in ("readyz", "livez"):
        with urllib.request.urlopen(f"{server}/{route}", timeout=10) as response:
            assert response.status == 200
    with urllib.request.urlopen(f"{server}/docs.json", timeout=10) as response:
        paths = json.load(response)["paths"]
    assert {"/refine", "/refine_batch", "/info", "/readyz", "/livez"} <= set(paths)


def test_info_names_the_model_task_and_data(server, packaged, project):
    status, body = post_json(server, "info", {})
    assert status == 200
    info = json.loads(body)
    assert info["task"] == TASK and info["model"] == packaged["model"]
    assert info["input"]["refine"]["height"] == 35 and info["input"]["refine"]["width"] == 55
    assert info["input"]["refine_batch"]["max_batch_size"] == MAX_BATCH
    assert info["training_metrics"] == json.loads((project / "artifacts/train/gaze/dvclive/metrics.json").read_text())
    assert info["data_version"] == yaml.safe_load((ROOT / "data.dvc").read_text())["outs"][0]["md5"]


def test_refine_over_raw_http_equals_offline_inference(server, offline, eyes):
    expected = offline.refine(eyes)
    for image, want in zip(eyes[:4], expected[:4]):
        status, body = post_image(server, png(image))
        assert status == 200, body
        with Image.open(io.BytesIO(body)) as picture:
            assert picture.format == "PNG" and picture.mode == "L"
            assert close(np.asarray(picture), want)
    rgb = Image.fromarray(eyes[4]).convert("RGB")  # colour JPEG: converted to grey as the CLI does
    status, body = post_image(server, jpeg(rgb), "eye.jpg", "image/jpeg")
    assert status == 200, body
    with Image.open(io.BytesIO(jpeg(rgb))) as sent:
        grey = np.asarray(sent.convert("L"))
    assert close(np.asarray(Image.open(io.BytesIO(body))), offline.refine(grey[None])[0])


def test_refine_batch_over_raw_http_equals_offline_inference(server, offline, eyes):
    status, body = post_json(server, "refine_batch", {"images": eyes[:5].tolist()})
    assert status == 200, body
    assert close(np.array(json.loads(body)), offline.refine(eyes[:5]))


def test_python_client_equals_offline_inference(server, offline, eyes, tmp_path):
    import bentoml

    (tmp_path / "eye.png").write_bytes(png(eyes[0]))
    with bentoml.SyncHTTPClient(server, timeout=60) as client:
        refined = client.refine(image=tmp_path / "eye.png")
        assert close(np.asarray(refined), offline.refine(eyes[:1])[0])
        batch = client.refine_batch(images=eyes[:MAX_BATCH])
        assert batch.dtype == np.uint8 and close(batch, offline.refine(eyes[:MAX_BATCH]))
        assert client.info()["task"] == TASK
        with pytest.raises(bentoml.exceptions.BentoMLException, match="uint8") as error:
            client.refine_batch(images=eyes[:2].astype(np.float32))
        assert error.value.error_code == 400


def test_concurrent_batch_requests_each_get_their_own_images(server, offline, eyes):
    """Adaptive batching joins requests into one forward pass; each must get back exactly its images."""
    sizes = [1, 3, 2, 5, 1, 4, 2, 3]
    starts = np.cumsum([0, *sizes[:-1]]) % len(eyes)
    requests = [np.roll(eyes, -start, axis=0)[:size] for start, size in zip(starts, sizes)]
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(
            pool.map(lambda images: post_json(server, "refine_batch", {"images": images.tolist()}), requests)
        )
    for images, (status, body) in zip(requests, answers):
        assert status == 200, body
        assert close(np.array(json.loads(body)), offline.refine(images))


BAD_UPLOADS = {
    "non-image bytes": (lambda e: b"this is not an image", "not a PNG or JPEG"),
    "empty file": (lambda e: b"", "not a PNG or JPEG"),
    "truncated PNG": (lambda e: png(e[0])[:-40], "truncated"),
    "truncated JPEG": (lambda e: jpeg(Image.fromarray(e[0]))[:300], "truncated"),
    "GIF, a format not allowed": (lambda e: _gif(e[0]), "not a PNG or JPEG"),
    "16-bit grey (mode I;16)": (lambda e: png(Image.fromarray(e[0].astype(np.uint16) * 256)), "mode I;16"),
    "CMYK JPEG": (lambda e: jpeg(Image.fromarray(e[0]).convert("CMYK")), "mode CMYK"),
    "wrong size": (lambda e: png(e[0][:30, :50]), "takes 55×35"),
    "oversize image (header only, never decoded)": (lambda e: png_header_only(4000, 3000), "12,000,000 pixels"),
    "decompression bomb (PIL's own limit)": (lambda e: png_header_only(100_000, 100_000), "decompression bomb"),
}


def _gif(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="GIF")
    return buffer.getvalue()


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_bad_upload_is_a_400_and_the_server_keeps_serving(server, offline, eyes, case):
    make, message = BAD_UPLOADS[case]
    status, body = post_image(server, make(eyes))
    assert status == 400, body
    assert message in error_of(body)
    status, body = post_image(server, png(eyes[1]))
    assert status == 200 and close(np.asarray(Image.open(io.BytesIO(body))), offline.refine(eyes[1:2])[0])


def multipart(fields: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    """multipart/form-data parts (name, filename or None for a text field, content)."""
    parts = b""
    for name, filename, content in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    return parts + f"--{boundary}--\r\n".encode()


FORM = "multipart/form-data; boundary=b0undary"
BAD_REQUESTS = {  # (route, body, content type, message): what BentoML alone answers with 500, or acts on
    "binary part under another name": (
        "refine",
        lambda e: multipart([("picture", "eye.png", png(e[0]))]),
        FORM,
        "`image` is missing",
    ),
    "a second, binary part": (
        "refine",
        lambda e: multipart([("image", "a.png", png(e[0])), ("x", "b", b"\xff")]),
        FORM,
        "unexpected multipart field(s) x",
    ),
    "two images": ("refine", lambda e: multipart([("image", "a.png", png(e[0]))] * 2), FORM, "one `image`"),
    "a URL as a text field (BentoML would download it)": (
        "refine",
        lambda e: multipart([("image", None, b"http://example.com/eye.png")]),
        FORM,
        "a file upload",
    ),
    "url-encoded form": (
        "refine",
        lambda e: b"image=http%3A%2F%2Fexample.com%2Feye.png",
        "application/x-www-form-urlencoded",
        "takes multipart/form-data",
    ),
    "JSON to /refine": ("refine", lambda e: b'{"image": "eye.png"}', "application/json", "takes multipart/form-data"),
    "malformed multipart": ("refine", lambda e: b"--nope\r\n\r\n", FORM, "multipart"),
    "body over the limit": (
        "refine",
        lambda e: multipart([("image", "big.png", b"\0" * 3_000_000)]),
        FORM,
        "request body is",
    ),
    "binary multipart to /refine_batch": (
        "refine_batch",
        lambda e: multipart([("images", "x", b"\xff\xfe")]),
        FORM,
        "takes application/json",
    ),
    "pickle to /refine_batch": (
        "refine_batch",
        lambda e: b"\x80\x04N.",
        "application/vnd.bentoml+pickle",
        "takes application/json",
    ),
    "binary multipart to /info": ("info", lambda e: multipart([("x", "x", b"\xff")]), FORM, "/info takes"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_is_a_400_and_the_server_keeps_serving(server, offline, eyes, case):
    route, make, content_type, message = BAD_REQUESTS[case]
    status, body = post(f"{server}/{route}", make(eyes), content_type)
    assert status == 400, body
    assert message in error_of(body)
    status, body = post_image(server, png(eyes[2]))
    assert status == 200 and close(np.asarray(Image.open(io.BytesIO(body))), offline.refine(eyes[2:3])[0])


BAD_BATCHES = {
    "float pixels": (lambda e: {"images": (e[:2] / 255.0).tolist()}, "got dtype float64"),
    "values above 255": (lambda e: {"images": (e[:2].astype(int) + 256).tolist()}, "got values from"),
    "negative values": (lambda e: {"images": (e[:2].astype(int) - 300).tolist()}, "got values from"),
    "strings": (lambda e: {"images": [["a", "b"]]}, "got dtype <U1"),
    "rank 2": (lambda e: {"images": e[0].tolist()}, "got rank 2"),
    "rank 4": (lambda e: {"images": e[:2, None].tolist()}, "got rank 4"),
    "empty batch": (lambda e: {"images": []}, "the batch is empty"),
    "oversize batch": (
        lambda e: {"images": np.resize(e, (MAX_BATCH + 1, 35, 55)).tolist()},
        f"at most {MAX_BATCH} per request",
    ),
    "wrong size": (lambda e: {"images": e[:2, :30, :50].tolist()}, "got 30×50"),
    "ragged rows": (lambda e: {"images": [[[1, 2], [3]]]}, "inhomogeneous"),
    "no images field": (lambda e: {"pictures": e[:1].tolist()}, "Field required"),
    "more numbers than a full batch has, in one row": (
        lambda e: {"images": [[[0] * (3 * MAX_BATCH * 35 * 55)]]},
        "refused before parsing",
    ),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_bad_batch_is_a_400_and_the_server_keeps_serving(server, offline, eyes, case):
    make, message = BAD_BATCHES[case]
    status, body = post_json(server, "refine_batch", make(eyes))
    assert status == 400, body
    assert message in error_of(body)
    status, body = post_json(server, "refine_batch", {"images": eyes[:2].tolist()})
    assert status == 200 and close(np.array(json.loads(body)), offline.refine(eyes[:2]))


def test_malformed_json_is_a_400(server):
    status, body = post(f"{server}/refine_batch", b"{not json", "application/json")
    assert status == 400
    assert "Invalid JSON" in error_of(body)


def test_batch_of_a_million_one_pixel_images_is_refused_before_parsing(server, offline, eyes):
    """{"images": [[[0]],[[0]],…]} just under the body limit: 441 k images here (2.8 M with gaze's limits),
    which parsing would turn into millions of Python lists, and numpy walk, before the batch size is
    checked: seconds of CPU and GBs of worker memory per request (measured by hand; a test asserts no
    time). It is refused from byte counts before parsing, with a message naming the limit."""
    limit = max(16 * MAX_PIXELS, 8 * MAX_BATCH * 35 * 55) + 2**20  # service.max_body_bytes()
    head, item, tail = b'{"images": [', b"[[0]],", b"[[0]]]}"
    body = head + item * ((limit - len(head) - len(tail)) // len(item)) + tail
    assert limit - len(item) < len(body) <= limit
    status, answer = post(f"{server}/refine_batch", body, "application/json")
    assert status == 400, answer[:1000]
    message = error_of(answer)
    assert "refused before parsing" in message and f"at most {MAX_BATCH} images" in message, message
    assert f"{body.count(b'[') + body.count(b'{'):,} JSON arrays and objects" in message, message
    status, answer = post_json(server, "refine_batch", {"images": eyes[:2].tolist()})
    assert status == 200 and close(np.array(json.loads(answer)), offline.refine(eyes[:2]))


ERRORS_ON_EVERY_ROUTE = {  # where each error comes from: BentoML's handler (a list, or pydantic's detail) or ours
    "undecodable upload (BentoML: [{error}])": (
        "refine",
        "POST",
        lambda e: multipart([("image", "eye.png", b"not an image")]),
        FORM,
        400,
        "not a PNG or JPEG",
    ),
    "float pixels (BentoML: {error, detail})": (
        "refine_batch",
        "POST",
        lambda e: json.dumps({"images": (e[:1] / 255.0).tolist()}).encode(),
        "application/json",
        400,
        "`images`: expected uint8",
    ),
    "malformed JSON to /refine_batch": (
        "refine_batch",
        "POST",
        lambda e: b"{not json",
        "application/json",
        400,
        "Invalid JSON",
    ),
    "malformed JSON to /info": ("info", "POST", lambda e: b"{not json", "application/json", 400, "Invalid JSON"),
    "a JSON array to /info": ("info", "POST", lambda e: b"[1]", "application/json", 400, "should be an object"),
    "wrong media type (RequestGuard)": (
        "info",
        "POST",
        lambda e: multipart([("x", "x", b"\xff")]),
        FORM,
        400,
        "/info takes",
    ),
    "GET on an API route (starlette: plain text)": (
        "refine_batch",
        "GET",
        lambda e: None,
        "application/json",
        405,
        "Method Not Allowed",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS_ON_EVERY_ROUTE))
def test_every_error_body_is_one_object_with_a_one_line_message(server, eyes, case):
    route, method, make, content_type, expected_status, message = ERRORS_ON_EVERY_ROUTE[case]
    request = urllib.request.Request(
        f"{server}/{route}", data=make(eyes), method=method, headers={"Content-Type": content_type}
    )
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=60)
    assert answer.value.code == expected_status
    assert answer.value.headers["Content-Type"] == "application/json"
    assert message in error_of(answer.value.read())


def test_client_errors_are_logged_as_one_info_line_without_traceback(server, project, eyes):
    """Each path a 400 takes: RequestGuard's refusal, BentoML's handler for an exception raised in the API
    (InvalidArgument) and for pydantic's ValidationError; BentoML logged the last two at ERROR with a
    traceback. The fixture captures the server's stdout and stderr in server.log."""
    post_image(server, b"not an image")
    post_json(server, "refine_batch", {"images": (eyes[:1] / 255.0).tolist()})
    post(f"{server}/refine", multipart([("image", "a.png", png(eyes[0])), ("x", "b", b"1")]), FORM)
    expected = [
        "client error 400 on /refine [POST]: `image` is not a PNG or JPEG image",
        "client error 400 on /refine_batch [POST]: `images`: expected uint8 pixels (integers 0..255); "
        "got dtype float64",
        "client error 400 on /refine [POST]: unexpected multipart field(s) x; send only `image`",
    ]
    deadline = time.monotonic() + 30  # a guard against a log line that never comes, not a timing assertion
    while True:
        lines = (project / "server.log").read_text().splitlines()
        missing = [text for text in expected if not any(text in line for line in lines)]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not missing, (missing, lines[-20:])
    for line in lines:
        if "client error" in line:
            assert "[INFO]" in line, line
    log = "\n".join(lines)
    assert "Traceback" not in log and "[ERROR]" not in log, [line for line in lines if "ERROR" in line][:5]


FILTER_CHECK = """
import io, json, logging, sys
from bentoml._internal.configuration.containers import BentoMLContainer
BentoMLContainer.bento_arguments.set(json.load(open("artifacts/package/gaze/bento.json"))["args"])
import service
from bentoml._internal.server.http_app import log_exception
from bentoml.exceptions import InternalServerError, InvalidArgument
from starlette.requests import Request

service.ClientErrorLogFilter.install()
stream = io.StringIO()
handler = logging.StreamHandler(stream)
handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
logger = logging.getLogger(service.ClientErrorLogFilter.LOGGER)
logger.addHandler(handler)
logger.setLevel(logging.INFO)
request = Request({"type": "http", "method": "POST", "path": "/refine", "headers": [], "query_string": b""})
for error in (InvalidArgument("a client mistake"), RuntimeError("a server fault"), InternalServerError("a 500")):
    try:
        raise error
    except Exception:
        log_exception(request)
    print(json.dumps(stream.getvalue()))
    stream.seek(0)
    stream.truncate()
"""


def test_log_filter_keeps_server_faults_at_error_with_traceback(project, env, packaged):
    """A real fault cannot be provoked over HTTP (every bad input is refused before the model), so the
    filter the service installs is run on BentoML's own log_exception, in the packaged project."""
    result = subprocess.run(
        [sys.executable, "-c", FILTER_CHECK], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client, fault, internal = (json.loads(line) for line in result.stdout.splitlines()[-3:])
    assert client == "INFO client error 400 on /refine [POST]: a client mistake\n"
    for record, message in ((fault, "a server fault"), (internal, "a 500")):
        assert record.startswith("ERROR Exception on /refine [POST]\nTraceback (most recent call last):"), record
        assert record.rstrip().endswith(message), record


def test_server_made_no_outside_connection_and_never_answered_5xx(server, project):
    post_json(server, "info", {})
    assert not (project / "offline.log").exists(), (project / "offline.log").read_text()
    log = (project / "server.log").read_text()
    assert "status=200" in log and "status=400" in log  # the access log records every answer
    assert "status=5" not in log, [line for line in log.splitlines() if "status=5" in line]
