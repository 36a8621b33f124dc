"""Routers: the static allocator and its router, and the Cont & Kukanov placement."""
