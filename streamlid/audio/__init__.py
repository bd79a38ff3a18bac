"""Audio in: sources (microphone, files, ffmpeg, stdin) and the ring buffer they write to."""

# What the model hears, and so the rate everything after the resampler runs at.
SAMPLE_RATE_HZ = 16000
