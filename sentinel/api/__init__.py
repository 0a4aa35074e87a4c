"""The HTTP API (SPEC section 4): a Litestar app served by Granian."""
