"""``ganforge serve``: a generator to explore in the browser (seeds, SeFa directions, truncation,
classes, interpolation, style mixing, projection of uploaded images), one generator in memory
shared by every request."""

from .explorer import BadRequest, Explorer

__all__ = ["BadRequest", "Explorer", "serve"]


def serve(*args, **kwargs):
    """See :func:`ganforge.serve.app.serve` (imported on use: the web stack is an extra)."""
    from .app import serve as _serve  # deferred: the web stack is an optional extra

    return _serve(*args, **kwargs)
