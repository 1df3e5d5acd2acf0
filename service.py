"""The refinement service (BentoML): synthetic images in, refined images out, labels untouched.

    POST /refine        multipart field `image`: one PNG or JPEG → the refined image, PNG, same size
    POST /refine_batch  JSON {"images": uint8 N×H×W} → refined uint8 N×H×W (adaptive batching)
    POST /info          model tag, task, input spec, training metrics, data version
    GET  /readyz /livez, /docs.json (OpenAPI) and / (its web page), from BentoML

Which model and which input limits come from bento arguments: the package stage bakes them in from
params.yaml `package.<task>` (so `bentoml serve simgan-gaze:latest` needs nothing else); to serve this
file directly, `bentoml serve service:Refiner --arg-file args.yaml` with the `args` of the task's
artifacts/package/<task>/bento.json.
Inference goes through `simgan.inference` only: the preprocessing of training, so serving cannot drift.

Every input is checked before the model sees it. A bad one is an HTTP 400 saying what was expected and
what came: BentoML answers 500 to an image it cannot decode itself, so uploads are decoded here, and
arrays are checked in a pydantic validator, which runs per request *before* adaptive batching (a
malformed request must not fail the requests batched with it). A /refine_batch body is first judged
from byte counts (`batch_body_problem`), so one that cannot be a batch is refused before it is parsed.

Every error body, from any API route, is one JSON object {"error": "<one line>"} (BentoML's own are a
list for some 4xx and carry pydantic's `detail` for others: RequestGuard rewrites them). A client's
mistake is logged as one INFO line (logger bentoml.simgan, and BentoML's own "Exception on …" record
demoted by ClientErrorLogFilter); a server fault stays at ERROR with its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
import torch
from bentoml.exceptions import BentoMLException, InvalidArgument
from bentoml.validators import DType
from PIL import Image, UnidentifiedImageError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from simgan.inference import RefinerRunner, build_refiner

# A child of BentoML's configured `bentoml` logger, so that INFO lines reach the server log in its format.
LOG = logging.getLogger("bentoml.simgan")
WEIGHTS_FILE = "refiner.pt"  # the refiner's state_dict, in the model store folder (written by the package stage)
CONFIG_FILE = "refiner_config.json"  # its RefinerConfig, so the network is rebuilt from the store alone


class ServiceArgs(BaseModel):
    """Bento arguments; every field mirrors params.yaml `package.<task>` (simgan.config.PackageParams)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(description="gaze or hand")
    model: str = Field(description="model store tag of the refiner, e.g. simgan-refiner-gaze:<version>")
    max_image_pixels: int = Field(ge=1, description="uploads with more pixels are refused before decoding")
    max_batch_size: int = Field(ge=1, description="images per refine_batch request, and per adaptive batch")
    max_latency_ms: int = Field(ge=1, description="adaptive batching's latency budget; predicted to exceed it: 503")
    allowed_formats: list[str] = Field(description="PIL format names accepted by /refine")
    allowed_modes: list[str] = Field(description="PIL modes accepted by /refine (converted to 8-bit grey)")
    workers: int = Field(ge=1, description="server processes, each refining one request at a time")
    torch_threads: int = Field(ge=1, description="torch intra-op threads per worker")


ARGS = bentoml.use_arguments(ServiceArgs)
MODEL = bentoml.models.BentoModel(ARGS.model)  # a class attribute below: packed into the bento at build


@functools.cache
def model_files() -> tuple[dict, dict]:
    """(refiner config, model metadata) from the model store; read once per process."""
    stored = MODEL.resolve()
    return json.loads(Path(stored.path_of(CONFIG_FILE)).read_text()), dict(stored.info.metadata)


def input_size() -> tuple[int, int]:
    return tuple(model_files()[0]["input_size"])


def checked_batch(images: np.ndarray) -> np.ndarray:
    """A refine_batch request as uint8 (N, H, W), or a ValueError (→ HTTP 400) naming what is wrong."""
    height, width = input_size()
    if images.size == 0:
        raise ValueError(f"the batch is empty (shape {images.shape}); send 1 to {ARGS.max_batch_size} images")
    if images.dtype != np.uint8:
        if images.dtype.kind not in "iu":  # JSON carries no dtype: integers arrive as int64
            raise ValueError(f"expected uint8 pixels (integers 0..255); got dtype {images.dtype}")
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255:
            raise ValueError(f"expected uint8 pixels (integers 0..255); got values from {low} to {high}")
        images = images.astype(np.uint8)
    if images.ndim != 3:
        raise ValueError(f"expected shape (N, {height}, {width}); got rank {images.ndim}, shape {images.shape}")
    if len(images) > ARGS.max_batch_size:
        raise ValueError(f"the batch holds {len(images)} images; at most {ARGS.max_batch_size} per request")
    if images.shape[1:] != (height, width):
        raise ValueError(
            f"expected images of {height}×{width} (H×W), the refiner's input size; "
            f"got {images.shape[1]}×{images.shape[2]}"
        )
    return images


