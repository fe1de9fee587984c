"""The pack without ComfyUI: ``python -m zeroshot_video`` (demo, stand-in models, workflow submission).

Kept outside ``core/`` so the engine stays a library with no command-line concerns. Each method runs through
the same entry point its nodes call (``core.methods``); the tiny stand-in models come from ``testing/``.
"""
