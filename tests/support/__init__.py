"""Test support shared by the main suite and the Blender suite (its own virtual environment):
only numpy, PyAV and the standard library here."""
