"""TakeBridge's editor-agnostic core: OTIO selections, takes on clips, timecode, gRPC client.

Imports no editor module and no torch, so both editor add-ons and the server can use it.
"""
__version__ = "0.1.0"
