"""Settings stored in the .blend: the shot contract fields, the server, and the jobs (so they
reattach after reopening the file)."""

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

DEFAULT_SERVER = "127.0.0.1:50151"
# the output codecs the panel offers (the API's names) and the roles of its reference images
CODECS = [("FFV1", "Lossless (FFV1)", ""), ("PRORES_422_HQ", "ProRes 422 HQ", ""), ("DNXHR", "DNxHR", ""),
          ("H264_PROXY", "H.264 proxy", "")]
REFERENCE_ROLES = [("character", "Character", ""), ("prop", "Prop", ""), ("style", "Style", ""),
                   ("reference", "Reference", "")]


class TAKEBRIDGE_PG_reference(bpy.types.PropertyGroup):
    filepath: StringProperty(name="Image", subtype="FILE_PATH")
    role: EnumProperty(name="Role", items=REFERENCE_ROLES, default="character")


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
    draft: BoolProperty(name="Draft", default=False,
                        description="the model's draft tier: few steps, for quick iteration (generative backends; "
                                    "the classic one has one tier). A draft take offers 'Final from this draft': the "
                                    "same request and seed at full steps")
    seed: IntProperty(name="Seed", default=1, min=0)
    seed_lock: BoolProperty(name="Lock seed", default=True, description="off: a new random seed per job")
    codec: EnumProperty(name="Codec", items=CODECS, default="PRORES_422_HQ")
    fallback: EnumProperty(name="Fallback", items=[
        ("fail", "Fail", "a job over its compute budget fails"),
        ("degrade", "Degrade", "over budget: fewer denoising steps, or half resolution and upscaled"),
        ("classic", "Classic", "a backend the server lacks: run on the one it has")],
        default="fail", description="what the server may do when the job cannot run as asked (recorded in the "
                                    "take's manifest)")
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
    # Generate: a pre-vis shot in a gap
    generate_shot: StringProperty(name="Shot", description="a new shot's name (a pre-vis shot already there keeps "
                                                           "its own); empty = named after its channel and timecode")
    generate_range: EnumProperty(name="Range", items=[
        ("GAP", "Gap at playhead", ("the gap under the playhead on the active strip's channel, strip to strip "
                                    "(or the pre-vis shot there: another take of it)")),
        ("PREVIEW", "Preview range", "the scene's preview range, on the active strip's channel")])
    generate_mode: EnumProperty(name="Mode", items=[
        ("AUTO", "Auto", "from what is given: a board, else the neighbouring strips' frames, else the prompt"),
        ("TEXT", "Text", "from the prompt alone"), ("IMAGE", "Board", "from the board strip's frame"),
        ("KEYFRAMES", "Keyframes", "from the outgoing strip's last frame to the incoming strip's first"),
        ("REFERENCES", "References", "from the prompt and the reference images")])
    generate_camera: EnumProperty(name="Camera", items=[
        ("AUTO", "Default", "push in on a board; none otherwise"), ("STATIC", "Static", ""),
        ("PUSH_IN", "Push in", ""), ("PULL_OUT", "Pull out", ""), ("PAN_LEFT", "Pan left", ""),
        ("PAN_RIGHT", "Pan right", ""), ("TILT_UP", "Tilt up", ""), ("TILT_DOWN", "Tilt down", "")])
    generate_camera_amount: FloatProperty(name="Amount", default=0.0, min=0.0, max=1.0, subtype="FACTOR",
                                          description="how far the camera moves (of the picture); 0 = 15 %")
    generate_burn_in: BoolProperty(name="Burn in PRE-VIS", default=False,
                                   description="mark the frames PRE-VIS, so no one takes them for footage")
    board_strip: StringProperty(name="Board", description="image or movie strip whose frame is the shot's board "
                                                          "(storyboard still); empty = none")

    # the shot contract (contracts.py): the file last loaded or saved, and its fields the panel has
    # no widget for (role, purpose, characters, constraints, review, budget) as contract JSON
    contract_path: StringProperty(name="Contract", subtype="FILE_PATH",
                                  description="the shot contract last loaded or saved")
    contract_extra: StringProperty(name="Contract fields", default="",
                                   description="the contract's fields the panel shows no widget for (JSON); "
                                               "sent with every job and saved again")


CLASSES = (TAKEBRIDGE_PG_reference, TAKEBRIDGE_PG_job, TAKEBRIDGE_PG_settings)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.takebridge = PointerProperty(type=TAKEBRIDGE_PG_settings)


def unregister():
    del bpy.types.Scene.takebridge
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
