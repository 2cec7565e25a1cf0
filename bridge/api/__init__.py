"""Generated gRPC/protobuf code for takebridge.v1 (from proto/, by proto/generate.py).

Do not edit the generated modules; edit the .proto and regenerate.
"""
from . import generation_pb2 as pb  # noqa: F401
from . import generation_pb2_grpc as pb_grpc  # noqa: F401