def decode_image(path: Path) -> np.ndarray:
    """An uploaded PNG/JPEG as uint8 (H, W) grey, or InvalidArgument (→ HTTP 400) naming the problem.

    The size is checked from the header, before any pixel is decoded (decompression bombs).
    """
    height, width = input_size()
    try:
        picture = Image.open(path, formats=ARGS.allowed_formats)
    except UnidentifiedImageError:
        raise InvalidArgument(f"`image` is not a {' or '.join(ARGS.allowed_formats)} image") from None
    except Image.DecompressionBombError as error:  # PIL's own limit, far above max_image_pixels
        raise InvalidArgument(f"`image` refused before decoding: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise InvalidArgument(f"`image` is truncated or corrupt: {error}") from None
    with picture:
        w, h = picture.size
        if w * h > ARGS.max_image_pixels:
            raise InvalidArgument(
                f"`image` is {w}×{h} = {w * h:,} pixels; at most {ARGS.max_image_pixels:,} "
                f"are accepted (refused before decoding)"
            )
        if picture.mode not in ARGS.allowed_modes:
            raise InvalidArgument(
                f"`image` has mode {picture.mode}; accepted modes: "
                f"{', '.join(ARGS.allowed_modes)} (converted to 8-bit grey)"
            )
        if (h, w) != (height, width):
            raise InvalidArgument(f"`image` is {w}×{h} (W×H); this refiner takes {width}×{height}")
        try:
            picture.load()
            grey = picture.convert("L")
        except (OSError, SyntaxError, ValueError) as error:
            raise InvalidArgument(f"`image` is truncated or corrupt: {error}") from None
    return np.asarray(grey)


# What each API route accepts; anything else is refused by RequestGuard before BentoML parses it.
MEDIA_TYPES = {
    "/refine": ("multipart/form-data",),
    "/refine_batch": ("application/json",),
    "/info": ("application/json", "application/x-www-form-urlencoded"),
}


def max_body_bytes() -> int:
    """Request bodies above this are refused unread: room for the largest allowed upload or JSON batch."""
    height, width = input_size()
    return max(16 * ARGS.max_image_pixels, 8 * ARGS.max_batch_size * height * width) + 2**20


def batch_body_problem(body: bytes) -> str | None:
    """Why a /refine_batch body cannot be a batch, judged from byte counts before any parsing, or None.

    Parsing builds a Python object per JSON value and numpy then walks them all, so a body of millions of
    one-pixel images ({"images": [[[0]],[[0]],…]}) cost seconds of CPU and GBs of worker memory before
    `checked_batch` could count its images. A batch of at most N images of H×W holds at most
    1 + N + N·H arrays and N·H·W numbers (N·H·W - 1 commas), and one object; a body holding more than
    twice that many `[` and `{`, or `,`, is refused here, from bytes.count() alone (C speed, nothing
    allocated). What passes costs at most about twice the largest valid request to parse, and is
    checked exactly by `checked_batch` (so a batch a few images too large still gets its precise message).
    Brackets and commas inside strings are counted too: a batch holds no strings but its one key.
    """
    count, (height, width) = ARGS.max_batch_size, input_size()
    arrays, numbers = 1 + count + count * height, count * height * width
    batch = f"a batch of at most {count} images of {height}×{width}"
    containers = body.count(b"[") + body.count(b"{")
    if containers > 2 * (arrays + 1):
        return (
            f"the body holds {containers:,} JSON arrays and objects; {batch} holds at most {arrays:,} arrays "
            f"(refused before parsing: send at most {count} images per request)"
        )
    separators = body.count(b",")
    if separators > 2 * numbers:
        return (
            f"the body holds {separators + 1:,} comma-separated JSON values; {batch} holds at most "
            f"{numbers:,} numbers (refused before parsing: send at most {count} images per request)"
        )
    return None


async def multipart_problem(scope: dict, body: bytes) -> str | None:
    """Why a /refine body is not exactly one file part named `image`, or None."""
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request({key: value for key, value in scope.items() if key != "app"}, receive).form()
    except Exception as error:  # starlette's MultiPartException and the parser's own errors
        return f"malformed multipart/form-data body: {error}"
    try:
        items = form.multi_items()
        names = [name for name, _ in items]
        if "image" not in names:
            return f"the multipart field `image` is missing (got fields: {', '.join(names) or 'none'})"
        if set(names) != {"image"}:
            return f"unexpected multipart field(s) {', '.join(sorted(set(names) - {'image'}))}; send only `image`"
        if len(names) > 1:
            return f"send one `image` per request, got {len(names)} (refine_batch takes many)"
        if not isinstance(items[0][1], UploadFile):
            return "`image` must be a file upload (curl -F image=@eye.png), not a text value"
    finally:
        await form.close()
    return None


# ------------------------------------------------------------------------------ errors: one shape, one line
def one_line(text: str) -> str:
    """`text` on one line (no newline can split a log line or forge another), at most 1,000 characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= 1000 else line[:999] + "…"


def validation_message(errors: list[dict]) -> str:
    """pydantic's error list (BentoML's `detail`) as one sentence: "`images`: expected uint8 … ; …"."""
    parts = []
    for error in errors:
        message = str(error.get("msg", "invalid input")).removeprefix("Value error, ")
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"`{location}`: {message}" if location else message)
    return "; ".join(parts)


def error_message(body: bytes) -> str:
    """The one-line message of an error body, whatever shape BentoML or starlette gave it.

    BentoML 1.4.40 answers a 4xx BentoMLException with [{"error": …}], a pydantic ValidationError with
    {"error": "1 validation error for Input", "detail": [...]} (the useful part is in `detail`), its 5xx
    with {"error": …}; starlette answers 405 with plain text.
    """
    try:
        data = json.loads(body)
    except ValueError:
        data = body.decode("utf-8", errors="replace")
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("detail"), list) and data["detail"]:
        data = validation_message([error for error in data["detail"] if isinstance(error, dict)]) or data
    if isinstance(data, dict) and "error" in data:
        data = data["error"]
    return one_line(data if isinstance(data, str) else json.dumps(data)) or "error"


def client_error_status(error: BaseException | None) -> int | None:
    """The 4xx BentoML answers to `error` (a client's mistake), or None for a server fault."""
    if isinstance(error, ValidationError):  # BentoML: 400
        return 400
    if isinstance(error, BentoMLException) and 400 <= int(error.error_code) < 500:
        return int(error.error_code)
    return None


class ClientErrorLogFilter(logging.Filter):
    """On BentoML's `log_exception` logger: its record of a client's mistake becomes one INFO line.

    BentoML 1.4.40 logs every exception an API call raises as ERROR "Exception on <path> [<method>]" with
    the full traceback, the 400 of a malformed request as much as a real fault: operators could not tell
    them apart, and each bad request wrote some twenty lines. Records of a pydantic ValidationError or a
    4xx BentoMLException are rewritten to one INFO line with the status and the message the client got;
    any other exception keeps ERROR and its traceback.
    """

    LOGGER = "bentoml._internal.server.http_app"  # where log_exception lives (used by _bentoml_impl's app)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = client_error_status(error)
        if status is not None:
            message = validation_message(error.errors()) if isinstance(error, ValidationError) else str(error)
            where = record.args if isinstance(record.args, tuple) and len(record.args) == 2 else ("?", "?")
            record.msg, record.args = "client error %d on %s [%s]: %s", (status, *where, one_line(message))
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info = record.exc_text = record.stack_info = None
        return True

    @classmethod
    def install(cls) -> None:
        logger = logging.getLogger(cls.LOGGER)
        if not any(isinstance(existing, cls) for existing in logger.filters):
            logger.addFilter(cls())


def error_responses_in_one_shape(send):
    """`send`, with the body of every answer of status >= 400 rewritten to {"error": "<one line>"}."""
    held: dict | None = None
    chunks: list[bytes] = []

    async def wrapped(message: dict) -> None:
        nonlocal held
        if message["type"] == "http.response.start" and message["status"] >= 400:
            held = message
            return None
        if held is None or message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return None
        payload = json.dumps({"error": error_message(b"".join(chunks))}, ensure_ascii=False).encode()
        headers = [
            (key, value)
            for key, value in held.get("headers", [])
            if key.lower() not in (b"content-type", b"content-length")
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({**held, "headers": headers})
        return await send({"type": "http.response.body", "body": payload})

    return wrapped


class RequestGuard:
    """ASGI middleware before the API routes: turns what BentoML 1.4.40 would answer with a 500, or act on,
    into a 400. It answers 500 to a multipart part that is not UTF-8 and to a form it cannot parse, and it
    downloads a URL sent as a text `image` field. So /refine takes multipart with exactly one file part
    `image`, /refine_batch JSON, bodies above `max_body_bytes()` are refused unread, and a /refine_batch
    body that cannot be a batch (`batch_body_problem`) before it is parsed. Every error answer of an API
    route leaves in one shape, {"error": "<one line>"}.
    """

    def __init__(self, app) -> None:
        self.app = app
        ClientErrorLogFilter.install()  # here: in each worker, after BentoML has configured its logging

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path") not in MEDIA_TYPES:
            return await self.app(scope, receive, send)
        send = error_responses_in_one_shape(send)
        route = scope["path"] if scope.get("method") == "POST" else None
        if route is None:
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        media_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if media_type not in MEDIA_TYPES[route]:
            return await refuse(scope, send, f"{route} takes {' or '.join(MEDIA_TYPES[route])}; got {media_type}")
        limit, size = max_body_bytes(), 0
        body = bytearray()
        while True:  # past the limit the rest is read and dropped: clients fail on an answer sent mid-upload
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                body += chunk
            if not message.get("more_body", False):
                break
        if size > limit:
            return await refuse(scope, send, f"the request body is {size:,} bytes; at most {limit:,} are accepted")
        if route == "/refine" and (problem := await multipart_problem(scope, bytes(body))):
            return await refuse(scope, send, problem)
        if route == "/refine_batch" and (problem := batch_body_problem(body)):
            return await refuse(scope, send, problem)
        replayed = False

        async def replay() -> dict:  # BentoML reads the body we already read
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)


async def refuse(scope: dict, send, message: str) -> None:
    """Answer 400 {"error": message}, logged as one INFO line (a client's mistake, no traceback)."""
    message = one_line(message)
    LOG.info("client error 400 on %s [%s]: %s", scope.get("path"), scope.get("method"), message)
    payload = json.dumps({"error": message}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@bentoml.service(name="simgan-refiner", workers=ARGS.workers, traffic={"timeout": 60})
class Refiner:
    """Refines synthetic images with the SimGAN refiner of one task (see the module docstring).

    The APIs are `async def` on purpose: a refiner forward takes milliseconds, and running it on the
    worker's event loop skips BentoML's hand-off to a thread pool (and its GIL contention), which cost
    more than the forward itself. One forward at a time per worker; parallelism is `workers` processes
    of `torch_threads` each (docs/benchmarks.md has the measurements).
    """

    model = MODEL

    def __init__(self) -> None:
        torch.set_num_threads(ARGS.torch_threads)
        config, self.metadata = model_files()
        weights = torch.load(MODEL.resolve().path_of(WEIGHTS_FILE), map_location="cpu", weights_only=True)
        self.runner = RefinerRunner(build_refiner(config, weights, source=str(MODEL.tag)))
        self.runner.refine(np.zeros((1, *input_size()), dtype=np.uint8))  # warm-up: first request is not slower

    @bentoml.api
    async def refine(self, image: Path) -> Image.Image:
        """One PNG or JPEG (grey or convertible to grey, the refiner's H×W) → the refined image as PNG."""
        pixels = decode_image(image)
        refined = self.runner.refine(pixels[None])[0]
        return Image.fromarray(refined, mode="L")

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=ARGS.max_batch_size, max_latency_ms=ARGS.max_latency_ms)
    async def refine_batch(
        self, images: Annotated[np.ndarray, AfterValidator(checked_batch)]
    ) -> Annotated[np.ndarray, DType("uint8")]:  # DType: clients get uint8 back, not int64
        """uint8 N×H×W (JSON integers 0..255) → refined uint8 N×H×W; requests are batched adaptively."""
        return self.runner.refine(images)

    @bentoml.api
    async def info(self) -> dict[str, Any]:
        """What is served: model tag, task, input spec, training metrics and data version."""
        height, width = input_size()
        return {
            "task": ARGS.task,
            "model": str(MODEL.resolve().tag),
            "refiner_config": model_files()[0],
            "input": {
                "refine": {
                    "formats": ARGS.allowed_formats,
                    "modes": ARGS.allowed_modes,
                    "height": height,
                    "width": width,
                    "max_image_pixels": ARGS.max_image_pixels,
                },
                "refine_batch": {
                    "dtype": "uint8",
                    "shape": ["N", height, width],
                    "max_batch_size": ARGS.max_batch_size,
                },
            },
            "training_metrics": self.metadata.get("training_metrics", {}),
            "data_version": self.metadata.get("data_version"),
            "git_commit": self.metadata.get("git_commit"),
        }


Refiner.add_asgi_middleware(RequestGuard)
