"""The codec names users type (`--codec lossless`) and the API's Codec values they stand for."""
CODEC_CHOICES = {"prores": "PRORES_422_HQ", "lossless": "FFV1", "png": "PNG_SEQUENCE", "h264": "H264_PROXY",
                 "exr": "EXR_SEQUENCE", "dnxhr": "DNXHR"}
