"""Settings stored in the .blend: the shot contract fields, the server, and the jobs (so they
reattach after reopening the file)."""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

DEFAULT_SERVER = "127.0.0.1:50151"


class TAKEBRIDGE_PG_reference(bpy.types.PropertyGroup):
    filepath: StringProperty(name="Image", subtype="FILE_PATH")
    role: EnumProperty(name="Role", items=[("character", "Character", ""), ("prop", "Prop", ""),
                                           ("style", "Style", "")], default="character")


class TAKEBRIDGE_PG_job(bpy.types.PropertyGroup):
    job_id: StringProperty()
    server: StringProperty()
    source: StringProperty(description="source strip name")
    op: StringProperty()
    state: StringProperty(default="queued")
    progress: FloatProperty(min=0.0, max=1.0, subtype="FACTOR")
    stage: StringProperty()
    eta: FloatProperty(default=-1.0)
    last_seq: IntProperty(default=0)
    message: StringProperty()
    take_id: StringProperty()
    placed: BoolProperty(default=False)


class TAKEBRIDGE_PG_settings(bpy.types.PropertyGroup):
    server: StringProperty(name="Server", default=DEFAULT_SERVER, description="TakeBridge server host:port")
    token: StringProperty(name="Token", subtype="PASSWORD", description="bearer token, if the server asks for one")
    status: StringProperty(name="Status", default="not connected")
    backend: StringProperty(name="Backend", default="", description="classic (CPU) or diffusers; empty = server's")
    model: StringProperty(name="Model", default="", description="diffusers model id; empty = the default")
    prompt: StringProperty(name="Prompt")
    negative_prompt: StringProperty(name="Negative")
    references: CollectionProperty(type=TAKEBRIDGE_PG_reference)
    seed: IntProperty(name="Seed", default=1, min=0)
    seed_lock: BoolProperty(name="Lock seed", default=True, description="off: a new random seed per job")
    codec: EnumProperty(name="Codec", items=[("FFV1", "Lossless (FFV1)", ""), ("PRORES_422_HQ", "ProRes 422 HQ", ""),
                                            ("DNXHR", "DNxHR", ""), ("H264_PROXY", "H.264 proxy", "")], default="PRORES_422_HQ")
    strength: FloatProperty(name="Strength", default=0.5, min=0.0, max=1.0)
    extend_side: EnumProperty(name="Side", items=[("TAIL", "Tail", "after the strip"), ("HEAD", "Head", "before it")])
    extend_unit: EnumProperty(name="Unit", items=[("FRAMES", "Frames", ""), ("SECONDS", "Seconds", "")])
    extend_amount: FloatProperty(name="Length", default=24.0, min=1.0)
    mask_strip: StringProperty(name="Mask strip", description="image, movie or Mask strip; white = regenerate")
    feather: IntProperty(name="Feather", default=0, min=0, max=64)
    handles: IntProperty(name="Handles", default=0, min=0, max=48)
    take_dir: StringProperty(name="Take folder", default="//takes", subtype="DIR_PATH")
    jobs: CollectionProperty(type=TAKEBRIDGE_PG_job)
    take_index: IntProperty()
    review_note: StringProperty(name="Note")
    compare_mode: EnumProperty(name="Compare", items=[("WIPE", "A/B wipe", ""), ("SIDE", "Side by side", "")])


CLASSES = (TAKEBRIDGE_PG_reference, TAKEBRIDGE_PG_job, TAKEBRIDGE_PG_settings)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.takebridge = PointerProperty(type=TAKEBRIDGE_PG_settings)


def unregister():
    del bpy.types.Scene.takebridge
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
