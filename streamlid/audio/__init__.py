"""Audio in: sources (microphone, files, ffmpeg, stdin) and the ring buffer they write to."""
