"""Backends turn source frames + a spec into generated frames; they never see OTIO or gRPC."""
