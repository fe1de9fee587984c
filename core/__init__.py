"""The engine: schedules, the Denoiser, backbone loading, chunked VAE and the samplers. No ComfyUI here."""
