"""The explorer's web side: a Starlette app with the page and a few JSON/PNG routes, served by
uvicorn. Only these routes exist (no static files, no path from a request ever touches the
file system); uploads are bounded; every refusal is a 4xx with a message, and the server keeps
serving."""

from __future__ import annotations

import socket
import sys
import threading
import time
from importlib import resources

from .explorer import BadRequest, Explorer
from ..errors import GanforgeError

MAX_UPLOAD_BYTES = 16 * 2 ** 20

try:  # the optional extra: pip install 'ganforge[serve]'
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route
except ImportError:  # pragma: no cover - exercised by the error message test
    Starlette = None  # type: ignore[assignment,misc]


def require_stack() -> None:
    if Starlette is None:
        raise GanforgeError("ganforge serve needs its web stack: pip install 'ganforge[serve]' "
                            "(Starlette and uvicorn; make setup installs them)")
    try:
        import uvicorn  # noqa: F401 -- an optional extra: only its presence is checked
    except ImportError:
        raise GanforgeError("ganforge serve needs uvicorn: pip install 'ganforge[serve]'") from None


def page_html() -> str:
    return resources.files("ganforge.serve").joinpath("page.html").read_text(encoding="utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


NO_STORE = {"Cache-Control": "no-store"}


async def _body(request: Request, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the upload is {int(declared) / 2**20:.1f} MiB; at most "
                         f"{limit // 2**20} MiB are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the upload is larger than {limit // 2**20} MiB")
        chunks.append(chunk)
    if not size:
        raise BadRequest("the upload is empty: send the file's bytes as the request body")
    return b"".join(chunks)


def create_app(explorer: Explorer) -> "Starlette":
    require_stack()
    html = page_html()

    def guarded(fn):
        async def endpoint(request: Request):
            try:
                return await fn(request)
            except BadRequest as e:
                return _error(413 if "MiB" in str(e) else 400, str(e))
            except GanforgeError as e:
                return _error(409, str(e))
            except Exception as e:  # noqa: BLE001 -- one request fails, the server goes on
                return _error(500, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return endpoint

    async def page(request: Request):
        return HTMLResponse(html, headers=NO_STORE)

    async def info(request: Request):
        return JSONResponse(await run_in_threadpool(explorer.info), headers=NO_STORE)

    async def image(request: Request):
        params = dict(request.query_params)
        png = await run_in_threadpool(lambda: explorer.image_png(explorer.state(params)))
        headers = dict(NO_STORE)
        if params.get("download"):
            headers["Content-Disposition"] = 'attachment; filename="ganforge-image.png"'
        return Response(png, media_type="image/png", headers=headers)

    async def grid(request: Request):
        params = dict(request.query_params)
        if explorer.is_points:
            raise BadRequest("a 2-D point generator has no grid: its plot is /api/image.png")
        png = await run_in_threadpool(lambda: explorer.grid_png(explorer.state(params)))
        return Response(png, media_type="image/png", headers=NO_STORE)

    async def latent(request: Request):
        params = dict(request.query_params)
        data = await run_in_threadpool(lambda: explorer.latent_npy(explorer.state(params)))
        return Response(data, media_type="application/octet-stream", headers={
            **NO_STORE, "Content-Disposition": 'attachment; filename="ganforge-latent.npy"'})

    async def upload_latent(request: Request):
        data = await _body(request)
        return JSONResponse({"latent": await run_in_threadpool(explorer.upload_latent, data)})

    async def start_projection(request: Request):
        data = await _body(request)
        raw = request.query_params.get("class")
        cls = int(raw) if raw not in (None, "", "-1") and raw.lstrip("-").isdigit() else None
        if raw not in (None, "", "-1") and cls is None:
            raise BadRequest(f"class={raw!r} is not a whole number")
        job = await run_in_threadpool(explorer.start_projection, data, cls)
        return JSONResponse({"job": job})

    async def projection(request: Request):
        job = explorer.jobs.get(request.path_params["job"])
        if job is None:
            return _error(404, "no such projection (jobs live while the server runs)")
        return JSONResponse(dict(job), headers=NO_STORE)

    async def reload(request: Request):
        return JSONResponse(await run_in_threadpool(explorer.reload))

    routes = [
        Route("/", guarded(page)),
        Route("/api/info", guarded(info)),
        Route("/api/image.png", guarded(image)),
        Route("/api/grid.png", guarded(grid)),
        Route("/api/latent.npy", guarded(latent)),
        Route("/api/latent", guarded(upload_latent), methods=["POST"]),
        Route("/api/project", guarded(start_projection), methods=["POST"]),
        Route("/api/project/{job}", guarded(projection)),
        Route("/api/reload", guarded(reload), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-paragraph error when the port is taken or the host wrong."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise GanforgeError(f"port {port} on {host} is already in use (another ganforge serve "
                                "or another program); choose another with --port P, or --port 0 "
                                "for any free port") from None
        raise GanforgeError(f"cannot listen on {host}:{port} ({e.strerror or e}); check --host "
                            "(127.0.0.1 for this machine only, 0.0.0.0 for every interface)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Server:
    """uvicorn on a bound socket; ``start()`` runs it in a thread (tests, benchmarks),
    ``run()`` in the foreground until Ctrl-C."""

    def __init__(self, explorer: Explorer, host: str = "127.0.0.1", port: int = 8765) -> None:
        require_stack()
        import uvicorn  # the optional extra, checked just above

        self.explorer_path = explorer.path
        self.sock = bind(host, port)
        self.host, self.port = host, self.sock.getsockname()[1]
        config = uvicorn.Config(create_app(explorer), log_level="warning", access_log=False,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self) -> "Server":
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                break
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sock.close()


def serve(path: str, host: str = "127.0.0.1", port: int = 8765, device: str = "cpu",
          directions: int = 8, project_steps: int = 200) -> None:
    """Library entry point behind ``ganforge serve``: load, bind, print the URL, serve."""
    require_stack()
    explorer = Explorer(path, device=device, k=directions, project_steps=project_steps)
    server = Server(explorer, host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"ganforge: warning: serving on {host}: anyone who can reach this machine's port "
              f"{server.port} can use the explorer (it has no password). Use the default "
              "127.0.0.1 with an SSH port forward to keep it private.", file=sys.stderr)
    info = explorer.info()
    print(f"ganforge explorer: {info['name'] or path} ({info['arch']}, {info['space']}-space, "
          f"{len(info['directions'])} directions) at {server.url}  (Ctrl-C stops)", flush=True)
    server.run()


__all__ = ["create_app", "serve", "Server", "bind"]
