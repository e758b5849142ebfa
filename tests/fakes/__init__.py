"""Local stand-ins for remote services, real over the wire (HTTP on 127.0.0.1).

`anthropic_api`: the Messages API (JSON and SSE streaming) for the real `anthropic` SDK.
"""
