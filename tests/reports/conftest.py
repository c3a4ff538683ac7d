from tests.server.shared import anyio_backend, data, fake_llm, prices_file

__all__ = ["anyio_backend", "data", "fake_llm", "prices_file"]
