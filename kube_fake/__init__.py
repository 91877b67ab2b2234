"""A fake Kubernetes API server on loopback, for the tests and the benchmarks: the real
`kubernetes` client talks HTTP to it. Not part of the product (the image leaves it out)."""

from .server import FakeKubernetes

__all__ = ["FakeKubernetes"]
