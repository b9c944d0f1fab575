"""Live feeds: Structured Streaming from the landing zone into bronze (see ``stream.py``)."""
