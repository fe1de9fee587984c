"""The pack without ComfyUI: ``python -m zeroshot_video`` (demo, stand-in models, workflow submission).

Kept outside ``core/`` so the engine stays a library with no command-line concerns; the stand-in writer
lives here too because both the command line and the tests build their tiny models with it.
"""
