"""ComfyUI-native backbone: the pack's methods over the MODEL, CLIP and VAE that ComfyUI's own loaders give."""
